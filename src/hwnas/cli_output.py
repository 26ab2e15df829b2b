"""What ``hwnas search`` and ``hwnas report`` write and print: the summary, the files of the
CLI contract (through :func:`hwnas.report.write_outputs`) and the front as a terminal table."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from hwnas.errors import ConfigError
from hwnas.problem import Constraint, Objective, objective_matrix
from hwnas.trial import Trial


def summary_of(
    meta: dict[str, Any], trials: list[Trial], charged: int, wall: float, before: int
) -> dict[str, str]:
    objectives, constraints = problem_from_meta(meta)
    from hwnas.pareto import hypervolume, pareto_trials
    from hwnas.problem import total_violation

    done = [t for t in trials if t.ok]
    feasible = [t for t in done if total_violation(constraints, t.metrics) <= 0]
    front = pareto_trials(trials, objectives, constraints)
    hv = "n/a"
    if front and len(feasible) > 1:
        F_all = objective_matrix(objectives, [t.metrics for t in feasible])
        ideal, nadir = F_all.min(axis=0), F_all.max(axis=0)
        span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
        F = objective_matrix(objectives, [t.metrics for t in front])
        hv = f"{hypervolume((F - ideal) / span, np.full(F.shape[1], 1.1)):.4f}"
    return {
        "space": str(meta["space"]),
        "strategy": str(meta["strategy"]),
        "seed": str(meta["seed"]),
        "evaluations (budget)": f"{charged} of {meta['budget']}",
        "completed trials": str(len(done)),
        "failed trials": str(len(trials) - len(done)),
        "feasible trials": str(len(feasible)),
        "Pareto front size": str(len(front)),
        "hypervolume (scaled to observed ranges, ref 1.1)": hv,
        "this run": f"{charged - before} new evaluations in {wall:.1f} s",
        "config": str(meta.get("config_path", "")),
        **{
            f"evaluator {i}": str(text)
            for i, text in enumerate(meta.get("evaluators", ()), start=1)
        },
    }


def problem_from_meta(meta: dict[str, Any]) -> tuple[list[Objective], list[Constraint]]:
    objectives = [Objective(m, d) for m, d in meta["objectives"]]
    constraints = [Constraint(m, le=le, ge=ge) for m, le, ge in meta["constraints"]]
    return objectives, constraints


def write_files(
    out: Path,
    meta: dict[str, Any],
    trials: list[Trial],
    summary: dict[str, str],
    *,
    diagnostics: dict[str, Any] | None = None,
    evaluators: Sequence[Any] | None = None,
) -> Any:
    from hwnas.report import write_outputs
    from hwnas.report.reference import reference_table

    objectives, constraints = problem_from_meta(meta)
    title = f"hwnas: {meta['space']} / {meta['strategy']} / " + ", ".join(
        o.metric for o in objectives
    )
    names = [o.metric for o in objectives] + [c.metric for c in constraints]
    reference = reference_table(evaluators, names) if evaluators else None
    return write_outputs(
        out,
        trials=trials,
        objectives=objectives,
        constraints=constraints,
        summary=summary,
        title=title,
        diagnostics=diagnostics,
        notes=meta.get("notes", ()),
        reference=reference,
        gradient=meta.get("gradient"),
    )


def stdout() -> Console:
    console = Console()
    if not console.is_terminal:  # files and pipes get whole lines, not 80 columns
        console = Console(width=240)
    return console


def print_front(
    pareto: Any, objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> None:
    console = stdout()
    table = Table(title=f"Pareto front ({len(pareto)} architectures)", title_justify="left")
    shown = [o.metric for o in objectives]
    shown += [c.metric for c in constraints if c.metric not in shown]
    for col in ["trial", "arch", *shown]:
        table.add_column(
            col,
            no_wrap=col != "arch",
            overflow="fold",
            justify="left" if col == "arch" else "right",
        )
    if len(pareto):
        first = objectives[0]
        rows = pareto.sort_values(first.metric, ascending=first.direction == "minimize")
        for _, row in rows.iterrows():
            cells = [str(int(row["trial"])), str(row["arch"])]
            cells += [f"{float(row[m]):.4g}" for m in shown]
            table.add_row(*cells)
    console.print(table)


@contextmanager
def quiet_logger(name: str, level: int) -> Iterator[None]:
    """Raise one logger's level for a while (e.g. a warning the CLI prints its own way)."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def check_out_folder(out: Path) -> None:
    """Raise :class:`ConfigError` when ``out`` cannot hold a study (before anything is built)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder")
    _check_writable("--out", out, "folder", "give a folder you can write to")


def check_file_flag(flag: str, path: Path, verb: str = "write to") -> None:
    """Raise :class:`ConfigError` when the file a flag names cannot be written (checked before
    anything is built or measured, so a bad flag costs nothing and leaves nothing behind)."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file to {verb}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path} is not writable; give a file you can write to")
    _check_writable(flag, path, "file", "give a file in a folder you can write to")


def _check_writable(flag: str, path: Path, what: str, fix: str) -> None:
    """The nearest existing folder above (or at) ``path`` must be one this process can write in."""
    probe = path if what == "folder" else path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{flag} {path}: {probe} is a file, so the {what} cannot be made there")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag} {path}: {probe} is not writable (read-only or no permission); {fix}"
        )


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value
