"""The report's "Architecture weights" section: a gradient search's weights per epoch, what each
run derived, the cost model's rows read; a malformed result gives a note, never an exception."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from report_support import OPS, study2

from hwnas.report import write_outputs
from hwnas.report.trajectory import gradient_section, trajectory_figure

SLOTS = ["edge 0->1", "edge 0->2", "edge 1->2", "edge 0->3", "edge 1->3", "edge 2->3"]


def _run(label: str, final: list[str], *, cost: bool) -> dict[str, Any]:
    """4 epochs: uniform, then drifting linearly to 0.8 on each slot's ``final`` op."""
    trajectory = []
    for e in range(4):
        epoch = []
        for op in final:
            top = 0.2 + 0.2 * e
            epoch.append([top if o == op else (1.0 - top) / 4 for o in OPS])
        trajectory.append(epoch)
    free = sum(op in ("none", "skip_connect", "avg_pool_3x3") for op in final)
    arch = f"|{final[0]}~0|+|{final[1]}~0|{final[2]}~1|+|{final[3]}~0|{final[4]}~1|{final[5]}~2|"
    metrics = {
        "train_loss": 0.7,
        "parameter_free_edges": float(free),
        "search_wall_s": 12.34,
        "valid_accuracy": 0.6123,
        "latency_weight": 0.0,
    }
    if cost:
        metrics.update(expected_cost=3.21, derived_cost=3.05, reference_cost=4.0)
    return {
        "label": label,
        "archs": [arch],
        "slots": list(SLOTS),
        "choices": [list(OPS) for _ in SLOTS],
        "trajectory": trajectory,
        "expected_cost": [5.0, 4.2, 3.6, 3.21] if cost else [],
        "metrics": metrics,
    }


def result() -> dict[str, Any]:
    collapsed = _run("latency_weight=0", ["skip_connect"] * 5 + ["nor_conv_3x3"], cost=True)
    healthy = _run(
        "latency_weight=0.1",
        ["nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "none"],
        cost=True,
    )
    return {
        "format": "hwnas-gradient-search",
        "version": 1,
        "method": "darts",
        "options": {"epochs": 3},
        "runs": [collapsed, healthy],
        "cost": {
            "metric": "latency_ms@raspi4",
            "unit": "ms",
            "constant": 1.0,
            "table": [[0.0, 0.1, 0.5, 1.0, 0.2] for _ in SLOTS],
            "choices": [list(OPS) for _ in SLOTS],
            "source": {
                "kind": "table",
                "device": "raspi4",
                "path": "/data/nb201/raspi4",
                "rows": 100,
                "cv_within_10pct": 0.93,
                "cv_spearman": 0.9512,
                "r2_in_sample": 0.97,
            },
        },
        "wall_s": 30.5,
        "key": "abc",
    }


def page(tmp_path: Path, gradient: object) -> str:
    study = study2()
    write_outputs(
        tmp_path,
        trials=study.trials,
        objectives=study.objectives,
        constraints=study.constraints,
        summary={"strategy": "darts"},
        gradient=gradient,  # type: ignore[arg-type]
    )
    return (tmp_path / "report.html").read_text(encoding="utf-8")


def figures(text: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="hwnas-figures">(.*?)</script>', text)
    assert match is not None
    return dict(json.loads(match.group(1)))


def section(text: str) -> str:
    match = re.search(r'<section id="gradient">(.*?)</section>', text, flags=re.S)
    assert match is not None
    return match.group(1)


def test_section_shows_runs_figures_and_cost_model(tmp_path: Path) -> None:
    text = page(tmp_path, result())
    assert '<a href="#gradient">Architecture weights</a>' in text
    assert text.index('<section id="progress">') < text.index('<section id="gradient">')
    sec = section(text)
    assert "<h2>Architecture weights</h2>" in sec
    assert "<b>darts</b>" in sec
    for i in (0, 1):
        assert f'<div class="plot" id="fig-arch-{i}">' in sec
    # the collapsed run: skip_connect wins five slots at p 0.8
    run0 = re.search(r'id="gradient-run-0">(.*?)</table>', sec, flags=re.S)
    assert run0 is not None
    assert run0.group(1).count("skip_connect (p 0.800)") == 5
    assert "nor_conv_3x3 (p 0.800)" in run0.group(1)
    assert "<th>parameter-free edges</th><td>5 of 6</td>" in run0.group(1)
    run1 = re.search(r'id="gradient-run-1">(.*?)</table>', sec, flags=re.S)
    assert run1 is not None
    assert "<th>parameter-free edges</th><td>2 of 6</td>" in run1.group(1)
    assert "nor_conv_1x1 (p 0.800)" in run1.group(1)
    assert "<th>expected cost (ms)</th><td>3.21</td>" in sec
    assert "<th>derived cost (ms)</th><td>3.05</td>" in sec
    assert "0.6123" in sec
    assert "12.3 s" in sec
    assert "The search read 100 rows of the raspi4 device table." in sec
    assert "latency_ms@raspi4" in sec and "0.9512" in sec and "0.93" in sec
    assert "/data/nb201/raspi4" in sec


def test_figure_has_one_panel_per_slot_and_one_legend_entry_per_choice(tmp_path: Path) -> None:
    spec = figures(page(tmp_path, result()))["fig-arch-0"]
    lines = [t for t in spec["data"] if t.get("legendgroup")]
    assert len(lines) == len(SLOTS) * len(OPS)
    assert sorted(t["name"] for t in lines if t["showlegend"]) == sorted(OPS)
    colours = {t["name"]: set() for t in lines}
    for t in lines:
        colours[t["name"]].add(t["line"]["color"])
    assert all(len(c) == 1 for c in colours.values())  # one colour per choice, every panel
    assert len({next(iter(c)) for c in colours.values()}) == len(OPS)
    skip = [t for t in lines if t["name"] == "skip_connect"]
    assert skip[0]["x"] == [0, 1, 2, 3]
    assert skip[0]["y"] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    # 6 slots and the expected-cost panel: 3 rows of 3
    axes = [k for k in spec["layout"] if re.fullmatch(r"yaxis\d*", k)]
    assert len(axes) == 9
    cost = [t for t in spec["data"] if not t.get("legendgroup")]
    assert len(cost) == 1 and cost[0]["y"] == [5.0, 4.2, 3.6, 3.21]
    assert "latency_weight=0" in spec["layout"]["title"]["text"]


def test_flops_cost_and_no_cost_say_what_was_read() -> None:
    data = result()
    data["cost"]["source"] = {"kind": "flops", "device_rows": 0, "rows": 200}
    html, _ = gradient_section(data)
    assert "The search read no rows of a device table" in html
    assert "FLOPs of 200 sampled archs" in html
    data["cost"] = None
    for run in data["runs"]:
        run["expected_cost"] = []
    html, figs = gradient_section(data)
    assert "No hardware cost model" in html
    assert len(figs) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("runs"),
        lambda d: d.update(format="something else"),
        lambda d: d.update(runs="not a list"),
        lambda d: d["runs"][0].pop("trajectory"),
        lambda d: d["runs"][1]["trajectory"][2].pop(),
        lambda d: d["runs"][0]["trajectory"][1][0].append(0.1),
        lambda d: d["runs"][0]["trajectory"][1][0].__setitem__(0, "high"),
        lambda d: d["runs"][0]["choices"].pop(),
        lambda d: d["runs"][0].update(metrics=[1, 2]),
        lambda d: d["runs"][0].update(expected_cost=["x"]),
        lambda d: d.update(cost="raspi4"),
        lambda d: d["runs"].__setitem__(0, 7),
    ],
)
def test_malformed_result_gives_a_note_not_an_exception(tmp_path: Path, damage: Any) -> None:
    data = copy.deepcopy(result())
    damage(data)
    sec = section(page(tmp_path, data))
    assert 'id="gradient-note"' in sec
    assert "cannot be shown" in sec
    assert "fig-arch" not in sec


