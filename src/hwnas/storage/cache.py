"""Evaluation cache shared across studies: (evaluator key, canonical arch) -> metrics.

Studies that point at the same cache file never pay twice for the same measurement.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hwnas.errors import DataError
from hwnas.storage.sqlite import _dump_metrics, _load_metrics


class EvaluationCache:
    """A SQLite file of finished evaluations, safe to share between processes (WAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS cache (evaluator TEXT NOT NULL, arch TEXT NOT NULL,"
                " metrics TEXT NOT NULL, PRIMARY KEY (evaluator, arch))"
            )
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path} is not a usable hwnas cache: {exc}") from None

    def get(self, evaluator: str, arch: str) -> dict[str, float] | None:
        row = self._db.execute(
            "SELECT metrics FROM cache WHERE evaluator = ? AND arch = ?", (evaluator, arch)
        ).fetchone()
        return None if row is None else _load_metrics(row[0])

    def put(self, evaluator: str, arch: str, metrics: dict[str, float]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO cache VALUES (?, ?, ?)",
            (evaluator, arch, _dump_metrics(metrics)),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0])

    def close(self) -> None:
        self._db.close()
