"""Kernel and neural predictors over numeric rows: Gaussian process, MLP ensemble, SVR.

All three are seeded from their options and single-threaded, so a fit is exact and repeatable.
``gp``: Gaussian process with a constant * RBF + white-noise kernel; on 0/1 one-hot columns the
squared distance is twice the Hamming distance, so the RBF is a Hamming kernel there (other
columns, such as cheap metrics, are standardised first). ``mlp_ensemble``: small MLPs differing
only in their seed; uncertainty = ensemble spread. ``svr``: epsilon-SVR with an RBF kernel, as
MOEA-BUS uses for its surrogate.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.predictors.fitted import Fitted, check_positive, require_sklearn


class GPPredictor(Fitted):
    """Gaussian process regression: constant * RBF (a Hamming kernel on one-hot) + white noise.

    Args:
        length_scale: initial RBF length scale (fitted by maximum likelihood).
        noise: initial white-noise level, relative to the standardised target.
        restarts: extra random restarts of the hyper-parameter optimiser.
        seed: seeds the restarts.
    """

    name = "gp"
    has_uncertainty = True

    def __init__(
        self, *, length_scale: float = 2.0, noise: float = 0.1, restarts: int = 1, seed: int = 0
    ) -> None:
        check_positive(self.name, length_scale=length_scale, noise=noise)
        if restarts < 0:
            raise ConfigError(f"gp: restarts must be >= 0, got {restarts}")
        self.length_scale = float(length_scale)
        self.noise = float(noise)
        self.restarts = int(restarts)
        self.seed = int(seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_sklearn("the gp predictor")
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(
            self.length_scale, (1e-1, 1e2)
        ) + WhiteKernel(self.noise, (1e-8, 1.0))
        model = GaussianProcessRegressor(
            kernel=kernel,
            normalize_y=False,  # the scaler already standardised y
            n_restarts_optimizer=self.restarts,
            random_state=self.seed,
        )
        with warnings.catch_warnings():
            # Tabular targets are noise-free: a noise level at its bound is the expected fit.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model = model.fit(X, y)

    def predict_with_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = self._rows(X)  # checks fitted first
        mean, std = self._model.predict(Z, return_std=True)
        return self._scaler.y_back(mean), self._std_back(std)

    def describe(self) -> dict[str, Any]:
        kernel = str(self._model.kernel_) if self._model is not None else "unfitted"
        return {"predictor": self.name, "kernel": kernel, "seed": self.seed}


class MLPEnsemblePredictor(Fitted):
    """Small scikit-learn MLPs trained from different seeds; their spread is the uncertainty.

    Args:
        members: MLPs in the ensemble.
        hidden: units per hidden layer.
        layers: hidden layers.
        alpha: L2 penalty.
        max_iter: L-BFGS iterations.
        seed: member ``i`` is seeded with ``seed + i``.
    """

    name = "mlp_ensemble"
    has_uncertainty = True

    def __init__(
        self,
        *,
        members: int = 5,
        hidden: int = 32,
        layers: int = 2,
        alpha: float = 1e-2,
        max_iter: int = 300,
        seed: int = 0,
    ) -> None:
        check_positive(self.name, members=members, hidden=hidden, layers=layers, max_iter=max_iter)
        if alpha < 0:
            raise ConfigError(f"mlp_ensemble: alpha must be >= 0, got {alpha}")
        self.members = int(members)
        self.hidden = int(hidden)
        self.layers = int(layers)
        self.alpha = float(alpha)
        self.max_iter = int(max_iter)
        self.seed = int(seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_sklearn("the mlp_ensemble predictor")
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        models = []
        for i in range(self.members):
            m = MLPRegressor(
                hidden_layer_sizes=(self.hidden,) * self.layers,
                alpha=self.alpha,
                solver="lbfgs",
                max_iter=self.max_iter,
                random_state=self.seed + i,
            )
            with warnings.catch_warnings():
                # A capped L-BFGS run is the intended early stopping on tens of rows.
                warnings.simplefilter("ignore", ConvergenceWarning)
                models.append(m.fit(X, y))
        self._model = models

    def _members(self, X: np.ndarray) -> np.ndarray:
        Z = self._rows(X)
        return np.stack([m.predict(Z) for m in self._model])

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self._members(X)  # checks fitted first
        return self._scaler.y_back(out.mean(axis=0))

    def predict_with_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._members(X)
        return self._scaler.y_back(out.mean(axis=0)), self._std_back(out.std(axis=0))

    def describe(self) -> dict[str, Any]:
        return {
            "predictor": self.name,
            "members": self.members,
            "hidden": [self.hidden] * self.layers,
            "alpha": self.alpha,
            "seed": self.seed,
        }


class SVRPredictor(Fitted):
    """Epsilon-support vector regression with an RBF kernel (the MOEA-BUS surrogate).

    Args:
        C: regularisation (on the standardised target).
        epsilon: width of the insensitive tube (standardised target units).
        gamma: RBF width, or ``"scale"`` (1 / (features * variance)).
        seed: unused by the deterministic solver; accepted so every predictor takes a seed.
    """

    name = "svr"

    def __init__(
        self, *, C: float = 10.0, epsilon: float = 0.05, gamma: float | str = "scale", seed: int = 0
    ) -> None:
        check_positive(self.name, C=C)
        if epsilon < 0:
            raise ConfigError(f"svr: epsilon must be >= 0, got {epsilon}")
        if isinstance(gamma, str) and gamma not in ("scale", "auto"):
            raise ConfigError(f"svr: gamma must be a number, 'scale' or 'auto', got {gamma!r}")
        if not isinstance(gamma, str):
            check_positive(self.name, gamma=gamma)
        self.C = float(C)
        self.epsilon = float(epsilon)
        self.gamma = gamma
        self.seed = int(seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_sklearn("the svr predictor")
        from sklearn.svm import SVR

        self._model = SVR(kernel="rbf", C=self.C, epsilon=self.epsilon, gamma=self.gamma).fit(X, y)

    def describe(self) -> dict[str, Any]:
        return {"predictor": self.name, "C": self.C, "epsilon": self.epsilon, "gamma": self.gamma}
