"""How well predicted latencies match measured ones: the figures every latency model reports.

:func:`evaluate_predictions` gives the share of predictions within 5 % and 10 % of the
measurement, the root mean square and mean absolute percentage errors, and the rank correlations
(Spearman, Kendall tau) of predicted against measured latencies; calibration, the tabular
benchmark and the tests compare the LUT, the learned predictors and a second measurement by them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from hwnas.errors import ConfigError


def evaluate_predictions(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Accuracy figures of predicted against measured latencies.

    Returns ``share_within_5pct`` / ``share_within_10pct`` (fraction of |pred - true| / true
    at most 5 / 10 %, inclusive up to 1e-9 rounding), ``rmspe_pct`` and ``mape_pct`` (root mean
    square / mean absolute percentage error), ``spearman``, ``kendall_tau`` (NaN when either side
    is constant) and ``n``.

    Example:
        >>> evaluate_predictions([100, 100, 100, 100], [104, 95, 110, 80])["share_within_5pct"]
        0.5
    """
    from scipy import stats

    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise ConfigError(f"need two equal-length 1-D sequences, got {t.shape} and {p.shape}")
    if len(t) == 0:
        raise ConfigError("need at least one latency to evaluate predictions")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))) or np.any(t <= 0):
        raise ConfigError("measured latencies must be finite and > 0, predictions finite")
    rel = np.abs(p - t) / t
    ranked = len(t) > 1 and np.ptp(t) > 0 and np.ptp(p) > 0  # else correlation is undefined
    return {
        "share_within_5pct": float(np.mean(rel <= 0.05 + 1e-9)),
        "share_within_10pct": float(np.mean(rel <= 0.10 + 1e-9)),
        "rmspe_pct": float(100 * np.sqrt(np.mean(rel**2))),
        "mape_pct": float(100 * np.mean(rel)),
        "spearman": float(stats.spearmanr(t, p).statistic) if ranked else float("nan"),
        "kendall_tau": float(stats.kendalltau(t, p).statistic) if ranked else float("nan"),
        "n": len(t),
    }
