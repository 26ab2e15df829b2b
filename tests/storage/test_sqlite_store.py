from __future__ import annotations

import sqlite3

import pytest

from hwnas import DataError
from hwnas.storage import SQLiteStore
from hwnas.trial import Trial


def test_trials_survive_reopening_in_tell_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SQLiteStore(tmp_path / "study.db")
    store.set_meta({"definition": {"seed": 1}})
    for i, number in enumerate([2, 0, 1]):
        store.append(
            Trial(
                number=number,
                arch=f"a{number}",
                metrics={"m": float(number)},
                tell_seq=i,
                asks_before=3,
            )
        )
    store.close()
    with SQLiteStore(tmp_path / "study.db") as store:
        meta, trials = store.load()
    assert meta["definition"] == {"seed": 1} and meta["schema_version"] == 2
    assert [t.number for t in trials] == [2, 0, 1]
    assert trials[0].metrics == {"m": 2.0}
    mode = sqlite3.connect(tmp_path / "study.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_other_files_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "study.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataError, match="is not an hwnas study database"):
        SQLiteStore(path)
    db = tmp_path / "old.db"
    with SQLiteStore(db) as store:
        store.set_meta({"schema_version": 99})
    with pytest.raises(DataError, match="schema version 99"):
        SQLiteStore(db)


def test_a_trial_is_committed_when_append_returns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SQLiteStore(tmp_path / "study.db")
    store.append(Trial(number=0, arch="a", metrics={"m": 1.0}))
    # A second connection (another process after a crash) sees it without any close or flush.
    rows = sqlite3.connect(tmp_path / "study.db").execute("SELECT arch FROM trials").fetchall()
    assert rows == [("a",)]
