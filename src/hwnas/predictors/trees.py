"""Tree-ensemble predictors over numeric rows: LightGBM boosting and two random forests.

All four are seeded from their options and single-threaded, so a fit is exact and repeatable:
``gbdt`` (LightGBM gradient-boosted small trees, no uncertainty), ``linear_gbdt`` (LightGBM
boosting with a linear model in each leaf, on the rows as they are: the latency predictor's
default), ``rf`` (scikit-learn random forest; uncertainty = standard deviation over the trees)
and ``lgbm_rf`` (the same forest built by LightGBM's random-forest mode, at a fraction of the
cost).

Example:
    >>> import numpy as np
    >>> X = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]
    >>> y = X @ np.array([1.0, 2.0, 3.0, 4.0])
    >>> p = RandomForestPredictor(n_estimators=20, seed=0).fit(X, y)
    >>> mean, std = p.predict_with_std(X[:2])
    >>> bool(mean[0] < mean[1]) and bool(np.all(std > 0))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import ConfigError, MissingExtraError
from hwnas.predictors.fitted import Fitted, PlainFitted, check_positive, require_sklearn


class GBDTPredictor(Fitted):
    """LightGBM gradient boosting with small trees.

    Args:
        n_estimators: boosting rounds.
        learning_rate: shrinkage.
        num_leaves: leaves per tree.
        min_child_samples: rows a leaf needs (small: predictors see tens of rows).
        subsample: row fraction per round (bagging).
        seed: seeds bagging and feature sampling.
    """

    name = "gbdt"

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 8,
        min_child_samples: int = 3,
        subsample: float = 0.8,
        seed: int = 0,
    ) -> None:
        check_positive(self.name, n_estimators=n_estimators, learning_rate=learning_rate)
        if num_leaves < 2:
            raise ConfigError(f"gbdt: num_leaves must be >= 2, got {num_leaves}")
        if not 0.0 < subsample <= 1.0:
            raise ConfigError(f"gbdt: subsample must lie in (0, 1], got {subsample}")
        self.options: dict[str, Any] = {
            "n_estimators": int(n_estimators),
            "learning_rate": float(learning_rate),
            "num_leaves": int(num_leaves),
            "min_child_samples": int(min_child_samples),
            "subsample": float(subsample),
        }
        self.seed = int(seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        o = self.options
        self._model = _lgbm_regressor(
            self.name,
            self.seed,
            n_estimators=o["n_estimators"],
            learning_rate=o["learning_rate"],
            num_leaves=o["num_leaves"],
            min_child_samples=o["min_child_samples"],
            subsample=o["subsample"],
            subsample_freq=1 if o["subsample"] < 1.0 else 0,
            colsample_bytree=0.9,
            reg_lambda=1.0,
        ).fit(X, y)

    def describe(self) -> dict[str, Any]:
        return {"predictor": self.name, **self.options, "seed": self.seed}


class LinearGBDTPredictor(PlainFitted):
    """LightGBM gradient boosting with linear leaves (``linear_tree``: Shi, Li and Li, "Gradient
    Boosting with Piece-Wise Linear Regression Trees", IJCAI 2019), on unscaled rows.

    Features are bagged (80 %) and rows bagged (80 %, every round); leaves get an L2 penalty of 1
    on their values and on their linear coefficients. The fitted state is LightGBM's text model.

    Args:
        n_estimators: boosting rounds.
        learning_rate: shrinkage.
        num_leaves: leaves per tree.
        min_child_samples: rows a leaf needs.
        seed: seeds the bagging.
    """

    name = "linear_gbdt"

    def __init__(
        self,
        *,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 5,
        seed: int = 0,
    ) -> None:
        check_positive(self.name, n_estimators=n_estimators, learning_rate=learning_rate)
        check_positive(self.name, min_child_samples=min_child_samples)
        if num_leaves < 2:
            raise ConfigError(f"linear_gbdt: num_leaves must be >= 2, got {num_leaves}")
        self.n_estimators = int(n_estimators)
        self.learning_rate = float(learning_rate)
        self.num_leaves = int(num_leaves)
        self.min_child_samples = int(min_child_samples)
        self.seed = int(seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        lgb = _lightgbm(self.name)
        params = {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "linear_tree": True,
            "linear_lambda": 1.0,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": 1,  # small data: threads cost more than they give, results stay exact
            "verbosity": -1,
            "seed": self.seed,
        }
        # LightGBM rejects some characters in feature names; plain ones are used.
        data = lgb.Dataset(X, y, feature_name=[f"f{i}" for i in range(X.shape[1])])
        self._model = lgb.train(params, data, num_boost_round=self.n_estimators)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict(X, num_threads=1), dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {"model_text": self._model.model_to_string()}

    def _restore(self, state: dict[str, Any]) -> None:
        text = state.get("model_text")
        if not isinstance(text, str):
            raise ConfigError(f"{self.name}: state field 'model_text' is missing or not text")
        lgb = _lightgbm(self.name)
        try:
            booster = lgb.Booster(model_str=text)
        except Exception as exc:  # LightGBM raises its own error type for any parse failure
            raise ConfigError(f"{self.name}: not a LightGBM text model ({exc})") from None
        if booster.num_feature() != self._n_features:
            raise ConfigError(
                f"{self.name}: the model expects {booster.num_feature()} features, "
                f"not {self._n_features}"
            )
        self._model = booster

    def describe(self) -> dict[str, Any]:
        return {
            "predictor": self.name,
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "seed": self.seed,
        }


class RandomForestPredictor(Fitted):
    """scikit-learn random forest; the spread over trees is its uncertainty.

    Args:
        n_estimators: trees.
        min_samples_leaf: rows per leaf.
        max_features: fraction of features tried per split.
        seed: seeds the bootstrap and the feature draws.
    """

    name = "rf"
    has_uncertainty = True

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        min_samples_leaf: int = 1,
        max_features: float = 0.5,
        seed: int = 0,
    ) -> None:
        check_positive(self.name, n_estimators=n_estimators, min_samples_leaf=min_samples_leaf)
        if not 0.0 < max_features <= 1.0:
            raise ConfigError(f"rf: max_features must lie in (0, 1], got {max_features}")
        self.n_estimators = int(n_estimators)
        self.min_samples_leaf = int(min_samples_leaf)
        self.max_features = float(max_features)
        self.seed = int(seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_sklearn("the rf predictor")
        from sklearn.ensemble import RandomForestRegressor

        self._model = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            random_state=self.seed,
            n_jobs=1,
        ).fit(X, y)

    def _trees(self, X: np.ndarray) -> np.ndarray:
        # Each fitted tree's low-level predict: the forest's own predict() dispatches the trees
        # through joblib, which costs ~10x more on the few rows a search predicts at a time.
        Z = np.ascontiguousarray(self._rows(X), dtype=np.float32)
        return np.stack([t.tree_.predict(Z)[:, 0] for t in self._model.estimators_])

    def predict(self, X: np.ndarray) -> np.ndarray:
        per_tree = self._trees(X)  # checks fitted first
        return self._scaler.y_back(per_tree.mean(axis=0))

    def predict_with_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_tree = self._trees(X)
        return self._scaler.y_back(per_tree.mean(axis=0)), self._std_back(per_tree.std(axis=0))

    def describe(self) -> dict[str, Any]:
        return {
            "predictor": self.name,
            "n_estimators": self.n_estimators,
            "min_samples_leaf": self.min_samples_leaf,
            "max_features": self.max_features,
            "seed": self.seed,
        }


class ForestPredictor(Fitted):
    """LightGBM in random-forest mode: bagged trees, averaged; their spread is the uncertainty.

    The same model as ``rf`` at a fraction of its cost (one C++ fit, one predict call for all
    trees), which matters inside a search that refits every round.

    Args:
        n_estimators: trees.
        num_leaves: leaves per tree.
        min_child_samples: rows a leaf needs.
        subsample: bootstrap fraction per tree.
        colsample: fraction of features per tree.
        seed: seeds the bagging and the feature draws.
    """

    name = "lgbm_rf"
    has_uncertainty = True

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        num_leaves: int = 31,
        min_child_samples: int = 2,
        subsample: float = 0.63,
        colsample: float = 0.5,
        seed: int = 0,
    ) -> None:
        check_positive(self.name, n_estimators=n_estimators, min_child_samples=min_child_samples)
        if num_leaves < 2:
            raise ConfigError(f"lgbm_rf: num_leaves must be >= 2, got {num_leaves}")
        if not 0.0 < subsample < 1.0:  # LightGBM's forest mode needs bagging
            raise ConfigError(f"lgbm_rf: subsample must lie in (0, 1), got {subsample}")
        if not 0.0 < colsample <= 1.0:
            raise ConfigError(f"lgbm_rf: colsample must lie in (0, 1], got {colsample}")
        self.options: dict[str, Any] = {
            "n_estimators": int(n_estimators),
            "num_leaves": int(num_leaves),
            "min_child_samples": int(min_child_samples),
            "subsample": float(subsample),
            "colsample": float(colsample),
        }
        self.seed = int(seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        o = self.options
        self._model = _lgbm_regressor(
            self.name,
            self.seed,
            boosting_type="rf",
            n_estimators=o["n_estimators"],
            num_leaves=o["num_leaves"],
            min_child_samples=o["min_child_samples"],
            subsample=o["subsample"],
            subsample_freq=1,
            colsample_bytree=o["colsample"],
            reg_lambda=0.0,
        ).fit(X, y)
        # Leaf values of every tree, read from LightGBM's text model (one "leaf_value=" line
        # per tree, in tree order); dump_model() would build the same through JSON, 10x slower.
        text = self._model.booster_.model_to_string()
        values = [
            np.array(line.split("=", 1)[1].split(), dtype=float)
            for line in text.splitlines()
            if line.startswith("leaf_value=")
        ]
        self._leaves = np.zeros((len(values), max(len(v) for v in values)))
        for i, v in enumerate(values):
            self._leaves[i, : len(v)] = v

    def _trees(self, X: np.ndarray) -> np.ndarray:
        Z = self._rows(X)  # checks fitted first
        leaf = self._model.booster_.predict(Z, pred_leaf=True).reshape(len(X), -1)
        return self._leaves[np.arange(leaf.shape[1])[None, :], leaf].T

    def predict(self, X: np.ndarray) -> np.ndarray:
        per_tree = self._trees(X)  # checks fitted first
        return self._scaler.y_back(per_tree.mean(axis=0))

    def predict_with_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_tree = self._trees(X)
        return self._scaler.y_back(per_tree.mean(axis=0)), self._std_back(per_tree.std(axis=0))

    def describe(self) -> dict[str, Any]:
        return {"predictor": self.name, **self.options, "seed": self.seed}


def _lightgbm(name: str) -> Any:
    """The ``lightgbm`` module, or :class:`MissingExtraError` naming the ``ml`` extra."""
    try:
        import lightgbm
    except ImportError:
        raise MissingExtraError("lightgbm", "ml", f"the {name} predictor") from None
    return lightgbm


def _lgbm_regressor(name: str, seed: int, **params: Any) -> Any:
    """A seeded, single-threaded, silent LightGBM regressor with ``params`` (leaves may be as
    small as the few rows a search has: no minimum hessian)."""
    return _lightgbm(name).LGBMRegressor(
        min_child_weight=0.0,
        random_state=seed,
        deterministic=True,
        force_col_wise=True,
        n_jobs=1,
        verbosity=-1,
        **params,
    )
