"""MOEA-BUS: bi-population MOEA with uniform sampling in objective space, optionally pre-screened
by a pairwise-SVM surrogate.

Xue, Jiang, Zhu, Zhang, Cheng, Gao and Gong, "A Multi-objective Evolutionary Algorithm Based on
Bi-population with Uniform Sampling for Neural Architecture Search", arXiv:2602.08513 (2026); the
main/vice populations and the pairwise SVM come from the same group's SMEM-NAS (arXiv:2407.15600).
Only the abstracts and summaries of both were available to us; where they are silent we chose:

* **Uniform sampling** (initialisation): draw ``sample_pool`` distinct random architectures, cut the
  range of their complexity (a cheap metric, ``flops_m`` by default: free, never an evaluator) into
  ``population_size`` equal-width intervals and take one architecture per interval, round-robin
  over the non-empty ones, so the start spans the complexity range instead of piling up in its
  middle as random sampling does. Results told before the first ask (another strategy's, as in
  ``staged``) replace that start: they are the first pool survival selects from.
* **Two populations** evolve together and exchange elites. Main (convergence): NSGA-II selection
  by constrained non-dominated rank and crowding, binary-tournament mating. Vice (diversity): one
  niche per complexity interval, each keeping its best member by constrained rank, so the extremes
  stay populated; mating pairs a random member with its neighbour in complexity. Each generation
  both select from the same pool (main + vice + new offspring), so an elite of either enters the
  other whenever it qualifies there, and each breeds half of the offspring with the space's own
  crossover and mutation.
* **Surrogate** (``surrogate=True``; :mod:`hwnas.strategies.moea_bus_surrogate`): the
  pairwise-comparison SVM learns "a beats b" from pairs of evaluated architectures. It
  pre-screens: each population breeds ``screen_factor`` times the children it needs, their
  metrics are predicted (cheap ones computed), and the population's own selection, run on
  predictions against its members, picks the children to evaluate.
  ``surrogate="svr"`` (or another name in :mod:`hwnas.predictors`) uses that regressor instead.
  OFA weight inheritance, the paper's third part, belongs to evaluators, not to a strategy.

Any number of objectives; constraints by feasibility first (Deb's rule, via
:func:`~hwnas.strategies.base.rank_and_crowding`); all randomness from the study's generator;
nothing depends on the budget. With evaluations in flight (parallel executors), survival runs
only once every child of the generation is told; until then each ask breeds one extra child from
the current populations.
"""

from __future__ import annotations

import math

import numpy as np

from hwnas.errors import ConfigError
from hwnas.spaces.base import Arch
from hwnas.strategies.base import SearchExhausted, Strategy, rank_and_crowding
from hwnas.strategies.checks import at_least, in_unit_interval
from hwnas.strategies.mating import Tournament, offspring
from hwnas.strategies.moea_bus_surrogate import Surrogate
from hwnas.trial import Observation

MIN_TRAIN = 8  # evaluated architectures before the surrogate is trusted to screen


