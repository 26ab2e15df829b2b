"""What every executor shares: the run policy, jobs, outcomes, and the Backend ABC.

An executor is split in two. The *driver* (:mod:`hwnas.execution.driver`) is the same for every
executor: it asks the study for architectures while workers are free, serves what the shared
cache already holds, tells results as they arrive, retries what may pass and stops a study only
after a run of failures. A *backend* only moves jobs to workers and back: in this process
(:class:`~hwnas.execution.sequential.SequentialBackend`), in a pool of local processes
(:class:`~hwnas.execution.process.ProcessBackend`) or on Ray
(:class:`~hwnas.execution.ray_backend.RayBackend`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hwnas.errors import ConfigError, HwnasError, one_line
from hwnas.spaces.base import Arch

#: Why an evaluation did not give metrics. ``missing``: an evaluator has no value for the
#: architecture (a table without its row; nothing was spent). ``exception``: an evaluator raised.
#: ``invalid``: it returned NaN, inf or a non-number. ``transient``: it raised
#: :class:`TransientError`. ``timeout``: it ran past ``timeout_s``. ``lost``: its worker died.
FailureKind = Literal["missing", "exception", "invalid", "transient", "timeout", "lost"]
RETRYABLE: frozenset[str] = frozenset({"transient", "timeout", "lost"})


class TransientError(Exception):
    """Raise from an evaluator when the failure may pass (a busy device, a dropped connection):
    the evaluation is retried up to ``retries`` times instead of failing at once."""


class EvaluationTimeout(BaseException):
    """Raised inside an in-process evaluation that ran past its time limit.

    A ``BaseException`` so that an evaluator's own ``except Exception`` cannot swallow it.
    """


class StudyFailedError(HwnasError):
    """A run of consecutive failed evaluations stopped the study (the message has the last
    reason); everything finished before is stored."""


@dataclass(frozen=True)
class RunPolicy:
    """How a study treats slow and failing evaluations.

    Args:
        timeout_s: wall-clock limit of one evaluation attempt (all evaluators of one
            architecture); ``None``: no limit.
        retries: extra attempts for failures that may pass (timeouts, lost workers,
            :class:`TransientError`); other failures are final at once.
        max_failures_in_row: stop the study after this many consecutive failed evaluations
            (architectures missing from a table do not count: nothing was evaluated).
        ordered: tell results in ask order, so that a parallel run with the same seed and the
            same number of workers proposes the same architectures every time (workers may idle
            while an earlier evaluation finishes).

    Example:
        >>> RunPolicy(timeout_s=600, retries=1).retries
        1
    """

    timeout_s: float | None = None
    retries: int = 2
    max_failures_in_row: int = 10
    ordered: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s is not None and not (
            _is_number(self.timeout_s)
            and not isinstance(self.timeout_s, bool)
            and math.isfinite(self.timeout_s)
            and self.timeout_s > 0
        ):
            raise ConfigError(
                f"timeout_s must be a positive number of seconds, got {self.timeout_s}"
            )
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"retries must be a whole number >= 0, got {self.retries!r}")
        if (
            isinstance(self.max_failures_in_row, bool)
            or not isinstance(self.max_failures_in_row, int)
            or self.max_failures_in_row < 1
        ):
            raise ConfigError(
                f"max_failures_in_row must be a whole number >= 1, got {self.max_failures_in_row!r}"
            )


@dataclass
class Job:
    """One architecture on its way through a worker.

    ``todo`` are the indices of the study's evaluators still to run (the rest were served from
    the shared cache into ``cached``).
    """

    number: int
    arch: Arch
    arch_str: str
    todo: tuple[int, ...]
    cached: dict[int, dict[str, float]] = field(default_factory=dict)
    attempts: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class WorkerResult:
    """What a worker sends back: the metrics of each evaluator that finished, in order, and the
    first failure (then later evaluators did not run)."""

    metrics: Mapping[int, Mapping[str, float]]
    error: str | None = None
    kind: FailureKind | None = None
    failed_evaluator: int | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class Completion:
    """A finished attempt of a job, as a backend reports it."""

    job: Job
    result: WorkerResult


class Backend(ABC):
    """Moves jobs to workers and back. The driver owns everything else.

    ``slots`` is how many jobs it takes at once. :meth:`submit` must not block for long;
    :meth:`wait` blocks until at least one job finished (or ``timeout`` seconds passed) and
    returns the finished ones, reporting a job past its time limit as a ``timeout`` and a job
    whose worker died as ``lost`` (a backend restarts such workers itself).
    """

    slots: int = 1

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start one attempt of ``job``."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[Completion]:
        """Finished attempts (at least one unless ``timeout`` passed or nothing is running)."""

    def close(self) -> None:
        """Stop workers and abandon what is running (no-op by default)."""

    def describe(self) -> str:
        """A short description for logs and reports, e.g. ``process pool, 2 workers``."""
        return type(self).__name__


def check_values(metrics: object, evaluator_name: str) -> tuple[dict[str, float], str | None]:
    """Metrics as floats, or the reason they cannot be trusted (NaN, inf, a non-number)."""
    if not isinstance(metrics, Mapping):
        return {}, (
            f"evaluator {evaluator_name} returned {type(metrics).__name__}, not a mapping of "
            "metric names to numbers"
        )
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            return {}, f"evaluator {evaluator_name} returned a metric named {name!r}, not a string"
        if isinstance(value, bool) or not _is_number(value):
            return {}, f"evaluator {evaluator_name} returned {name} = {value!r}, not a number"
        number = float(value)
        if not math.isfinite(number):
            return {}, f"evaluator {evaluator_name} returned {name} = {number}, not a finite number"
        out[name] = number
    return out, None


def _is_number(value: object) -> bool:
    import numbers

    if isinstance(value, numbers.Real):
        return True
    # numpy scalars of size one (np.float32(1.0), a 0-d array) convert cleanly
    try:
        import numpy as np

        return isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iuf"
    except ImportError:  # pragma: no cover - numpy is a core dependency
        return False


def first_line(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters (error texts are stored and shown in tables)."""
    line = one_line(text)
    return line if len(line) <= limit else line[: limit - 1] + "…"
