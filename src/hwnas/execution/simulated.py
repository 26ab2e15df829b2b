"""A backend on a virtual clock: what a parallel run would do, computed in this process at once.

Each evaluation runs here when it is submitted, and is reported in the order that ``workers``
parallel workers would finish them if each took ``duration(job)`` seconds. The strategy then sees
the same interleaving of asks and tells as in a real asynchronous run whose evaluations take
those times, without waiting for them: a way to measure what asynchrony costs in search quality
(``benchmarks/async_quality.py``), and to test the asynchronous paths deterministically.

Example:
    >>> from hwnas import Objective, Study, create_space
    >>> from hwnas.testing import MisbehavingEvaluator
    >>> space = create_space("nb201")
    >>> ev = MisbehavingEvaluator(space=space)
    >>> study = Study(space=space, evaluators=[ev], seed=0,
    ...               objectives=[Objective("accuracy", "maximize")])
    >>> backend = SimulatedBackend([ev], workers=4, duration=lambda job: 1.0 + job.number % 3)
    >>> _ = study.optimize(20, executor=backend)
    >>> backend.clock > 0 and len(study.trials) == 20
    True
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import Backend, Completion, Job, WorkerResult
from hwnas.execution.worker import run_evaluators


class SimulatedBackend(Backend):
    """``workers`` virtual workers; ``duration(job)`` is each evaluation's time in seconds.

    Args:
        evaluators: the study's evaluators (run in this process).
        workers: virtual workers (evaluations in flight at once).
        duration: the simulated time of one evaluation attempt (must be > 0).
    """

    def __init__(
        self,
        evaluators: Sequence[Evaluator],
        *,
        workers: int,
        duration: Callable[[Job], float],
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.evaluators = list(evaluators)
        self.slots = workers
        self.duration = duration
        self.clock = 0.0
        self.busy_s = 0.0  # summed evaluation time, to report utilisation
        self._heap: list[tuple[float, int, Job, WorkerResult]] = []
        self._seq = 0

    def submit(self, job: Job) -> None:
        seconds = float(self.duration(job))
        if not seconds > 0:
            raise ConfigError(f"duration must be > 0 seconds, got {seconds} for {job.arch_str}")
        result = run_evaluators(self.evaluators, job.arch, job.todo)
        self.busy_s += seconds
        heapq.heappush(self._heap, (self.clock + seconds, self._seq, job, result))
        self._seq += 1

    def wait(self, timeout: float | None = None) -> list[Completion]:
        if not self._heap:
            return []
        finish, _, job, result = heapq.heappop(self._heap)
        self.clock = finish
        return [Completion(job, result)]

    @property
    def utilisation(self) -> float:
        """Share of worker time spent evaluating (1.0: no worker ever idled)."""
        return self.busy_s / (self.clock * self.slots) if self.clock > 0 else 0.0

    def describe(self) -> str:
        return f"simulated, {self.slots} workers"
