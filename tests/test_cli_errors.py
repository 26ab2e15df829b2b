"""Bad input through the CLI: exit code 2, one line on stderr naming the problem and the fix,
no traceback, and nothing already stored is lost."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from hwnas.cli import main
from hwnas.storage import SQLiteStore


def _config(table: Path, **changes: Any) -> dict[str, Any]:
    """A valid table-evaluator config; ``changes`` replace (or, with None, drop) top-level keys."""
    config: dict[str, Any] = {
        "space": "nb201",
        "evaluators": [{"table": {"path": str(table)}}],
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@raspi4", "direction": "minimize"},
        ],
        "constraints": [{"metric": "latency_ms@pixel3", "le": 10.0}],
        "budget": {"evaluations": 10},
        "seed": 0,
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI in-process; assert exit code 2 and one ``error:`` line; return that line."""
    rc = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert rc == 2, f"exit code {rc}, stderr: {err!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _search_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: dict[str, Any], *extra: str
) -> str:
    cfg = _write(tmp_path / "study.yaml", config)
    return _error_line(capsys, ["search", str(cfg), "--out", str(tmp_path / "out"), *extra])


@pytest.fixture(scope="module")
def small_table(tmp_path_factory: pytest.TempPathFactory, synthetic_table: Path) -> Path:
    """A valid table of 200 architectures: enough for errors raised while the study is built,
    and much faster to load than all 15,625 rows."""
    path = tmp_path_factory.mktemp("small-table") / "small.csv"
    pd.read_csv(synthetic_table).head(200).to_csv(path, index=False)
    return path


# -- names: the closest valid names are suggested ------------------------------------------------
def test_unknown_space(capsys, tmp_path, small_table):
    line = _search_error(capsys, tmp_path, _config(small_table, space="nb2011"))
    assert "unknown space 'nb2011'" in line
    assert "'nb201'" in line


def test_unknown_strategy(capsys, tmp_path, small_table):
    line = _search_error(capsys, tmp_path, _config(small_table, strategy={"name": "nsga"}))
    assert "unknown strategy 'nsga'" in line
    assert "'nsga2'" in line


def test_unknown_evaluator(capsys, tmp_path, small_table):
    config = _config(small_table, evaluators=[{"tabel": {"path": str(small_table)}}])
    line = _search_error(capsys, tmp_path, config)
    assert "unknown evaluator 'tabel'" in line
    assert "'table'" in line


def test_unknown_strategy_option(capsys, tmp_path, small_table):
    config = _config(small_table, strategy={"name": "nsga2", "population": 10})
    line = _search_error(capsys, tmp_path, config)
    assert "nsga2" in line
    assert "'population'" in line
    assert "'population_size'" in line


def test_unknown_top_level_key(capsys, tmp_path, small_table):
    config = _config(small_table)
    config["objective"] = config.pop("objectives")
    line = _search_error(capsys, tmp_path, config)
    assert "unknown key 'objective'" in line
    assert "'objectives'" in line


def test_bad_direction(capsys, tmp_path, small_table):
    config = _config(small_table, objectives=[{"metric": "accuracy", "direction": "max"}])
    line = _search_error(capsys, tmp_path, config)
    assert "objectives.0.direction" in line
    assert "'maximize'" in line and "'minimize'" in line
    assert "'max'" in line  # what was given


@pytest.mark.parametrize(
    "constraint",
    [
        {"metric": "latency_ms@pixel3", "le": 10.0, "ge": 1.0},
        {"metric": "latency_ms@pixel3"},
    ],
    ids=["both", "neither"],
)
def test_constraint_needs_exactly_one_bound(capsys, tmp_path, small_table, constraint):
    line = _search_error(capsys, tmp_path, _config(small_table, constraints=[constraint]))
    assert "constraints.0" in line
    assert "'latency_ms@pixel3' needs exactly one of 'le' or 'ge'" in line


def test_objective_metric_nobody_provides(capsys, tmp_path, small_table):
    config = _config(
        small_table,
        objectives=[
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@raspi5", "direction": "minimize"},
        ],
    )
    line = _search_error(capsys, tmp_path, config)
    assert "'latency_ms@raspi5' is not provided by any evaluator" in line
    assert "'latency_ms@raspi4'" in line


