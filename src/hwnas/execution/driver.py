"""The driver every executor shares: ask while workers are free, tell as results arrive.

The study stays the single writer of its store: workers only compute metrics; this process
serves the shared cache, tells the study (which commits the trial before anything else happens)
and asks for the next architecture. The budget is never exceeded: an evaluation in flight counts
as charged until it comes back free (an architecture missing from a table).

Failures never stop a study by themselves: an evaluator that raises, returns NaN/inf or a
non-number, runs past ``timeout_s`` or loses its worker gives a failed trial with its reason,
after ``retries`` more attempts when the cause may pass. Only ``max_failures_in_row``
consecutive failures stop it, with the last reason in the message. Ctrl-C leaves every finished
evaluation stored; what was in flight is evaluated again on resume.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwnas.errors import HwnasError
from hwnas.execution.base import (
    RETRYABLE,
    Backend,
    Job,
    RunPolicy,
    StudyFailedError,
    WorkerResult,
)
from hwnas.spaces.base import Arch
from hwnas.strategies.base import SearchExhausted
from hwnas.trial import Trial

if TYPE_CHECKING:
    from hwnas.study import Study

log = logging.getLogger(__name__)

Callback = Callable[["Study", Trial], None]


@dataclass
class RunStats:
    """What happened in one :func:`run` (shown by progress bars and in summaries)."""

    executor: str
    started: float = field(default_factory=time.perf_counter)
    told: int = 0
    failed: int = 0
    retried: int = 0
    cache_hits: int = 0
    stopped_early: str | None = None

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.started


def run(
    study: Study,
    backend: Backend,
    *,
    budget: int,
    policy: RunPolicy | None = None,
    callbacks: Iterable[Callback] = (),
) -> RunStats:
    """Evaluate architectures the study asks for on ``backend`` until ``budget`` charged
    evaluations (or the space or the strategy runs out). Closes ``backend`` when done."""
    driver = _Driver(study, backend, policy or RunPolicy(), list(callbacks))
    try:
        driver.loop(budget)
    finally:
        backend.close()
    return driver.stats


class _Driver:
    def __init__(
        self,
        study: Study,
        backend: Backend,
        policy: RunPolicy,
        callbacks: list[Callback],
    ) -> None:
        self.study = study
        self.backend = backend
        self.policy = policy
        self.callbacks = callbacks
        self.stats = RunStats(executor=backend.describe())
        self.evaluators = study.evaluators
        self.count_all = not any(ev.expensive for ev in self.evaluators)
        cheap = set(study.space.cheap_metric_names())
        self.required = [m for m in study.problem.metric_names if m not in cheap]
        self.running: dict[int, Job] = {}
        self.ready: dict[int, tuple[Job, WorkerResult]] = {}
        self.failures_in_row = 0
        self.free_in_row = 0
        self.last_failure: Trial | None = None
        self.cache_warned = False

    # -- the loop -------------------------------------------------------------------------------
    def loop(self, budget: int) -> None:
        self.budget = budget
        self.queued = self.study.in_flight()  # asked before an interruption: evaluated first
        self.exhausted = False
        while True:
            self._step()
            if not self.running and not self.ready:
                return
            for done in self.backend.wait():
                job, result = done.job, done.result
                self.running.pop(job.number, None)
                job.elapsed_s += result.duration_s
                if result.kind in RETRYABLE and job.attempts <= self.policy.retries:
                    self._retry(job, result)
                    continue
                self.ready[job.number] = (job, result)

    def _step(self) -> None:
        """Fill the free slots, then tell what may be told one result at a time, filling the
        slot each frees before the next tell: the same sequence of asks and tells whatever order
        the results came in, as far as the executor's order allows (all of it when ordered)."""
        self._fill()
        while (number := self._next_to_tell()) is not None:
            job, result = self.ready.pop(number)
            self._tell(job, result)
            self._fill()

    def _next_to_tell(self) -> int | None:
        if not self.ready:
            return None
        if self.policy.ordered:
            first = min([*self.running, *self.ready])
            return first if first in self.ready else None
        return next(iter(self.ready))

    def _fill(self) -> None:
        while not self.exhausted and self._room(self.budget):
            if self.queued:
                number, arch = self.queued.pop(0)
            else:
                try:
                    number, arch = self.study.ask_numbered()
                except SearchExhausted as exc:
                    log.warning("search stopped early: %s", exc)
                    self.stats.stopped_early = str(exc)
                    self.exhausted = True
                    return
            self._start(number, arch)

    def _room(self, budget: int) -> bool:
        if self.stats.stopped_early is not None:
            return False
        busy = len(self.running) + len(self.ready)
        return busy < self.backend.slots and self.study.n_charged + busy < budget

    def _start(self, number: int, arch: Arch) -> None:
        s = self.study.space.to_string(arch)
        cache = self.study.cache
        cached: dict[int, dict[str, float]] = {}
        todo: list[int] = []
        for i, ev in enumerate(self.evaluators):
            got = cache.get(ev.key(), s) if cache is not None and ev.cacheable else None
            if got is None:
                todo.append(i)
            else:
                cached[i] = got
        job = Job(number=number, arch=arch, arch_str=s, todo=tuple(todo), cached=cached)
        if not todo:  # everything known: no worker needed, but it counts like a fresh one
            self.stats.cache_hits += 1
            self.ready[number] = (job, WorkerResult(metrics={}))
            return
        job.attempts = 1
        self.running[number] = job
        self.backend.submit(job)

    def _retry(self, job: Job, result: WorkerResult) -> None:
        self._keep(job, result)
        log.info(
            "trial %d (%s): %s; attempt %d of %d",
            job.number,
            job.arch_str,
            result.error,
            job.attempts + 1,
            self.policy.retries + 1,
        )
        self.stats.retried += 1
        job.attempts += 1
        self.running[job.number] = job
        self.backend.submit(job)

    def _keep(self, job: Job, result: WorkerResult) -> None:
        """Evaluators that finished before a failure are not run again (and are cached)."""
        for i, metrics in result.metrics.items():
            if i in job.todo:
                job.cached[i] = dict(metrics)
                self._cache_put(i, job.arch_str, metrics)
        job.todo = tuple(i for i in job.todo if i not in result.metrics)

    def _cache_put(self, i: int, arch_str: str, metrics: Mapping[str, float]) -> None:
        ev = self.evaluators[i]
        cache = self.study.cache
        if cache is None or not ev.cacheable:
            return
        try:
            cache.put(ev.key(), arch_str, dict(metrics))
        except HwnasError as exc:  # the cache saves time; losing an entry never stops a study
            if not self.cache_warned:
                log.warning("the evaluation cache is not written to: %s", exc)
                self.cache_warned = True

    # -- results --------------------------------------------------------------------------------
    def _tell(self, job: Job, result: WorkerResult) -> None:
        computed = {i: m for i, m in result.metrics.items() if i not in job.cached}
        for i, m in computed.items():
            self._cache_put(i, job.arch_str, m)
        # The evaluators that ran (or were served from the cache) decide the charge; a row
        # missing from a table was not evaluated. With no expensive evaluator at all, every
        # evaluation counts against the budget.
        spent = set(job.cached) | set(computed)
        if result.kind in ("timeout", "lost"):
            spent |= set(job.todo)
        elif result.kind != "missing" and result.failed_evaluator is not None:
            spent.add(result.failed_evaluator)
        charged = bool(spent) and (
            self.count_all or any(self.evaluators[i].expensive for i in spent)
        )
        error = result.error
        metrics: dict[str, float] = {}
        if error is None:
            for i in sorted(spent):
                metrics.update(job.cached.get(i) or computed.get(i) or {})
            absent = [m for m in self.required if m not in metrics]
            if absent:
                error = (
                    f"no value for {', '.join(repr(m) for m in absent)} from the evaluators "
                    f"(they gave {', '.join(sorted(metrics)) or 'nothing'})"
                )
        if error is not None and result.kind in RETRYABLE and job.attempts > 1:
            error = f"{error} (after {job.attempts} attempts)"
        trial = self.study.tell(
            job.arch,
            metrics if error is None else None,
            error=error,
            charged=charged,
            duration_s=job.elapsed_s,
            attempts=max(1, job.attempts),
            cached=bool(job.cached),
        )
        self._account(trial, missing=result.kind == "missing")
        for cb in self.callbacks:
            cb(self.study, trial)
        self._check_streaks(trial)

    def _account(self, trial: Trial, *, missing: bool) -> None:
        self.stats.told += 1
        if not trial.ok:
            self.stats.failed += 1
        if trial.ok:
            self.failures_in_row = 0
        elif not missing:
            self.failures_in_row += 1
            self.last_failure = trial
        self.free_in_row = 0 if trial.charged else self.free_in_row + 1

    def _check_streaks(self, trial: Trial) -> None:
        if self.failures_in_row >= self.policy.max_failures_in_row:
            last = self.last_failure or trial
            raise StudyFailedError(
                f"{self.failures_in_row} evaluations in a row failed; the last (trial "
                f"{last.number}, {last.arch}) said: {last.error}. Every finished evaluation is "
                "stored: fix the evaluator and re-run the same command to resume, or raise "
                "execution.max_failures_in_row"
            )
        if self.free_in_row >= self.study.max_repeat_asks * 5:
            reason = f"{self.free_in_row} evaluations in a row were free (missing from the tables)"
            log.warning("search stopped early: %s", reason)
            self.stats.stopped_early = reason
