"""SQLite store (stdlib, WAL journal): one row per finished trial, committed at once.

WAL with ``synchronous=NORMAL`` keeps every committed trial across a crash of the process (the
failure resumption is for); only a power loss can drop the last commits. A commit costs tens of
microseconds here, against milliseconds for ``synchronous=FULL``.

Safety:

- A file is looked at read-only (``sqlite_master``, ``meta.schema_version``) before anything is
  written: another tool's file, or one written by a newer hwnas, is refused byte for byte untouched.
- One writer per file: a writing store holds an OS lock (:mod:`hwnas.storage.lock`) for its
  lifetime; a second one, in this process or another, gets :class:`StoreLockedError` naming the
  holder's pid. ``readonly=True`` takes no lock and reads while a writer is at work (WAL).
- An older schema is migrated in place when opened for writing, read as it is when read-only.
- The file is created with the first write, so a study that never starts leaves no ``study.db``.
- Every ``sqlite3`` error comes out as one line naming the file and the fix; a failed write is
  rolled back and what was committed before stays.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

from hwnas.errors import DataError, StoreError, StoreLockedError
from hwnas.storage._files import (
    SQLiteFile,
    check_location,
    connect_readonly,
    immediate_transaction,
    make_parents,
    schema_version,
    tables,
    writable_error,
)
from hwnas.storage.base import Store
from hwnas.storage.lock import FileLock, LockHeld
from hwnas.trial import Trial

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
_META_DDL = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_TRIALS_DDL = """CREATE TABLE trials (
    number INTEGER PRIMARY KEY,
    arch TEXT NOT NULL,
    state TEXT NOT NULL,
    metrics TEXT NOT NULL,
    error TEXT,
    charged INTEGER NOT NULL,
    asks_before INTEGER NOT NULL,
    tell_seq INTEGER NOT NULL UNIQUE,
    duration_s REAL NOT NULL,
    finished_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    cached INTEGER NOT NULL DEFAULT 0
)"""
_V1_COLUMNS = (
    "number",
    "arch",
    "state",
    "metrics",
    "error",
    "charged",
    "asks_before",
    "tell_seq",
    "duration_s",
    "finished_at",
)
_COLUMNS = {1: _V1_COLUMNS, 2: (*_V1_COLUMNS, "attempts", "cached")}
# Statements that take a database from version k to k + 1 (run in one transaction).
_MIGRATIONS = {
    1: (
        "ALTER TABLE trials ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE trials ADD COLUMN cached INTEGER NOT NULL DEFAULT 0",
    ),
}
_INSERT_TRIAL = (
    f"INSERT INTO trials ({', '.join(_COLUMNS[SCHEMA_VERSION])})"
    f" VALUES ({', '.join('?' * len(_COLUMNS[SCHEMA_VERSION]))})"
)
# What a version-k database reads as, for the columns it lacks (read-only opens don't migrate).
_DEFAULTS = {"attempts": "1", "cached": "0"}

_NEW_OUT = "give a new --out folder"
_OTHER_OUT = "use another --out folder"


def _dump_metrics(metrics: dict[str, float]) -> str:
    # JSON has no NaN/inf; store them as null / strings and read them back exactly.
    clean: dict[str, Any] = {}
    for k, v in metrics.items():
        v = float(v)
        clean[k] = None if math.isnan(v) else (str(v) if math.isinf(v) else v)
    return json.dumps(clean, separators=(",", ":"))


def _load_metrics(text: str) -> dict[str, float]:
    raw = json.loads(text)
    return {k: (math.nan if v is None else float(v)) for k, v in raw.items()}


class SQLiteStore(SQLiteFile, Store):
    """A study stored in one SQLite file, with one writer at a time.

    Args:
        path: the database file (``<out>/study.db``); created, with its folder, on first write.
        readonly: only read: take no lock, never write nor create anything, don't migrate; works
            while a writer is at work. A missing file is a :class:`DataError`.
        timeout_s: how long a write waits for an SQLite lock that another program holds before
            :class:`StoreLockedError`.

    Raises:
        DataError: the path can't hold a database (a folder, a read-only or missing folder), or
            the file is not an hwnas study database, or it has a newer schema version.
        StoreLockedError: another store (this process or another) has it open for writing.

    Example:
        >>> import tempfile, pathlib
        >>> with SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "study.db") as store:
        ...     store.append(Trial(number=0, arch="a", metrics={"m": 1.0}))
        ...     [t.arch for t in store.load()[1]]
        ['a']
    """

    what = "an hwnas study database"
    refuse_fix = _NEW_OUT
    move_fix = _OTHER_OUT
    damaged_fix = f"{_NEW_OUT}, or repair it with the sqlite3 tool's .recover"

    def __init__(self, path: str | Path, *, readonly: bool = False, timeout_s: float = 5.0) -> None:
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self.timeout_s = float(timeout_s)
        self._db: sqlite3.Connection | None = None
        self._lock: FileLock | None = None
        self._closed = False
        exists = check_location(
            self.path,
            write=not readonly,
            what="an hwnas study database",
            move=_OTHER_OUT if not readonly else "give the --out folder of an hwnas search",
        )
        # Look before writing anything: a refused file stays byte for byte as it was.
        version = self._inspect() if exists else None
        if readonly:
            return
        make_parents(self.path, move=_OTHER_OUT)
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self._lock = FileLock.acquire(lock_path)
        except LockHeld as held:
            pid = "unknown" if held.pid is None else held.pid
            raise StoreLockedError(
                f"{self.path} is in use by another hwnas process (pid {pid}); "
                f"wait for it to finish, or {_OTHER_OUT}"
            ) from None
        except OSError as exc:
            raise writable_error(self.path, exc, move=_OTHER_OUT) from None
        if version is not None:  # an existing study: open (and migrate) now; a new one on write
            try:
                self._db = self._open_writer()
            except BaseException:
                self._lock.release()
                raise

    # -- Store ------------------------------------------------------------------------------------
    def load(self) -> tuple[dict[str, Any], list[Trial]]:
        """Study attributes and all trials in tell order (``({}, [])`` before the first write)."""
        self._check_open("read")
        if self.readonly:
            try:
                db = connect_readonly(self.path, timeout_s=self.timeout_s)
            except OSError as exc:
                raise DataError(f"cannot read {self.path}: {exc.strerror or exc}") from None
            try:
                version = self._classify(db)
                return ({}, []) if version is None else self._read(db, version)
            except sqlite3.Error as exc:
                raise self._translate(exc, "read") from None
            finally:
                db.close()
        if self._db is None:
            return {}, []
        try:
            return self._read(self._db, SCHEMA_VERSION)
        except sqlite3.Error as exc:
            raise self._translate(exc, "read") from None

    def append(self, trial: Trial) -> None:
        """Commit one finished trial: it is on disk when this returns."""
        action = f"store trial {trial.number} in"
        db = self._writer(action)
        values = (
            trial.number,
            trial.arch,
            trial.state,
            _dump_metrics(dict(trial.metrics)),
            trial.error,
            int(trial.charged),
            trial.asks_before,
            trial.tell_seq,
            trial.duration_s,
            trial.finished_at,
            int(trial.attempts),
            int(trial.cached),
        )
        try:
            db.execute(_INSERT_TRIAL, values)
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from None

    def set_meta(self, values: dict[str, Any]) -> None:
        """Store study attributes (JSON-serialisable values), all or none."""
        action = "store study attributes in"
        db = self._writer(action)
        rows = [(k, json.dumps(v)) for k, v in values.items()]
        try:
            with immediate_transaction(db):
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from None

    def close(self) -> None:
        """Close the file and release the lock (idempotent)."""
        self._closed = True
        try:
            if self._db is not None:
                self._db.close()  # the last connection checkpoints and removes -wal / -shm
        finally:
            self._db = None
            if self._lock is not None:
                self._lock.release()

    # -- opening ----------------------------------------------------------------------------------
    def _classify(self, db: sqlite3.Connection) -> int | None:
        """Refuse what is not an hwnas study of a version this hwnas reads; None when empty."""
        layout = tables(db)
        if not layout:
            return None
        if "meta" not in layout:
            names = sorted(layout)
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise self._foreign(f"it holds the tables {shown} and no hwnas meta table")
        if not {"key", "value"} <= layout["meta"]:
            raise self._foreign("its meta table has other columns than hwnas's")
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise self._foreign("its meta table has no schema_version")
        version = schema_version(row[0])
        if version is None:
            raise self._foreign(f"its schema_version {row[0]!r} is not a version number")
        if version > SCHEMA_VERSION:
            raise DataError(
                f"{self.path} has schema version {version}, newer than version {SCHEMA_VERSION} "
                "that this hwnas reads; use the hwnas version that wrote it, "
                f"or {_NEW_OUT}"
            )
        if "trials" not in layout:
            raise self._foreign("it has no trials table")
        missing = [c for c in _COLUMNS[version] if c not in layout["trials"]]
        if missing:
            raise self._foreign(f"its trials table lacks the columns {', '.join(missing)}")
        return version

    def _open_writer(self) -> sqlite3.Connection:
        """Connect for writing (lock held): create the schema, or migrate an older one."""
        return self._open_for_writing(self._create_or_migrate)

    def _create_or_migrate(self, db: sqlite3.Connection) -> None:
        # Again, under the write lock: what was looked at before may have changed.
        version = self._classify(db)
        if version is None:
            db.execute(_META_DDL)
            db.execute(_TRIALS_DDL)
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif version < SCHEMA_VERSION:
            for v in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[v]:
                    db.execute(statement)
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
            log.info("%s: migrated schema version %d -> %d", self.path, version, SCHEMA_VERSION)

    # -- helpers ----------------------------------------------------------------------------------
    def _check_open(self, action: str) -> None:
        if self._closed:
            raise StoreError(f"cannot {action} {self.path}: the store is closed; open it again")

    def _writer(self, action: str) -> sqlite3.Connection:
        if self.readonly:
            raise StoreError(
                f"cannot {action} {self.path}: it was opened with readonly=True; "
                "open it without readonly to write"
            )
        self._check_open(action)
        if self._lock is None or not self._lock.held:
            raise StoreError(
                f"cannot {action} {self.path}: this process does not hold the study's lock "
                "(a forked child?); only the process that opened the store may write to it"
            )
        if self._db is None:
            make_parents(self.path, move=_OTHER_OUT)
            self._db = self._open_writer()
        return self._db

    def _read(self, db: sqlite3.Connection, version: int) -> tuple[dict[str, Any], list[Trial]]:
        columns = [c if c in _COLUMNS[version] else _DEFAULTS[c] for c in _COLUMNS[SCHEMA_VERSION]]
        # One read transaction: meta and trials from the same snapshot while a writer commits.
        db.execute("BEGIN")
        try:
            meta_rows = db.execute("SELECT key, value FROM meta").fetchall()
            rows = db.execute(
                f"SELECT {', '.join(columns)} FROM trials ORDER BY tell_seq"
            ).fetchall()
        finally:
            db.execute("COMMIT")
        try:
            meta = {k: json.loads(v) for k, v in meta_rows}
            trials = [
                Trial(
                    number=r[0],
                    arch=r[1],
                    state=r[2],
                    metrics=_load_metrics(r[3]),
                    error=r[4],
                    charged=bool(r[5]),
                    asks_before=r[6],
                    tell_seq=r[7],
                    duration_s=r[8],
                    finished_at=r[9],
                    attempts=int(r[10]),
                    cached=bool(r[11]),
                )
                for r in rows
            ]
        except (TypeError, ValueError, AttributeError) as exc:
            raise StoreError(
                f"{self.path} is damaged (a stored value is not what hwnas wrote: {exc}); "
                f"{_NEW_OUT}, or repair it"
            ) from None
        return meta, trials
