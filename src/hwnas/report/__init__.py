"""Reports: trials.csv, pareto.csv, pareto.png and report.html from a study's trials.

Example:
    >>> outputs = write_outputs(  # doctest: +SKIP
    ...     Path("out"),
    ...     trials=study.trials,
    ...     objectives=problem.objectives,
    ...     constraints=problem.constraints,
    ...     summary={"strategy": "nsga2"},
    ...     diagnostics=study.strategy.diagnostics(),
    ...     reference=reference_table(evaluators, problem.metric_names),
    ... )
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hwnas.pareto import pareto_trials
from hwnas.problem import Constraint, Objective
from hwnas.report.reference import reference_table
from hwnas.report.tables import feasible_mask, trials_frame
from hwnas.trial import Trial

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outputs:
    trials: pd.DataFrame
    pareto: pd.DataFrame
    feasible: pd.Series
    files: dict[str, Path]


def write_outputs(
    out_dir: Path,
    *,
    trials: Sequence[Trial],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    summary: Mapping[str, str],
    title: str = "hwnas study",
    diagnostics: Mapping[str, float | str] | None = None,
    notes: Sequence[str] = (),
    reference: pd.DataFrame | None = None,
    gradient: Mapping[str, object] | None = None,
) -> Outputs:
    """Write ``trials.csv``, ``pareto.csv``, ``pareto.png`` and ``report.html`` into ``out_dir``.

    Files are written to a temporary name and moved into place, so a reader never sees half a
    file. ``trials.csv`` / ``pareto.csv`` hold the complete trials (columns ``trial``, ``arch``,
    then one per metric); failed trials appear in the report with their reasons.

    Args:
        out_dir: folder to write into (created).
        trials: every trial of the study, complete and failed.
        objectives: the study's objectives.
        constraints: the study's constraints.
        summary: key/value facts for the top of the report, in order.
        title: report and plot title.
        diagnostics: the strategy's own figures (predictor rank quality, ...), shown apart.
        notes: data notes (e.g. excluded table rows), one line each.
        reference: the full benchmark table (index: canonical arch strings; columns: at least
            every objective and constraint metric) to score the run against after the fact
            (regret and hypervolume gap over evaluations); no strategy ever sees it.
        gradient: a gradient search's result (``GradientResult.to_dict()``) to show its
            architecture weights per epoch; ``None`` leaves that section out.

    Raises:
        DataError: when ``reference`` lacks a needed column or holds a non-finite value.
    """
    from hwnas.report.curves import study_curves
    from hwnas.report.html import write_report_html
    from hwnas.report.plots import write_pareto_png
    from hwnas.report.ranges import axis_ranges

    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(trials, objectives, constraints)
    front_numbers = {t.number for t in pareto_trials(trials, objectives, constraints)}
    pareto = frame[frame["trial"].isin(front_numbers)].reset_index(drop=True)
    feasible = feasible_mask(frame, constraints)
    ranges = axis_ranges(
        frame,
        objectives=objectives,
        feasible=feasible,
        pareto=pareto,
        constraints=constraints,
    )
    # Scored before anything is written: a bad reference table leaves the old files in place.
    curves = study_curves(trials, objectives, constraints, reference)
    files = {
        "trials.csv": out_dir / "trials.csv",
        "pareto.csv": out_dir / "pareto.csv",
        "pareto.png": out_dir / "pareto.png",
        "report.html": out_dir / "report.html",
    }
    _atomic_csv(frame, files["trials.csv"])
    _atomic_csv(pareto, files["pareto.csv"])
    tmp_png = out_dir / ".pareto.tmp.png"
    write_pareto_png(
        tmp_png,
        trials=frame,
        pareto=pareto,
        feasible=feasible,
        objectives=objectives,
        title=title,
        constraints=constraints,
        ranges=ranges,
    )
    tmp_png.replace(files["pareto.png"])
    tmp_html = out_dir / ".report.tmp.html"
    write_report_html(
        tmp_html,
        title=title,
        summary=summary,
        trials=frame,
        pareto=pareto,
        objectives=objectives,
        constraints=constraints,
        feasible=feasible,
        failures=[t for t in trials if not t.ok],
        curves=curves,
        diagnostics=diagnostics,
        notes=notes,
        ranges=ranges,
        gradient=gradient,
    )
    tmp_html.replace(files["report.html"])
    return Outputs(trials=frame, pareto=pareto, feasible=feasible, files=files)


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{time.time_ns()}.tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(path)


__all__ = ["Outputs", "reference_table", "write_outputs"]
