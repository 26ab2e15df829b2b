"""Pareto PNG and HTML report: the bytes on disk, for 1-4 objectives and empty inputs."""
# The report's full outputs (plots, curves, reference scoring) are in test_report_outputs.py.

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_support import external_references

from hwnas.errors import ConfigError, DataError
from hwnas.problem import Constraint, Objective
from hwnas.report.html import format_cell, write_report_html
from hwnas.report.plots import axis_label, write_pareto_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ACC = Objective("accuracy", "maximize")
LAT = Objective("latency_ms@raspi4", "minimize")
PAR = Objective("params_m", "minimize")
FLOPS = Objective("flops_m", "minimize")
LAT_LE = Constraint("latency_ms@raspi4", le=10.0)
SPECIAL_ARCH = "|nor_conv_3x3~0|+|<skip>&co~0|avg_pool_3x3~1|+|none~0|"


def make_trials(n: int = 30, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    archs = [
        f"|{rng.choice(ops)}~0|+|{rng.choice(ops)}~0|{rng.choice(ops)}~1|+|{rng.choice(ops)}~0|"
        for _ in range(n)
    ]
    latency = rng.uniform(2.0, 20.0, n)
    accuracy = 60.0 + 2.0 * latency + rng.normal(0.0, 3.0, n)
    params = rng.uniform(0.1, 1.5, n)
    flops = params * 100.0 + rng.normal(0.0, 5.0, n)
    df = pd.DataFrame(
        {
            "trial": np.arange(n),
            "arch": archs,
            "accuracy": accuracy,
            "latency_ms@raspi4": latency,
            "params_m": params,
            "flops_m": flops,
        }
    )
    best_feasible = int(df.loc[df["latency_ms@raspi4"] <= 10.0, "accuracy"].idxmax())
    df.loc[best_feasible, "arch"] = SPECIAL_ARCH
    return df


def feasible_of(trials: pd.DataFrame) -> pd.Series:
    return trials["latency_ms@raspi4"] <= LAT_LE.le


def front_of(trials: pd.DataFrame, objectives: list[Objective]) -> pd.DataFrame:
    """Feasible non-dominated rows (brute force; the tests must not trust the code under test)."""
    ok = trials[feasible_of(trials)]
    F = np.column_stack([o.sign * ok[o.metric].to_numpy() for o in objectives])
    keep = [
        not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(len(F)))
        for i in range(len(F))
    ]
    return ok[np.array(keep, dtype=bool)]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000


@pytest.mark.parametrize(
    "objectives", [[ACC], [ACC, LAT], [ACC, LAT, PAR], [ACC, LAT, PAR, FLOPS]], ids=len
)
def test_png_for_each_number_of_objectives(tmp_path: Path, objectives: list[Objective]) -> None:
    trials = make_trials()
    pareto = front_of(trials, objectives)
    assert len(pareto) > 0
    out = tmp_path / "sub" / "pareto.png"
    write_pareto_png(
        out,
        trials=trials,
        pareto=pareto,
        feasible=feasible_of(trials),
        objectives=objectives,
        title="nb201 / nsga2",
    )
    assert_png(out)


@pytest.mark.parametrize("objectives", [[ACC], [ACC, LAT], [ACC, LAT, PAR]], ids=len)
def test_png_with_empty_front(tmp_path: Path, objectives: list[Objective]) -> None:
    trials = make_trials()
    out = tmp_path / "pareto.png"
    write_pareto_png(
        out,
        trials=trials,
        pareto=trials.iloc[0:0],
        feasible=pd.Series(False, index=trials.index),
        objectives=objectives,
    )
    assert_png(out)


@pytest.mark.parametrize("objectives", [[ACC], [ACC, LAT], [ACC, LAT, PAR]], ids=len)
def test_png_with_no_trials(tmp_path: Path, objectives: list[Objective]) -> None:
    empty = make_trials().iloc[0:0]
    out = tmp_path / "pareto.png"
    write_pareto_png(
        out,
        trials=empty,
        pareto=empty,
        feasible=pd.Series(dtype=bool),
        objectives=objectives,
        title="empty",
    )
    assert_png(out)


def test_png_without_feasibility_and_with_nan(tmp_path: Path) -> None:
    trials = make_trials()
    trials.loc[3, "accuracy"] = np.nan
    out = tmp_path / "pareto.png"
    write_pareto_png(
        out, trials=trials, pareto=front_of(trials.dropna(), [ACC, LAT]), objectives=[ACC, LAT]
    )
    assert_png(out)


