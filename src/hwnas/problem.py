"""Objectives with directions, constraints with bounds, and the problem a strategy sees.

Example:
    >>> acc = Objective("accuracy", "maximize")
    >>> lat = Constraint("latency_ms@pixel3", le=10.0)
    >>> lat.violation({"latency_ms@pixel3": 12.5})
    2.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from hwnas.errors import ConfigError

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction."""

    metric: str
    direction: Direction = "minimize"

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ConfigError(
                f"objective {self.metric!r}: direction must be 'maximize' or 'minimize', "
                f"got {self.direction!r}"
            )

    @property
    def sign(self) -> float:
        """+1 for minimize, -1 for maximize: multiplies a value into minimisation form."""
        return 1.0 if self.direction == "minimize" else -1.0


@dataclass(frozen=True)
class Constraint:
    """``metric <= le`` or ``metric >= ge`` (exactly one bound)."""

    metric: str
    le: float | None = None
    ge: float | None = None

    def __post_init__(self) -> None:
        if (self.le is None) == (self.ge is None):
            raise ConfigError(
                f"constraint on {self.metric!r} needs exactly one of 'le' or 'ge', "
                f"got le={self.le}, ge={self.ge}"
            )

    def g(self, value: float) -> float:
        """Signed violation ``g``: feasible when ``g <= 0`` (pymoo's convention)."""
        if self.le is not None:
            return value - self.le
        assert self.ge is not None
        return self.ge - value

    def violation(self, metrics: Mapping[str, float]) -> float:
        """How far the metric is outside the bound (0 when satisfied, inf when missing)."""
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            return math.inf
        return max(0.0, self.g(value))

    def __str__(self) -> str:
        return (
            f"{self.metric} <= {self.le}" if self.le is not None else f"{self.metric} >= {self.ge}"
        )


@dataclass(frozen=True)
class Problem:
    """What a strategy knows: the space, the objectives, the constraints.

    Strategies receive results in minimisation form through :meth:`objective_vector`; nothing is
    negated inside evaluators.
    """

    space: SearchSpace
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.objectives:
            raise ConfigError("a study needs at least one objective")
        names = [o.metric for o in self.objectives]
        if len(set(names)) != len(names):
            raise ConfigError(f"objectives name a metric twice: {names}")

    @property
    def n_objectives(self) -> int:
        return len(self.objectives)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Objective metrics, then constraint metrics, without repeats."""
        out = [o.metric for o in self.objectives]
        out += [c.metric for c in self.constraints if c.metric not in out]
        return tuple(out)

    def objective_vector(self, metrics: Mapping[str, float]) -> np.ndarray:
        """Objectives in minimisation form (maximised metrics negated); NaN when missing."""
        return objective_vector(self.objectives, metrics)

    def violation(self, metrics: Mapping[str, float]) -> float:
        """Total constraint violation (0 means feasible)."""
        return total_violation(self.constraints, metrics)

    def cheap_metrics(self, arch: Arch) -> dict[str, float]:
        """Metrics computed from the architecture alone; free for strategies to use."""
        return self.space.cheap_metrics(arch)


def objective_vector(objectives: Sequence[Objective], metrics: Mapping[str, float]) -> np.ndarray:
    """Objectives in minimisation form (maximised metrics negated); NaN when missing."""
    return np.array([o.sign * float(metrics.get(o.metric, math.nan)) for o in objectives])


def total_violation(constraints: Sequence[Constraint], metrics: Mapping[str, float]) -> float:
    """Sum of the constraint violations (0 means feasible)."""
    return float(sum(c.violation(metrics) for c in constraints))


def objective_matrix(
    objectives: Sequence[Objective], rows: Sequence[Mapping[str, float]]
) -> np.ndarray:
    """Stack :func:`objective_vector` over rows into an ``(n, m)`` array."""
    if not rows:
        return np.empty((0, len(objectives)))
    return np.vstack([objective_vector(objectives, r) for r in rows])
