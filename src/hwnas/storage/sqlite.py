"""SQLite store (stdlib, WAL journal): one row per finished trial, committed at once.

WAL with ``synchronous=NORMAL`` keeps every committed trial across a crash of the process (the
failure resumption is for); only a power loss can drop the last commits. A commit costs tens of
microseconds here, against milliseconds for ``synchronous=FULL``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from hwnas.errors import DataError
from hwnas.storage.base import Store
from hwnas.trial import Trial

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    number INTEGER PRIMARY KEY,
    arch TEXT NOT NULL,
    state TEXT NOT NULL,
    metrics TEXT NOT NULL,
    error TEXT,
    charged INTEGER NOT NULL,
    asks_before INTEGER NOT NULL,
    tell_seq INTEGER NOT NULL UNIQUE,
    duration_s REAL NOT NULL,
    finished_at REAL NOT NULL
);
"""


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


class SQLiteStore(Store):
    """A study stored in one SQLite file.

    Example:
        >>> import tempfile, pathlib
        >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "study.db")
        >>> store.load()
        ({}, [])
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path} is not a usable hwnas study database: {exc}") from None
        meta, _ = self._read_meta()
        version = meta.get("schema_version")
        if version is None:
            self.set_meta({"schema_version": SCHEMA_VERSION})
        elif version != SCHEMA_VERSION:
            raise DataError(
                f"{self.path} has schema version {version}, this hwnas reads {SCHEMA_VERSION}; "
                "use a new --out folder or the hwnas version that wrote it"
            )

    def _read_meta(self) -> tuple[dict[str, Any], None]:
        rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}, None

    def load(self) -> tuple[dict[str, Any], list[Trial]]:
        meta, _ = self._read_meta()
        rows = self._db.execute(
            "SELECT number, arch, state, metrics, error, charged, asks_before, tell_seq,"
            " duration_s, finished_at FROM trials ORDER BY tell_seq"
        ).fetchall()
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
            )
            for r in rows
        ]
        return meta, trials

    def append(self, trial: Trial) -> None:
        self._db.execute(
            "INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )

    def set_meta(self, values: dict[str, Any]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def close(self) -> None:
        self._db.close()
