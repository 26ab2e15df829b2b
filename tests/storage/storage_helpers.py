"""Helpers for the storage tests: what a folder holds, byte for byte, and a v1 study by hand."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

# The layout hwnas 0.1 wrote (schema version 1), copied here so migrations are tested against it.
V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
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

V1_ROWS = [
    (0, "a0", "complete", '{"m":1.5,"lat":2.0}', None, 1, 1, 0, 0.25, 1000.0),
    (2, "a2", "failed", '{"m":null,"lat":"inf"}', "boom", 0, 3, 1, 0.5, 1001.0),
    (1, "a1", "complete", '{"m":0.5,"lat":3.0}', None, 1, 3, 2, 0.125, 1002.0),
]


def make_v1_study(path: Path) -> None:
    """A study.db as hwnas wrote it before schema version 2 (WAL, closed cleanly)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V1_DDL)
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", "1"), ("definition", json.dumps({"seed": 7}))],
    )
    db.executemany("INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", V1_ROWS)
    db.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
