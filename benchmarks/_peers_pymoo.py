"""pymoo peers (pymoo 0.6.2), driven through pymoo's ask/tell interface, pop_size 20, seeded
with ``algorithm.setup(..., seed=seed)``; objectives in pymoo's minimisation form (the task's
first metric negated). The termination never triggers: the oracle ends the run.

* ``pymoo:nsga2`` -- ``NSGA2`` with pymoo's integer recipe, kept as it was: one integer variable
  per slot in ``0..len(slot) - 1`` (decoded with ``space.decode``), IntegerRandomSampling,
  SBX(prob=1.0, eta=3.0) and PM(prob=1.0, eta=3.0) on the float relaxation with
  RoundingRepair, eliminate_duplicates=True. It treats a slot's choice index as an ordinal.
* ``pymoo:nsga2-cat`` -- ``NSGA2`` on the same integer codes with operators made for
  categorical variables: IntegerRandomSampling, ``UX()`` (uniform crossover, each variable
  from either parent with probability 1/2) and ``random_reset_mutation()`` (each variable
  reset to a uniformly drawn *other* choice with probability 1/n_var; pymoo 0.6.2 has no such
  operator for integer codes), eliminate_duplicates=True, NSGA-II's binary tournament and
  rank-and-crowding survival.
* ``pymoo:mixed-ga`` -- ``MixedVariableGA(pop_size=20, survival=RankAndCrowdingSurvival())``
  over one ``Choice(options=slot)`` variable per slot, as pymoo's mixed-variable guide runs it
  for several objectives (pymoo.org, "Mixed Variable Problem"). Its defaults: random mating
  selection, ``UX`` and ``ChoiceRandomMutation`` per ``Choice`` variable (pymoo applies them one
  variable at a time, so each variable is resampled with probability 1/2, the current choice
  included) and ``MixedVariableDuplicateElimination`` for both the mating and the survivors,
  which is how the guide eliminates duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.evaluation.base import Evaluator
from hwnas.spaces.base import Arch

if TYPE_CHECKING:  # _peers imports this module, so _peers's names are imported in the run
    from _peers import Oracle, RunLog, Task


def _drive(
    algorithm: Any, problem: Any, decode: Callable[[Any], Arch], oracle: Oracle, seed: int
) -> RunLog:
    """Ask/tell ``algorithm`` on ``problem`` until the oracle is done; ``decode`` turns one
    pymoo ``X`` into an architecture."""
    from pymoo.core.evaluator import Evaluator as PymooEvaluator
    from pymoo.problems.static import StaticProblem

    algorithm.setup(problem, termination=("n_gen", 10**9), seed=seed, verbose=False)
    while not oracle.done:
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:  # mating found no new offspring
            oracle.log.stop_reason = "exhausted"
            break
        F = []
        for x in pop.get("X"):
            if oracle.done:
                break
            F.append(oracle.sign * np.array(oracle.answer(decode(x))))
        if len(F) < len(pop):
            break
        PymooEvaluator().eval(StaticProblem(problem, F=np.array(F)), pop)
        algorithm.tell(infills=pop)
    return oracle.finish()


def _integer_problem(oracle: Oracle) -> Any:
    from pymoo.core.problem import Problem as PymooProblem

    upper = np.array([len(choices) - 1 for choices in oracle.space.slots])
    return PymooProblem(
        n_var=len(upper), n_obj=len(oracle.directions), xl=np.zeros_like(upper), xu=upper
    )


def run_pymoo(
    algorithm_cls: type, task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    """A pymoo algorithm (NSGA2, GA, ...) with pymoo's integer recipe, driven through ask/tell."""
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    from _peers import POP_SIZE, Oracle

    oracle = Oracle(task, evaluator, budget, max_cpu_s)
    algorithm = algorithm_cls(
        pop_size=POP_SIZE,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    space = oracle.space
    return _drive(
        algorithm, _integer_problem(oracle), lambda x: space.decode(np.rint(x)), oracle, seed
    )


def run_pymoo_nsga2(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return run_pymoo(NSGA2, task, evaluator, seed, budget, max_cpu_s)


def random_reset_mutation(prob_var: float | None = None) -> Any:
    """A pymoo mutation for integer-coded categorical variables (see the class)."""
    from pymoo.core.mutation import Mutation

    class RandomResetMutation(Mutation):
        """Each integer-coded categorical variable, with probability ``prob_var`` (default
        1/n_var), takes a uniformly drawn other value of its range ``xl..xu``."""

        def _do(self, problem: Any, X: Any, random_state: Any = None, **kwargs: Any) -> Any:
            X = np.asarray(X).astype(np.int64)
            xl, xu = problem.bounds()
            prob_var = self.get_prob_var(problem, size=len(X))
            for k in range(problem.n_var):
                low, n = int(xl[k]), int(xu[k]) - int(xl[k]) + 1
                if n < 2:
                    continue
                rows = np.flatnonzero(random_state.random(len(X)) < prob_var)
                draw = random_state.integers(0, n - 1, size=len(rows))  # skip the current one
                current = X[rows, k] - low
                X[rows, k] = low + draw + (draw >= current)
            return X

    return RandomResetMutation(prob_var=prob_var)


def run_pymoo_nsga2_cat(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.crossover.ux import UX
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    from _peers import POP_SIZE, Oracle

    oracle = Oracle(task, evaluator, budget, max_cpu_s)
    algorithm = NSGA2(
        pop_size=POP_SIZE,
        sampling=IntegerRandomSampling(),
        crossover=UX(),
        mutation=random_reset_mutation(),
        eliminate_duplicates=True,
    )
    space = oracle.space
    return _drive(algorithm, _integer_problem(oracle), space.decode, oracle, seed)


def run_pymoo_mixed_ga(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    from pymoo.algorithms.moo.nsga2 import RankAndCrowdingSurvival
    from pymoo.core.mixed import MixedVariableGA
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.core.variable import Choice

    from _peers import POP_SIZE, Oracle

    oracle = Oracle(task, evaluator, budget, max_cpu_s)
    names = [f"e{i}" for i in range(len(oracle.space.slots))]
    variables = {n: Choice(options=list(c)) for n, c in zip(names, oracle.space.slots)}
    problem = PymooProblem(vars=variables, n_obj=len(oracle.directions))
    algorithm = MixedVariableGA(pop_size=POP_SIZE, survival=RankAndCrowdingSurvival())

    def decode(x: dict[str, Any]) -> Arch:
        return {"ops": [str(x[n]) for n in names]}

    return _drive(algorithm, problem, decode, oracle, seed)
