"""`hwnas search / report / list` end to end: the files of the CLI contract, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import hwnas
from hwnas.cli import main
from hwnas.strategies.gradient import GRADIENT_STRATEGIES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONTRACT_FILES = ("study.db", "trials.csv", "pareto.csv", "report.html", "pareto.png")
OBJECTIVES = [
    {"metric": "accuracy", "direction": "maximize"},
    {"metric": "latency_ms@raspi4", "direction": "minimize"},
]
PIXEL3_BOUND = 10.0


def _config(evaluator: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "space": "nb201",
        "evaluators": [evaluator],
        "objectives": OBJECTIVES,
        "constraints": [{"metric": "latency_ms@pixel3", "le": PIXEL3_BOUND}],
        "budget": {"evaluations": 40},
        "seed": 0,
        **extra,
    }


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _search(capsys: pytest.CaptureFixture[str], cfg: Path, out: Path, *extra: str) -> str:
    """Run ``hwnas search`` in-process; assert success; return its stdout."""
    rc = main(["search", str(cfg), "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.err
    return captured.out


def _minimisation_form(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            -frame[o["metric"]].to_numpy()
            if o["direction"] == "maximize"
            else frame[o["metric"]].to_numpy()
            for o in OBJECTIVES
        ]
    )


def _dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[i, j]``: row i of ``a`` dominates row j of ``b`` (minimisation)."""
    le = (a[:, None, :] <= b[None, :, :]).all(axis=-1)
    lt = (a[:, None, :] < b[None, :, :]).any(axis=-1)
    return le & lt


def assert_valid_front(out: Path) -> None:
    """pareto.csv holds exactly the feasible, mutually non-dominated rows of trials.csv."""
    trials_lines = (out / "trials.csv").read_text().splitlines()
    pareto_lines = (out / "pareto.csv").read_text().splitlines()
    assert pareto_lines[0] == trials_lines[0]  # same columns
    assert set(pareto_lines[1:]) <= set(trials_lines[1:])  # rows copied verbatim
    trials = pd.read_csv(out / "trials.csv")
    pareto = pd.read_csv(out / "pareto.csv")
    assert len(pareto) > 0
    assert (pareto["latency_ms@pixel3"] <= PIXEL3_BOUND).all()
    front = _minimisation_form(pareto)
    assert not _dominates(front, front).any()
    # complete: every other feasible row is (weakly) dominated by a row of the front
    feasible = trials[trials["latency_ms@pixel3"] <= PIXEL3_BOUND]
    rest = feasible[~feasible["trial"].isin(pareto["trial"])]
    weakly = (front[:, None, :] <= _minimisation_form(rest)[None, :, :]).all(axis=-1)
    assert weakly.any(axis=0).all()


@pytest.fixture(scope="module")
def table_config(tmp_path_factory: pytest.TempPathFactory, synthetic_table: Path) -> Path:
    """A config in its own folder naming a copy of the synthetic table by a relative path."""
    folder = tmp_path_factory.mktemp("config")
    shutil.copy(synthetic_table, folder / "measured.csv")
    return _write(folder / "study.yaml", _config({"table": {"path": "measured.csv"}}))


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, table_config: Path) -> tuple[Path, Path]:
    """A finished budget-40 search, run from another working folder (so a relative path that
    resolved against the working folder would fail). Tests copy ``out`` before changing it."""
    out = tmp_path_factory.mktemp("searched") / "out"
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp_path_factory.mktemp("elsewhere"))
    try:
        assert main(["search", str(table_config), "--out", str(out), "--quiet"]) == 0
    finally:
        mp.undo()
    return table_config, out


