"""The NSGA-II mating loop (Deb, Pratap, Agarwal and Meyarivan, IEEE TEVC 2002), shared by
:mod:`~hwnas.strategies.nsga2`, :mod:`~hwnas.strategies.moea_bus` and the inner search of
:mod:`~hwnas.strategies.inner_search`.

:class:`Tournament` picks parents by binary tournament under the crowded comparison (lower
constrained non-dominated rank wins; within a rank, the larger crowding distance).
:func:`breed` makes one child with the space's own operators: crossover of two parents with
probability ``crossover_prob`` (else a copy of the first), then ``mutations`` mutations.
:func:`offspring` breeds children until each is new, i.e. not in a set of architecture strings
that grows with every child, so no two children and no child and a taken architecture repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import better, rank_and_crowding
from hwnas.trial import Observation

# Parents of the next child: the first is copied when there is no crossover.
Parents = Callable[[], tuple[Observation, Observation]]
# A replacement for a child that could not be bred new (None: stop breeding).
Fallback = Callable[[set[str]], Arch | None]


class Tournament:
    """Binary tournaments among ``members`` by crowded comparison.

    Args:
        members: the observations that compete.
        rng: draws the contestants.
        rank: constrained non-dominated rank of each member (computed with ``crowd`` from the
            members when both are None).
        crowd: crowding distance of each member.
    """

    def __init__(
        self,
        members: Sequence[Observation],
        rng: np.random.Generator,
        rank: np.ndarray | None = None,
        crowd: np.ndarray | None = None,
    ) -> None:
        if rank is None or crowd is None:
            rank, crowd = rank_and_crowding(members)
        self.members = members
        self.rng = rng
        self.rank = rank
        self.crowd = crowd

    def winner(self, i: int, j: int) -> Observation:
        """The better of members ``i`` and ``j`` (``j`` on a tie)."""
        rank, crowd = self.rank, self.crowd
        return (
            self.members[i] if better((rank[i], crowd[i]), (rank[j], crowd[j])) else self.members[j]
        )

    def pick(self) -> Observation:
        """The winner of one tournament (two contestants drawn with replacement)."""
        i, j = self.rng.integers(len(self.members), size=2)
        return self.winner(i, j)

    def pair(self) -> tuple[Observation, Observation]:
        """Two parents, each the winner of its own tournament (two draws of two contestants)."""
        return self.pick(), self.pick()

    def pair_drawn_together(self) -> tuple[Observation, Observation]:
        """Two parents whose four contestants are drawn in one call (the inner search's order
        of random numbers, kept so that its results stay the same)."""
        i, j, k, m = self.rng.integers(len(self.members), size=4)
        return self.winner(i, j), self.winner(k, m)


def breed(
    space: SearchSpace,
    rng: np.random.Generator,
    parents: Parents,
    *,
    crossover_prob: float,
    mutations: int = 1,
) -> Arch:
    """One child of ``parents()``: crossover with probability ``crossover_prob`` (else the first
    parent), then ``mutations`` mutations."""
    a, b = parents()
    child = space.crossover(a.arch, b.arch, rng) if rng.random() < crossover_prob else a.arch
    for _ in range(mutations):
        child = space.mutate(child, rng)
    return child


def offspring(
    space: SearchSpace,
    rng: np.random.Generator,
    parents: Parents,
    n: int,
    taken: set[str],
    *,
    crossover_prob: float,
    mutations: int = 1,
    tries_per_child: int = 50,
    total_tries: int | None = None,
    fallback: Fallback | None = None,
) -> list[Arch]:
    """Up to ``n`` children whose strings are not in ``taken`` (each child's string joins it).

    Each child gets up to ``tries_per_child`` breedings, all children together up to
    ``total_tries`` (None: no overall limit). A child that is not bred new within them is
    ``fallback(taken)`` (e.g. a random unseen architecture); without a fallback, or when it
    returns None, breeding stops there.
    """
    key = space.to_string
    tries_left = total_tries
    out: list[Arch] = []
    for _ in range(n):
        child = None
        for _attempt in range(tries_per_child):
            if tries_left is not None:
                if tries_left <= 0:
                    break
                tries_left -= 1
            cand = breed(space, rng, parents, crossover_prob=crossover_prob, mutations=mutations)
            if key(cand) not in taken:
                child = cand
                break
        if child is None:
            child = fallback(taken) if fallback is not None else None
            if child is None:
                break
        taken.add(key(child))
        out.append(child)
    return out
