"""Search strategies: one ABC (ask/tell) and one registry.

Use ``create_strategy(name, **options)`` and ``list_strategies()``.
"""

from __future__ import annotations

from typing import Any

from hwnas.problem import Problem
from hwnas.registry import Registry
from hwnas.strategies.base import SearchExhausted, Strategy, rank_and_crowding
from hwnas.strategies.evolution import RegularizedEvolution
from hwnas.strategies.local_search import LocalSearch
from hwnas.strategies.nsga2 import NSGA2
from hwnas.strategies.optuna_adapter import OptunaSampler
from hwnas.strategies.random_search import RandomSearch

STRATEGIES: Registry[Strategy] = Registry("strategy")
STRATEGIES.register("random")(RandomSearch)
STRATEGIES.register("evolution")(RegularizedEvolution)
STRATEGIES.register("nsga2")(NSGA2)
STRATEGIES.register("local_search")(LocalSearch)
STRATEGIES.register("optuna")(OptunaSampler)

# Chosen by the NB201 hardware benchmark (docs/BENCHMARKS.md).
DEFAULT_MULTI_OBJECTIVE = "nsga2"
DEFAULT_SINGLE_OBJECTIVE = "evolution"


def create_strategy(name: str, **options: Any) -> Strategy:
    """Create a registered strategy, e.g. ``create_strategy("nsga2", population_size=20)``."""
    return STRATEGIES.create(name, **options)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def default_strategy_name(problem: Problem) -> str:
    return DEFAULT_MULTI_OBJECTIVE if problem.n_objectives > 1 else DEFAULT_SINGLE_OBJECTIVE


def default_strategy(problem: Problem) -> Strategy:
    """The strategy used when a config names none."""
    return create_strategy(default_strategy_name(problem))


__all__ = [
    "NSGA2",
    "STRATEGIES",
    "LocalSearch",
    "RandomSearch",
    "RegularizedEvolution",
    "SearchExhausted",
    "Strategy",
    "create_strategy",
    "default_strategy",
    "list_strategies",
    "rank_and_crowding",
]
