"""Search strategies: one ABC (ask/tell) and one registry.

Use ``create_strategy(name, **options)`` and ``list_strategies()``.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from hwnas.problem import Problem
from hwnas.registry import Registry
from hwnas.spaces.base import CategoricalSpace
from hwnas.strategies.base import SearchExhausted, Strategy, rank_and_crowding
from hwnas.strategies.differentiable import GradientStrategy
from hwnas.strategies.evolution import RegularizedEvolution
from hwnas.strategies.gradient import GRADIENT_STRATEGIES
from hwnas.strategies.linas import PredictorGuided
from hwnas.strategies.local_search import LocalSearch
from hwnas.strategies.moea_bus import MOEABUS
from hwnas.strategies.nsga2 import NSGA2
from hwnas.strategies.optuna_adapter import OptunaSampler
from hwnas.strategies.random_search import RandomSearch
from hwnas.strategies.staged import Staged
from hwnas.strategies.thompson import ThompsonPareto

log = logging.getLogger(__name__)

STRATEGIES: Registry[Strategy] = Registry("strategy")
STRATEGIES.register("random")(RandomSearch)
STRATEGIES.register("evolution")(RegularizedEvolution)
STRATEGIES.register("nsga2")(NSGA2)
STRATEGIES.register("local_search")(LocalSearch)
STRATEGIES.register("optuna")(OptunaSampler)
STRATEGIES.register("linas")(PredictorGuided)
STRATEGIES.register("moea_bus")(MOEABUS)
STRATEGIES.register("thompson")(ThompsonPareto)
STRATEGIES.register("staged")(Staged)
for _name, _cls in GRADIENT_STRATEGIES.items():
    STRATEGIES.register(_name)(_cls)

# On a categorical space: Thompson sampling with the space's structural features in its model.
# Chosen on tasks no benchmark scores (NB201 CIFAR-10 validation accuracy, alone and against four
# device columns the benchmark does not use; benchmarks/results/tune_structure.md,
# tune_single.md): it had the lowest median regret on all four two-objective tasks at every budget
# from 50 to 300 evaluations, and reached the single-objective optimum in the fewest evaluations
# on average of the settings tried.
# It needs numpy and scipy only.
DEFAULT_CATEGORICAL: tuple[str, dict[str, Any]] = ("thompson", {"structure": True})
# On other spaces (mbv3, or any space that is not a product of choices): MOEA-BUS with its
# pairwise-SVM surrogate, population and screening chosen on the same device columns. Its
# surrogate needs scikit-learn (the ``ml`` extra); without it, NSGA-II / regularized evolution.
DEFAULT_SPEC: tuple[str, dict[str, Any]] = (
    "moea_bus",
    {"surrogate": True, "population_size": 10, "screen_factor": 30},
)
FALLBACK_MULTI_OBJECTIVE: tuple[str, dict[str, Any]] = ("nsga2", {})
FALLBACK_SINGLE_OBJECTIVE: tuple[str, dict[str, Any]] = ("evolution", {})


def create_strategy(name: str, **options: Any) -> Strategy:
    """Create a registered strategy, e.g. ``create_strategy("nsga2", population_size=20)``."""
    return STRATEGIES.create(name, **options)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def default_strategy_spec(problem: Problem) -> tuple[str, dict[str, Any]]:
    """Name and options of the strategy used when a config names none."""
    if isinstance(problem.space, CategoricalSpace):
        name, options = DEFAULT_CATEGORICAL  # any number of objectives
    elif importlib.util.find_spec("sklearn") is not None:
        name, options = DEFAULT_SPEC  # any number of objectives
    else:
        log.info("scikit-learn is not installed (hwnas[ml]): default strategy without surrogate")
        single = problem.n_objectives == 1
        name, options = FALLBACK_SINGLE_OBJECTIVE if single else FALLBACK_MULTI_OBJECTIVE
    return name, dict(options)


def strategy_spec(strategy: Strategy) -> tuple[str, dict[str, Any]]:
    """The registered name and the options of a strategy (its class name when unregistered)."""
    name = STRATEGIES.name_of(type(strategy)) or type(strategy).__name__
    return name, dict(getattr(strategy, "options", {}))


def default_strategy(problem: Problem) -> Strategy:
    """The strategy used when a config names none."""
    name, options = default_strategy_spec(problem)
    return create_strategy(name, **options)


__all__ = [
    "NSGA2",
    "STRATEGIES",
    "GradientStrategy",
    "LocalSearch",
    "RandomSearch",
    "RegularizedEvolution",
    "SearchExhausted",
    "Strategy",
    "create_strategy",
    "default_strategy",
    "list_strategies",
    "rank_and_crowding",
    "strategy_spec",
]
