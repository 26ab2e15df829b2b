"""The sequential backend: one evaluation at a time, in the study's own process (the default).

A time limit is enforced with ``SIGALRM`` when the study runs in the main thread of a Unix
process (see :func:`hwnas.execution.worker.run_with_time_limit`); a C call that never returns
cannot be interrupted in-process, where the process executor kills its worker instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import Backend, Completion, Job, WorkerResult
from hwnas.execution.worker import can_alarm, run_with_time_limit

log = logging.getLogger(__name__)


class SequentialBackend(Backend):
    """Runs each job in this process when the driver waits for it.

    Args:
        evaluators: the study's evaluators.
        timeout_s: time limit of one attempt (``None``: none).
    """

    slots = 1

    def __init__(self, evaluators: Sequence[Evaluator], *, timeout_s: float | None = None) -> None:
        self.evaluators = list(evaluators)
        self.timeout_s = timeout_s
        self._queue: list[Job] = []
        self._alarm = timeout_s is not None and can_alarm()
        if timeout_s is not None and not self._alarm:
            log.warning(
                "timeout_s is not enforced by the sequential executor outside the main thread "
                "of a Unix process; use the process executor"
            )

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self, timeout: float | None = None) -> list[Completion]:
        if not self._queue:
            return []
        job = self._queue.pop(0)
        return [Completion(job, self._run(job))]

    def _run(self, job: Job) -> WorkerResult:
        timeout = self.timeout_s if self._alarm else None
        return run_with_time_limit(self.evaluators, job.arch, job.todo, timeout)

    def close(self) -> None:
        self._queue.clear()

    def describe(self) -> str:
        return "sequential (in this process)"
