"""Predictors of objectives from architecture encodings: one ABC and one registry.

Use ``create_predictor(name, **options)`` and ``list_predictors()``; measure a fitted predictor
with :func:`rank_quality` on architectures it was not fitted on.

Example:
    >>> import numpy as np
    >>> X = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    >>> p = create_predictor("gbdt", n_estimators=50, seed=0).fit(X, X @ [1.0, 2.0, 3.0])
    >>> p.predict(X[:1]).shape
    (1,)
"""

from __future__ import annotations

from typing import Any

from hwnas.predictors.base import Predictor, rank_quality
from hwnas.predictors.fitted import NotFittedError, PlainFitted
from hwnas.predictors.kernels import GPPredictor, MLPEnsemblePredictor, SVRPredictor
from hwnas.predictors.linear import LinearPredictor, NNLSPredictor, RidgePredictor
from hwnas.predictors.trees import (
    ForestPredictor,
    GBDTPredictor,
    LinearGBDTPredictor,
    RandomForestPredictor,
)
from hwnas.registry import Registry

PREDICTORS: Registry[Predictor] = Registry("predictor")
PREDICTORS.register("gbdt")(GBDTPredictor)
PREDICTORS.register("rf")(RandomForestPredictor)
PREDICTORS.register("lgbm_rf")(ForestPredictor)
PREDICTORS.register("gp")(GPPredictor)
PREDICTORS.register("mlp_ensemble")(MLPEnsemblePredictor)
PREDICTORS.register("svr")(SVRPredictor)
# Fitted on unscaled rows, savable as plain values: the models of the latency predictor
# (hwnas.hardware.predictor), usable by any strategy too.
PREDICTORS.register("linear_gbdt")(LinearGBDTPredictor)
PREDICTORS.register("ridge")(RidgePredictor)
PREDICTORS.register("linear")(LinearPredictor)
PREDICTORS.register("nnls")(NNLSPredictor)


def create_predictor(name: str, **options: Any) -> Predictor:
    """Create a registered predictor, e.g. ``create_predictor("rf", n_estimators=50, seed=1)``."""
    return PREDICTORS.create(name, **options)


def list_predictors() -> list[str]:
    return PREDICTORS.names()


__all__ = [
    "PREDICTORS",
    "ForestPredictor",
    "GBDTPredictor",
    "GPPredictor",
    "LinearGBDTPredictor",
    "LinearPredictor",
    "MLPEnsemblePredictor",
    "NNLSPredictor",
    "NotFittedError",
    "PlainFitted",
    "Predictor",
    "RandomForestPredictor",
    "RidgePredictor",
    "SVRPredictor",
    "create_predictor",
    "list_predictors",
    "rank_quality",
]