def test_png_rejects_missing_column_and_no_objectives(tmp_path: Path) -> None:
    trials = make_trials().drop(columns=["params_m"])
    with pytest.raises(DataError, match=r"params_m"):
        write_pareto_png(tmp_path / "p.png", trials=trials, pareto=trials, objectives=[ACC, PAR])
    with pytest.raises(ConfigError, match="at least one objective"):
        write_pareto_png(tmp_path / "p.png", trials=trials, pareto=trials, objectives=[])
    assert not (tmp_path / "p.png").exists()


def test_axis_labels_name_the_direction() -> None:
    assert axis_label(ACC) == "accuracy ↑ (higher is better)"
    assert axis_label(LAT) == "latency_ms@raspi4 ↓ (lower is better)"


def table_rows(page: str, table_id: str) -> list[str]:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', page, flags=re.S)
    assert match is not None, f"no table {table_id!r}"
    body = match.group(1).split("<tbody>", 1)[1]
    return re.findall(r"<tr[ >].*?</tr>", body, flags=re.S)


def header_cells(page: str, table_id: str) -> list[str]:
    match = re.search(rf'<table id="{table_id}"><thead><tr>(.*?)</tr>', page, flags=re.S)
    assert match is not None
    # Headers carry <wbr> break chances after "_" and before "@" so that the table fits.
    return [h.replace("<wbr>", "") for h in re.findall(r"<th>(.*?)</th>", match.group(1))]


def write_report(
    tmp_path: Path, trials: pd.DataFrame, pareto: pd.DataFrame, objectives: list[Objective]
) -> str:
    out = tmp_path / "report.html"
    write_report_html(
        out,
        title="nb201 <study> & co",
        summary={"strategy": "nsga2", "seed": "0", "hypervolume": "12.34"},
        trials=trials,
        pareto=pareto,
        objectives=objectives,
        constraints=[LAT_LE],
    )
    return out.read_text(encoding="utf-8")


def test_html_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    objectives = [ACC, LAT, PAR]
    trials = make_trials()
    pareto = front_of(trials, objectives)
    assert SPECIAL_ARCH in pareto["arch"].tolist()
    page = write_report(tmp_path, trials, pareto, objectives)

    assert escape(SPECIAL_ARCH) in page
    assert SPECIAL_ARCH not in page
    assert "nb201 &lt;study&gt; &amp; co" in page
    for o in objectives:
        assert escape(o.metric) in page
    assert escape(str(LAT_LE)) in page  # 'latency_ms@raspi4 &lt;= 10.0'
    # One interactive figure, plotly.js inlined: no script, style or link loads anything.
    assert '<div class="plot" id="fig-pareto"></div>' in page
    assert 'id="hwnas-figures"' in page and "Plotly.newPlot" in page
    assert external_references(page) == []
    assert '<details id="all-trials" open>' in page  # 30 rows stay expanded


def test_html_pareto_table_rows_order_and_format(tmp_path: Path) -> None:
    objectives = [ACC, LAT]
    trials = make_trials()
    pareto = front_of(trials, objectives)
    page = write_report(tmp_path, trials, pareto, objectives)

    rows = table_rows(page, "pareto")
    assert len(rows) == len(pareto)
    assert len(table_rows(page, "trials")) == len(trials)
    assert header_cells(page, "pareto")[:2] == ["accuracy", escape("latency_ms@raspi4")]
    # Best accuracy first, shown with 4 significant digits.
    first_cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0])
    assert first_cells[0] == f"{pareto['accuracy'].max():.4g}"
    shown = [float(re.findall(r"<td[^>]*>(.*?)</td>", r)[0]) for r in rows]
    assert shown == sorted(shown, reverse=True)


def test_html_collapses_long_trial_tables_and_handles_empty_front(tmp_path: Path) -> None:
    trials = make_trials(80)
    page = write_report(tmp_path, trials, trials.iloc[0:0], [ACC, LAT])
    assert '<table id="pareto"' not in page
    assert "Pareto front is empty" in page
    assert '<details id="all-trials"><summary>Show all 80 trials</summary>' in page
    assert len(table_rows(page, "trials")) == 80


def test_html_with_no_trials_has_no_plot_and_no_script_but_the_recorder(tmp_path: Path) -> None:
    empty = make_trials().iloc[0:0]
    out = tmp_path / "r.html"
    write_report_html(
        out,
        title="t",
        summary={},
        trials=empty,
        pareto=empty,
        objectives=[ACC],
        constraints=[],
    )
    page = out.read_text(encoding="utf-8")
    assert "No completed trials." in page
    assert "No completed trials to plot." in page
    assert "hwnas-figures" not in page and "Plotly.newPlot" not in page
    assert external_references(page) == []


def test_format_cell() -> None:
    assert format_cell(0.912345) == "0.9123"
    assert format_cell(123456.0) == "1.235e+05"
    assert format_cell(np.int64(12345)) == "12345"
    assert format_cell(np.float64(np.nan)) == "–"
    assert format_cell("a|b~c") == "a|b~c"
