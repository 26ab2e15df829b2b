"""The Ray backend: each evaluation a Ray task, on a local Ray or on a cluster (``hwnas[ray]``).

The evaluators are put in Ray's object store once; each task runs them on one architecture with
the same failure handling as every other executor. The time limit is kept inside the task (an
alarm counted from when the task starts on its worker, so time spent waiting for a worker is not
counted); a task that overruns it by far (a C call that ignores the alarm) is cancelled from here
with ``force=True``, which kills its worker process. A task whose worker or node died comes back as
``lost``, and the driver submits it again, so Ray schedules it on a live worker. Ray's own task
retries are off (``max_retries=0``): the driver counts attempts the same way for every executor.

Without an address a local Ray is started with ``workers`` CPUs, or an already initialised one
(e.g. by a test or a notebook) is used as it is; with an address this process joins that cluster.
Code and data must be importable on the cluster's nodes (same hwnas, same data folder).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

from hwnas.errors import ConfigError, MissingExtraError
from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import Backend, Completion, Job, WorkerResult, first_line
from hwnas.execution.worker import run_with_time_limit, timeout_reason

log = logging.getLogger(__name__)

HARD_LIMIT_GRACE_S = 30.0  # worker start-up and scheduling on a busy cluster


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "the ray executor") from None
    return ray


class RayBackend(Backend):
    """Evaluations as Ray tasks.

    Args:
        evaluators: the study's evaluators.
        workers: evaluations in flight at once (default: the CPUs Ray reports).
        address: a Ray cluster to join (``auto``, ``ray://host:10001``, ...); ``None`` starts a
            local Ray (or uses the one this process already started).
        timeout_s: time limit of one attempt; the task is cancelled past it.
    """

    def __init__(
        self,
        evaluators: Sequence[Evaluator],
        *,
        workers: int | None = None,
        address: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        ray = _import_ray()
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            try:
                if address is None:
                    ray.init(
                        num_cpus=workers,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
                else:
                    _check_reachable(address)
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                raise ConfigError(
                    f"could not start or join {where}: {first_line(str(exc), 200)}; check "
                    "--address (e.g. 'auto' on a cluster node) or use --executor process"
                ) from None
            self._owns = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = workers if workers is not None else max(1, cpus)
        self.timeout_s = timeout_s
        try:
            self._evaluators = ray.put(list(evaluators))
        except Exception as exc:
            raise ConfigError(
                f"the evaluators cannot be sent to Ray ({type(exc).__name__}: "
                f"{first_line(str(exc), 160)}); use the sequential executor"
            ) from None
        self._task = ray.remote(num_cpus=1, max_retries=0)(run_with_time_limit)
        self._running: dict[Any, tuple[Job, float]] = {}

    def submit(self, job: Job) -> None:
        ref = self._task.remote(self._evaluators, job.arch, job.todo, self.timeout_s)
        self._running[ref] = (job, time.monotonic())

    def wait(self, timeout: float | None = None) -> list[Completion]:
        if not self._running:
            return []
        deadline = self._next_deadline()
        left = timeout
        if deadline is not None:
            to_deadline = max(0.0, deadline - time.monotonic())
            left = to_deadline if left is None else min(left, to_deadline)
        ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=left)
        # Take everything else that is already done too.
        if ready:
            more, _ = self._ray.wait(
                [r for r in self._running if r not in ready],
                num_returns=len(self._running) - len(ready),
                timeout=0,
            )
            ready += more
        out = [self._finish(ref) for ref in ready]
        out += self._expire()
        return out

    def _finish(self, ref: Any) -> Completion:
        job, started = self._running.pop(ref)
        exceptions = self._ray.exceptions
        try:
            result = self._ray.get(ref)
        except (
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.ObjectLostError,
            exceptions.OwnerDiedError,
            exceptions.LocalRayletDiedError,
        ) as exc:
            reason = f"the Ray worker running the evaluation was lost ({type(exc).__name__})"
            result = WorkerResult(
                metrics={}, error=reason, kind="lost", duration_s=time.monotonic() - started
            )
        except exceptions.RayError as exc:
            # The task could not run at all (e.g. its evaluators failed to load on the worker).
            reason = f"Ray could not run the evaluation: {type(exc).__name__}: {exc}"
            result = WorkerResult(
                metrics={},
                error=first_line(reason),
                kind="exception",
                duration_s=time.monotonic() - started,
            )
        return Completion(job, result)

    def _hard_limit(self) -> float | None:
        """Seconds after submission when a task that ignored its own alarm is killed."""
        if self.timeout_s is None:
            return None
        return 2 * self.timeout_s + HARD_LIMIT_GRACE_S

    def _expire(self) -> list[Completion]:
        limit = self._hard_limit()
        if limit is None:
            return []
        now = time.monotonic()
        out: list[Completion] = []
        for ref, (job, started) in list(self._running.items()):
            if now - started >= limit:
                del self._running[ref]
                self._ray.cancel(ref, force=True)
                assert self.timeout_s is not None
                result = WorkerResult(
                    metrics={},
                    error=timeout_reason(self.timeout_s),
                    kind="timeout",
                    duration_s=now - started,
                )
                out.append(Completion(job, result))
        return out

    def _next_deadline(self) -> float | None:
        limit = self._hard_limit()
        if limit is None or not self._running:
            return None
        return min(started for _, started in self._running.values()) + limit

    def close(self) -> None:
        for ref in list(self._running):
            try:
                self._ray.cancel(ref, force=True)
            except Exception as exc:  # already finished or its worker is gone
                log.debug("cancel of a Ray task failed: %s", exc)
        self._running.clear()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()

    def describe(self) -> str:
        return f"ray, {self.slots} worker{'s' if self.slots > 1 else ''}"


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds with one line when ``host:port`` (or ``ray://host:port``) does not answer:
    Ray itself waits about a minute and then ends the whole process without a word."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local" and the like: Ray resolves them and fails fast itself
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it "
            "(ray start --head) or fix --address, or use --executor process"
        ) from None
