"""NSGA-II (Deb et al., 2002) over the space's own mutation and crossover operators.

Categorical genomes are varied with the space's operators (uniform crossover, one-slot mutation),
offspring that repeat an architecture already proposed are redrawn, and survival keeps the best
``population_size`` by constrained non-dominated rank and crowding distance.

With evaluations in flight (parallel executors), survival runs only once every child of the
generation is told; until then each ask breeds one extra child from the current parents, which
joins the first survival after its result. Run one at a time, this is plain generational
NSGA-II.
"""

from __future__ import annotations

import numpy as np

from hwnas.spaces.base import Arch
from hwnas.strategies.base import Strategy, rank_and_crowding
from hwnas.strategies.checks import at_least, in_unit_interval
from hwnas.strategies.mating import Tournament, offspring
from hwnas.trial import Observation


class NSGA2(Strategy):
    """Generational NSGA-II with duplicate-free offspring.

    Args:
        population_size: survivors per generation (and offspring per generation).
        crossover_prob: chance that a child comes from crossover before mutation.
        mutations: slots changed in each child (at least one).

    Example (config)::

        strategy: {name: nsga2, population_size: 20}
    """

    def __init__(
        self, *, population_size: int = 20, crossover_prob: float = 0.9, mutations: int = 1
    ) -> None:
        at_least("nsga2", population_size=(population_size, 2))
        in_unit_interval("nsga2", crossover_prob=crossover_prob)
        at_least("nsga2", mutations=(mutations, 1))
        self.population_size = population_size
        self.crossover_prob = crossover_prob
        self.mutations = mutations

    def on_setup(self) -> None:
        self._seen: set[str] = set()
        self._population: list[Observation] = []
        self._new: list[Observation] = []
        self._queue: list[Arch] = []
        self._untold: set[str] = set()  # asked, result not told yet
        self._generation: set[str] = set()  # children the next survival waits for
        self._n_asked = 0

    def ask(self) -> Arch:
        if self._n_asked < self.population_size:
            arch = self.sample_unseen(self._seen)
            self._generation.add(self.key(arch))
        else:
            if not self._queue:
                if self._generation & self._untold:
                    # The generation is not complete: its survival waits for the last of its
                    # children, and meanwhile the current parents breed one extra child (it
                    # joins the first survival after its result), so that no worker idles.
                    self._queue = self._offspring(1)
                else:
                    self._survive()
                    self._queue = self._offspring(self.population_size)
                    self._generation = {self.key(a) for a in self._queue}
            arch = self._queue.pop(0)
        self._seen.add(self.key(arch))
        self._untold.add(self.key(arch))
        self._n_asked += 1
        return arch

    def tell(self, observation: Observation) -> None:
        self._seen.add(observation.arch_str)
        self._untold.discard(observation.arch_str)
        self._new.append(observation)

    # -- internals --------------------------------------------------------------------------------
    def _survive(self) -> None:
        merged: dict[str, Observation] = {o.arch_str: o for o in self._population}
        for o in self._new:
            merged.setdefault(o.arch_str, o)
        self._new = []
        pool = list(merged.values())
        if len(pool) <= self.population_size:
            self._population = pool
            return
        rank, crowd = rank_and_crowding(pool)
        order = np.lexsort((-crowd, rank))
        self._population = [pool[i] for i in order[: self.population_size]]

    def _offspring(self, n: int) -> list[Arch]:
        if not self._population:
            return [self.sample_unseen(self._seen) for _ in range(n)]
        return offspring(
            self.space,
            self.rng,
            Tournament(self._population, self.rng).pair,
            n,
            set(self._seen),
            crossover_prob=self.crossover_prob,
            mutations=self.mutations,
            fallback=self.sample_unseen,
        )
