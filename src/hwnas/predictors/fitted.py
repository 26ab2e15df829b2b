"""Shared plumbing of the built-in predictors: input checks, scaling, the not-fitted guard.

Every built-in predictor subclasses :class:`Fitted`, which checks ``(X, y)``, standardises the
non-binary columns of ``X`` and the target with :class:`Scaler` before the model sees them, maps
predictions (and their standard deviations, floored at ``MIN_STD``) back to the target's scale,
and raises :class:`NotFittedError` when asked to predict before :meth:`Fitted.fit`.
:class:`PlainFitted` models see the rows and targets as they are and can be saved as plain JSON
values (:meth:`PlainFitted.state`, :meth:`PlainFitted.from_state`); the latency predictor of
:mod:`hwnas.hardware.predictor` saves its models that way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from hwnas.errors import ConfigError, HwnasError, MissingExtraError
from hwnas.predictors.base import Predictor

MIN_STD = 1e-9  # floor of reported uncertainties, relative to the target's scale


class NotFittedError(HwnasError):
    """A predictor was asked to predict before :meth:`Predictor.fit`."""


def require_sklearn(purpose: str) -> None:
    """Raise :class:`MissingExtraError` for ``purpose`` unless scikit-learn is installed."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingExtraError("scikit-learn", "ml", purpose) from None


def check_xy(name: str, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X`` as finite 2-D floats and ``y`` as finite 1-D floats of as many rows (at least 2)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2:
        raise ConfigError(f"{name}: X must be 2-D (rows, features), got shape {X.shape}")
    if len(X) != len(y):
        raise ConfigError(f"{name}: X has {len(X)} rows but y has {len(y)} values")
    if len(y) < 2:
        raise ConfigError(f"{name}: fitting needs at least 2 rows, got {len(y)}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ConfigError(f"{name}: X and y must be finite (drop failed evaluations first)")
    return X, y


def check_positive(name: str, **values: float) -> None:
    """Raise :class:`ConfigError` naming the first option in ``values`` that is not > 0."""
    for key, v in values.items():
        if not v > 0:
            raise ConfigError(f"{name}: {key} must be > 0, got {v}")


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """Fits are single-threaded (exact and repeatable; a search refits often, and BLAS threads
    on a busy machine slowed a GP fit 30x); threadpoolctl comes with scikit-learn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


class Scaler:
    """Standardises the non-binary columns of X (0/1 columns are left as they are) and y."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Scaler:
        binary = np.all((X == 0) | (X == 1), axis=0)
        self.mu = np.where(binary, 0.0, X.mean(axis=0))
        sd = X.std(axis=0)
        self.sd = np.where(binary | (sd == 0), 1.0, sd)
        self.y_mu = float(y.mean())
        self.y_sd = float(y.std()) or 1.0
        return self

    def x(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=float) - self.mu) / self.sd

    def y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mu) / self.y_sd

    def y_back(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z) * self.y_sd + self.y_mu


class Unscaled:
    """The :class:`Scaler` interface that leaves rows and targets as they are."""

    y_sd = 1.0

    def x(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float)

    def y(self, y: np.ndarray) -> np.ndarray:
        return y

    def y_back(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z)


class Fitted(Predictor):
    """Shared plumbing: input checks, the scaler and the not-fitted guard."""

    name = ""
    _model: Any = None
    _scaler: Scaler | Unscaled

    def fit(self, X: np.ndarray, y: np.ndarray) -> Predictor:
        X, y = check_xy(self.name, X, y)
        self._scaler = self._new_scaler(X, y)
        self._n_features = X.shape[1]
        with self._fit_threads():
            self._fit(self._scaler.x(X), self._scaler.y(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = self._rows(X)
        return self._scaler.y_back(self._predict(Z))

    def _new_scaler(self, X: np.ndarray, y: np.ndarray) -> Scaler | Unscaled:
        return Scaler().fit(X, y)

    def _fit_threads(self) -> contextlib.AbstractContextManager[object]:
        return _one_blas_thread()

    def _rows(self, X: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise NotFittedError(f"{self.name}: call fit() before predict()")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self._n_features:
            raise ConfigError(
                f"{self.name}: expected rows of {self._n_features} features, got shape {X.shape}"
            )
        return self._scaler.x(X)

    def _std_back(self, s: np.ndarray) -> np.ndarray:
        return np.maximum(np.asarray(s) * self._scaler.y_sd, MIN_STD * self._scaler.y_sd)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict(X), dtype=float)


P = TypeVar("P", bound="PlainFitted")


class PlainFitted(Fitted):
    """A :class:`Fitted` model of the rows and targets as they are (no standardisation), whose
    fitted state is plain JSON values: :meth:`state` gives them, :meth:`from_state` rebuilds
    the predictor from them without refitting (its predictions are then the same, bit for bit).
    Subclasses implement :meth:`_fit`, :meth:`_predict`, :meth:`state` and :meth:`_restore`.
    """

    def _new_scaler(self, X: np.ndarray, y: np.ndarray) -> Unscaled:
        return Unscaled()

    def _fit_threads(self) -> contextlib.AbstractContextManager[object]:
        # BLAS keeps its threads: the latency predictor fitted these models so before they came
        # here, and a thread limit changes ridge's coefficients in their last digits.
        return contextlib.nullcontext()

    def state(self) -> dict[str, Any]:
        """The fitted model as JSON values (numbers, lists of numbers, strings)."""
        raise NotImplementedError

    @classmethod
    def from_state(cls: type[P], state: Mapping[str, Any], n_features: int, **options: Any) -> P:
        """The predictor made with ``options`` and fitted as ``state`` says, on rows of
        ``n_features`` features; a :class:`ConfigError` names a missing or malformed field."""
        p = cls(**options)
        p._scaler = Unscaled()
        p._n_features = n_features
        p._restore(dict(state))
        return p

    def _restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
