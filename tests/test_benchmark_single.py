"""Smoke test of benchmarks/nb201_single.py on the synthetic NB201 tables (no ../shared/data)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from benchmark_scripts import BENCHMARKS, imported

BUDGET = 60


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    # The script pins BLAS threads at import (setdefault); keep that out of this session.
    threads = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    with imported("nb201_single", env=dict.fromkeys(threads, "1")) as (nb201_single,):
        pass
    return nb201_single


def test_run_single_scores_one_run(
    bench: ModuleType, synthetic_nb201_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWNAS_DATA", str(synthetic_nb201_dir))
    row = bench.run_single("cifar100", "hwnas:local_search", seed=0, budget=BUDGET)

    assert list(row) == bench.COLUMNS
    assert (row["dataset"], row["strategy"], row["seed"], row["budget"]) == (
        "cifar100",
        "hwnas:local_search",
        0,
        BUDGET,
    )
    assert row["n_evaluated"] == BUDGET
    assert row["stop_reason"] == ""
    # The synthetic table's CIFAR-100 column is its accuracy minus 20 (tests/conftest.py).
    assert row["n_optimal_cells"] >= 1
    found = row["evals_to_optimum"]
    assert found is None or 1 <= found <= BUDGET
    assert row["regret@50"] >= 0.0
    assert row["regret@100"] is None and row["regret@200"] is None  # beyond the budget
    assert (found is not None and found <= 50) == (row["regret@50"] == 0.0)
    assert row["optimum"] - row["regret@50"] <= row["best_found"] <= row["optimum"]
    assert (row["best_found"] == row["optimum"]) == (found is not None)

    # The same seed gives the same run.
    again = bench.run_single("cifar100", "hwnas:local_search", seed=0, budget=BUDGET)
    assert {k: v for k, v in again.items() if k != "wall_s"} == {
        k: v for k, v in row.items() if k != "wall_s"
    }


def test_main_writes_csv_and_summary(
    bench: ModuleType, synthetic_nb201_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HWNAS_DATA", str(synthetic_nb201_dir))
    out = tmp_path / "single.csv"
    argv = ["--datasets", "cifar100", "--strategies", "hwnas:random", "--seeds", "2"]
    argv += ["--budget", str(BUDGET), "--workers", "1", "--out", str(out)]
    assert bench.main(argv) == 0

    lines = out.read_text().splitlines()
    assert lines[0].split(",") == bench.COLUMNS
    assert len(lines) == 1 + 2
    summary = out.with_suffix(".md").read_text()
    assert f"`python benchmarks/nb201_single.py {' '.join(argv)}`" in summary
    assert "| hwnas:random |" in summary


def test_run_single_on_a_config_task(bench: ModuleType, tmp_path: Path) -> None:
    # A user's table with one objective (examples/categorical-table.yaml, accuracy alone).
    examples = BENCHMARKS.parent / "examples"
    text = (examples / "categorical-table.yaml").read_text()
    text = text.replace(
        "path: data/categorical-table.csv", f"path: {examples}/data/categorical-table.csv"
    )
    text = text.replace("  - {metric: latency_ms@raspi4, direction: minimize}\n", "")
    text = text.replace("constraints:\n  - {metric: latency_ms@raspi4, le: 60.0}\n", "")
    config = tmp_path / "single.yaml"
    config.write_text(text)
    row = bench.run_single(str(config), "hwnas:thompson+structure", seed=0, budget=BUDGET)
    assert row["dataset"] == str(config) and row["n_evaluated"] == BUDGET
    assert row["n_optimal_cells"] >= 1 and row["regret@50"] >= 0.0
    # The optimum is the table's best accuracy.
    import pandas as pd

    best = pd.read_csv(examples / "data" / "categorical-table.csv")["accuracy"].max()
    assert row["optimum"] == pytest.approx(best, abs=1e-6)
    assert (row["evals_to_optimum"] is not None) == (row["best_found"] == row["optimum"])


def test_main_refuses_a_config_with_two_objectives(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = BENCHMARKS.parent / "examples"
    with pytest.raises(SystemExit) as exc:
        bench.main(
            [
                "--datasets",
                str(examples / "categorical-table.yaml"),
                "--out",
                str(tmp_path / "x.csv"),
            ]
        )
    assert exc.value.code == 2
    assert "has 2 objectives; nb201_single scores one" in capsys.readouterr().err
