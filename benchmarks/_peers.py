"""Runs of one strategy on one task: hwnas strategies and the peers (pymoo, Optuna).

Every runner returns a :class:`RunLog` of the distinct architectures it evaluated, in order.
Budget = distinct architectures: a peer that proposes an architecture again is answered from a
dict, free, and that answer does not count. A run stops at the budget or after
``MAX_ASKS_PER_BUDGET * budget`` proposals, or after ``max_cpu_s`` seconds of CPU time in the
run (a guard against samplers whose cost per ask grows with the repeats they are told: Optuna's
TPE can propose thousands of repeats); then ``stop_reason`` says which.

Peers, each seeded through the library's own seed option:

* ``pymoo:nsga2`` -- ``pymoo.algorithms.moo.nsga2.NSGA2`` driven through pymoo's ask/tell
  interface over 6 integer variables in 0..4 (decoded with ``space.decode``), with pymoo's
  integer recipe: IntegerRandomSampling, SBX(prob=1.0, eta=3.0) and PM(prob=1.0, eta=3.0) on the
  float relaxation with RoundingRepair, eliminate_duplicates=True, pop_size 20.
* ``optuna:nsga2`` -- ``optuna.samplers.NSGAIISampler(population_size=20)``.
* ``optuna:tpe`` -- ``optuna.samplers.TPESampler()`` (defaults; multi-objective TPE).

Both Optuna peers see 6 categorical parameters ``e0..e5`` over the 5 NB201 operations, with an
in-memory storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from _scoring import Task
from hwnas import Objective, Study, create_space, create_strategy
from hwnas.evaluation.base import Evaluator
from hwnas.problem import Problem
from hwnas.spaces.base import Arch
from hwnas.strategies import default_strategy_spec
from hwnas.strategies.base import Strategy
from hwnas.trial import Observation

MAX_ASKS_PER_BUDGET = 50
POP_SIZE = 20  # hwnas nsga2's default population, used for the peers' NSGA-II too


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
    return [Objective("accuracy", "maximize")] + [
        Objective(m, "minimize") for m in task.latency_metrics
    ]


class _Oracle:
    """Answers a peer's proposals, charging only architectures not seen before."""

    def __init__(self, task: Task, evaluator: Evaluator, budget: int, max_cpu_s: float) -> None:
        self.task = task
        self.evaluator = evaluator
        self.space = create_space("nb201")
        self.budget = budget
        self.max_asks = MAX_ASKS_PER_BUDGET * budget
        self.memo: dict[str, tuple[float, ...]] = {}
        self.log = RunLog()
        self.start = time.perf_counter()
        self.max_cpu_s = max_cpu_s
        self.cpu_start = time.process_time()

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
        """Objective values of ``arch`` in the task's metric order (accuracy first)."""
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


def hwnas_runner(name: str, **options: Any) -> Runner:
    """A runner for the registered hwnas strategy ``name`` with ``options``; ``"default"`` is
    the strategy hwnas picks when a config names none (``default_strategy_spec``)."""

    def run(task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float) -> RunLog:
        # hwnas runs take well under a second here; max_cpu_s is not checked inside them.
        start = time.perf_counter()
        if name == "default":  # what a config that names no strategy gets
            problem = Problem(create_space("nb201"), tuple(_objectives(task)), ())
            name_, options_ = default_strategy_spec(problem)
            inner = create_strategy(name_, **options_)
        else:
            inner = create_strategy(name, **options)
        strategy = _CountingStrategy(inner)
        study = Study(
            space=create_space("nb201"),
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

        study.optimize(budget=budget, callbacks=[record])
        log.total_asks = strategy.n_asks
        if len(log.archs) < budget:
            log.stop_reason = "exhausted"
        return log

    return run


# -- pymoo ----------------------------------------------------------------------------------------
def run_pymoo(
    algorithm_cls: type, task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    """A pymoo algorithm (NSGA2, GA, ...) with the integer recipe, driven through ask/tell."""
    from pymoo.core.evaluator import Evaluator as PymooEvaluator
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.problems.static import StaticProblem

    oracle = _Oracle(task, evaluator, budget, max_cpu_s)
    space = oracle.space
    n_choices = {len(c) for c in space.slots}
    assert n_choices == {5}, n_choices
    problem = PymooProblem(n_var=len(space.slots), n_obj=len(task.metrics), xl=0, xu=4, vtype=int)
    algorithm = algorithm_cls(
        pop_size=POP_SIZE,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    # The termination never triggers: the oracle decides when the run ends.
    algorithm.setup(problem, termination=("n_gen", 10**9), seed=seed, verbose=False)
    sign = np.array([-1.0] + [1.0] * len(task.latency_metrics))  # pymoo minimises
    while not oracle.done:
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:  # mating found no new offspring
            oracle.log.stop_reason = "exhausted"
            break
        F = []
        for x in pop.get("X"):
            if oracle.done:
                break
            F.append(sign * np.array(oracle.answer(space.decode(np.rint(x)))))
        if len(F) < len(pop):
            break
        PymooEvaluator().eval(StaticProblem(problem, F=np.array(F)), pop)
        algorithm.tell(infills=pop)
    return oracle.finish()


def run_pymoo_nsga2(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return run_pymoo(NSGA2, task, evaluator, seed, budget, max_cpu_s)


# -- Optuna ---------------------------------------------------------------------------------------
def _run_optuna(
    make_sampler: Callable[[int], object],
    task: Task,
    evaluator: Evaluator,
    seed: int,
    budget: int,
    max_cpu_s: float,
) -> RunLog:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    oracle = _Oracle(task, evaluator, budget, max_cpu_s)
    space = oracle.space
    study = optuna.create_study(
        directions=["maximize"] + ["minimize"] * len(task.latency_metrics),
        sampler=make_sampler(seed),  # type: ignore[arg-type]
    )
    while not oracle.done:
        trial = study.ask()
        ops = [trial.suggest_categorical(f"e{i}", list(c)) for i, c in enumerate(space.slots)]
        study.tell(trial, list(oracle.answer({"ops": ops})))
    return oracle.finish()


def run_optuna_nsga2(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    import optuna

    def sampler(s: int) -> object:
        return optuna.samplers.NSGAIISampler(population_size=POP_SIZE, seed=s)

    return _run_optuna(sampler, task, evaluator, seed, budget, max_cpu_s)


def run_optuna_tpe(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    import optuna

    def sampler(s: int) -> object:
        return optuna.samplers.TPESampler(seed=s)

    return _run_optuna(sampler, task, evaluator, seed, budget, max_cpu_s)


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
    runners["hwnas:default"] = hwnas_runner("default")
    return runners


RUNNERS: dict[str, Runner] = {
    **_hwnas_runners(),
    "pymoo:nsga2": run_pymoo_nsga2,
    "optuna:nsga2": run_optuna_nsga2,
    "optuna:tpe": run_optuna_tpe,
}
