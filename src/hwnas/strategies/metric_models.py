"""What a predictor-guided strategy knows of unevaluated architectures: one fitted predictor per
expensive metric, over features of the architecture (its one-hot code, or the space's vector,
plus the space's cheap metrics, which are exact and free), with every feature row and cheap
metric cached per architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.predictors import create_predictor
from hwnas.predictors.base import Predictor
from hwnas.predictors.targets import NormalScores
from hwnas.problem import Problem
from hwnas.spaces.base import Arch, CategoricalSpace
from hwnas.trial import Observation


class MetricModels:
    """Predictors of ``metrics`` (registered ``predictor`` with ``options``), refitted on demand.

    With ``normal_scores`` each model is fitted on the normal scores of its metric
    (:class:`~hwnas.predictors.targets.NormalScores`) and predictions are mapped back.
    """

    def __init__(
        self,
        problem: Problem,
        metrics: Sequence[str],
        predictor: str,
        options: Mapping[str, Any],
        *,
        normal_scores: bool,
        use_cheap_metrics: bool,
    ) -> None:
        self.problem = problem
        self.space = problem.space
        self.metrics = list(metrics)
        self.predictor = predictor
        self.options = dict(options)
        self.normal_scores = normal_scores
        self.use_cheap_metrics = use_cheap_metrics
        self.models: dict[str, Predictor] = {}
        self._targets: dict[str, NormalScores] = {}
        self._features: dict[str, np.ndarray] = {}
        self._cheap: dict[str, dict[str, float]] = {}

    def fit(self, usable: list[Observation], *, seed: int) -> None:
        """Refit every model on the told observations ``usable`` (model j seeded ``seed + j``)."""
        X = self.rows([o.arch for o in usable])
        self.models = {}
        self._targets = {}
        for j, m in enumerate(self.metrics):
            y = np.array([o.metrics.get(m, np.nan) for o in usable], dtype=float)
            ok = np.isfinite(y)
            if ok.sum() < 2:
                continue
            model = create_predictor(self.predictor, **self.options, seed=seed + j)
            if self.normal_scores:
                self._targets[m] = NormalScores().fit(y[ok])
                y = self._targets[m].forward(y)
            self.models[m] = model.fit(X[ok], y[ok])

    def predict(
        self, archs: Sequence[Arch], *, with_std: bool
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Predicted (mean, std) of each modelled metric; NaN where no model could be fitted."""
        X = self.rows(archs)
        means: dict[str, np.ndarray] = {}
        stds: dict[str, np.ndarray] = {}
        for m in self.metrics:
            model = self.models.get(m)
            if model is None:
                means[m] = np.full(len(archs), np.nan)
                stds[m] = np.zeros(len(archs))
            elif with_std and model.has_uncertainty:
                means[m], stds[m] = model.predict_with_std(X)
            else:
                means[m] = model.predict(X)
                stds[m] = np.zeros(len(archs))
            target = self._targets.get(m)
            if target is not None and model is not None:  # back to the metric's units
                stds[m] = stds[m] * target.slope(means[m])
                means[m] = target.inverse(means[m])
        return means, stds

    def cheap_of(self, arch: Arch) -> dict[str, float]:
        k = self.space.to_string(arch)
        got = self._cheap.get(k)
        if got is None:
            got = self._cheap[k] = self.problem.cheap_metrics(arch)
        return got

    def rows(self, archs: Sequence[Arch]) -> np.ndarray:
        rows = []
        for a in archs:
            k = self.space.to_string(a)
            row = self._features.get(k)
            if row is None:
                row = self._features[k] = self._encode(a)
            rows.append(row)
        return np.vstack(rows)

    def _encode(self, arch: Arch) -> np.ndarray:
        if isinstance(self.space, CategoricalSpace):
            row = self.space.one_hot(arch)
        else:
            row = np.asarray(self.space.encode(arch), dtype=float)
        if self.use_cheap_metrics:
            cheap = self.cheap_of(arch)
            row = np.concatenate([row, [cheap[c] for c in self.space.cheap_metric_names()]])
        return row