class MOEABUS(Strategy):
    """Bi-population MOEA with uniform sampling in objective space (Xue et al., 2026).

    Args:
        population_size: members of each population, initial architectures, complexity intervals
            and offspring per generation.
        sample_pool: random architectures drawn for the uniform initial sampling.
        complexity: the cheap metric that measures complexity (default ``flops_m`` when the space
            has it, else its first cheap metric; a space without cheap metrics starts randomly and
            niches by the last objective).
        crossover_prob: chance that a child comes from crossover before mutation.
        mutations: slots changed in each child (at least one).
        surrogate: ``False``; ``True`` for the paper's pairwise SVM; or the name of a predictor
            in :mod:`hwnas.predictors` (e.g. ``"svr"``).
        screen_factor: children bred per evaluated child when a surrogate screens them.

    Example (config)::

        strategy: {name: moea_bus, population_size: 20, surrogate: true}
    """

    def __init__(
        self,
        *,
        population_size: int = 20,
        sample_pool: int = 1000,
        complexity: str | None = None,
        crossover_prob: float = 0.9,
        mutations: int = 1,
        surrogate: bool | str = False,
        screen_factor: int = 10,
    ) -> None:
        at_least("moea_bus", population_size=(population_size, 2))
        if sample_pool < population_size:
            raise ConfigError(
                f"moea_bus: sample_pool must be >= population_size ({population_size}), "
                f"got {sample_pool}"
            )
        in_unit_interval("moea_bus", crossover_prob=crossover_prob)
        at_least("moea_bus", mutations=(mutations, 1))
        if not isinstance(surrogate, (bool, str)) or surrogate == "":
            raise ConfigError(
                f"moea_bus: surrogate must be true, false or a predictor name, got {surrogate!r}"
            )
        at_least("moea_bus", screen_factor=(screen_factor, 1))
        self.population_size = population_size
        self.sample_pool = sample_pool
        self.complexity = complexity
        self.crossover_prob = crossover_prob
        self.mutations = mutations
        self.surrogate = surrogate
        self.screen_factor = screen_factor

    # -- setup --------------------------------------------------------------------------------
    def on_setup(self) -> None:
        cheap = list(self.space.cheap_metric_names())
        if self.complexity is not None and self.complexity not in cheap:
            from hwnas.registry import closest

            hint = closest(self.complexity, cheap) if cheap else "this space has no cheap metrics"
            raise ConfigError(
                f"moea_bus: complexity {self.complexity!r} is no cheap metric; {hint}"
            )
        self._cx_name = self.complexity or ("flops_m" if "flops_m" in cheap else None)
        if self._cx_name is None and cheap:
            self._cx_name = cheap[0]
        self._seen: set[str] = set()
        self._obs: dict[str, Observation] = {}
        self._main: list[str] = []
        self._vice: list[str] = []
        self._new: list[str] = []
        self._queue: list[Arch] = []
        self._untold: set[str] = set()  # asked, result not told yet
        self._generation: set[str] = set()  # children the next survival waits for
        self._started = False
        self._edges: np.ndarray | None = None  # complexity interval edges, fixed at init
        self._cheap_cache: dict[str, dict[str, float]] = {}
        self._scale: dict[str, float] = {}
        self.origin: dict[str, str] = {}  # arch string -> "init" | "main" | "vice"
        self.generation = 0
        self.migrants = 0  # vice-born members admitted to the main population, over generations
        self._surrogate: Surrogate | None = None
        if self.surrogate is not False:
            seed = int(self.rng.integers(2**31))
            self._surrogate = Surrogate(self.problem, self.surrogate, seed=seed, cheap=self._cheap)

    # -- ask / tell ---------------------------------------------------------------------------
    def ask(self) -> Arch:
        if not self._queue:
            if not self._started and self._obs:
                # Told before its first ask (another strategy's results, as in ``staged``):
                # they are the first pool, in place of the uniform sample.
                self._started = True
                self._start_from_told()
                self._queue = self._offspring(self.population_size)
                self._generation = {self.key(a) for a in self._queue}
            elif not self._started:
                self._started = True
                self._queue = self._uniform_sample()
                self._generation = {self.key(a) for a in self._queue}
            elif self._generation & self._untold:
                # The generation is not complete (evaluations in flight): its survival waits
                # for the last of its children; meanwhile the current populations breed one
                # extra child, which joins the first survival after its result.
                self._queue = self._offspring(1)
            else:
                self._survive()
                self._queue = self._offspring(self.population_size)
                self._generation = {self.key(a) for a in self._queue}
            if not self._queue:
                raise SearchExhausted("moea_bus: no unseen architecture left to propose")
        arch = self._queue.pop(0)
        self._seen.add(self.key(arch))
        self._untold.add(self.key(arch))
        return arch

    def tell(self, observation: Observation) -> None:
        s = observation.arch_str
        self._seen.add(s)
        self._untold.discard(s)
        if s not in self._obs:
            self._obs[s] = observation
            self._new.append(s)

    @property
    def main_population(self) -> list[str]:
        return list(self._main)

    @property
    def vice_population(self) -> list[str]:
        return list(self._vice)

    def diagnostics(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {
            "generation": float(self.generation),
            "migrants": float(self.migrants),
        }
        if self._surrogate is not None:
            out["surrogate_kendall_tau"] = self._surrogate.tau
        return out

    # -- uniform sampling ---------------------------------------------------------------------
    def _cheap(self, arch: Arch, s: str | None = None) -> dict[str, float]:
        s = s or self.key(arch)
        if s not in self._cheap_cache:
            self._cheap_cache[s] = self.problem.cheap_metrics(arch)
        return self._cheap_cache[s]

    def _complexity(self, arch: Arch, s: str | None = None) -> float:
        if self._cx_name is None:
            return math.nan
        return float(self._cheap(arch, s).get(self._cx_name, math.nan))

    def _sample_pool(self) -> dict[str, Arch]:
        size = self.space.size
        pool: dict[str, Arch] = {}
        if size is not None and size <= self.sample_pool:
            pool = {self.key(a): a for a in self.space.enumerate()}
        else:
            for _ in range(3 * self.sample_pool):
                a = self.space.sample(self.rng)
                pool.setdefault(self.key(a), a)
                if len(pool) >= self.sample_pool:
                    break
        return pool

    def _set_intervals(self, archs: list[Arch]) -> np.ndarray:
        """Cheap-metric scales and complexity intervals over ``archs``; their complexities."""
        for a in archs:
            for name, value in self._cheap(a).items():
                self._scale[name] = max(self._scale.get(name, 0.0), abs(value))
        c = np.array([self._complexity(a) for a in archs])
        self._edges = np.linspace(c.min(), c.max(), self.population_size + 1)
        return c

    def _start_from_told(self) -> None:
        """Intervals over a sample pool, as the uniform start sets them; then the told results
        go through survival as the first generation."""
        if self._cx_name is not None:
            self._set_intervals(list(self._sample_pool().values()))
        for s in self._obs:
            self.origin.setdefault(s, "init")
        self._survive()

    def _uniform_sample(self) -> list[Arch]:
        pool = self._sample_pool()
        archs = [a for s, a in pool.items() if s not in self._seen]
        n = min(self.population_size, len(archs))
        if self._cx_name is None or not archs:
            chosen = [archs[i] for i in self.rng.permutation(len(archs))[:n]]
        else:
            c = self._set_intervals(archs)
            bins = self._bin_of(c)
            members = [
                list(self.rng.permutation(np.flatnonzero(bins == b))) for b in np.unique(bins)
            ]
            picked: list[int] = []
            while len(picked) < n:  # round-robin over the non-empty intervals
                for b in self.rng.permutation(len(members)):
                    if members[b] and len(picked) < n:
                        picked.append(int(members[b].pop()))
            chosen = [archs[i] for i in self.rng.permutation(picked)]
        for a in chosen:
            self.origin[self.key(a)] = "init"
        return chosen

    def _bin_of(self, c: np.ndarray) -> np.ndarray:
        if self._edges is None:  # no cheap complexity: intervals over the values at hand
            finite = c[np.isfinite(c)]
            lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
            edges = np.linspace(lo, hi, self.population_size + 1)
        else:
            edges = self._edges
        return np.clip(np.searchsorted(edges, c, side="right") - 1, 0, self.population_size - 1)

    # -- environmental selection --------------------------------------------------------------
    def _niche_value(self, o: Observation) -> float:
        if self._cx_name is not None:
            return self._complexity(o.arch, o.arch_str)
        return float(o.objectives[-1]) if not o.failed else math.nan

    def _main_order(self, pool: list[Observation]) -> list[int]:
        rank, crowd = rank_and_crowding(pool)
        return [int(i) for i in np.lexsort((-crowd, rank))]

    def _vice_order(self, pool: list[Observation]) -> list[int]:
        """Best member of each complexity niche first, then the second best of each, ..."""
        ok = [i for i, o in enumerate(pool) if not o.failed]
        if not ok:
            return []
        rank, crowd = rank_and_crowding([pool[i] for i in ok])
        bins = self._bin_of(np.array([self._niche_value(pool[i]) for i in ok]))
        niches: dict[int, list[int]] = {}
        for j in np.lexsort((-crowd, rank)):
            niches.setdefault(int(bins[j]), []).append(int(j))
        out: list[int] = []
        for depth in range(max(len(v) for v in niches.values())):
            layer = [v[depth] for v in niches.values() if depth < len(v)]
            layer.sort(key=lambda j: (rank[j], -crowd[j]))
            out += [ok[j] for j in layer]
        return out

    def _survive(self) -> None:
        keys = list(dict.fromkeys(self._main + self._vice + self._new))
        self._new = []
        pool = [self._obs[k] for k in keys]
        self._main = [keys[i] for i in self._main_order(pool)[: self.population_size]]
        self._vice = [keys[i] for i in self._vice_order(pool)[: self.population_size]]
        self.migrants += sum(self.origin.get(k) == "vice" for k in self._main)
        self.generation += 1
        if self._surrogate is not None:  # its quality on the children it screened last
            self._surrogate.score(pool)

    # -- variation ----------------------------------------------------------------------------
    def _offspring(self, n: int) -> list[Arch]:
        main = [self._obs[k] for k in self._main]
        vice = [self._obs[k] for k in self._vice]
        shares = {"main": n - n // 2, "vice": n // 2} if vice else {"main": n}
        trained = sum(not o.failed for o in self._obs.values()) >= MIN_TRAIN
        surrogate = self._surrogate
        factor = self.screen_factor if surrogate is not None and trained else 1
        taken = set(self._seen)
        bred = {o: self._children(o, main, vice, k * factor, taken) for o, k in shares.items()}
        if surrogate is not None and factor > 1:
            done = [o for o in self._obs.values() if not o.failed]
            children = [a for group in bred.values() for a in group]
            predicted = surrogate.predict(
                done, children, scale=self._scale, generation=self.generation
            )
            for origin, k in shares.items():
                members = main if origin == "main" else vice
                order = self._main_order if origin == "main" else self._vice_order
                bred[origin] = surrogate.screen(bred[origin], members, k, predicted, order)
        out: list[Arch] = []
        for origin, k in shares.items():
            for a in bred[origin][:k]:
                self.origin[self.key(a)] = origin
                out.append(a)
        return out

    def _children(
        self, origin: str, main: list[Observation], vice: list[Observation], k: int, taken: set[str]
    ) -> list[Arch]:
        by_cx = sorted(vice, key=lambda o: self._niche_value(o))
        tournament = Tournament(main, self.rng) if main else None

        def parents() -> tuple[Observation, Observation]:
            if origin == "main" or len(by_cx) < 2:
                assert tournament is not None  # breeding needs a main population
                return tournament.pair()
            i = int(self.rng.integers(len(by_cx)))
            j = i + (1 if i == 0 or (i < len(by_cx) - 1 and self.rng.random() < 0.5) else -1)
            return by_cx[i], by_cx[j]

        def unseen(taken: set[str]) -> Arch | None:
            try:
                return self.sample_unseen(taken)
            except SearchExhausted:
                return None

        return offspring(
            self.space,
            self.rng,
            parents,
            k,
            taken,
            crossover_prob=self.crossover_prob,
            mutations=self.mutations,
            tries_per_child=50 if main else 0,  # no main population yet: random children
            fallback=unseen,
        )