# -- data files ----------------------------------------------------------------------------------
def test_table_file_missing(capsys, tmp_path, small_table):
    config = _config(small_table, evaluators=[{"table": {"path": "no_such.csv"}}])
    line = _search_error(capsys, tmp_path, config)
    assert str(tmp_path / "no_such.csv") in line  # resolved against the config's folder
    assert "does not exist" in line


def test_nb201_data_dir_without_tables(capsys, tmp_path, small_table):
    empty = tmp_path / "empty-data"
    empty.mkdir()
    config = _config(
        small_table, evaluators=[{"nb201": {"dataset": "cifar10"}}], data_dir="empty-data"
    )
    line = _search_error(capsys, tmp_path, config)
    assert "NB201 benchmark tables not found" in line
    assert f"data_dir in the config = {empty}" in line  # which folder was tried
    assert "nats_bench.csv" in line  # and what it lacked
    assert "HWNAS_DATA" in line  # and how to fix it


def test_table_without_key_column(capsys, tmp_path, small_table):
    bad = tmp_path / "nokey.csv"
    pd.read_csv(small_table).rename(columns={"arch": "architecture"}).to_csv(bad, index=False)
    config = _config(small_table, evaluators=[{"table": {"path": str(bad)}}])
    line = _search_error(capsys, tmp_path, config)
    assert f"{bad} has no key column 'arch'" in line
    assert "'architecture'" in line


def test_table_with_non_canonical_arch(capsys, tmp_path, small_table):
    bad = tmp_path / "badarch.csv"
    frame = pd.read_csv(small_table)
    frame.loc[5, "arch"] = "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    frame.to_csv(bad, index=False)
    config = _config(small_table, evaluators=[{"table": {"path": str(bad)}}])
    line = _search_error(capsys, tmp_path, config)
    assert f"{bad} line 7" in line  # header is line 1, so row 5 is line 7
    assert "'conv'" in line


def test_table_not_a_csv(capsys, tmp_path, small_table):
    bad = tmp_path / "garbage.csv"
    bad.write_bytes(bytes(range(256)) * 10)
    config = _config(small_table, evaluators=[{"table": {"path": str(bad)}}])
    line = _search_error(capsys, tmp_path, config)
    assert f"cannot parse {bad} as CSV" in line


# -- budget and constraints ----------------------------------------------------------------------
def test_budget_larger_than_space_in_config(capsys, tmp_path, small_table):
    line = _search_error(capsys, tmp_path, _config(small_table, budget={"evaluations": 15626}))
    assert "budget 15626 exceeds the 15625 architectures of space 'nb201'" in line
    assert not (tmp_path / "out" / "trials.csv").exists()


def test_budget_larger_than_space_on_command_line(capsys, tmp_path, small_table):
    line = _search_error(capsys, tmp_path, _config(small_table), "--budget", "15626")
    assert "budget 15626 exceeds the 15625 architectures of space 'nb201'" in line


def test_budget_not_positive_on_command_line(capsys, tmp_path, small_table):
    line = _search_error(capsys, tmp_path, _config(small_table), "--budget", "0")
    assert "--budget must be a positive number of evaluations, got 0" in line


def test_infeasible_constraint(capsys, tmp_path, synthetic_table):
    config = _config(synthetic_table, constraints=[{"metric": "latency_ms@raspi4", "le": 0.0001}])
    line = _search_error(capsys, tmp_path, config)
    assert "no architecture in the tables meets all constraints" in line
    assert "latency_ms@raspi4 <= 0.0001" in line
    assert not (tmp_path / "out" / "trials.csv").exists()


def test_contradictory_constraints(capsys, tmp_path, small_table):
    constraints = [
        {"metric": "latency_ms@pixel3", "le": 1.0},
        {"metric": "latency_ms@pixel3", "ge": 5.0},
    ]
    line = _search_error(capsys, tmp_path, _config(small_table, constraints=constraints))
    assert "latency_ms@pixel3 <= 1.0 and latency_ms@pixel3 >= 5.0 cannot both hold" in line


