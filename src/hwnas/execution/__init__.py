"""Executors: where evaluations run (here, a local process pool, Ray) and how failures are met.

Use :meth:`hwnas.Study.optimize` with ``executor=`` ``"sequential"`` (default), ``"process"`` or
``"ray"``; or ``create_backend`` and :func:`run` directly.

Example:
    >>> from hwnas.execution import RunPolicy, list_executors
    >>> list_executors()
    ['process', 'ray', 'sequential']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import (
    Backend,
    Completion,
    EvaluationTimeout,
    Job,
    RunPolicy,
    StudyFailedError,
    TransientError,
    WorkerResult,
)
from hwnas.execution.driver import RunStats, run
from hwnas.registry import closest

log = logging.getLogger(__name__)

EXECUTORS = ("process", "ray", "sequential")


def list_executors() -> list[str]:
    return list(EXECUTORS)


def create_backend(
    name: str,
    evaluators: Sequence[Evaluator],
    *,
    workers: int | None = None,
    address: str | None = None,
    timeout_s: float | None = None,
) -> Backend:
    """The backend of executor ``name`` for these evaluators.

    Args:
        name: ``sequential``, ``process`` or ``ray``.
        evaluators: the study's evaluators (sent to the workers).
        workers: evaluations in flight at once (process: default 2; ray: default the CPUs of
            the Ray cluster; sequential: 1 only).
        address: the Ray cluster to join (ray only; default: start a local Ray).
        timeout_s: time limit of one evaluation attempt.
    """
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; {closest(name, list(EXECUTORS))}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    if address is not None and name != "ray":
        raise ConfigError(f"an address is for the ray executor, not {name!r}; drop --address")
    parallel_here = name == "process" or (name == "ray" and address is None)
    if parallel_here and (workers is None or workers > 1):
        noisy = [ev.key() for ev in evaluators if ev.shares_machine_badly]
        if noisy:
            log.warning(
                "%s measure on this machine while other evaluations run beside them: their "
                "figures will be slower and noisier than alone; use the sequential executor "
                "(or one worker) for measurements you will deploy by",
                ", ".join(noisy),
            )
    if name == "sequential":
        if workers not in (None, 1):
            raise ConfigError(
                f"the sequential executor runs one evaluation at a time, got workers={workers}; "
                "use --executor process (or ray) for parallel evaluations"
            )
        from hwnas.execution.sequential import SequentialBackend

        return SequentialBackend(evaluators, timeout_s=timeout_s)
    if name == "process":
        from hwnas.execution.process import ProcessBackend

        return ProcessBackend(evaluators, workers=workers or 2, timeout_s=timeout_s)
    from hwnas.execution.ray_backend import RayBackend

    return RayBackend(evaluators, workers=workers, address=address, timeout_s=timeout_s)


__all__ = [
    "EXECUTORS",
    "Backend",
    "Completion",
    "EvaluationTimeout",
    "Job",
    "RunPolicy",
    "RunStats",
    "StudyFailedError",
    "TransientError",
    "WorkerResult",
    "create_backend",
    "list_executors",
    "run",
]
