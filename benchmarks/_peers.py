"""Runs of one strategy on one task: hwnas strategies and the peers (pymoo, Optuna, White's LS).

Every runner takes ``(task, evaluator, seed, budget, max_cpu_s)`` and returns a :class:`RunLog`
of the distinct architectures it evaluated, in order. A task is anything with ``name``,
``metrics`` (the first is maximised, the rest minimised), ``latency_metrics``, ``make_space()``
(a :class:`~hwnas.spaces.base.CategoricalSpace`) and ``make_evaluator()``; no runner assumes
NB201 or a metric name.

Budget = distinct architectures: a peer that proposes an architecture again is answered from a
dict, free, and that answer does not count. A run stops at the budget or after
``MAX_ASKS_PER_BUDGET * budget`` proposals, or after ``max_cpu_s`` seconds of CPU time in the
run (a guard against samplers whose cost per ask grows with the trials they are told: Optuna's
TPE can propose thousands of repeats, Optuna's GP refits a Gaussian process each ask); then
``stop_reason`` says which. The CPU guard applies to hwnas strategies alike (checked after each
of their evaluations). Every peer is seeded through the library's own seed option.

Peers (configurations in the docstrings of the modules named):

* ``optuna:nsga2``, ``optuna:tpe`` (defaults), ``optuna:tpe-mv``, ``optuna:gp`` --
  :mod:`_peers_optuna`.
* ``pymoo:nsga2`` (integer SBX/PM recipe), ``pymoo:nsga2-cat`` (uniform crossover, random-reset
  mutation), ``pymoo:mixed-ga`` (``MixedVariableGA`` with ``Choice`` variables) --
  :mod:`_peers_pymoo`.
* ``white:ls`` -- Pareto local search in the manner of White et al.'s local search,
  :mod:`_peers_local`.

The peer modules import :class:`Oracle` and ``POP_SIZE`` from here when a run starts (not at
import), so either side may be imported first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from _peers_local import run_white_ls
from _peers_optuna import (
    run_optuna_gp,
    run_optuna_nsga2,
    run_optuna_tpe,
    run_optuna_tpe_mv,
)
from _peers_pymoo import (
    run_pymoo,
    run_pymoo_mixed_ga,
    run_pymoo_nsga2,
    run_pymoo_nsga2_cat,
)
from hwnas import Objective, Study, create_strategy
from hwnas.evaluation.base import Evaluator
from hwnas.problem import Problem
from hwnas.spaces.base import Arch, CategoricalSpace, SearchSpace
from hwnas.strategies import default_strategy_spec
from hwnas.strategies.base import Strategy
from hwnas.trial import Observation

MAX_ASKS_PER_BUDGET = 50
POP_SIZE = 20  # hwnas nsga2's default population, used for the peers' populations too


class Task(Protocol):
    """What a runner needs of a task (``_scoring.Task`` and a user's table task have it)."""

    @property
    def name(self) -> str: ...

    @property
    def metrics(self) -> tuple[str, ...]: ...

    @property
    def latency_metrics(self) -> tuple[str, ...]: ...

    def make_space(self) -> SearchSpace: ...

    def make_evaluator(self) -> Evaluator: ...


@dataclass
class RunLog:
    """What one run evaluated: distinct architectures in order, with time and asks so far."""

    archs: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # since the run started
    asks: list[int] = field(default_factory=list)  # proposals up to this evaluation
    total_asks: int = 0
    stop_reason: str = ""  # "", "asks" (MAX_ASKS_PER_BUDGET), "cpu" (max_cpu_s), "exhausted"

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason != ""


def _objectives(task: Task) -> list[Objective]:
    """The task's objectives: its first metric maximised, the others minimised."""
    first, *rest = task.metrics
    return [Objective(first, "maximize")] + [Objective(m, "minimize") for m in rest]


def categorical_space(task: Task) -> CategoricalSpace:
    """``task.make_space()``, which the peers need to be categorical (one tuple per slot)."""
    space = task.make_space()
    if not isinstance(space, CategoricalSpace):
        raise TypeError(
            f"task {task.name}: the peers search a CategoricalSpace, got {type(space).__name__}"
        )
    return space


class Oracle:
    """Answers a peer's proposals, charging only architectures not seen before.

    ``answer`` returns the objective values in the task's metric order; ``sign`` turns them into
    minimisation form (the first metric negated). ``done`` is checked before each proposal.
    """

    def __init__(self, task: Task, evaluator: Evaluator, budget: int, max_cpu_s: float) -> None:
        self.task = task
        self.evaluator = evaluator
        self.space = categorical_space(task)
        self.budget = budget
        self.max_asks = MAX_ASKS_PER_BUDGET * budget
        self.memo: dict[str, tuple[float, ...]] = {}
        self.log = RunLog()
        self.start = time.perf_counter()
        self.max_cpu_s = max_cpu_s
        self.cpu_start = time.process_time()
        self.directions = ["maximize"] + ["minimize"] * (len(task.metrics) - 1)
        self.sign = np.array([-1.0] + [1.0] * (len(task.metrics) - 1))

    @property
    def done(self) -> bool:
        if len(self.log.archs) >= self.budget:
            return True
        if self.log.total_asks >= self.max_asks:
            self.log.stop_reason = "asks"
        elif time.process_time() - self.cpu_start >= self.max_cpu_s:
            self.log.stop_reason = "cpu"
        return self.log.stop_reason != ""

    def answer(self, arch: Arch) -> tuple[float, ...]:
        """Objective values of ``arch`` in the task's metric order (the maximised one first)."""
        self.log.total_asks += 1
        key = self.space.to_string(arch)
        values = self.memo.get(key)
        if values is None:
            metrics = self.evaluator.evaluate(arch)
            values = tuple(float(metrics[m]) for m in self.task.metrics)
            self.memo[key] = values
            self.log.archs.append(key)
            self.log.seconds.append(time.perf_counter() - self.start)
            self.log.asks.append(self.log.total_asks)
        return values

    def finish(self) -> RunLog:
        if len(self.log.archs) < self.budget and not self.log.stop_reason:
            self.log.stop_reason = "exhausted"
        return self.log


_Oracle = Oracle  # the name older scripts import


# -- hwnas ----------------------------------------------------------------------------------------
class _CountingStrategy(Strategy):
    """Delegates to a strategy and counts its proposals, repeats the study filters included."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.n_asks = 0

    def setup(self, problem: Problem, rng: np.random.Generator) -> None:
        self.inner.setup(problem, rng)

    def ask(self) -> Arch:
        self.n_asks += 1
        return self.inner.ask()

    def tell(self, observation: Observation) -> None:
        self.inner.tell(observation)


class _CpuGuard(Exception):
    """Raised from a study callback when an hwnas run has used its CPU time."""


def hwnas_runner(name: str, **options: Any) -> Runner:
    """A runner for the registered hwnas strategy ``name`` with ``options``; ``"default"`` is
    the strategy hwnas picks when a config names none (``default_strategy_spec``)."""

    def run(task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float) -> RunLog:
        start = time.perf_counter()
        cpu_start = time.process_time()
        space = task.make_space()
        if name == "default":  # what a config that names no strategy gets
            problem = Problem(space, tuple(_objectives(task)), ())
            name_, options_ = default_strategy_spec(problem)
            inner = create_strategy(name_, **options_)
        else:
            inner = create_strategy(name, **options)
        strategy = _CountingStrategy(inner)
        study = Study(
            space=space,
            evaluators=[evaluator],
            objectives=_objectives(task),
            strategy=strategy,
            seed=seed,
        )
        log = RunLog()

        def record(_study: Study, trial) -> None:  # type: ignore[no-untyped-def]
            if trial.charged:
                log.archs.append(trial.arch)
                log.seconds.append(time.perf_counter() - start)
                log.asks.append(strategy.n_asks)
            if time.process_time() - cpu_start >= max_cpu_s:  # the peers' CPU guard, alike
                raise _CpuGuard

        try:
            study.optimize(budget=budget, callbacks=[record])
        except _CpuGuard:
            if len(log.archs) < budget:
                log.stop_reason = "cpu"
        log.total_asks = strategy.n_asks
        if len(log.archs) < budget and not log.stop_reason:
            log.stop_reason = "exhausted"
        return log

    return run


# (task, evaluator, seed, budget, max_cpu_s) -> log
Runner = Callable[[Task, Evaluator, int, int, float], RunLog]


def _hwnas_runners() -> dict[str, Runner]:
    """Every registered hwnas strategy but the Optuna adapter (Optuna runs below as a peer)."""
    from hwnas import list_strategies

    order = ["random", "evolution", "nsga2", "local_search"]
    names = order + [n for n in list_strategies() if n not in order and n != "optuna"]
    runners = {f"hwnas:{n}": hwnas_runner(n) for n in names}
    if "moea_bus" in names:  # with the paper's pairwise-SVM surrogate
        runners["hwnas:moea_bus+svm"] = hwnas_runner("moea_bus", surrogate=True)
    if "thompson" in names:  # with the space's structural features in its model
        runners["hwnas:thompson+structure"] = hwnas_runner("thompson", structure=True)
    runners["hwnas:default"] = hwnas_runner("default")
    return runners


PEER_RUNNERS: dict[str, Runner] = {
    "pymoo:nsga2": run_pymoo_nsga2,
    "pymoo:nsga2-cat": run_pymoo_nsga2_cat,
    "pymoo:mixed-ga": run_pymoo_mixed_ga,
    "optuna:nsga2": run_optuna_nsga2,
    "optuna:tpe": run_optuna_tpe,
    "optuna:tpe-mv": run_optuna_tpe_mv,
    "optuna:gp": run_optuna_gp,
    "white:ls": run_white_ls,
}

RUNNERS: dict[str, Runner] = {**_hwnas_runners(), **PEER_RUNNERS}

__all__ = [
    "MAX_ASKS_PER_BUDGET",
    "PEER_RUNNERS",
    "POP_SIZE",
    "RUNNERS",
    "Oracle",
    "RunLog",
    "Runner",
    "Task",
    "hwnas_runner",
    "run_pymoo",
]
