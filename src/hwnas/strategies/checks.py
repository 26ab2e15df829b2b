"""Checks of strategy options at construction, each failing with one line that names the
strategy, the option, what is allowed and what was given (``nsga2: mutations must be >= 1, got
0``). Options are checked in the order given, so the first bad one is the one reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hwnas.errors import ConfigError


def at_least(owner: str, **options: tuple[Any, Any]) -> None:
    """Each option ``name=(value, low)`` must have ``value >= low`` (NaN fails)."""
    for name, (value, low) in options.items():
        if not value >= low:
            raise ConfigError(f"{owner}: {name} must be >= {low}, got {value}")


def in_unit_interval(owner: str, **options: float) -> None:
    """Each option ``name=value`` must lie in [0, 1] (a probability)."""
    for name, value in options.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{owner}: {name} must lie in [0, 1], got {value}")


def one_of(owner: str, **options: tuple[Any, Sequence[Any]]) -> None:
    """Each option ``name=(value, choices)`` must be one of ``choices`` (a tuple)."""
    for name, (value, choices) in options.items():
        if value not in choices:
            raise ConfigError(f"{owner}: {name} must be one of {choices}, got {value!r}")
