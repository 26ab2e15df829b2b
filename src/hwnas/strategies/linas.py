"""Predictor-guided multi-objective search in the style of DyNAS-T's LINAS.

Real evaluations alternate with searches over predictions:

1. an initial design of ``initial_samples`` architectures, stratified over the space's cheap
   metrics (FLOPs, parameters) so that it spans the cost range, or uniformly random;
2. then, in rounds: fit one predictor per objective and per constrained metric on everything
   told so far (features: the one-hot encoding, plus the cheap metrics, which are exact for any
   candidate and free); run NSGA-II over the space's operators on the predicted objectives
   (thousands of predicted candidates); choose the next ``batch_size`` architectures among the
   candidates never asked for, greedily maximising the hypervolume their optimistic
   predictions (mean minus ``exploration`` times the predictor's spread) add to the evaluated
   front. With one objective the criterion is expected improvement.

Constraints are feasibility-first: candidates predicted to violate one are chosen only when no
candidate is predicted feasible (the least violating first). Objectives and constraints on
cheap metrics are computed exactly rather than predicted. The strategy never reads evaluator
tables and never sees the study's budget: its behaviour over the first B evaluations is the
same for any budget.

The quality of each predictor is measured honestly: every chosen architecture's prediction is
kept, and when its result is told, the pair counts towards the Kendall tau that
:meth:`PredictorGuided.diagnostics` reports (over the last ``window`` such pairs).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.pareto import non_dominated_mask
from hwnas.predictors import PREDICTORS
from hwnas.predictors.base import OutOfSample
from hwnas.predictors.targets import NormalScores
from hwnas.registry import check_options
from hwnas.spaces.base import Arch
from hwnas.strategies.base import SearchExhausted, Strategy, rank_and_crowding
from hwnas.strategies.checks import at_least, one_of
from hwnas.strategies.inner_search import (
    Candidates,
    evolve,
    expected_improvement,
    select_batch,
    with_neighbours,
)
from hwnas.strategies.metric_models import MetricModels
from hwnas.trial import Observation

INITIAL_DESIGNS = ("stratified", "random")
SCALES = ("linear", "normal")
REF_MARGIN = 0.1  # reference point beyond the nadir, in units of the objective's span
REF_QUANTILE = 0.95  # reference point: no worse than 95 % of the evaluated values, per objective


class PredictorGuided(Strategy):
    """LINAS-style search: predictors per objective, NSGA-II over predictions, HV-greedy batches.

    Args:
        predictor: registered predictor (``list_predictors()``) fitted for every predicted metric.
        predictor_options: options of that predictor (its ``seed`` comes from the study's rng).
        initial_samples: architectures evaluated before the first predictor is fitted.
        initial_design: ``stratified`` over the cheap metrics, or ``random``.
        batch_size: architectures chosen per round (the predictors are refitted between rounds).
        population_size: NSGA-II population of the inner search.
        generations: NSGA-II generations of the inner search.
        exploration: weight of the predictor's spread in the optimistic predictions.
        use_cheap_metrics: append the cheap metrics to the one-hot features.
        scale: ``linear`` (objectives normalised by their evaluated range before the hypervolume
            criterion) or ``normal`` (by their normal scores among the evaluated values).
        neighbours: add the unseen neighbours of the evaluated front to the candidates.
        normal_scores: fit predictors on the normal scores of each metric (see
            :mod:`hwnas.predictors.targets`). Off by default: it raises rank quality, but it
            compresses the top of the accuracy range, so that no candidate is predicted to beat
            the best evaluated one; on NB201 CIFAR-100 (one objective) the search then stalled at
            71.2 % where it reaches the 73.5 % optimum without it (3 of 3 seeds, 150 evaluations).
        window: out-of-sample predictions the reported rank quality is measured on.

    Example (config)::

        strategy: {name: linas, predictor: rf, batch_size: 10}
    """

    def __init__(
        self,
        *,
        predictor: str = "gp",
        predictor_options: Mapping[str, Any] | None = None,
        initial_samples: int = 20,
        initial_design: str = "stratified",
        batch_size: int = 10,
        population_size: int = 100,
        generations: int = 20,
        exploration: float = 1.0,
        use_cheap_metrics: bool = True,
        scale: str = "linear",
        neighbours: bool = True,
        normal_scores: bool = False,
        window: int = 50,
    ) -> None:
        factory = PREDICTORS.get(predictor)
        options = dict(predictor_options or {})
        if "seed" in options:
            raise ConfigError(
                "linas: predictor_options may not set 'seed'; it comes from the study seed"
            )
        check_options(factory, options, f"predictor {predictor!r}")
        factory(**options)  # checks the values too, here rather than at the first fit
        at_least("linas", initial_samples=(initial_samples, 2))
        one_of("linas", initial_design=(initial_design, INITIAL_DESIGNS))
        at_least(
            "linas",
            batch_size=(batch_size, 1),
            population_size=(population_size, 4),
            generations=(generations, 0),
            window=(window, 3),
        )
        one_of("linas", scale=(scale, SCALES))
        at_least("linas", exploration=(exploration, 0))
        self.predictor = predictor
        self.predictor_options = options
        self.initial_samples = initial_samples
        self.initial_design = initial_design
        self.batch_size = batch_size
        self.population_size = population_size
        self.generations = generations
        self.exploration = float(exploration)
        self.use_cheap_metrics = use_cheap_metrics
        self.scale = scale
        self.neighbours = neighbours
        self.normal_scores = normal_scores
        self.window = window

    def on_setup(self) -> None:
        cheap = set(self.space.cheap_metric_names())
        self._modelled = [m for m in self.problem.metric_names if m not in cheap]
        self._seen: set[str] = set()
        self._told: dict[str, Observation] = {}
        self._queue: list[Arch] = []
        self._n_asked = 0
        self._rounds = 0
        self._last_candidates = 0
        self._total_candidates = 0
        self._metrics = MetricModels(
            self.problem,
            self._modelled,
            self.predictor,
            self.predictor_options,
            normal_scores=self.normal_scores,
            use_cheap_metrics=self.use_cheap_metrics,
        )
        self._quality = OutOfSample(self.window)  # predictions for asked architectures

    # -- ask / tell -------------------------------------------------------------------------------
    def ask(self) -> Arch:
        while True:
            if not self._queue:
                self._queue = self._plan()
            arch = self._queue.pop(0)
            if self.key(arch) not in self._seen:
                break
        self._seen.add(self.key(arch))
        self._n_asked += 1
        return arch

    def tell(self, observation: Observation) -> None:
        key = observation.arch_str
        self._seen.add(key)
        self._quality.settle(key, None if observation.failed else observation.metrics)
        if observation.failed:
            return
        self._told.setdefault(key, observation)

    def diagnostics(self) -> dict[str, float | str]:
        """Rank quality of each predictor on architectures evaluated after it was fitted."""
        out: dict[str, float | str] = {
            "predictor": self.predictor,
            "rounds": float(self._rounds),
            "predicted_candidates": float(self._last_candidates),
            "predicted_candidates_total": float(self._total_candidates),
        }
        out.update(self._quality.report())
        return out

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self) -> list[Arch]:
        usable = list(self._told.values())
        if self._n_asked < self.initial_samples or len(usable) < 2:
            n = self.initial_samples - self._n_asked if self._n_asked < self.initial_samples else 1
            return self._initial(n)
        batch = self._round(usable)
        return batch or [self.sample_unseen(self._seen)]

    def _initial(self, n: int) -> list[Arch]:
        """``n`` unseen architectures, stratified over the cheap metrics when there are some."""
        cheap_names = self.space.cheap_metric_names()
        if self.initial_design == "random" or not cheap_names or n == 1:
            return self._initial_random(n)
        pool: dict[str, Arch] = {}
        for _ in range(20 * n):
            a = self.space.sample(self.rng)
            k = self.key(a)
            if k not in self._seen:
                pool.setdefault(k, a)
        if len(pool) < n:
            return self._initial_random(n)
        archs = list(pool.values())
        C = np.array([[self._metrics.cheap_of(a)[c] for c in cheap_names] for a in archs])
        ranks = np.argsort(np.argsort(C, axis=0, kind="stable"), axis=0, kind="stable")
        order = np.argsort(ranks.mean(axis=1), kind="stable")
        # One architecture drawn from each of n equal strata of the cheap-metric order.
        edges = np.linspace(0, len(archs), n + 1).astype(int)
        pairs = itertools.pairwise(edges)
        return [archs[order[int(self.rng.integers(lo, hi))]] for lo, hi in pairs]

    def _initial_random(self, n: int) -> list[Arch]:
        out: list[Arch] = []
        taken = set(self._seen)
        for _ in range(n):
            try:
                arch = self.sample_unseen(taken)
            except SearchExhausted:
                break
            taken.add(self.key(arch))
            out.append(arch)
        return out or [self.sample_unseen(self._seen)]

    def _round(self, usable: list[Observation]) -> list[Arch]:
        self._metrics.fit(usable, seed=int(self.rng.integers(2**31 - 1)))
        self._rounds += 1
        # Evaluated architectures start the inner search with their measured values.
        rank, crowd = rank_and_crowding(usable)
        order = np.lexsort((-crowd, rank))[: self.population_size // 2]
        start = [usable[i] for i in order]
        found = evolve(
            self.space,
            self._predict_objectives,
            start,
            self.rng,
            population_size=self.population_size,
            generations=self.generations,
        )
        if self.neighbours:
            front = [usable[i] for i in np.flatnonzero(rank == 0)]
            found = with_neighbours(self.space, found, front, self._seen, self._predict_objectives)
        self._last_candidates = len(found.keys)
        self._total_candidates += len(found.keys)
        fresh = [i for i, k in enumerate(found.keys) if k not in self._seen]
        if not fresh:
            return []
        pool = found.subset(fresh)
        chosen = self._choose(pool, usable)
        means = self._metrics.predict([pool.archs[i] for i in chosen], with_std=False)[0]
        for j, i in enumerate(chosen):
            self._quality.promise(pool.keys[i], {m: float(means[m][j]) for m in self._modelled})
        return [pool.archs[i] for i in chosen]

    def _choose(self, pool: Candidates, usable: list[Observation]) -> list[int]:
        k = min(self.batch_size, len(pool.keys))
        feasible = pool.violation <= 0.0
        if not feasible.any():  # feasibility first: the least violating candidates
            return [int(i) for i in np.argsort(pool.violation, kind="stable")[:k]]
        idx = np.flatnonzero(feasible)
        means, stds = self._metrics.predict([pool.archs[i] for i in idx], with_std=True)
        mean_F = self._objectives_of(means, [pool.archs[i] for i in idx])
        spread = np.column_stack(
            [stds.get(o.metric, np.zeros(len(idx))) for o in self.problem.objectives]
        )
        optimistic = mean_F - self.exploration * spread

        evaluated = [o for o in usable if o.feasible]
        front = np.vstack([o.objectives for o in evaluated]) if evaluated else np.empty((0, 1))
        # Asked but not yet told: believe their predictions, so the batch does not repeat them.
        promised = self._quality.promised
        pending = [promised[s] for s in promised if s not in self._told]
        if pending and evaluated:
            believed = np.array(
                [
                    [o.sign * p.get(o.metric, np.nan) for o in self.problem.objectives]
                    for p in pending
                ]
            )
            front = np.vstack([front, believed[np.isfinite(believed).all(axis=1)]])

        if self.problem.n_objectives == 1:
            best = front[:, 0].min() if len(front) else np.inf
            score = expected_improvement(mean_F[:, 0], spread[:, 0], best)
            order = np.lexsort((mean_F[:, 0], -score))[:k]
            return [int(idx[i]) for i in order]

        if len(front):
            front = front[non_dominated_mask(front)]
        if self.scale == "normal":
            # Every objective as the normal score of its value among the evaluated ones.
            scores = [
                NormalScores().fit(np.array([o.objectives[j] for o in usable]))
                for j in range(front.shape[1] if len(front) else optimistic.shape[1])
            ]
            front = (
                np.column_stack([t.forward(front[:, j]) for j, t in enumerate(scores)])
                if len(front)
                else front
            )
            optimistic = np.column_stack(
                [t.forward(optimistic[:, j]) for j, t in enumerate(scores)]
            )
        if len(front):
            lo = np.minimum(front.min(axis=0), optimistic.min(axis=0))
            hi = front.max(axis=0)
            # A corner nobody would choose (e.g. cells with no path from input to output: no
            # latency, chance accuracy) must not set the reference point.
            evaluated_F = np.vstack([o.objectives for o in usable])
            if self.scale == "normal":
                evaluated_F = np.column_stack(
                    [t.forward(evaluated_F[:, j]) for j, t in enumerate(scores)]
                )
            hi = np.minimum(hi, np.quantile(evaluated_F, REF_QUANTILE, axis=0))
        else:
            lo, hi = optimistic.min(axis=0), optimistic.max(axis=0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        ref = np.full(len(span), 1.0 + REF_MARGIN)
        front = front if len(front) else optimistic[:0]
        picks = select_batch((front - lo) / span, (optimistic - lo) / span, k, ref)
        return [int(idx[i]) for i in picks]

    def _objectives_of(self, means: dict[str, np.ndarray], archs: Sequence[Arch]) -> np.ndarray:
        cols = []
        for o in self.problem.objectives:
            values = means.get(o.metric)
            if values is None:  # a cheap metric: exact
                values = np.array([self._metrics.cheap_of(a)[o.metric] for a in archs])
            cols.append(o.sign * np.nan_to_num(values, nan=np.inf))
        return np.column_stack(cols)

    def _predict_objectives(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        means, _ = self._metrics.predict(archs, with_std=False)
        F = self._objectives_of(means, archs)
        violation = np.zeros(len(archs))
        for c in self.problem.constraints:
            values = means.get(c.metric)
            if values is None:
                values = np.array([self._metrics.cheap_of(a)[c.metric] for a in archs])
            g = np.array([c.g(v) if math.isfinite(v) else math.inf for v in values])
            violation += np.maximum(g, 0.0)
        return F, violation
