"""The process backend: a pool of local worker processes, one evaluation each at a time.

Workers are started with ``spawn`` (a fresh interpreter: safe beside threads, PyTorch and the
progress bar) and receive the study's evaluators once, pickled by this process (objects it made
itself, never files from elsewhere). A worker that runs past the time limit is killed and
replaced; one that dies (out of memory, a crash in native code, a signal) is replaced and its
job reported as ``lost``, so the driver retries it on another worker. Workers ignore Ctrl-C: the
study process decides what happens on an interrupt.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import Backend, Completion, Job, WorkerResult, first_line
from hwnas.execution.worker import run_evaluators, timeout_reason

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # a fresh interpreter importing PyTorch takes seconds, not minutes


def _worker_main(conn: Connection, payload: bytes) -> None:  # pragma: no cover - child process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # The payload is never read from a file: it is the parent's own evaluators, pickled in
        # memory by the study process that spawned this worker and passed over a pipe only the
        # two of them hold (the same trust as multiprocessing's own argument passing).
        evaluators = pickle.loads(payload)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("init-error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        conn.send(("ready", os.getpid()))
    except OSError:
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        number, arch, todo = message
        result = run_evaluators(evaluators, arch, todo)
        try:
            conn.send(("result", number, result))
        except OSError:  # the study process is gone (killed): nothing is waiting for it
            return


@dataclass
class _Worker:
    process: Any  # multiprocessing.context.SpawnProcess
    conn: Connection
    started: float
    ready: bool = False
    job: Job | None = None
    job_started: float = 0.0


class ProcessBackend(Backend):
    """A pool of ``workers`` local processes.

    Args:
        evaluators: the study's evaluators (must pickle: defined in an importable module).
        workers: number of processes (one evaluation each at a time).
        timeout_s: time limit of one attempt; the worker is killed past it.
    """

    def __init__(
        self, evaluators: Sequence[Evaluator], *, workers: int, timeout_s: float | None = None
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        try:
            self._payload = pickle.dumps(list(evaluators), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ConfigError(
                f"the evaluators cannot be sent to worker processes ({type(exc).__name__}: "
                f"{first_line(str(exc), 160)}); use the sequential executor"
            ) from None
        self.slots = workers
        self.timeout_s = timeout_s
        self._ctx = mp.get_context("spawn")
        self._workers = [self._start() for _ in range(workers)]
        self._queue: list[Job] = []
        self._closed = False
        self._await_ready()

    def _await_ready(self) -> None:
        """Block until every worker has loaded the evaluators (errors surface here, and the
        start-up time is not charged to the first evaluations)."""
        try:
            while not all(w.ready for w in self._workers):
                handles: list[Any] = []
                for w in self._workers:
                    handles += [w.conn, w.process.sentinel]
                wait(handles, timeout=1.0)
                self._collect()
        except BaseException:
            self.close()
            raise

    # -- workers --------------------------------------------------------------------------------
    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main, args=(child, self._payload), daemon=True, name="hwnas-worker"
        )
        process.start()
        child.close()
        return _Worker(process=process, conn=parent, started=time.monotonic())

    def _replace(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        _stop(worker)
        i = self._workers.index(worker)
        self._workers[i] = self._start()

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not self._queue:
                return
            if worker.ready and worker.job is None:
                job = self._queue.pop(0)
                try:
                    worker.conn.send((job.number, job.arch, job.todo))
                except (OSError, ValueError):  # died between two looks: it is replaced in wait()
                    self._queue.insert(0, job)
                    continue
                worker.job = job
                worker.job_started = time.monotonic()

    # -- Backend --------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._dispatch()

    def wait(self, timeout: float | None = None) -> list[Completion]:
        if not self._queue and all(w.job is None for w in self._workers):
            return []
        out: list[Completion] = []
        limit = None if timeout is None else time.monotonic() + timeout
        while not out:
            now = time.monotonic()
            waits = [t for t in (limit, self._next_deadline()) if t is not None]
            left = max(0.0, min(waits) - now) if waits else None
            handles: list[Any] = []
            for w in self._workers:
                handles += [w.conn, w.process.sentinel]
            wait(handles, timeout=left)
            out += self._collect()
            out += self._expire()
            self._dispatch()
            if limit is not None and time.monotonic() >= limit:
                break
        return out

    def _collect(self) -> list[Completion]:
        out: list[Completion] = []
        for worker in list(self._workers):
            message = None
            try:
                if worker.conn.poll():
                    message = worker.conn.recv()
            except (EOFError, OSError):
                message = None
            if message is not None:
                if message[0] == "ready":
                    worker.ready = True
                elif message[0] == "init-error":
                    self.close()
                    why = first_line(message[1], 160)
                    raise ConfigError(
                        f"a worker process could not load the evaluators ({why}); define custom "
                        "evaluators in an importable module (not in __main__ of an interactive "
                        "session), or use the sequential executor"
                    )
                elif message[0] == "result" and worker.job is not None:
                    out.append(Completion(worker.job, message[2]))
                    worker.job = None
                continue
            if worker.process.is_alive():
                if not worker.ready and time.monotonic() - worker.started > START_TIMEOUT_S:
                    self.close()
                    raise ConfigError(
                        f"a worker process did not start within {START_TIMEOUT_S:g} s; "
                        "use the sequential executor"
                    )
                continue
            worker.process.join(timeout=1.0)
            code = worker.process.exitcode
            if not worker.ready and worker.job is None:
                self.close()
                raise ConfigError(
                    f"a worker process exited with code {code} while starting (a script that "
                    "starts a study needs an 'if __name__ == \"__main__\":' guard, and code "
                    "typed into an interactive session cannot be loaded by a worker); use the "
                    "sequential executor otherwise"
                )
            if worker.job is not None:
                reason = (
                    f"worker process {worker.process.pid} died during the evaluation "
                    f"({_exit_text(code)})"
                )
                out.append(Completion(worker.job, _lost(reason, worker)))
                worker.job = None
            self._replace(worker)
        return out

    def _expire(self) -> list[Completion]:
        if self.timeout_s is None:
            return []
        out: list[Completion] = []
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.job is not None and now - worker.job_started >= self.timeout_s:
                result = WorkerResult(
                    metrics={},
                    error=timeout_reason(self.timeout_s),
                    kind="timeout",
                    duration_s=now - worker.job_started,
                )
                out.append(Completion(worker.job, result))
                worker.job = None
                self._replace(worker)
        return out

    def _next_deadline(self) -> float | None:
        if self.timeout_s is None:
            return None
        started = [w.job_started for w in self._workers if w.job is not None]
        return min(started) + self.timeout_s if started else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        for worker in self._workers:
            _stop(worker)

    def describe(self) -> str:
        return f"process pool, {self.slots} worker{'s' if self.slots > 1 else ''}"


def _lost(reason: str, worker: _Worker) -> WorkerResult:
    return WorkerResult(
        metrics={},
        error=first_line(reason),
        kind="lost",
        duration_s=time.monotonic() - worker.job_started,
    )


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _stop(worker: _Worker) -> None:
    """End a worker: politely when idle, by SIGKILL when busy or stuck."""
    process = worker.process
    if process.is_alive() and worker.job is None and worker.ready:
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(None)
        process.join(timeout=2.0)
    if process.is_alive():
        process.kill()
        process.join(timeout=5.0)
    worker.conn.close()
