"""Regularized (aging) evolution (Real et al., AAAI 2019), for any number of objectives.

Tournament winners are chosen by constrained non-dominated rank and crowding inside the sample,
which for one objective is simply the best feasible (or least violating) member.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from hwnas.errors import ConfigError
from hwnas.spaces.base import Arch
from hwnas.strategies.base import Strategy, rank_and_crowding
from hwnas.strategies.checks import at_least
from hwnas.trial import Observation


class RegularizedEvolution(Strategy):
    """Aging evolution: mutate the tournament winner, drop the oldest member.

    Args:
        population_size: members kept (oldest removed first).
        sample_size: tournament size.

    Example (config)::

        strategy: {name: evolution, population_size: 20, sample_size: 5}
    """

    def __init__(self, *, population_size: int = 20, sample_size: int = 5) -> None:
        at_least("evolution", population_size=(population_size, 2))
        if not 1 <= sample_size <= population_size:
            raise ConfigError(
                f"evolution: sample_size must lie in 1..population_size ({population_size}), "
                f"got {sample_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size

    def on_setup(self) -> None:
        self._seen: set[str] = set()
        self._population: deque[Observation] = deque()
        self._n_asked = 0

    def ask(self) -> Arch:
        if self._n_asked < self.population_size or not self._population:
            arch = self.sample_unseen(self._seen)
        else:
            arch = self._child()
        self._seen.add(self.key(arch))
        self._n_asked += 1
        return arch

    def tell(self, observation: Observation) -> None:
        self._seen.add(observation.arch_str)
        self._population.append(observation)
        while len(self._population) > self.population_size:
            self._population.popleft()

    def _child(self) -> Arch:
        pop = list(self._population)
        k = min(self.sample_size, len(pop))
        idx = self.rng.choice(len(pop), size=k, replace=False)
        sample = [pop[i] for i in idx]
        rank, crowd = rank_and_crowding(sample)
        best = sample[int(np.lexsort((-crowd, rank))[0])]
        cand = best.arch
        for _ in range(50):
            cand = self.space.mutate(cand, self.rng)
            if self.key(cand) not in self._seen:
                return cand
        return self.sample_unseen(self._seen)
