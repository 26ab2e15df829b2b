"""Reports: trials.csv, pareto.csv, pareto.png and report.html from a study's trials."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hwnas.pareto import pareto_trials
from hwnas.problem import Constraint, Objective
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
) -> Outputs:
    """Write ``trials.csv``, ``pareto.csv``, ``pareto.png`` and ``report.html`` into ``out_dir``.

    Files are written to a temporary name and moved into place, so a reader never sees half a
    file.
    """
    from hwnas.report.html import write_report_html
    from hwnas.report.plots import write_pareto_png

    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(trials, objectives, constraints)
    front_numbers = {t.number for t in pareto_trials(trials, objectives, constraints)}
    pareto = frame[frame["trial"].isin(front_numbers)].reset_index(drop=True)
    feasible = feasible_mask(frame, constraints)
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
        tmp_png, trials=frame, pareto=pareto, feasible=feasible, objectives=objectives, title=title
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
        png=files["pareto.png"],
    )
    tmp_html.replace(files["report.html"])
    return Outputs(trials=frame, pareto=pareto, feasible=feasible, files=files)


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{time.time_ns()}.tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(path)


__all__ = ["Outputs", "write_outputs"]
