"""The sequential backend: one evaluation at a time, in the study's own process (the default).

A time limit is enforced with ``SIGALRM`` when the study runs in the main thread of a Unix
process: the evaluation is interrupted at the next Python instruction, which covers evaluators
written in Python and those calling into libraries that return to Python between operations
(PyTorch, ONNX Runtime). A C call that never returns cannot be interrupted in-process; the process
executor kills its worker instead.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import (
    Backend,
    Completion,
    EvaluationTimeout,
    Job,
    WorkerResult,
    first_line,
)
from hwnas.execution.worker import run_evaluators

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
        self._alarm = timeout_s is not None and _can_alarm()
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
        if not self._alarm:
            return run_evaluators(self.evaluators, job.arch, job.todo)
        assert self.timeout_s is not None

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            raise EvaluationTimeout

        previous = signal.signal(signal.SIGALRM, on_alarm)
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
                return run_evaluators(self.evaluators, job.arch, job.todo)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except EvaluationTimeout:  # also when the alarm beat the line that disarms it
            reason = f"the evaluation ran past timeout_s = {self.timeout_s:g} s"
            return WorkerResult(
                metrics={}, error=first_line(reason), kind="timeout", duration_s=self.timeout_s
            )
        finally:
            signal.signal(signal.SIGALRM, previous)

    def close(self) -> None:
        self._queue.clear()

    def describe(self) -> str:
        return "sequential (in this process)"


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
