"""Evaluation cache shared across studies: (evaluator key, canonical arch) -> metrics.

Studies that point at the same cache file never pay twice for the same measurement. Several
processes (a study and its workers, several studies) read and write one file at once: WAL, and a
busy timeout so that a writer waits for another's commit instead of failing. Only finished
evaluations go in: non-finite metrics are refused, since a failed result must be retried, not
remembered.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from pathlib import Path

from hwnas.errors import DataError
from hwnas.storage._files import (
    SQLiteFile,
    check_folder_writable,
    check_location,
    make_parents,
    schema_version,
    tables,
)
from hwnas.storage.sqlite import _dump_metrics, _load_metrics

log = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1
_VERSION_KEY = "cache_schema_version"  # not the study's key: a study.db is never taken for a cache
_CACHE_COLUMNS = {"evaluator", "arch", "metrics"}
_CACHE_DDL = (
    "CREATE TABLE IF NOT EXISTS cache (evaluator TEXT NOT NULL, arch TEXT NOT NULL,"
    " metrics TEXT NOT NULL, PRIMARY KEY (evaluator, arch))"
)
_META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_ELSEWHERE = "set `cache:` in the config or HWNAS_CACHE_DIR to another place"


class EvaluationCache(SQLiteFile):
    """A SQLite file of finished evaluations, safe to share between processes (WAL).

    Args:
        path: the cache file; created, with its folder, when missing.
        timeout_s: how long a read or write waits for another process's commit.

    Raises:
        DataError: the path can't hold a file, or the file is not an hwnas evaluation cache (it is
            left untouched), or it has a newer cache schema version.

    Example:
        >>> import tempfile, pathlib
        >>> with EvaluationCache(pathlib.Path(tempfile.mkdtemp()) / "evaluations.db") as cache:
        ...     cache.put("nb201:cifar10", "arch", {"accuracy": 93.1})
        ...     cache.get("nb201:cifar10", "arch")
        {'accuracy': 93.1}
    """

    what = "an hwnas evaluation cache"
    refuse_fix = f"delete it, or {_ELSEWHERE}"
    move_fix = _ELSEWHERE
    damaged_fix = f"delete it (it only saves time), or {_ELSEWHERE}"

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self.timeout_s = float(timeout_s)
        move = f"delete it, or {_ELSEWHERE}"
        exists = check_location(self.path, write=True, what="an hwnas evaluation cache", move=move)
        if exists:
            self._inspect()  # a foreign or newer file is refused before anything is written
        make_parents(self.path, move=_ELSEWHERE)
        # WAL keeps -wal and -shm files next to the cache: its folder must be writable.
        check_folder_writable(self.path, move=_ELSEWHERE)
        self._db = self._open_for_writing(self._setup)

    def get(self, evaluator: str, arch: str) -> dict[str, float] | None:
        """The metrics stored for ``arch`` under ``evaluator``'s key, or None."""
        try:
            row = self._db.execute(
                "SELECT metrics FROM cache WHERE evaluator = ? AND arch = ?", (evaluator, arch)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc, "read") from None
        if row is None:
            return None
        try:
            metrics = _load_metrics(row[0])
        except (TypeError, ValueError, AttributeError):
            log.warning("%s: unreadable entry for %s / %s ignored", self.path, evaluator, arch)
            return None
        if not all(math.isfinite(v) for v in metrics.values()):
            return None  # written before failed results were refused: evaluate again
        return metrics

    def put(self, evaluator: str, arch: str, metrics: dict[str, float]) -> None:
        """Store finished metrics.

        Raises:
            ValueError: a metric is not a finite number (a failed result is never cached).
        """
        for name, value in metrics.items():
            try:
                ok = math.isfinite(float(value))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(
                    f"refusing to cache {evaluator} metrics of {arch}: {name}={value!r} is not a "
                    "finite number; the cache must never hold a failed result"
                )
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO cache VALUES (?, ?, ?)",
                (evaluator, arch, _dump_metrics(metrics)),
            )
        except sqlite3.Error as exc:
            raise self._translate(exc, f"store {evaluator} metrics of {arch} in") from None

    def __len__(self) -> int:
        try:
            return int(self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0])
        except sqlite3.Error as exc:
            raise self._translate(exc, "read") from None

    def close(self) -> None:
        self._db.close()

    # -- helpers ----------------------------------------------------------------------------------
    def _classify(self, db: sqlite3.Connection) -> int | None:
        """The cache schema version (0: before versions; None: empty), refusing others' files."""
        layout = tables(db)
        if not layout:
            return None
        if "cache" not in layout or not layout["cache"] >= _CACHE_COLUMNS:
            names = sorted(layout)
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise self._foreign(f"it holds the tables {shown} and no hwnas cache table")
        if "meta" not in layout:
            if set(layout) == {"cache"}:
                return 0  # written by an hwnas from before cache versions
            raise self._foreign("it holds other tables besides the cache")
        row = db.execute("SELECT value FROM meta WHERE key = ?", (_VERSION_KEY,)).fetchone()
        version = None if row is None else schema_version(row[0])
        if version is None:
            raise self._foreign(f"its meta table has no valid {_VERSION_KEY}")
        if version > CACHE_SCHEMA_VERSION:
            raise DataError(
                f"{self.path} has cache schema version {version}, newer than version "
                f"{CACHE_SCHEMA_VERSION} that this hwnas reads; use the hwnas version that wrote "
                f"it, or {_ELSEWHERE}"
            )
        return version

    def _setup(self, db: sqlite3.Connection) -> None:
        version = self._classify(db)
        if version == CACHE_SCHEMA_VERSION:
            return
        if version == 0:
            # Older hwnas cached failed (NaN/inf) results: drop them so they are evaluated again.
            bad = []
            for evaluator, arch, text in db.execute("SELECT evaluator, arch, metrics FROM cache"):
                try:
                    ok = all(math.isfinite(v) for v in _load_metrics(text).values())
                except (TypeError, ValueError, AttributeError):
                    ok = False
                if not ok:
                    bad.append((evaluator, arch))
            db.executemany("DELETE FROM cache WHERE evaluator = ? AND arch = ?", bad)
            log.info(
                "%s: cache migrated to version 1, %d failed entries dropped", self.path, len(bad)
            )
        db.execute(_CACHE_DDL)
        db.execute(_META_DDL)
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (_VERSION_KEY, str(CACHE_SCHEMA_VERSION))
        )