def test_not_a_mapping_gives_a_note(tmp_path: Path) -> None:
    sec = section(page(tmp_path, ["darts"]))
    assert "cannot be shown: expected a mapping, got list" in sec


def test_without_gradient_the_section_is_left_out(tmp_path: Path) -> None:
    text = page(tmp_path, None)
    assert 'id="gradient"' not in text
    assert "Architecture weights" not in text
    assert "fig-arch" not in text


def test_trajectory_figure_rejects_a_malformed_run() -> None:
    run = result()["runs"][0]
    run["choices"] = run["choices"][:2]
    with pytest.raises(ValueError, match="choices do not match the slots"):
        trajectory_figure(run)


def test_hwnas_report_shows_the_stored_gradient_result(tmp_path: Path, capsys: Any) -> None:
    from hwnas.cli import main
    from hwnas.storage import SQLiteStore

    study = study2()
    meta = {
        "space": "nb201",
        "strategy": "darts",
        "seed": 0,
        "budget": len(study.trials),
        "objectives": [[o.metric, o.direction] for o in study.objectives],
        "constraints": [[c.metric, c.le, c.ge] for c in study.constraints],
    }
    with SQLiteStore(tmp_path / "study.db") as store:
        for trial in study.trials:
            store.append(trial)
        store.set_meta({"report": meta, "gradient": result()})
    assert main(["report", str(tmp_path)]) == 0
    capsys.readouterr()
    sec = section((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert 'id="fig-arch-1"' in sec
    assert "The search read 100 rows of the raspi4 device table." in sec


def test_labels_are_escaped(tmp_path: Path) -> None:
    data = result()
    data["runs"][0]["label"] = "<b>w=0</b>"
    sec = section(page(tmp_path, data))
    assert "<h3>&lt;b&gt;w=0&lt;/b&gt;</h3>" in sec
