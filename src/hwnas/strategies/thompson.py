"""Thompson-sampling Pareto search over a Bayesian model of every expensive metric.

After ``initial_samples`` random architectures, each ask:

1. refits, once the told data grew by 5 %, one
   :class:`~hwnas.strategies.thompson_model.BayesLinear` per expensive metric (one-hot code plus
   pairwise slot interactions; warp and interaction weight chosen by evidence);
2. draws one function per metric from the posterior - a plausible world consistent with
   everything told so far;
3. evaluates the drawn functions on the candidates: the unseen architectures within
   ``locality`` slot changes of the evaluated front (all of them when the space has at most
   ``enumerate_limit``; NB201 has 15,625), otherwise the distinct architectures an NSGA-II run
   over the drawn functions visits, plus the neighbours of the evaluated front;
4. asks for the candidate whose drawn objectives add the most hypervolume to the evaluated
   front (with one objective: the drawn minimum). Candidates the draw says violate a constraint
   come only when none is drawn feasible.

The hypervolume is taken with every objective on its quantile scale: a value's rank among the
posterior-mean predictions over the space (or 2,000 random architectures of a larger one). A
latency budget anywhere in the range of the space's networks then weighs the same, whether the
networks under it are spread over milliseconds or crowded into a few.

This is TSEMO (Bradford, Schweidtmann and Lapkin 2018, "Efficient multiobjective optimization
employing Gaussian processes, spectral sampling and a genetic algorithm") with a Bayesian linear
model over the architecture code in place of spectrally sampled Gaussian processes, and with
candidates kept near the evaluated front, as local search and mutation-based acquisition
(White et al. 2021, BANANAS) do: on NB201 the model ranks the top of the space too poorly to be
trusted far from what was measured (docs/BENCHMARKS.md section 1). Architectures asked for but
not yet told count at their drawn values, so parallel workers are not sent to the same place.
The strategy never reads evaluator tables and never sees the study's budget.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.pareto import non_dominated_mask
from hwnas.predictors.base import OutOfSample
from hwnas.spaces.base import Arch, CategoricalSpace
from hwnas.strategies.base import SearchExhausted, Strategy, rank_and_crowding
from hwnas.strategies.checks import at_least
from hwnas.strategies.inner_search import (
    Candidates,
    domination_gap,
    evolve,
    hvi,
    with_neighbours,
)
from hwnas.strategies.structure import structural_columns
from hwnas.strategies.thompson_model import BayesLinear, PairwiseFeatures
from hwnas.trial import Observation

REF_MARGIN = 0.1  # reference point beyond the normalised nadir
REFIT_GROWTH = 0.05  # refit once the told data grew by this fraction
RANK_WINDOW = 50  # out-of-sample pairs the reported rank quality is measured on
REFERENCE_SAMPLES = 2000  # random architectures that stand for a large space's distribution


class ThompsonPareto(Strategy):
    """Thompson sampling from Bayesian linear models; hypervolume improvement under the draw.

    Args:
        initial_samples: random architectures evaluated before the first model is fitted.
        enumerate_limit: spaces with at most this many architectures are scored whole at each
            ask; larger ones through an inner NSGA-II over the drawn functions.
        population_size: population of that inner NSGA-II.
        generations: its generations.
        max_features: all slot pairs interact unless the features would exceed this; then only
            neighbouring slots do.
        locality: candidates lie within this many slot changes of an evaluated architecture of
            front rank <= ``front_depth`` (0: anywhere in the space).
        front_depth: 0 for the non-dominated front only, 1 to add the next front, ...
        structure: add the space's structural features (:mod:`hwnas.strategies.structure`: on
            NB201 which edges lie on a path, the number of paths, the longest path's
            convolutions, ...) to the model, with a prior weight chosen by evidence; no effect
            on a space without them.

    Example (config)::

        strategy: {name: thompson, initial_samples: 10}
    """

    def __init__(
        self,
        *,
        initial_samples: int = 10,
        enumerate_limit: int = 100_000,
        population_size: int = 64,
        generations: int = 15,
        max_features: int = 2000,
        locality: int = 1,
        front_depth: int = 0,
        structure: bool = False,
    ) -> None:
        at_least(
            "thompson",
            initial_samples=(initial_samples, 2),
            enumerate_limit=(enumerate_limit, 0),
            population_size=(population_size, 4),
            generations=(generations, 0),
            max_features=(max_features, 1),
            locality=(locality, 0),
            front_depth=(front_depth, 0),
        )
        self.initial_samples = initial_samples
        self.enumerate_limit = enumerate_limit
        self.population_size = population_size
        self.generations = generations
        self.max_features = max_features
        self.locality = locality
        self.front_depth = front_depth
        if not isinstance(structure, bool):
            raise ConfigError(f"thompson: structure must be true or false, got {structure!r}")
        self.structure = structure

    def on_setup(self) -> None:
        space = self.space
        if not isinstance(space, CategoricalSpace):
            raise ConfigError(
                f"thompson: needs a categorical space (one choice per slot); {space.name!r} is "
                "not one - use nsga2 or moea_bus"
            )
        sizes = [len(c) for c in space.slots]
        columns = structural_columns(space)[1] if self.structure else None
        self._features = PairwiseFeatures(sizes, max_features=self.max_features, structure=columns)
        cheap = set(space.cheap_metric_names())
        self._modelled = [m for m in self.problem.metric_names if m not in cheap]
        self._cheap_needed = [m for m in self.problem.metric_names if m in cheap]
        self._models: dict[str, BayesLinear] = {}
        self._told: dict[str, Observation] = {}
        self._codes_told: dict[str, np.ndarray] = {}
        self._seen: set[str] = set()
        self._pending: dict[str, np.ndarray] = {}  # asked, not told: code
        self._fitted_on = -1
        self._quality = OutOfSample(RANK_WINDOW)
        self._selected_at = 0
        self._n_asked = 0
        self._all: np.ndarray | None = None
        self._sample_codes: np.ndarray | None = None
        self._reference = np.empty((0, self.problem.n_objectives))
        if space.size <= self.enumerate_limit:
            self._all = np.array(list(itertools.product(*[range(k) for k in sizes])))
            self._strides = np.array(
                [math.prod(sizes[i + 1 :]) for i in range(len(sizes))], dtype=np.int64
            )
            self._seen_rows = np.zeros(len(self._all), dtype=bool)
            self._rows_cache: dict[tuple[float, float], np.ndarray] = {}
            self._cheap_all: dict[str, np.ndarray] = {}

    # -- ask / tell -------------------------------------------------------------------------------
    def ask(self) -> Arch:
        usable = len(self._told)
        if self._n_asked < self.initial_samples or usable < 2 or not self._modelled_ok():
            arch = self.sample_unseen(self._seen)
        else:
            arch = self._pick()
            self._promise(arch)
        self._mark_seen(arch)
        self._pending[self.key(arch)] = self.space.encode(arch)
        self._n_asked += 1
        return arch

    def tell(self, observation: Observation) -> None:
        key = observation.arch_str
        self._pending.pop(key, None)
        self._mark_seen(observation.arch)
        self._quality.settle(key, None if observation.failed else observation.metrics)
        if observation.failed:
            return
        if key not in self._told:
            self._told[key] = observation
            self._codes_told[key] = self.space.encode(observation.arch)

    def diagnostics(self) -> dict[str, float | str]:
        """Each model's choices and its rank quality on architectures asked after its fit
        (posterior-mean prediction at ask time against the told value, last 50 pairs)."""
        out: dict[str, float | str] = {"model": "bayes_linear"}
        for m, model in self._models.items():
            out[f"interaction_scale@{m}"] = model.scale
            if self.structure:
                out[f"structure_scale@{m}"] = model.structure_scale
            out[f"noise_share@{m}"] = model.noise_share
        out.update(self._quality.report())
        return out

    def _promise(self, arch: Arch) -> None:
        """Keep the posterior-mean prediction of an asked architecture, to score on its tell."""
        code = self.space.encode(arch)[None, :]
        self._quality.promise(
            self.key(arch),
            {
                m: float(model.evaluate(model.rows(code), model.coef)[0])
                for m, model in self._models.items()
            },
        )

    # -- internals --------------------------------------------------------------------------------
    def _mark_seen(self, arch: Arch) -> None:
        self._seen.add(self.key(arch))
        if self._all is not None:
            self._seen_rows[int(self.space.encode(arch) @ self._strides)] = True

    def _modelled_ok(self) -> bool:
        """At least two told values of every modelled metric (else keep sampling)."""
        for m in self._modelled:
            n = sum(math.isfinite(o.metrics.get(m, math.nan)) for o in self._told.values())
            if n < 2:
                return False
        return True

    def _fit(self) -> None:
        # Refit once the data grew by REFIT_GROWTH (every tell while there is little of it);
        # a fresh draw from a slightly stale posterior is still a Thompson sample.
        if len(self._told) - self._fitted_on < max(1.0, REFIT_GROWTH * self._fitted_on):
            return
        obs = list(self._told.values())
        codes = np.vstack([self._codes_told[o.arch_str] for o in obs])
        # The warp and interaction scale are chosen again whenever the data grew by a tenth.
        select = len(obs) >= self._selected_at * 1.1
        for m in self._modelled:
            y = np.array([o.metrics.get(m, math.nan) for o in obs], dtype=float)
            ok = np.isfinite(y)
            keep = None if select else self._models.get(m)
            self._models[m] = BayesLinear(self._features).fit(codes[ok], y[ok], keep=keep)
        if select:
            self._selected_at = len(obs)
        self._fitted_on = len(self._told)
        # The scale of every objective: its distribution over the space under the posterior mean.
        means = {m: model.coef for m, model in self._models.items()}
        if self._all is not None:
            F, _ = self._drawn_all(means)
        else:
            if self._sample_codes is None:
                archs = [self.space.sample(self.rng) for _ in range(REFERENCE_SAMPLES)]
                self._sample_codes = np.vstack([self.space.encode(a) for a in archs])
            F, _ = self._drawn_codes(means, self._sample_codes)
        self._reference = np.sort(F, axis=0)

    def _pick(self) -> Arch:
        self._fit()
        weights = {m: model.draw(self.rng) for m, model in self._models.items()}
        if self._all is not None:
            rows = np.flatnonzero(~self._seen_rows & self._near_front())
            if len(rows) == 0:
                rows = np.flatnonzero(~self._seen_rows)
            if len(rows) == 0:
                raise SearchExhausted("every architecture of the space has been asked for")
            F, violation = self._drawn_all(weights)
            cand_F, cand_v = F[rows], violation[rows]
            pending = [int(c @ self._strides) for c in self._pending.values()]
            pending_F = F[pending] if pending else F[:0]
            i = self._choose(cand_F, cand_v, pending_F)
            return self.space.decode(self._all[rows[i]])
        found = self._drawn_search(weights)
        fresh = [i for i, k in enumerate(found.keys) if k not in self._seen]
        if not fresh:
            return self.sample_unseen(self._seen)
        pending_codes = list(self._pending.values())
        pending_F = (
            self._drawn_codes(weights, np.vstack(pending_codes))[0]
            if pending_codes
            else found.F[:0]
        )
        i = self._choose(found.F[fresh], found.violation[fresh], pending_F)
        return found.archs[fresh[i]]

    def _choose(self, F: np.ndarray, violation: np.ndarray, pending_F: np.ndarray) -> int:
        """Index of the candidate to ask for, given drawn objectives and violations."""
        feasible = violation <= 0.0
        if not feasible.any():
            return int(np.argmin(violation))
        idx = np.flatnonzero(feasible)
        cand = F[idx]
        evaluated = [o.objectives for o in self._told.values() if o.feasible]
        front = np.vstack([*evaluated, pending_F]) if evaluated else pending_F
        if cand.shape[1] == 1:
            return int(idx[int(np.argmin(cand[:, 0]))])
        if len(front) == 0:  # nothing feasible evaluated yet: any drawn non-dominated one
            nd = np.flatnonzero(non_dominated_mask(cand))
            return int(idx[nd[int(self.rng.integers(len(nd)))]])
        front = front[non_dominated_mask(front)]
        Zf, Zc = self._quantiles(front), self._quantiles(cand)
        ref = np.full(F.shape[1], 1.0 + REF_MARGIN)
        gap = domination_gap(Zf, Zc)
        open_ = np.flatnonzero(gap <= 0.0)
        if len(open_) == 0:  # the draw improves nothing: the closest to the front
            return int(idx[int(np.argmin(gap))])
        # Only candidates no other candidate dominates can add the most volume.
        top = open_[non_dominated_mask(Zc[open_])]
        gain = hvi(Zf, Zc[top], ref)
        if not (gain > 0).any():
            return int(idx[top[int(np.argmin(gap[top]))]])
        return int(idx[top[int(np.argmax(gain))]])

    def _near_front(self) -> np.ndarray:
        """Mask of the space's rows within ``locality`` slot changes of the evaluated front."""
        assert self._all is not None
        if self.locality <= 0:
            return np.ones(len(self._all), dtype=bool)
        told = [o for o in self._told.values() if o.feasible]
        if not told:
            return np.ones(len(self._all), dtype=bool)
        rank, _ = rank_and_crowding(told)
        codes = np.vstack(
            [self._codes_told[told[i].arch_str] for i in np.flatnonzero(rank <= self.front_depth)]
        )
        near = np.zeros(len(self._all), dtype=bool)
        for c in codes:
            near |= (self._all != c).sum(axis=1) <= self.locality
        return near

    def _quantiles(self, F: np.ndarray) -> np.ndarray:
        """Each objective as its quantile among the space's predicted values (0 = best)."""
        Q = np.empty_like(F, dtype=float)
        for j in range(F.shape[1]):
            ref = self._reference[:, j]
            Q[:, j] = np.searchsorted(ref, F[:, j], side="left") / len(ref)
        return Q

    # Drawn objectives ------------------------------------------------------------------------
    def _drawn_all(self, weights: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        assert self._all is not None
        values: dict[str, np.ndarray] = {}
        for m, model in self._models.items():
            key = (model.scale, model.structure_scale)
            X = self._rows_cache.get(key)
            if X is None:
                X = self._rows_cache[key] = model.rows(self._all)
            values[m] = model.evaluate(X, weights[m])
        for m in self._cheap_needed:
            if m not in self._cheap_all:
                self._cheap_all[m] = np.array(
                    [self.problem.cheap_metrics(self.space.decode(c))[m] for c in self._all]
                )
            values[m] = self._cheap_all[m]
        return self._objectives(values, len(self._all))

    def _drawn_codes(
        self, weights: dict[str, np.ndarray], codes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for m, model in self._models.items():
            values[m] = model.evaluate(model.rows(codes), weights[m])
        for m in self._cheap_needed:
            values[m] = np.array(
                [self.problem.cheap_metrics(self.space.decode(c))[m] for c in codes]
            )
        return self._objectives(values, len(codes))

    def _objectives(self, values: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
        F = np.column_stack([o.sign * values[o.metric] for o in self.problem.objectives])
        violation = np.zeros(n)
        for c in self.problem.constraints:
            g = np.vectorize(c.g, otypes=[float])(values[c.metric])
            violation += np.maximum(g, 0.0)
        return F, violation

    def _drawn_search(self, weights: dict[str, np.ndarray]) -> Candidates:
        """Candidates of a large space: NSGA-II over the drawn functions, plus front neighbours."""
        usable = list(self._told.values())

        def predict(archs: Any) -> tuple[np.ndarray, np.ndarray]:
            codes = np.vstack([self.space.encode(a) for a in archs])
            return self._drawn_codes(weights, codes)

        front = [o for o in usable if o.feasible]
        if front:
            F = np.vstack([o.objectives for o in front])
            front = [front[i] for i in np.flatnonzero(non_dominated_mask(F))]
        start = front[: self.population_size // 2]
        found = evolve(
            self.space,
            predict,
            start,
            self.rng,
            population_size=self.population_size,
            generations=self.generations,
        )
        return with_neighbours(self.space, found, front, self._seen, predict)
