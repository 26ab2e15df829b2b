"""Examples are tests: every ``examples/*.yaml`` runs through ``hwnas search`` at a small budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import hwnas
from hwnas.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
SHARED_DATA = REPO.parent / "shared" / "data"
BUDGET = 20


def test_there_are_examples():
    assert EXAMPLES, f"no example configs in {REPO / 'examples'}"


def _minimisation_form(frame: pd.DataFrame, objectives: list[dict[str, str]]) -> np.ndarray:
    columns = []
    for o in objectives:
        values = frame[o["metric"]].to_numpy(dtype=float)
        columns.append(-values if o["direction"] == "maximize" else values)
    return np.column_stack(columns)


def _feasible(frame: pd.DataFrame, constraints: list[dict[str, float]]) -> pd.Series:
    ok = pd.Series(True, index=frame.index)
    for c in constraints:
        col = frame[c["metric"]]
        ok &= col <= c["le"] if "le" in c else col >= c["ge"]
    return ok


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(capsys, monkeypatch, tmp_path, example):
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"the examples read the real benchmark tables in {SHARED_DATA}, which is absent"
        )
    monkeypatch.setenv("HWNAS_DATA", str(SHARED_DATA))
    config = yaml.safe_load(example.read_text())
    out = tmp_path / "out"

    rc = main(["search", str(example), "--out", str(out), "--budget", str(BUDGET), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err

    for name in ("study.db", "trials.csv", "pareto.csv", "report.html", "pareto.png"):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trials = pd.read_csv(out / "trials.csv")
    pareto = pd.read_csv(out / "pareto.csv")
    objectives = config["objectives"]
    assert len(trials) == BUDGET
    assert list(trials.columns[:2]) == ["trial", "arch"]
    assert list(trials.columns[2 : 2 + len(objectives)]) == [o["metric"] for o in objectives]
    space_name = config["space"] if isinstance(config["space"], str) else config["space"]["name"]
    space = hwnas.create_space(space_name)
    assert all(space.canonical(s) == s for s in trials["arch"])
    assert trials["arch"].is_unique

    assert len(pareto) > 0
    assert list(pareto.columns) == list(trials.columns)
    assert set(pareto["trial"]) <= set(trials["trial"])
    constraints = config.get("constraints", [])
    assert _feasible(pareto, constraints).all()
    front = _minimisation_form(pareto, objectives)
    dominated = (front[:, None, :] <= front[None, :, :]).all(-1) & (
        front[:, None, :] < front[None, :, :]
    ).any(-1)
    assert not dominated.any()