# -- files ---------------------------------------------------------------------------------------
def test_config_not_yaml(capsys, tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("space: [nb201\n  budget: : :\n")
    line = _error_line(capsys, ["search", str(cfg), "--out", str(tmp_path / "out")])
    assert f"{cfg} line 2: not valid YAML" in line


def test_config_not_text(capsys, tmp_path):
    cfg = tmp_path / "picture.yaml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    line = _error_line(capsys, ["search", str(cfg), "--out", str(tmp_path / "out")])
    assert str(cfg) in line
    assert "not a text file" in line


def test_config_not_a_mapping(capsys, tmp_path):
    cfg = tmp_path / "list.yaml"
    cfg.write_text("- nb201\n- nsga2\n")
    line = _error_line(capsys, ["search", str(cfg), "--out", str(tmp_path / "out")])
    assert "the config must be a YAML mapping" in line


def test_config_file_missing(capsys, tmp_path):
    cfg = tmp_path / "missing.yaml"
    line = _error_line(capsys, ["search", str(cfg), "--out", str(tmp_path / "out")])
    assert f"config file {cfg} does not exist" in line
    assert not (tmp_path / "out").exists()


def test_report_without_study(capsys, tmp_path):
    line = _error_line(capsys, ["report", str(tmp_path)])
    assert f"{tmp_path} holds no study.db" in line
    assert "--out folder of a search" in line


def test_markup_like_input_is_printed_verbatim(capsys, tmp_path, small_table):
    line = _search_error(capsys, tmp_path, _config(small_table, space="[/x]"))
    assert "unknown space '[/x]'" in line


# -- resume with a different study: refused, and nothing stored is lost -------------------------
def _nb201_config(data_dir: Path, **changes: Any) -> dict[str, Any]:
    # The NB201 evaluator's tables stay loaded between runs, which keeps these runs fast.
    evaluators = [{"nb201": {"dataset": "cifar10"}}]
    return _config(Path("unused.csv"), evaluators=evaluators, data_dir=str(data_dir), **changes)


def _stored(out: Path) -> list[tuple[int, str, dict[str, float]]]:
    store = SQLiteStore(out / "study.db")
    try:
        _, trials = store.load()
    finally:
        store.close()
    return [(t.number, t.arch, dict(t.metrics)) for t in trials]


@pytest.fixture(scope="module")
def stored_study(tmp_path_factory: pytest.TempPathFactory, synthetic_nb201_dir: Path):
    """A tiny finished search, with what it stored and its trials.csv."""
    folder = tmp_path_factory.mktemp("stored")
    config = _nb201_config(synthetic_nb201_dir, budget={"evaluations": 6})
    cfg = _write(folder / "study.yaml", config)
    out = folder / "out"
    assert main(["search", str(cfg), "--out", str(out), "--quiet"]) == 0
    stored = _stored(out)
    assert len(stored) == 6
    return cfg, out, stored, (out / "trials.csv").read_bytes()


def test_resume_with_other_seed_is_refused(capsys, stored_study):
    cfg, out, stored, trials_csv = stored_study
    capsys.readouterr()
    line = _error_line(capsys, ["search", str(cfg), "--out", str(out), "--seed", "9"])
    assert "different seed" in line
    assert "stored 0, now 9" in line
    assert "new output folder" in line
    assert _stored(out) == stored
    assert (out / "trials.csv").read_bytes() == trials_csv
    # the original command still resumes it, evaluating nothing new
    assert main(["search", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert _stored(out) == stored
    assert (out / "trials.csv").read_bytes() == trials_csv


def test_resume_with_other_objective_is_refused(
    capsys, tmp_path, stored_study, synthetic_nb201_dir
):
    _, out, stored, trials_csv = stored_study
    capsys.readouterr()
    objectives = [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "latency_ms@eyeriss", "direction": "minimize"},
    ]
    other = _write(
        tmp_path / "other.yaml", _nb201_config(synthetic_nb201_dir, objectives=objectives)
    )
    line = _error_line(capsys, ["search", str(other), "--out", str(out)])
    assert "different objectives" in line
    assert "latency_ms@eyeriss" in line
    assert _stored(out) == stored
    assert (out / "trials.csv").read_bytes() == trials_csv


# -- the real console script ---------------------------------------------------------------------
def test_console_script_prints_one_line(tmp_path, small_table):
    exe = shutil.which("hwnas")
    if exe is None:
        pytest.skip("the hwnas console script is not installed (pip install -e .)")
    cfg = _write(tmp_path / "study.yaml", _config(small_table, space="nb2011"))
    proc = subprocess.run(
        [exe, "search", str(cfg), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: unknown space 'nb2011'; did you mean 'nb201'?"]
    assert proc.stdout == ""
