"""`hwnas search` with executors, failure settings, progress lines and --log-json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from hwnas.cli import main
from hwnas.storage import SQLiteStore


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "space": "nb201",
        "evaluators": [{"table": {"path": "table.csv"}}],
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@raspi4", "direction": "minimize"},
        ],
        "constraints": [{"metric": "latency_ms@pixel3", "le": 10.0}],
        "budget": {"evaluations": 20},
        "seed": 1,
        **extra,
    }


@pytest.fixture()
def folder(tmp_path: Path, synthetic_table: Path) -> Path:
    shutil.copy(synthetic_table, tmp_path / "table.csv")
    return tmp_path


def _run(folder: Path, config: dict[str, Any], *args: str) -> int:
    cfg = folder / "study.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    return main(["search", str(cfg), "--out", str(folder / "out"), *args])


def test_process_pool_from_the_command_line(folder, capsys):
    rc = _run(folder, _config(), "--executor", "process", "--workers", "2")
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    trials = pd.read_csv(folder / "out" / "trials.csv")
    assert len(trials) == 20 and trials["arch"].is_unique
    assert "20 of 20 evaluations stored" in captured.out
    assert "process pool, 2 workers" in (folder / "out" / "report.html").read_text()


def test_execution_block_in_the_config_and_a_resume_on_another_executor(folder, capsys):
    config = _config(execution={"executor": "process", "workers": 2, "timeout_s": 30})
    assert _run(folder, config) == 0
    config["budget"] = {"evaluations": 30}
    config["execution"] = {"executor": "sequential"}
    assert _run(folder, config) == 0  # the executor is not part of what a study is
    capsys.readouterr()
    _, trials = SQLiteStore(folder / "out" / "study.db", readonly=True).load()
    assert len(trials) == 30 == len({t.arch for t in trials})


def test_progress_lines_when_stderr_is_not_a_terminal(folder, capsys):
    rc = _run(folder, _config(), "--progress-every", "5")
    err = capsys.readouterr().err
    assert rc == 0
    lines = [line for line in err.splitlines() if line.startswith("search: ")]
    assert len(lines) == 4
    assert lines[0].startswith("search: 5/20 evaluations, 0 in flight, 0 failed, front ")
    assert lines[-1].startswith("search: 20/20 evaluations, 0 in flight, 0 failed, front ")
    assert "ETA" in lines[0]


def test_quiet_prints_no_progress(folder, capsys):
    assert _run(folder, _config(), "--quiet") == 0
    captured = capsys.readouterr()
    assert "search: " not in captured.err and captured.out == ""


def test_log_json_has_one_object_per_trial(folder, capsys):
    log = folder / "logs" / "trials.jsonl"
    assert _run(folder, _config(), "--log-json", str(log), "--quiet") == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 20
    assert [r["evaluations"] for r in records] == list(range(1, 21))
    first = records[0]
    assert set(first) >= {"trial", "arch", "state", "error", "charged", "attempts", "metrics"}
    assert first["state"] == "complete" and first["attempts"] == 1
    assert {"accuracy", "latency_ms@raspi4", "latency_ms@pixel3"} <= set(first["metrics"])
    csv = pd.read_csv(folder / "out" / "trials.csv")
    assert sorted(r["arch"] for r in records) == sorted(csv["arch"])


def test_bad_rows_of_a_user_table_are_named_and_the_search_goes_on(folder, capsys):
    table = pd.read_csv(folder / "table.csv").head(300)
    table.loc[3, "accuracy"] = float("nan")
    table.loc[7, "latency_ms@raspi4"] = float("inf")
    table.to_csv(folder / "table.csv", index=False)
    config = _config(strategy={"name": "random"})
    config["budget"] = {"evaluations": 100}
    rc = _run(folder, config, "--quiet")
    err = capsys.readouterr().err
    assert rc == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1
    assert "2 rows excluded (line 5: accuracy is" in warning[0] and "line 9" in warning[0]
    trials = pd.read_csv(folder / "out" / "trials.csv")
    excluded = {table.loc[3, "arch"], table.loc[7, "arch"]}
    assert not excluded & set(trials["arch"])
    values = trials[["accuracy", "latency_ms@raspi4"]].to_numpy()
    assert (abs(values) < 1e9).all()
