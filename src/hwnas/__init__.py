"""hwnas: hardware-aware neural architecture search.

Example:
    >>> import hwnas
    >>> "nb201" in hwnas.list_spaces()
    True
"""

from __future__ import annotations

from hwnas.errors import ConfigError, DataError, HwnasError
from hwnas.evaluation import create_evaluator, list_evaluators
from hwnas.problem import Constraint, Objective, Problem
from hwnas.spaces import create_space, list_spaces
from hwnas.strategies import create_strategy, list_strategies
from hwnas.study import Study
from hwnas.trial import Observation, Trial

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Constraint",
    "DataError",
    "HwnasError",
    "Objective",
    "Observation",
    "Problem",
    "Study",
    "Trial",
    "create_evaluator",
    "create_space",
    "create_strategy",
    "list_evaluators",
    "list_spaces",
    "list_strategies",
]
