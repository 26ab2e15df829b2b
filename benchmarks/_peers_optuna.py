"""Optuna peers (optuna 5.0): each slot of the task's categorical space is one categorical
parameter ``e0, e1, ...`` over that slot's choices; in-memory storage; one study per run, driven
through ``Study.ask`` / ``Study.tell``; directions: the task's first metric maximised, the rest
minimised. Every trial is told, repeats included (their values come from the memo, free).

* ``optuna:nsga2`` -- ``NSGAIISampler(population_size=20, seed=seed)``, Optuna's defaults
  otherwise (uniform crossover with probability 0.9, swapping probability 0.5; each parameter
  resampled at random with probability 1/n_params).
* ``optuna:tpe`` -- ``TPESampler(seed=seed)``: the defaults, kept as the defaults' figures. In
  Optuna 5.0 ``multivariate`` defaults to ``None``, which means independent (univariate) TPE for
  two or more objectives and multivariate TPE for one.
* ``optuna:tpe-mv`` -- ``TPESampler(multivariate=True, seed=seed)``: the multivariate TPE, which
  Optuna's docs report to outperform the independent one (Falkner et al., ICML 2018, BOHB), also
  for multi-objective studies (Optuna's "Significant speed up of multi-objective TPESampler"
  article runs ``TPESampler(multivariate=True)``). ``group=True`` is left out: it splits the
  search space into groups of parameters that always appear together, and a flat space (every
  trial suggests every slot, no conditional parameters) is one group, so it samples the same
  joint distribution (checked: the same seed proposes the same cells with and without it).
  ``n_startup_trials`` stays at Optuna's default (10 random trials): Optuna 5.0's docs recommend
  no other value; the ``11 * n_params - 1`` of Ozaki et al. (GECCO 2020) was the advice of the
  removed ``MOTPESampler``'s docs. ``constant_liar`` (default True) only matters for trials
  running in parallel; here one runs at a time.
* ``optuna:gp`` -- ``GPSampler(seed=seed, deterministic_objective=True)``. Optuna 5.0's
  GPSampler handles categorical parameters (a Hamming-distance Matern-5/2 kernel, exhaustive
  search per categorical parameter in the acquisition optimiser) and several objectives
  (log expected hypervolume improvement, Daulton et al., NeurIPS 2020). The objective is a table
  lookup, so ``deterministic_objective=True``, as its docs advise for deterministic objectives
  (noise variance fixed at its minimum); ``n_startup_trials`` is the default 10. Its cost per
  ask grows with the trials told (one GP fit per objective, cubic in their number; Optuna's docs
  recommend it for 10-100 trials), so the CPU guard stops long runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hwnas.evaluation.base import Evaluator

if TYPE_CHECKING:  # _peers imports this module, so _peers's names are imported in the run
    from _peers import RunLog, Task


def _run_optuna(
    make_sampler: Callable[[int], Any],
    task: Task,
    evaluator: Evaluator,
    seed: int,
    budget: int,
    max_cpu_s: float,
) -> RunLog:
    import optuna

    from _peers import Oracle

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    oracle = Oracle(task, evaluator, budget, max_cpu_s)
    slots = [list(choices) for choices in oracle.space.slots]
    with warnings.catch_warnings():
        # GPSampler's deterministic_objective is marked experimental; the run prints nothing.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(directions=oracle.directions, sampler=make_sampler(seed))
        while not oracle.done:
            trial = study.ask()
            ops = [trial.suggest_categorical(f"e{i}", c) for i, c in enumerate(slots)]
            study.tell(trial, list(oracle.answer({"ops": ops})))
    return oracle.finish()


def run_optuna_nsga2(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    import optuna

    from _peers import POP_SIZE

    def sampler(s: int) -> Any:
        return optuna.samplers.NSGAIISampler(population_size=POP_SIZE, seed=s)

    return _run_optuna(sampler, task, evaluator, seed, budget, max_cpu_s)


def run_optuna_tpe(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    import optuna

    def sampler(s: int) -> Any:
        return optuna.samplers.TPESampler(seed=s)

    return _run_optuna(sampler, task, evaluator, seed, budget, max_cpu_s)


def run_optuna_tpe_mv(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    import optuna

    def sampler(s: int) -> Any:
        return optuna.samplers.TPESampler(multivariate=True, seed=s)

    return _run_optuna(sampler, task, evaluator, seed, budget, max_cpu_s)


def run_optuna_gp(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    import optuna

    def sampler(s: int) -> Any:
        return optuna.samplers.GPSampler(seed=s, deterministic_objective=True)

    return _run_optuna(sampler, task, evaluator, seed, budget, max_cpu_s)
