"""The code that runs on a worker: every evaluator of one architecture, failures caught.

The same function runs in the study's own process (sequential executor), in a pool process and in
a Ray task, so an evaluator behaves the same wherever it runs.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType

from hwnas.evaluation.base import Evaluator, MissingArchError
from hwnas.execution.base import (
    EvaluationTimeout,
    TransientError,
    WorkerResult,
    check_values,
    first_line,
)
from hwnas.spaces.base import Arch


def evaluator_name(ev: Evaluator) -> str:
    try:
        return ev.key()
    except Exception:  # a broken key() must not hide the evaluator's real failure
        return type(ev).__name__


def run_evaluators(
    evaluators: Sequence[Evaluator], arch: Arch, todo: Sequence[int]
) -> WorkerResult:
    """Run ``evaluators[i]`` for each ``i`` in ``todo`` on ``arch``; stop at the first failure.

    Exceptions of any kind an evaluator raises (``Exception`` subclasses), NaN, inf and values
    that are not numbers become a failed :class:`WorkerResult` with the reason; nothing raises
    out of here except ``BaseException``s that are meant to stop the process (Ctrl-C, a time
    limit).
    """
    start = time.perf_counter()
    done: dict[int, dict[str, float]] = {}
    for i in todo:
        ev = evaluators[i]
        name = evaluator_name(ev)
        try:
            raw = ev.evaluate(arch)
        except MissingArchError as exc:
            return _failed(done, first_line(str(exc)), "missing", i, start)
        except TransientError as exc:
            reason = f"evaluator {name} reported a passing failure: {exc}"
            return _failed(done, first_line(reason), "transient", i, start)
        except Exception as exc:
            reason = f"evaluator {name} raised {type(exc).__name__}: {exc}"
            return _failed(done, first_line(reason), "exception", i, start)
        values, problem = check_values(raw, name)
        if problem is not None:
            return _failed(done, first_line(problem), "invalid", i, start)
        done[i] = values
    return WorkerResult(metrics=done, duration_s=time.perf_counter() - start)


def _failed(
    done: dict[int, dict[str, float]], reason: str, kind: str, index: int, start: float
) -> WorkerResult:
    return WorkerResult(
        metrics=done,
        error=reason,
        kind=kind,  # type: ignore[arg-type]
        failed_evaluator=index,
        duration_s=time.perf_counter() - start,
    )


def can_alarm() -> bool:
    """Whether :func:`run_with_time_limit` can interrupt an evaluation here (``SIGALRM`` works
    in the main thread of a Unix process only)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def run_with_time_limit(
    evaluators: Sequence[Evaluator], arch: Arch, todo: Sequence[int], timeout_s: float | None
) -> WorkerResult:
    """:func:`run_evaluators` interrupted by ``SIGALRM`` after ``timeout_s`` seconds (counted
    from when it starts here, not from when it was queued).

    The evaluation is interrupted at the next Python instruction: evaluators written in Python
    and those calling libraries that return to Python between operations (PyTorch, ONNX Runtime)
    stop; a C call that never returns does not, which is why the process and Ray executors also
    kill a worker that overruns by far. Without a limit, or where no alarm can be set, it runs
    unguarded.
    """
    if timeout_s is None or not can_alarm():
        return run_evaluators(evaluators, arch, todo)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise EvaluationTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            return run_evaluators(evaluators, arch, todo)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except EvaluationTimeout:  # also when the alarm beat the line that disarms it
        return WorkerResult(
            metrics={}, error=timeout_reason(timeout_s), kind="timeout", duration_s=timeout_s
        )
    finally:
        signal.signal(signal.SIGALRM, previous)


def timeout_reason(timeout_s: float) -> str:
    return f"the evaluation ran past timeout_s = {timeout_s:g} s"
