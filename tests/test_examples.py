"""Examples are tests: every ``examples/*.yaml`` runs through ``hwnas search`` at a small budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import hwnas
from hwnas.cli import main
from hwnas.strategies.gradient import GRADIENT_STRATEGIES

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


def _toy_size(config: dict, tmp_path: Path) -> Path:
    """A copy of a config that trains (a supernet on a dataset) shrunk to seconds: 400 images,
    one epoch, quick latency measurements."""
    config["data"] = (
        {**config["data"], "limit": 400}
        if isinstance(config["data"], dict)
        else {
            "name": config["data"],
            "limit": 400,
        }
    )
    config["supernet"] = {**config["supernet"], "train": {"epochs": 1, "batch_size": 64}}
    config["supernet"]["calibration_images"] = 200
    for entry in config["evaluators"]:
        if "measured" in entry:
            entry["measured"] = {**(entry["measured"] or {}), "repeats": 3, "min_block_s": 0.005}
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _toy_search(config: dict, tmp_path: Path) -> Path:
    """A copy of a config whose strategy trains (a gradient search) shrunk to seconds."""
    config["data"] = {**config["data"], "limit": 400}
    strategy = config["strategy"]
    strategy["epochs"] = 2
    if strategy.get("warmup_epochs"):
        strategy["warmup_epochs"] = 1
    if strategy["name"] == "tas":
        strategy["batch_size"] = 128
    else:
        strategy.update(channels=4, cells=1)
    for entry in config["evaluators"]:
        if "train" in entry:
            entry["train"] = {**entry["train"], "epochs": 1}
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(capsys, monkeypatch, request, tmp_path, example):
    config = yaml.safe_load(example.read_text())
    budget = BUDGET
    gradient = config.get("strategy", {}).get("name") in GRADIENT_STRATEGIES
    if gradient:
        # A gradient search proposes what it derived (top_k per latency weight), then stops.
        torch = pytest.importorskip("torch")
        pytest.importorskip("mlxtend")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # toy networks: a second thread only adds contention
        request.addfinalizer(lambda: torch.set_num_threads(threads))
        budget = config["budget"]["evaluations"]
        example = _toy_search(config, tmp_path)
        if config["space"] == "nb201" and not SHARED_DATA.is_dir():
            pytest.skip(f"the NB201 examples read the benchmark tables in {SHARED_DATA}")
    elif "supernet" in config:
        budget = 6  # each evaluation scores a sub-network and measures its latency
        pytest.importorskip("torch")
        pytest.importorskip("mlxtend")
        pytest.importorskip("onnxruntime")
        example = _toy_size(config, tmp_path)
    elif not SHARED_DATA.is_dir():
        pytest.skip(
            f"the examples read the real benchmark tables in {SHARED_DATA}, which is absent"
        )
    monkeypatch.setenv("HWNAS_DATA", str(SHARED_DATA))
    out = tmp_path / "out"

    rc = main(["search", str(example), "--out", str(out), "--budget", str(budget), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err

    for name in ("study.db", "trials.csv", "pareto.csv", "report.html", "pareto.png"):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trials = pd.read_csv(out / "trials.csv")
    pareto = pd.read_csv(out / "pareto.csv")
    objectives = config["objectives"]
    if gradient:
        assert 1 <= len(trials) <= budget
    else:
        assert len(trials) == budget
    assert list(trials.columns[:2]) == ["trial", "arch"]
    assert list(trials.columns[2 : 2 + len(objectives)]) == [o["metric"] for o in objectives]
    spec = config["space"] if isinstance(config["space"], dict) else {"name": config["space"]}
    space = hwnas.create_space(spec["name"], **spec.get("options", {}))
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
