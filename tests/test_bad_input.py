"""Bad input through the CLI, one test per case of ``tests/bad_input_cases.py``: exit code 2, one
``error:`` line naming the problem and the fix, no traceback, nothing stored lost, no study.db or
folder left behind by a config error. The cases run in this process; the one that needs a
read-only mount runs the installed CLI in a subprocess (as ``benchmarks/bad_inputs.py`` runs them
all). Below the table: the checks around a store that another process holds or held."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from bad_input_cases import (
    CASES,
    Case,
    Fixtures,
    Workspace,
    before,
    build_fixtures,
    case_ids,
    check,
    readonly_mounts_work,
    run_subprocess,
    stop_holder,
    stored_trials,
)
from hwnas.cli import main


def _main(argv: Sequence[str]) -> int:
    try:
        return main(list(argv))
    except SystemExit as exc:  # argparse errors leave through _Parser.error
        return int(exc.code or 0)


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory: pytest.TempPathFactory, synthetic_frame: pd.DataFrame) -> Fixtures:
    return build_fixtures(tmp_path_factory.mktemp("bad-input"), synthetic_frame)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.slow) if c.slow else c for c in CASES],
    ids=case_ids(),
)
def test_bad_input(
    case: Case,
    fixtures: Fixtures,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = Workspace(fixtures, tmp_path)
    run = case.make(ws)
    try:
        was = before(run)
        if run.readonly is not None:
            if not readonly_mounts_work():
                pytest.skip("no read-only bind mounts here (needs unshare and mount rights)")
            rc, _, err = run_subprocess(run, dict(os.environ))
        else:
            for key, value in run.env.items():
                if value is None:
                    monkeypatch.delenv(key, raising=False)
                else:
                    monkeypatch.setenv(key, value)
            capsys.readouterr()
            rc = _main(run.argv)
            err = capsys.readouterr().err
    finally:
        stop_holder(run.holder)
    problems = check(case, ws, run, was, rc, err)
    assert not problems, f"stderr {err!r}: {'; '.join(problems)}"


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


# -- the writability check itself, without a mount (we run as root, which ignores modes) --------
def test_out_in_unwritable_folder_is_refused_before_anything_is_built(
    fixtures: Fixtures,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = Workspace(fixtures, tmp_path)
    cfg = ws.table()
    parent = tmp_path / "locked-up"
    parent.mkdir()
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if Path(str(path)) == parent:
            return False
        return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    capsys.readouterr()
    assert _main(ws.search(cfg, out=parent / "out")) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: --out {parent / 'out'}: {parent} is not writable (read-only or no permission); "
        "give a folder you can write to"
    ]
    assert list(parent.iterdir()) == []


def test_log_json_in_unwritable_folder_leaves_no_study(
    fixtures: Fixtures,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = Workspace(fixtures, tmp_path)
    cfg = ws.table()
    logs = tmp_path / "logs"
    logs.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, m, **kw: False if Path(str(p)) == logs else real_access(p, m, **kw),
    )
    capsys.readouterr()
    assert _main([*ws.search(cfg), "--log-json", str(logs / "trials.jsonl")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"error: --log-json {logs / 'trials.jsonl'}: {logs} is not writable")
    assert not (tmp_path / "out").exists()


# -- a store held by another process ------------------------------------------------------------
def test_report_works_while_another_process_holds_the_study(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(fixtures, tmp_path)
    _, stored = ws.stored()
    trials = stored_trials(stored)
    (stored / "report.html").unlink()
    holder = ws.hold(stored / "study.db")
    try:
        capsys.readouterr()
        assert _main(["report", str(stored)]) == 0, capsys.readouterr().err
    finally:
        stop_holder(holder)
    assert (stored / "report.html").is_file()
    assert "error" not in capsys.readouterr().err
    assert stored_trials(stored) == trials


def test_a_killed_search_leaves_no_stale_lock(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(fixtures, tmp_path)
    cfg, stored = ws.stored()
    trials = stored_trials(stored)
    holder = ws.hold(stored / "study.db")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=20)
    stop_holder(holder)
    capsys.readouterr()
    assert _main(ws.search(cfg, out=stored)) == 0, capsys.readouterr().err
    assert stored_trials(stored) == trials  # the budget was reached: resumed, nothing new


def test_excluded_rows_are_printed_once(
    fixtures: Fixtures,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The table logs the rows it excludes; the CLI prints them as its one warning line, so the
    log record is held back (a terminal would otherwise show the same news twice)."""
    case = next(c for c in CASES if c.id == "table-some-rows-bad")
    run = case.make(Workspace(fixtures, tmp_path))
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert _main(run.argv) == 0
    assert [r.getMessage() for r in caplog.records if r.name == "hwnas.evaluation.table"] == []
    assert capsys.readouterr().err.count("2 rows excluded") == 1
