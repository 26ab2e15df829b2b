"""The Predictor ABC: a regressor over architecture encodings, with optional uncertainty.

Strategies fit predictors on what the study told them (encodings of evaluated architectures and
their objective values) and use them to rank candidates they have not evaluated.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np


class Predictor(ABC):
    """Fit on ``(X, y)``, predict ``y`` for new rows.

    Subclasses implement :meth:`fit` and :meth:`predict`; those that can estimate their
    uncertainty set ``has_uncertainty = True`` and override :meth:`predict_with_std`.
    """

    has_uncertainty: bool = False

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> Predictor:
        """Fit on rows ``X`` (n, d) and targets ``y`` (n,); returns self."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted targets for rows ``X``."""

    def predict_with_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the prediction (needs ``has_uncertainty``)."""
        raise NotImplementedError(f"{type(self).__name__} gives no uncertainty")

    def describe(self) -> dict[str, Any]:
        """Settings worth showing next to the predictor's quality."""
        return {"predictor": type(self).__name__}


def rank_quality(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Kendall tau and Spearman rank correlation of predictions with the truth."""
    from scipy import stats

    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if len(t) < 3 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return {"kendall_tau": float("nan"), "spearman": float("nan"), "n": float(len(t))}
    return {
        "kendall_tau": float(stats.kendalltau(t, p).statistic),
        "spearman": float(stats.spearmanr(t, p).statistic),
        "n": float(len(t)),
    }


class OutOfSample:
    """Rank quality of a strategy's predictions on architectures evaluated after they were made.

    :meth:`promise` keeps the predictions for an asked architecture; :meth:`settle` pairs them
    with the told values (the last ``window`` pairs per metric are kept); :meth:`report` gives
    Kendall tau, Spearman and the number of pairs per metric, as diagnostics keys.
    """

    def __init__(self, window: int = 50) -> None:
        self.window = window
        self.promised: dict[str, dict[str, float]] = {}  # asked, not yet told
        self.pairs: dict[str, list[tuple[float, float]]] = {}

    def promise(self, key: str, predictions: dict[str, float]) -> None:
        self.promised[key] = predictions

    def settle(self, key: str, metrics: Mapping[str, float] | None) -> None:
        """Pair the predictions for ``key`` with its told ``metrics`` (None: failed, dropped)."""
        promised = self.promised.pop(key, None)
        if not promised or metrics is None:
            return
        for m, pred in promised.items():
            value = metrics.get(m)
            if value is not None and math.isfinite(value):
                pairs = self.pairs.setdefault(m, [])
                pairs.append((pred, float(value)))
                del pairs[: -self.window]

    def report(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for m, pairs in self.pairs.items():
            pred, true = np.array(pairs).T
            q = rank_quality(true, pred)
            out[f"kendall_tau@{m}"] = q["kendall_tau"]
            out[f"spearman@{m}"] = q["spearman"]
            out[f"n_out_of_sample@{m}"] = q["n"]
        return out
