"""The Strategy ABC (ask/tell) and the helpers strategies share.

A strategy sees only what the study tells it: the :class:`~hwnas.problem.Problem` (space,
objectives with directions, constraints) and one :class:`~hwnas.trial.Observation` per asked
architecture, plus cheap metrics it may compute through ``problem.cheap_metrics``. All randomness
comes from the generator handed to :meth:`Strategy.setup`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.pareto import crowding_distance, fronts
from hwnas.problem import Problem
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.trial import Observation


class SearchExhausted(HwnasError):
    """The strategy cannot propose an architecture it has not proposed before."""


class Strategy(ABC):
    """Proposes architectures (:meth:`ask`) and learns from their results (:meth:`tell`).

    Subclasses implement :meth:`ask` and :meth:`tell`; :meth:`setup` is called once by the study
    before the first ask (override :meth:`on_setup` to prepare state).
    """

    problem: Problem
    rng: np.random.Generator
    options: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Strategy:
        # The options a strategy was made with identify it in a study's store, however it was
        # made (by name from a config, or by hand): see hwnas.strategies.strategy_spec.
        obj = super().__new__(cls)
        obj.options = dict(kwargs)
        return obj

    def setup(self, problem: Problem, rng: np.random.Generator) -> None:
        self.problem = problem
        self.rng = rng
        self.on_setup()

    def on_setup(self) -> None:
        """Hook after :meth:`setup` (no-op by default)."""

    def diagnostics(self) -> dict[str, float | str]:
        """Figures worth showing beside the results, e.g. a predictor's current rank quality."""
        return {}

    @abstractmethod
    def ask(self) -> Arch:
        """The next architecture to evaluate."""

    @abstractmethod
    def tell(self, observation: Observation) -> None:
        """The result of an architecture this strategy asked for."""

    # Helpers for subclasses ------------------------------------------------------------------
    @property
    def space(self) -> SearchSpace:
        return self.problem.space

    def key(self, arch: Arch) -> str:
        return self.problem.space.to_string(arch)

    def sample_unseen(self, seen: set[str], tries: int = 1000) -> Arch:
        """A random architecture not in ``seen``; :class:`SearchExhausted` if none is found."""
        space = self.problem.space
        size = space.size
        for _ in range(tries):
            arch = space.sample(self.rng)
            if self.key(arch) not in seen:
                return arch
        if size is not None and size <= 200_000:
            rest = [a for a in space.enumerate() if self.key(a) not in seen]
            if rest:
                return rest[int(self.rng.integers(len(rest)))]
        raise SearchExhausted(f"no unseen architecture left after {tries} random draws")


def rank_and_crowding(observations: Sequence[Observation]) -> tuple[np.ndarray, np.ndarray]:
    """Constrained non-dominated rank and crowding distance of each observation.

    Feasible observations are ranked by non-dominated sorting of their objectives; infeasible
    ones come after all feasible fronts, ordered by violation (Deb's constrained domination).
    Lower rank is better; higher crowding is better within a rank.
    """
    n = len(observations)
    rank = np.zeros(n, dtype=int)
    crowd = np.zeros(n)
    feas = [i for i, o in enumerate(observations) if o.feasible]
    infeas = [i for i, o in enumerate(observations) if not o.feasible]
    next_rank = 0
    if feas:
        F = np.vstack([observations[i].objectives for i in feas])
        for front in fronts(F):
            members = [feas[j] for j in front]
            rank[members] = next_rank
            crowd[members] = crowding_distance(F[front])
            next_rank += 1
    if infeas:
        v = np.array([observations[i].violation for i in infeas])
        order = np.argsort(v, kind="stable")
        # Equal violations share a rank.
        r = next_rank
        prev = None
        for j in order:
            if prev is not None and v[j] != prev:
                r += 1
            rank[infeas[j]] = r
            prev = v[j]
    return rank, crowd


def better(a: tuple[int, float], b: tuple[int, float]) -> bool:
    """Crowded comparison: lower rank wins; within a rank, larger crowding distance."""
    return a[0] < b[0] or (a[0] == b[0] and a[1] > b[1])
