"""Frozen records: a finished trial as stored, and the observation a strategy is told."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from hwnas.spaces.base import Arch

if TYPE_CHECKING:
    from hwnas.problem import Problem

TrialState = Literal["complete", "failed"]


@dataclass(frozen=True)
class Trial:
    """One evaluated architecture, as committed to the store.

    Attributes:
        number: position in ask order (0-based).
        arch: canonical architecture string.
        metrics: every metric the evaluators and the space gave.
        state: ``complete`` or ``failed`` (then ``error`` says why).
        charged: whether an expensive evaluator ran for it (counts against the budget).
        asks_before: asks issued when it was told (replays the ask/tell interleaving on resume).
        tell_seq: order in which trials were told.
        duration_s: wall time of the evaluation (all attempts), seconds.
        finished_at: when it was told (Unix time).
        attempts: how many times it was dispatched (more than 1 after a timeout or a lost
            worker was retried).
        cached: whether its expensive metrics came from the shared evaluation cache (it still
            counts against the budget: the cache saves time, it never changes the search).
    """

    number: int
    arch: str
    metrics: Mapping[str, float]
    state: TrialState = "complete"
    error: str | None = None
    charged: bool = True
    asks_before: int = 0
    tell_seq: int = 0
    duration_s: float = 0.0
    finished_at: float = 0.0
    attempts: int = 1
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.state == "complete"


@dataclass(frozen=True)
class Observation:
    """What a strategy learns about one architecture it asked for.

    ``objectives`` is in minimisation form (NaN entries when failed); ``violation`` is the total
    constraint violation (0 = feasible, inf = failed); ``metrics`` holds only the objective and
    constraint metrics plus the cheap metrics.
    """

    arch: Arch
    arch_str: str
    objectives: np.ndarray
    violation: float
    metrics: Mapping[str, float]
    failed: bool = False

    @property
    def feasible(self) -> bool:
        return not self.failed and self.violation <= 0.0 and not math.isinf(self.violation)

    def metrics_of(self, problem: Problem) -> list[float]:
        """Objective values in their own directions (as the evaluators gave them)."""
        return [float(self.metrics.get(o.metric, math.nan)) for o in problem.objectives]
