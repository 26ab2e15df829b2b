"""Linear predictors over numeric rows, fitted on the rows and targets as they are.

``ridge``: ridge regression on columns standardised by their spread, the penalty chosen by
leave-one-out cross-validation (scikit-learn's ``RidgeCV``) among ``RIDGE_ALPHAS``. ``linear``:
ordinary least squares with an intercept, solved as :func:`numpy.polyfit` solves a line (columns
scaled to unit norm, then ``lstsq``), so that on one column it is that line. ``nnls``:
non-negative weights and intercept minimising the relative error ``sum(((p - y) / y)^2)`` (Lawson
and Hanson's non-negative least squares, scipy), for costs that are non-negative sums of parts
such as latency over the kernels a runtime executes; targets should be >= 0.

The latency predictor of :mod:`hwnas.hardware.predictor` fits these three; their fitted state
is a few lists of numbers (:meth:`~hwnas.predictors.fitted.PlainFitted.state`).

Example:
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [3.0], [4.0]])
    >>> p = LinearPredictor().fit(X, 2.0 * X[:, 0] + 1.0)
    >>> [round(float(v), 6) for v in p.predict(np.array([[5.0]]))]
    [11.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import ConfigError, MissingExtraError
from hwnas.predictors.fitted import PlainFitted

RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 3, 15))
MIN_TARGET = 1e-6  # nnls: targets below this weigh as much as this (guards 1 / 0)


def _spread(X: np.ndarray) -> np.ndarray:
    """Standard deviation of each column; 1 for (near-)constant columns."""
    scale = X.std(axis=0)
    return np.where(scale > 1e-12, scale, 1.0)


def _vector(name: str, state: dict[str, Any], key: str, n: int) -> list[float]:
    value = state.get(key)
    if not (isinstance(value, list) and len(value) == n):
        raise ConfigError(f"{name}: state field {key!r} is missing or not {n} numbers")
    return value


def _number(name: str, state: dict[str, Any], key: str) -> float:
    value = state.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{name}: state field {key!r} is missing or not a number")
    return float(value)


class _ExactFit(PlainFitted):
    """A fit with no randomness; its state is the dict of fitted numbers it keeps.

    Args:
        seed: unused (the fit is exact); accepted so every predictor takes a seed.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = int(seed)

    def state(self) -> dict[str, Any]:
        return dict(self._model)


class RidgePredictor(_ExactFit):
    """Ridge regression on standardised columns; the penalty by leave-one-out CV."""

    name = "ridge"

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        try:
            from sklearn.linear_model import RidgeCV
        except ImportError:
            raise MissingExtraError("scikit-learn", "ml", "the ridge predictor") from None
        mean = X.mean(axis=0)
        scale = _spread(X)  # constant columns stay 0 after centring
        model = RidgeCV(alphas=RIDGE_ALPHAS).fit((X - mean) / scale, y)
        self._model = {
            "alpha": float(model.alpha_),
            "intercept": float(model.intercept_),
            "coef": [float(c) for c in model.coef_],
            "mean": [float(m) for m in mean],
            "scale": [float(s) for s in scale],
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        m = self._model
        z = (X - np.asarray(m["mean"])) / np.asarray(m["scale"])
        return np.asarray(z @ np.asarray(m["coef"]) + m["intercept"])

    def _restore(self, state: dict[str, Any]) -> None:
        n = self._n_features
        self._model = {
            "alpha": _number(self.name, state, "alpha"),
            "intercept": _number(self.name, state, "intercept"),
            **{k: _vector(self.name, state, k, n) for k in ("coef", "mean", "scale")},
        }

    def describe(self) -> dict[str, Any]:
        alpha = self._model["alpha"] if self._model is not None else None
        return {"predictor": self.name, "alpha": alpha}


class LinearPredictor(_ExactFit):
    """Ordinary least squares with an intercept (on one column: :func:`numpy.polyfit`'s line)."""

    name = "linear"

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        # polyfit's recipe for a line, with more columns: scale each column of [X, 1] to unit
        # norm, solve by lstsq, scale back (rank-deficient X: the minimum-norm solution).
        lhs = np.column_stack([X, np.ones(len(X))])
        norm = np.sqrt((lhs * lhs).sum(axis=0))
        norm = np.where(norm > 0, norm, 1.0)  # an all-zero column gets weight 0
        lhs /= norm
        c = np.linalg.lstsq(lhs, y + 0.0, rcond=len(X) * np.finfo(float).eps)[0] / norm
        self._model = {"intercept": float(c[-1]), "coef": [float(v) for v in c[:-1]]}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X @ np.asarray(self._model["coef"]) + self._model["intercept"])

    def _restore(self, state: dict[str, Any]) -> None:
        self._model = {
            "intercept": _number(self.name, state, "intercept"),
            "coef": _vector(self.name, state, "coef", self._n_features),
        }

    def describe(self) -> dict[str, Any]:
        return {"predictor": self.name}


class NNLSPredictor(_ExactFit):
    """Non-negative weights and intercept minimising the relative error (targets >= 0).

    Columns are scaled to unit spread so that the solver treats them alike.
    """

    name = "nnls"

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from scipy.optimize import nnls

        scale = _spread(X)
        A = np.c_[X / scale, np.ones(len(X))]
        w = 1.0 / np.maximum(y, MIN_TARGET)
        coef, _ = nnls(A * w[:, None], y * w, maxiter=50 * A.shape[1])
        self._model = {
            "intercept": float(coef[-1]),
            "coef": [float(c) for c in coef[:-1]],
            "scale": [float(s) for s in scale],
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        m = self._model
        return np.asarray((X / np.asarray(m["scale"])) @ np.asarray(m["coef"]) + m["intercept"])

    def _restore(self, state: dict[str, Any]) -> None:
        n = self._n_features
        self._model = {
            "intercept": _number(self.name, state, "intercept"),
            **{k: _vector(self.name, state, k, n) for k in ("coef", "scale")},
        }

    def describe(self) -> dict[str, Any]:
        return {"predictor": self.name}
