"""The shared evaluation cache: others' files refused untouched, failed results never kept, and
several processes writing at once lose nothing."""

from __future__ import annotations

import math
import multiprocessing
import os
import sqlite3
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from storage_helpers import make_v1_study, snapshot

from hwnas.errors import DataError, StoreLockedError
from hwnas.storage import EvaluationCache
from hwnas.storage.cache import CACHE_SCHEMA_VERSION

FIX = "delete it, or set `cache:` in the config or HWNAS_CACHE_DIR to another place"


def test_metrics_round_trip_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "evaluations.db"
    with EvaluationCache(path) as cache:
        cache.put("ev", "a", {"acc": 91.5, "lat": 2.25})
        cache.put("ev", "a", {"acc": 92.0, "lat": 2.25})  # replaced, not duplicated
        assert cache.get("ev", "b") is None and cache.get("other", "a") is None
    with EvaluationCache(path) as cache:
        assert cache.get("ev", "a") == {"acc": 92.0, "lat": 2.25}
        assert len(cache) == 1
    db = sqlite3.connect(path)
    meta = db.execute("SELECT key, value FROM meta").fetchall()
    db.close()
    assert meta == [("cache_schema_version", str(CACHE_SCHEMA_VERSION))]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"), ("fast", "'fast'")],
)
def test_a_failed_result_is_never_cached(tmp_path: Path, value: object, shown: str) -> None:
    with EvaluationCache(tmp_path / "evaluations.db") as cache:
        with pytest.raises(ValueError) as info:
            cache.put("ev", "a", {"acc": 90.0, "lat": value})  # type: ignore[dict-item]
        assert str(info.value) == (
            f"refusing to cache ev metrics of a: lat={shown} is not a finite number; "
            "the cache must never hold a failed result"
        )
        assert len(cache) == 0 and cache.get("ev", "a") is None


def _other_tables(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE things (x INTEGER)")
    db.close()


def _newer(path: Path) -> None:
    with EvaluationCache(path):
        pass
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value = '7' WHERE key = 'cache_schema_version'")
    db.close()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"\x00garbage" * 300), "is not an hwnas evaluation cache "
         "(it is not an SQLite file); " + FIX),
        (_other_tables, "is not an hwnas evaluation cache "
         "(it holds the tables things and no hwnas cache table); " + FIX),
        (make_v1_study, "is not an hwnas evaluation cache "
         "(it holds the tables meta, trials and no hwnas cache table); " + FIX),
        (_newer, f"has cache schema version 7, newer than version {CACHE_SCHEMA_VERSION} that "
         "this hwnas reads; use the hwnas version that wrote it, or set `cache:` in the config "
         "or HWNAS_CACHE_DIR to another place"),
    ],
    ids=["not sqlite", "other tables", "a study.db", "newer"],
)  # fmt: skip
def test_a_file_that_is_not_a_cache_is_refused_untouched(
    tmp_path: Path, make: object, reason: str
) -> None:
    path = tmp_path / "evaluations.db"
    make(path)  # type: ignore[operator]
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        EvaluationCache(path)
    assert str(info.value) == f"{path} {reason}"
    assert snapshot(tmp_path) == before


def test_a_cache_from_before_versions_is_kept_without_its_failed_results(tmp_path: Path) -> None:
    path = tmp_path / "evaluations.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE cache (evaluator TEXT NOT NULL, arch TEXT NOT NULL,"
        " metrics TEXT NOT NULL, PRIMARY KEY (evaluator, arch))"
    )
    db.executemany(
        "INSERT INTO cache VALUES (?, ?, ?)",
        [
            ("ev", "good", '{"acc":91.0}'),
            ("ev", "nan", '{"acc":null}'),
            ("ev", "inf", '{"acc":"inf"}'),
        ],
    )
    db.close()
    with EvaluationCache(path) as cache:
        assert cache.get("ev", "good") == {"acc": 91.0}
        assert cache.get("ev", "nan") is None and cache.get("ev", "inf") is None
        assert len(cache) == 1


def test_a_locked_cache_waits_then_says_so(tmp_path: Path) -> None:
    path = tmp_path / "evaluations.db"
    cache = EvaluationCache(path, timeout_s=0.2)
    cache.put("ev", "a", {"acc": 1.0})
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreLockedError) as info:
        cache.put("ev", "b", {"acc": 2.0})
    assert str(info.value) == (
        f"{path} is locked by another program (still busy after 0.2 s); close the program that "
        "holds it, or set `cache:` in the config or HWNAS_CACHE_DIR to another place"
    )
    assert cache.get("ev", "a") == {"acc": 1.0}  # reads go on (WAL)
    other.execute("ROLLBACK")
    other.close()
    cache.put("ev", "b", {"acc": 2.0})
    assert len(cache) == 2
    cache.close()


def test_an_impossible_cache_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file")
    path = tmp_path / "cache" / "evaluations.db"
    with pytest.raises(DataError) as info:
        EvaluationCache(path)
    assert str(info.value) == (
        f"cannot create {path}: {tmp_path / 'cache'} is a file, not a folder; " + FIX
    )


def _put_entries(path: Path, tag: str, go: Event) -> None:
    go.wait(30)
    cache = EvaluationCache(path)  # a fresh file: both processes may create it at once
    for i in range(200):
        cache.put("ev", f"{tag}-{i}", {"acc": float(i), "lat": i / 8})
    cache.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the writers (fast to start)")
def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "evaluations.db"
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    children = [ctx.Process(target=_put_entries, args=(path, tag, go)) for tag in ("a", "b")]
    for child in children:
        child.start()
    go.set()  # both start together
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    with EvaluationCache(path) as cache:
        assert len(cache) == 400
        for tag in ("a", "b"):
            for i in range(200):
                assert cache.get("ev", f"{tag}-{i}") == {"acc": float(i), "lat": i / 8}
