"""What the study store and the evaluation cache share: checking a path before anything is
written there, looking inside an SQLite file without changing it, and turning ``sqlite3`` errors
into one line that names the file and the fix."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from hwnas.errors import DataError, HwnasError, StoreError, StoreLockedError

SQLITE_MAGIC = b"SQLite format 3\x00"


def check_location(path: Path, *, write: bool, what: str, move: str) -> bool:
    """Refuse a path where no database can live; return whether the file exists.

    ``write``: the file must be writable and may be missing (it will be created, parent folders
    too); otherwise a missing file is an error. Nothing is created here.
    """
    try:
        if path.is_dir():
            raise DataError(f"{path} is a directory, not {what}; {move}")
        if path.exists():
            if not path.is_file():
                raise DataError(f"{path} is not a regular file, so not {what}; {move}")
            if not os.access(path, os.R_OK):
                raise DataError(f"cannot read {path}: permission denied; {move}")
            if write and not os.access(path, os.W_OK):
                raise DataError(f"{path} is read-only; make it writable, or {move}")
            return True
        if not write:
            raise DataError(f"{path} does not exist; {move}")
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise DataError(f"cannot create {path}: {ancestor} is a file, not a folder; {move}")
    except OSError as exc:  # a parent that is a file (ENOTDIR) or cannot be searched (EACCES)
        raise DataError(f"cannot use {path}: {_reason(exc)}; {move}") from None
    return False


def make_parents(path: Path, *, move: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the folder {path.parent}: {_reason(exc)}; {move}") from None


def writable_error(path: Path, exc: OSError, *, move: str) -> DataError:
    """The error for the folder of ``path`` when nothing can be written there."""
    return DataError(f"cannot write in {path.parent} (for {path}): {_reason(exc)}; {move}")


def check_folder_writable(path: Path, *, move: str) -> None:
    """Refuse a folder in which the file and its ``-wal``/``-shm`` companions can't be written."""
    folder = path.parent
    if os.access(folder, os.W_OK | os.X_OK):
        return
    code = errno.EACCES
    if hasattr(os, "statvfs") and os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 1):
        code = errno.EROFS
    raise writable_error(path, OSError(code, os.strerror(code)), move=move)


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return exc.strerror or str(exc)


def read_header(path: Path) -> bytes:
    """The first 100 bytes (SQLite's header): ``b""`` for an empty file."""
    with open(path, "rb") as f:
        return f.read(100)


def connect_readonly(path: Path, *, timeout_s: float) -> sqlite3.Connection:
    """A connection that never writes to the file nor leaves ``-wal``/``-shm`` files behind.

    A read-only connection to a WAL database creates ``-wal`` and ``-shm`` files when they are
    missing and leaves them there; when they are missing no writer is active, so the file alone
    holds every commit and is opened ``immutable`` (no locks, no side files).
    """
    header = read_header(path)
    wal_mode = len(header) >= 20 and header[18:20] == b"\x02\x02"
    immutable = wal_mode and not Path(f"{path}-wal").exists()
    uri = path.resolve().as_uri() + "?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)


def tables(db: sqlite3.Connection) -> dict[str, set[str]]:
    """Every user table with its column names."""
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {n: {r[1] for r in db.execute(_quoted("PRAGMA table_info({})", n))} for n in names}


def _quoted(sql: str, name: str) -> str:
    return sql.format('"' + name.replace('"', '""') + '"')


def _code(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", None)  # Python >= 3.11
    if isinstance(name, str):
        return name
    text = str(exc).lower()
    for needle, code in (
        ("locked", "SQLITE_BUSY"),
        ("busy", "SQLITE_BUSY"),
        ("disk is full", "SQLITE_FULL"),
        ("readonly", "SQLITE_READONLY"),
        ("i/o error", "SQLITE_IOERR"),
        ("malformed", "SQLITE_CORRUPT"),
        ("not a database", "SQLITE_NOTADB"),
        ("unable to open", "SQLITE_CANTOPEN"),
    ):
        if needle in text:
            return code
    return "SQLITE_ERROR"


def translate(
    exc: sqlite3.Error, path: Path, action: str, *, timeout_s: float, move: str, damaged: str
) -> HwnasError:
    """One line for an ``sqlite3`` error while doing ``action`` ("store trial 3 in", "read").

    ``move``: how to go elsewhere ("use another --out folder"); ``damaged``: what to do with a
    damaged file.
    """
    code = _code(exc)
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreLockedError(
            f"{path} is locked by another program (still busy after {timeout_s:g} s); "
            f"close the program that holds it, or {move}"
        )
    if code.startswith("SQLITE_FULL"):
        return StoreError(
            f"cannot {action} {path}: the disk is full; free some space and run again "
            "(what was committed is kept)"
        )
    if code.startswith("SQLITE_READONLY"):
        return StoreError(
            f"cannot {action} {path}: the file or its folder is read-only; make them writable, "
            f"or {move}"
        )
    if code.startswith("SQLITE_IOERR"):
        return StoreError(
            f"cannot {action} {path}: disk I/O error ({exc}); check the disk and run again "
            "(what was committed is kept)"
        )
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreError(f"{path} is damaged ({exc}); {damaged}")
    if code.startswith("SQLITE_CANTOPEN"):
        return DataError(f"cannot open {path} ({exc}); {move}")
    return StoreError(f"cannot {action} {path}: {exc}")
