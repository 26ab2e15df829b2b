"""The Predictor ABC: a regressor over architecture encodings, with optional uncertainty.

Strategies fit predictors on what the study told them (encodings of evaluated architectures and
their objective values) and use them to rank candidates they have not evaluated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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
