"""``white:ls``: the local search of White, Nolen and Savani ("Exploring the loss landscape in
neural architecture search", UAI 2021; NASLib's ``LocalSearch``), made multi-objective the
standard way, as Pareto local search (Paquete, Chiarandini and Stuetzle, "Pareto local optimum
sets in the bi-objective traveling salesman problem", Metaheuristics for Multiobjective
Optimisation, Springer LNEMS 535, 2004).

1. Evaluate ``N_INIT = 10`` cells drawn uniformly at random: NASLib's default ``num_init`` for
   local search, the small initial sample White et al. start from. The archive is their
   non-dominated set, every member unexplored.
2. While the archive has an unexplored member: take one, uniformly at random; evaluate its
   whole neighbourhood (every cell one slot change away, ``space.neighbours``) in random order,
   skipping cells already evaluated; each new cell enters the archive unless an archive member
   weakly dominates it, and removes the members it dominates. Then mark the member explored.
3. When every archive member is explored (a Pareto local optimum set), restart as White et al.'s
   local search does at a local optimum: a fresh search from one random cell not evaluated
   before, whose archive is that cell alone.

Objectives are the task's metrics in minimisation form (the first negated); with one metric this
is White et al.'s local search with the whole neighbourhood evaluated before moving. Randomness:
``numpy.random.default_rng(seed)``. Independent of hwnas's strategies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hwnas.evaluation.base import Evaluator
from hwnas.spaces.base import Arch, CategoricalSpace

if TYPE_CHECKING:  # _peers imports this module, so _peers's names are imported in the run
    from _peers import RunLog, Task

N_INIT = 10  # NASLib's default num_init for local search
MAX_DRAWS = 1000  # random draws for an unevaluated restart cell before listing the space


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` dominates ``b`` (minimisation): no worse in every objective, better in one."""
    return bool(np.all(a <= b) and np.any(a < b))


class _Archive:
    """Non-dominated evaluated cells (by canonical string), each flagged explored or not."""

    def __init__(self) -> None:
        self.values: dict[str, np.ndarray] = {}
        self.explored: dict[str, bool] = {}

    def offer(self, key: str, value: np.ndarray) -> None:
        if any(np.all(v <= value) for v in self.values.values()):
            return  # weakly dominated (an equal point included)
        for k in [k for k, v in self.values.items() if _dominates(value, v)]:
            del self.values[k], self.explored[k]
        self.values[key] = value
        self.explored[key] = False

    def unexplored(self) -> list[str]:
        return [k for k, done in self.explored.items() if not done]


def _unevaluated(
    space: CategoricalSpace, seen: dict[str, np.ndarray], rng: np.random.Generator
) -> Arch | None:
    """A uniformly drawn cell not in ``seen``, or None when every cell is."""
    for _ in range(MAX_DRAWS):
        arch = space.sample(rng)
        if space.to_string(arch) not in seen:
            return arch
    rest = [a for a in space.enumerate() if space.to_string(a) not in seen]
    return rest[int(rng.integers(len(rest)))] if rest else None


def run_white_ls(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    from _peers import Oracle

    oracle = Oracle(task, evaluator, budget, max_cpu_s)
    space = oracle.space
    rng = np.random.default_rng(seed)
    seen: dict[str, np.ndarray] = {}  # every evaluated cell, minimisation form

    def evaluate(arch: Arch) -> tuple[str, np.ndarray]:
        key = space.to_string(arch)
        seen[key] = oracle.sign * np.array(oracle.answer(arch))
        return key, seen[key]

    archive = _Archive()
    for _ in range(N_INIT):
        arch = _unevaluated(space, seen, rng)
        if arch is None or oracle.done:
            return oracle.finish()
        archive.offer(*evaluate(arch))

    while not oracle.done:
        todo = archive.unexplored()
        if not todo:  # a Pareto local optimum set: restart from a random new cell
            arch = _unevaluated(space, seen, rng)
            if arch is None:
                break
            archive = _Archive()
            archive.offer(*evaluate(arch))
            continue
        key = todo[int(rng.integers(len(todo)))]
        neighbours = space.neighbours(space.from_string(key))
        for i in rng.permutation(len(neighbours)):
            if oracle.done:
                break
            if space.to_string(neighbours[i]) not in seen:
                archive.offer(*evaluate(neighbours[i]))
        if key in archive.explored:  # it may have left the archive, dominated by a neighbour
            archive.explored[key] = True
    return oracle.finish()
