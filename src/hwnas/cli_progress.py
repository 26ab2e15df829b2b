"""Progress of ``hwnas search``: a rich bar on a terminal, a line every N evaluations otherwise,
and one JSON object per trial with ``--log-json``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwnas.errors import ConfigError
from hwnas.trial import Trial

FRONT_EVERY = 10  # the Pareto front is recomputed every this many trials (it costs O(n log n))


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class SearchProgress:
    """A callback for :meth:`hwnas.Study.optimize` that shows done/budget, in flight, failures,
    front size and ETA.

    Args:
        console: where to draw (stderr).
        budget: charged evaluations the run aims for.
        done_before: charged evaluations stored before this run (a resume).
        every: on a non-terminal, print a line every this many told trials (0: never).
        quiet: show nothing.
    """

    def __init__(
        self, console: Console, *, budget: int, done_before: int, every: int, quiet: bool
    ) -> None:
        self.console = console
        self.budget = budget
        self.done_before = done_before
        self.every = every
        self.quiet = quiet
        self.start = time.perf_counter()
        self.told = 0
        self.front = 0
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> SearchProgress:
        if not self.quiet and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]search"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "search", total=self.budget, completed=self.done_before, status="", eta="-"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def eta_s(self, charged: int) -> float | None:
        new = charged - self.done_before
        if new <= 0:
            return None
        rate = new / (time.perf_counter() - self.start)
        return max(0.0, (self.budget - charged) / rate)

    def status(self, study: Any) -> str:
        return f"{study.n_in_flight} in flight, {study.n_failed} failed, front {self.front}"

    def __call__(self, study: Any, trial: Trial) -> None:
        self.told += 1
        if self.told % FRONT_EVERY == 1 or study.n_charged >= self.budget:
            self.front = len(study.pareto_front())
        charged = study.n_charged
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=charged,
                status=self.status(study),
                eta=_eta(self.eta_s(charged)),
            )
        elif (
            not self.quiet
            and self.every
            and (self.told % self.every == 0 or charged >= self.budget)
        ):
            elapsed = time.perf_counter() - self.start
            self.console.print(
                f"search: {charged}/{self.budget} evaluations, {self.status(study)}, "
                f"{elapsed:.1f} s, ETA {_eta(self.eta_s(charged))}",
                highlight=False,
                soft_wrap=True,
            )


class JsonLog:
    """Appends one JSON object per told trial to a file (``--log-json``), flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"--log-json {path}: cannot write there ({exc.strerror}); give a writable file"
            ) from None

    def __call__(self, study: Any, trial: Trial) -> None:
        record = {
            "trial": trial.number,
            "arch": trial.arch,
            "state": trial.state,
            "error": trial.error,
            "charged": trial.charged,
            "cached": trial.cached,
            "attempts": trial.attempts,
            "duration_s": round(trial.duration_s, 6),
            "finished_at": trial.finished_at,
            "evaluations": study.n_charged,
            "metrics": {k: _finite(v) for k, v in trial.metrics.items()},
        }
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _finite(value: float) -> float | str:
    return value if value == value and abs(value) != float("inf") else str(value)
