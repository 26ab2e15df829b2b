"""Pareto local search: explore the neighbourhoods of the non-dominated archive.

With one objective this is the hill climbing of White et al. (2020, "Local search is state of the
art for NAS benchmarks"); with several it keeps the archive of constrained non-dominated
architectures and evaluates the unexplored neighbours of a random archive member, abandoning a
neighbourhood as soon as its centre is dominated (first improvement). When every archive member
has been explored it restarts from random architectures and climbs again from them, in a fresh
archive (the study keeps every result).
"""

from __future__ import annotations

from hwnas.spaces.base import Arch
from hwnas.strategies.base import Strategy, rank_and_crowding
from hwnas.strategies.checks import at_least
from hwnas.trial import Observation


class LocalSearch(Strategy):
    """(Pareto) local search over the space's neighbourhood.

    Args:
        initial_samples: random architectures evaluated before the first neighbourhood.

    Example (config)::

        strategy: {name: local_search, initial_samples: 10}
    """

    def __init__(self, *, initial_samples: int = 10) -> None:
        at_least("local_search", initial_samples=(initial_samples, 1))
        self.initial_samples = initial_samples

    def on_setup(self) -> None:
        self._seen: set[str] = set()
        self._archive: dict[str, Observation] = {}
        self._explored: set[str] = set()
        self._queue: list[Arch] = []
        self._centre: str | None = None
        self._n_asked = 0
        self._restart = 0  # random samples still to draw after a restart

    def ask(self) -> Arch:
        arch = self._next()
        self._seen.add(self.key(arch))
        self._n_asked += 1
        return arch

    def _next(self) -> Arch:
        if self._n_asked < self.initial_samples or self._restart > 0:
            self._restart = max(0, self._restart - 1)
            return self.sample_unseen(self._seen)
        while True:
            while self._queue:
                cand = self._queue.pop()
                if self.key(cand) not in self._seen:
                    return cand
            unexplored = sorted(k for k in self._archive if k not in self._explored)
            if not unexplored:
                # A local optimum (every archive member's neighbourhood explored): climb again
                # from fresh random architectures, in a new archive. The study keeps every result,
                # so nothing found so far is lost; kept here, the old optimum would dominate each
                # restart sample and the search would degrade into random sampling.
                self._restart = self.initial_samples - 1
                self._centre = None
                self._archive = {}
                return self.sample_unseen(self._seen)
            centre = unexplored[int(self.rng.integers(len(unexplored)))]
            self._explored.add(centre)
            self._centre = centre
            neigh = self.space.neighbours(self._archive[centre].arch)
            order = self.rng.permutation(len(neigh))
            self._queue = [neigh[i] for i in order]

    def tell(self, observation: Observation) -> None:
        self._seen.add(observation.arch_str)
        pool = [*self._archive.values(), observation]
        rank, _ = rank_and_crowding(pool)
        self._archive = {o.arch_str: o for o, r in zip(pool, rank) if r == 0}
        if self._centre is not None and self._centre not in self._archive:
            self._queue = []  # the centre was dominated: move on to a better one
            self._centre = None
