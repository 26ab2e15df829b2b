"""Tasks of the NB201 hardware benchmark and how a finished search is scored against the tables.

The full table of a task is used here only, after a search, to score the architectures it
evaluated; no search strategy ever sees it.

Two figures per run and budget B (the first B distinct architectures the run evaluated):

* regret: mean over 9 latency budgets (the 10 %, ..., 90 % deciles of the device's latency over
  all 15,625 cells; with two devices, budget k bounds both at their k-th decile at once) of
  ``best accuracy of any feasible cell - best accuracy of an evaluated feasible cell``. When no
  evaluated cell meets a budget, the found value is the worst accuracy among the feasible cells
  of the table (the search gets no credit, so the regret is the full spread of that budget).
* hv_gap: ``1 - HV / HV*``. Objectives in minimisation form (accuracy negated), each normalised
  to [0, 1] by the table's min and max; reference point ``1 + REF_MARGIN`` in every objective;
  HV* is the hypervolume of the table's true Pareto front under the same normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from hwnas import create_space
from hwnas.config import StudyConfig, build_evaluators, build_space, load_config
from hwnas.errors import DataError
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.report.scoring import DECILES, REF_MARGIN, HypervolumeGap, LatencyBands
from hwnas.spaces.base import SearchSpace

__all__ = [
    "DECILES",
    "REF_MARGIN",
    "TASKS",
    "AnyTask",
    "ConfigTask",
    "Task",
    "TaskScorer",
    "make_evaluator",
    "task_of",
]


@dataclass(frozen=True)
class Task:
    """A benchmark task: maximise test accuracy on ``dataset``, minimise latency on ``devices``."""

    dataset: str
    devices: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.dataset}/{'+'.join(self.devices)}"

    @property
    def latency_metrics(self) -> tuple[str, ...]:
        return tuple(f"latency_ms@{d}" for d in self.devices)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Objective metrics, accuracy first."""
        return ("accuracy", *self.latency_metrics)

    def make_space(self) -> SearchSpace:
        """The space searched (NB201's cells)."""
        return create_space("nb201")

    def make_evaluator(self) -> Evaluator:
        """The evaluator a search calls (tables are loaded once per process)."""
        return create_evaluator(
            "nb201",
            EvaluatorContext(space=self.make_space()),
            dataset=self.dataset,
            devices=list(self.devices),
        )


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("cifar10", ("raspi4",)),
        Task("cifar100", ("pixel3",)),
        Task("ImageNet16-120", ("fpga",)),
        Task("cifar10", ("eyeriss",)),
        Task("cifar10", ("raspi4", "eyeriss")),
    )
}


DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


@dataclass(frozen=True)
class ConfigTask:
    """A task read from an hwnas config file: its space, its one evaluator (which must hold a
    full table to score against, e.g. ``table`` over a user's ``categorical`` space) and its
    objectives (the first maximised, the others minimised and banded like latency).

    This is how the benchmark scores a space a user brings: the same regret and 1 - HV/HV*
    figures, with the latency bands taken from the user's table.
    """

    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @cached_property
    def _config(self) -> StudyConfig:
        """The config, read and checked once (metrics are looked up at every evaluation)."""
        config = load_config(self.path)
        objectives = [(o.metric, o.direction) for o in config.objectives]
        if (
            not objectives
            or objectives[0][1] != "maximize"
            or any(d != "minimize" for _, d in objectives[1:])
        ):
            raise ValueError(
                f"task {self.path}: objectives must be one metric to maximise, then any to "
                f"minimise (got {objectives})"
            )
        if len(config.evaluators) != 1:
            raise ValueError(
                f"task {self.path}: expected one evaluator holding the whole table, "
                f"got {len(config.evaluators)}"
            )
        return config

    @property
    def latency_metrics(self) -> tuple[str, ...]:
        return self.metrics[1:]

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(o.metric for o in self._config.objectives)

    def make_space(self) -> SearchSpace:
        return build_space(self._config)

    def make_evaluator(self) -> Evaluator:
        _space, (evaluator,) = build_evaluators(self._config, base_dir=self.path.parent)
        return evaluator


AnyTask = Task | ConfigTask


def task_of(name: str) -> AnyTask:
    """A benchmark task by name, any ``dataset/device[+device]`` of the NB201 latency table
    (e.g. ``cifar10/gold_6226``: device columns no benchmark task uses, to check settings on), or
    the path of an hwnas config (``.yaml``) whose one evaluator holds a full table."""
    if name in TASKS:
        return TASKS[name]
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"task {name!r}: no such config file")
        return ConfigTask(path.resolve())
    dataset, _, devices = name.partition("/")
    if dataset not in DATASETS or not devices:
        raise ValueError(
            f"task {name!r}: expected DATASET/DEVICE[+DEVICE] with DATASET in {DATASETS}"
        )
    return Task(dataset, tuple(devices.split("+")))


def make_evaluator(task: AnyTask) -> Evaluator:
    """The benchmark evaluator of ``task`` (tables are loaded once per process)."""
    return task.make_evaluator()


class TaskScorer:
    """Scores lists of evaluated architectures of one task against its full table.

    The figures come from :mod:`hwnas.report.scoring` (the report scores a run the same way).
    """

    def __init__(self, task: AnyTask, evaluator: Evaluator | None = None) -> None:
        ev = evaluator if evaluator is not None else make_evaluator(task)
        table = ev.table()
        if table is None:
            raise ValueError(f"evaluator of task {task.name} has no table to score against")
        self.task = task
        self.index = {s: i for i, s in enumerate(table.index)}
        self.accuracy = table[task.metrics[0]].to_numpy(dtype=float)
        self.latency = table[list(task.latency_metrics)].to_numpy(dtype=float)  # (n, d)
        try:
            self.bands = LatencyBands.of_table(self.accuracy, self.latency, DECILES)
        except DataError as exc:  # a budget admits no cell
            raise ValueError(f"task {task.name}: {exc}") from exc
        self.hv = HypervolumeGap.of_table(self._minimisation_form(np.arange(len(self.accuracy))))

    def _minimisation_form(self, rows: np.ndarray) -> np.ndarray:
        return np.column_stack([-self.accuracy[rows], self.latency[rows]])

    def rows(self, archs: Sequence[str]) -> np.ndarray:
        """Table rows of canonical architecture strings (KeyError for an unknown string)."""
        return np.fromiter((self.index[a] for a in archs), dtype=np.int64, count=len(archs))

    def regret(self, rows: np.ndarray) -> float:
        """Mean simple regret (accuracy points) over the 9 latency budgets."""
        return self.bands.regret(self.accuracy[rows], self.latency[rows])

    def hv_gap(self, rows: np.ndarray) -> float:
        """``1 - HV / HV*`` of the evaluated cells (0 means the true front was found)."""
        return self.hv.gap(self._minimisation_form(rows))

    def score(self, archs: Sequence[str]) -> tuple[float, float]:
        """(regret, hv_gap) of the evaluated architectures ``archs``."""
        rows = self.rows(archs)
        return self.regret(rows), self.hv_gap(rows)
