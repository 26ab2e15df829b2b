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

import numpy as np

from hwnas import create_space
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.pareto import hypervolume, non_dominated_mask

DECILES = np.arange(1, 10) / 10.0
# Points on the nadir boundary still count (with ~zero volume) instead of being dropped.
REF_MARGIN = 1e-6


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


def task_of(name: str) -> Task:
    """A benchmark task by name, or any ``dataset/device[+device]`` of the NB201 latency table
    (e.g. ``cifar10/gold_6226``: device columns no benchmark task uses, to check settings on)."""
    if name in TASKS:
        return TASKS[name]
    dataset, _, devices = name.partition("/")
    if dataset not in DATASETS or not devices:
        raise ValueError(
            f"task {name!r}: expected DATASET/DEVICE[+DEVICE] with DATASET in {DATASETS}"
        )
    return Task(dataset, tuple(devices.split("+")))


def make_evaluator(task: Task) -> Evaluator:
    """The NB201 benchmark evaluator of ``task`` (tables are loaded once per process)."""
    space = create_space("nb201")
    return create_evaluator(
        "nb201", EvaluatorContext(space=space), dataset=task.dataset, devices=list(task.devices)
    )


class TaskScorer:
    """Scores lists of evaluated architectures of one task against its full table."""

    def __init__(self, task: Task, evaluator: Evaluator | None = None) -> None:
        ev = evaluator if evaluator is not None else make_evaluator(task)
        table = ev.table()
        if table is None:
            raise ValueError(f"evaluator of task {task.name} has no table to score against")
        self.task = task
        self.index = {s: i for i, s in enumerate(table.index)}
        self.accuracy = table["accuracy"].to_numpy(dtype=float)
        self.latency = table[list(task.latency_metrics)].to_numpy(dtype=float)  # (n, d)
        # bounds[k, d]: k-th decile of device d; feasible[k, i]: cell i meets budget k.
        self.bounds = np.quantile(self.latency, DECILES, axis=0)
        self.feasible = np.all(self.latency[None, :, :] <= self.bounds[:, None, :], axis=2)
        if not self.feasible.any(axis=1).all():
            raise ValueError(f"task {task.name}: a latency budget admits no cell")
        masked = np.where(self.feasible, self.accuracy[None, :], np.nan)
        self.best = np.nanmax(masked, axis=1)
        self.worst = np.nanmin(masked, axis=1)

        F = self._minimisation_form(np.arange(len(self.accuracy)))
        self.ideal = F.min(axis=0)
        self.nadir = F.max(axis=0)
        self.reference = np.full(F.shape[1], 1.0 + REF_MARGIN)
        self.hv_star = self._hv(F)

    def _minimisation_form(self, rows: np.ndarray) -> np.ndarray:
        return np.column_stack([-self.accuracy[rows], self.latency[rows]])

    def _hv(self, F: np.ndarray) -> float:
        Z = (F - self.ideal) / (self.nadir - self.ideal)
        return hypervolume(Z[non_dominated_mask(Z)], self.reference)

    def rows(self, archs: Sequence[str]) -> np.ndarray:
        """Table rows of canonical architecture strings (KeyError for an unknown string)."""
        return np.fromiter((self.index[a] for a in archs), dtype=np.int64, count=len(archs))

    def regret(self, rows: np.ndarray) -> float:
        """Mean simple regret (accuracy points) over the 9 latency budgets."""
        found = np.where(self.feasible[:, rows], self.accuracy[rows][None, :], -np.inf).max(axis=1)
        found = np.where(np.isfinite(found), found, self.worst)
        return float(np.mean(self.best - found))

    def hv_gap(self, rows: np.ndarray) -> float:
        """``1 - HV / HV*`` of the evaluated cells (0 means the true front was found)."""
        if len(rows) == 0:
            return 1.0
        return float(1.0 - self._hv(self._minimisation_form(rows)) / self.hv_star)

    def score(self, archs: Sequence[str]) -> tuple[float, float]:
        """(regret, hv_gap) of the evaluated architectures ``archs``."""
        rows = self.rows(archs)
        return self.regret(rows), self.hv_gap(rows)
