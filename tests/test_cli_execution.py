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


def test_the_same_trials_with_a_cold_and_a_full_cache(folder, capsys, monkeypatch):
    """A result served from the shared cache counts like a fresh one: cold cache, full cache
    and a fresh machine give the same trials.csv for the same config and seed."""
    from hwnas.hardware import measured
    from hwnas.hardware.measured import Measurement

    calls: list[str] = []

    def fake(space, arch, **opts):  # type: ignore[no-untyped-def]
        calls.append(space.to_string(arch))
        ms = 1.0 + 0.5 * sum(op == "nor_conv_3x3" for op in arch["ops"])
        ms += 0.01 * sum(op == "skip_connect" for op in arch["ops"])
        return Measurement(ms, 0.1, ms - 0.05, ms + 0.05, 0.02, 3, 1, "onnxruntime", 1, 1)

    monkeypatch.setattr(measured, "measure_arch", fake)
    config = _config(
        evaluators=[{"table": {"path": "table.csv"}}, {"measured": {"backend": "onnxruntime"}}],
        objectives=[
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@local", "direction": "minimize"},
        ],
        strategy={"name": "nsga2", "population_size": 6},
    )
    config["cache"] = "cache.db"
    cfg = folder / "study.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))

    def search(out: str) -> str:
        assert main(["search", str(cfg), "--out", str(folder / out), "--quiet"]) == 0
        return (folder / out / "trials.csv").read_text()

    cold = search("cold")
    assert len(calls) == 20
    warm = search("warm")  # every measurement from the cache
    assert len(calls) == 20
    (folder / "cache.db").unlink()
    fresh = search("fresh")  # a machine with an empty cache
    assert len(calls) == 40
    assert cold == warm == fresh
    _, trials = SQLiteStore(folder / "warm" / "study.db", readonly=True).load()
    assert all(t.cached and t.charged for t in trials) and len(trials) == 20


def test_a_study_made_in_python_resumes_from_the_command_line(folder, capsys, synthetic_table):
    from hwnas import Constraint, Objective, Study, create_space, create_strategy
    from hwnas.evaluation import EvaluatorContext, create_evaluator

    space = create_space("nb201")
    table = create_evaluator(
        "table", EvaluatorContext(space=space, base_dir=folder), path="table.csv"
    )
    out = folder / "out"
    out.mkdir()
    with SQLiteStore(out / "study.db") as store:
        study = Study(
            space=space,
            evaluators=[table],
            objectives=[
                Objective("accuracy", "maximize"),
                Objective("latency_ms@raspi4", "minimize"),
            ],
            constraints=[Constraint("latency_ms@pixel3", le=10.0)],
            strategy=create_strategy("nsga2", population_size=8),
            seed=1,
            store=store,
        )
        study.optimize(10)
    config = _config(strategy={"name": "nsga2", "population_size": 8})
    assert _run(folder, config, "--quiet") == 0  # same definition: resumed, 10 more
    assert len(pd.read_csv(out / "trials.csv")) == 20
    config["seed"] = 2
    assert _run(folder, config) == 2
    assert "stored study was made with different seed" in capsys.readouterr().err


def test_a_resume_whose_data_changed_is_refused(folder, capsys):
    assert _run(folder, _config(), "--quiet") == 0
    before = SQLiteStore(folder / "out" / "study.db", readonly=True).load()[1]
    table = pd.read_csv(folder / "table.csv")
    table.loc[0, "accuracy"] += 1.0
    table.to_csv(folder / "table.csv", index=False)
    config = _config()
    config["budget"] = {"evaluations": 30}
    assert _run(folder, config) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "the data of the stored study changed: table table.csv" in err[0]
    assert "changed content (sha256 " in err[0] and "restore the original data" in err[0]
    after = SQLiteStore(folder / "out" / "study.db", readonly=True).load()[1]
    assert after == before  # nothing stored was lost or added


def test_a_run_of_failures_stops_the_search_with_one_line_and_keeps_the_files(
    folder, capsys, monkeypatch
):
    from hwnas.hardware import measured

    def broken(space, arch, **opts):  # type: ignore[no-untyped-def]
        raise RuntimeError("the device is unplugged")

    monkeypatch.setattr(measured, "measure_arch", broken)
    config = _config(
        evaluators=[{"table": {"path": "table.csv"}}, {"measured": {}}],
        objectives=[
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@local", "direction": "minimize"},
        ],
        execution={"max_failures_in_row": 3},
        cache="cache.db",
    )
    assert _run(folder, config) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1
    assert err[0].startswith("error: 3 evaluations in a row failed; the last (trial 2, |")
    assert "raised RuntimeError: the device is unplugged" in err[0]
    assert "raise execution.max_failures_in_row" in err[0]
    _, trials = SQLiteStore(folder / "out" / "study.db", readonly=True).load()
    assert [t.state for t in trials] == ["failed"] * 3
    html = (folder / "out" / "report.html").read_text()
    assert "the device is unplugged" in html  # failures listed in the report
    assert len(pd.read_csv(folder / "out" / "trials.csv")) == 0