def _copy(out: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "out"
    shutil.copytree(out, dest)
    return dest


def test_search_writes_the_contract_files(searched, synthetic_table):
    _, out = searched
    for name in CONTRACT_FILES:
        assert (out / name).is_file(), name
    assert (out / "study.db").read_bytes()[:16] == b"SQLite format 3\x00"
    assert (out / "pareto.png").read_bytes()[:8] == PNG_MAGIC
    html = (out / "report.html").read_text()
    assert "<html" in html.lower() and "latency_ms@raspi4" in html

    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 40
    assert list(trials.columns[:4]) == ["trial", "arch", "accuracy", "latency_ms@raspi4"]
    assert "latency_ms@pixel3" in trials.columns
    assert trials["trial"].tolist() == sorted(trials["trial"])
    space = hwnas.create_space("nb201")
    assert all(space.canonical(s) == s for s in trials["arch"])
    assert trials["arch"].is_unique
    # the numbers are the table's numbers
    source = pd.read_csv(synthetic_table).set_index("arch").loc[trials["arch"]]
    for metric in ("accuracy", "latency_ms@raspi4", "latency_ms@pixel3", "latency_ms@eyeriss"):
        np.testing.assert_allclose(trials[metric], source[metric], rtol=1e-9)
    # the bound bites in this run, so the front below is really filtered for feasibility
    assert (trials["latency_ms@pixel3"] > PIXEL3_BOUND).any()
    assert_valid_front(out)


def test_rerun_resumes_without_new_evaluations(capsys, searched, tmp_path):
    cfg, original = searched
    out = _copy(original, tmp_path)
    before = {n: (out / n).read_bytes() for n in ("trials.csv", "pareto.csv")}
    stdout = _search(capsys, cfg, out)
    assert "40 of 40 evaluations stored" in stdout
    assert "(0 new" in stdout
    for name, data in before.items():
        assert (out / name).read_bytes() == data, name


def test_larger_budget_extends_the_study(capsys, searched, tmp_path):
    cfg, original = searched
    out = _copy(original, tmp_path)
    before = (out / "trials.csv").read_text().splitlines()
    stdout = _search(capsys, cfg, out, "--budget", "60", "--quiet")
    assert stdout == ""
    after = (out / "trials.csv").read_text().splitlines()
    assert len(after) == 1 + 60
    assert after[: 1 + 40] == before
    assert pd.read_csv(out / "trials.csv")["arch"].is_unique
    assert_valid_front(out)


def test_report_rebuilds_the_files_identically(capsys, searched, tmp_path):
    _, original = searched
    out = _copy(original, tmp_path)
    before = {n: (out / n).read_bytes() for n in ("trials.csv", "pareto.csv")}
    for name in ("trials.csv", "pareto.csv", "report.html", "pareto.png"):
        (out / name).unlink()
    assert main(["report", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "Pareto front" in stdout
    for name, data in before.items():
        assert (out / name).read_bytes() == data, name
    assert (out / "pareto.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "report.html").stat().st_size > 0


@pytest.mark.parametrize(
    "strategy", [s for s in hwnas.list_strategies() if s not in GRADIENT_STRATEGIES]
)
def test_interrupted_and_resumed_equals_uninterrupted(
    capsys, tmp_path, synthetic_nb201_dir, strategy
):
    # The cached NB201 evaluator keeps 3 runs x every strategy fast; resuming is evaluator-agnostic.
    config = _config(
        {"nb201": {"dataset": "cifar10"}},
        data_dir=str(synthetic_nb201_dir),
        strategy={"name": strategy},
    )
    config["budget"] = {"evaluations": 25}
    cfg = _write(tmp_path / "study.yaml", config)
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    _search(capsys, cfg, resumed, "--quiet")
    assert len(pd.read_csv(resumed / "trials.csv")) == 25
    _search(capsys, cfg, resumed, "--budget", "50", "--quiet")
    _search(capsys, cfg, straight, "--budget", "50", "--quiet")
    text = (straight / "trials.csv").read_text()
    assert len(text.splitlines()) == 1 + 50
    assert (resumed / "trials.csv").read_text() == text
    assert (resumed / "pareto.csv").read_bytes() == (straight / "pareto.csv").read_bytes()


def test_nb201_evaluator_columns(capsys, tmp_path, synthetic_nb201_dir, synthetic_frame):
    config = _config({"nb201": {"dataset": "cifar10"}}, data_dir=str(synthetic_nb201_dir))
    cfg = _write(tmp_path / "study.yaml", config)
    _search(capsys, cfg, tmp_path / "out", "--budget", "10", "--quiet")
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert len(trials) == 10
    expected = [
        "accuracy",
        "valid_accuracy",
        "latency_ms@raspi4",
        "latency_ms@pixel3",
        "latency_ms@eyeriss",
    ]
    assert list(trials.columns[:4]) == ["trial", "arch", "accuracy", "latency_ms@raspi4"]
    assert set(expected) <= set(trials.columns)
    source = synthetic_frame.set_index("arch").loc[trials["arch"]]
    np.testing.assert_allclose(trials["accuracy"], source["accuracy"], rtol=1e-9)
    np.testing.assert_allclose(trials["valid_accuracy"], source["accuracy"] - 1, rtol=1e-9)
    for device in ("raspi4", "pixel3", "eyeriss"):
        metric = f"latency_ms@{device}"
        np.testing.assert_allclose(trials[metric], source[metric], rtol=1e-9)


def test_list_prints_the_registered_names(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        f"spaces: {', '.join(hwnas.list_spaces())}",
        f"strategies: {', '.join(hwnas.list_strategies())}",
        f"evaluators: {', '.join(hwnas.list_evaluators())}",
    ]
    assert "nb201" in lines[0] and "nsga2" in lines[1] and "table" in lines[2]
    assert main(["list", "strategies"]) == 0
    assert capsys.readouterr().out.strip() == f"strategies: {', '.join(hwnas.list_strategies())}"
