"""What the study store and the evaluation cache share: checking a path before anything is
written there, looking inside an SQLite file without changing it, and turning ``sqlite3`` errors
into one line that names the file and the fix."""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from hwnas.errors import DataError, HwnasError, StoreError, StoreLockedError

SQLITE_MAGIC = b"SQLite format 3\x00"
log = logging.getLogger(__name__)
_F = TypeVar("_F", bound="SQLiteFile")


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


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (SQLite's write lock at once) ... ``COMMIT``, or ``ROLLBACK`` on any
    error: all of the block's writes or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def schema_version(text: object) -> int | None:
    """A stored schema version (JSON text of a whole number >= 1), else None."""
    try:
        version = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return None
    return version


class SQLiteFile:
    """What the study store and the evaluation cache share as SQLite files of their own: looking
    inside a file before anything is written to it, opening it for writing, and one line for
    every ``sqlite3`` error. Subclasses set the texts and say what is theirs (``_classify``)."""

    path: Path
    timeout_s: float
    what: str = "an hwnas file"  # "an hwnas study database"
    refuse_fix: str = ""  # the fix for a file that is not ours
    move_fix: str = ""  # the fix for a place where no file can live
    damaged_fix: str = ""  # the fix for a damaged file

    def __enter__(self: _F) -> _F:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the file (subclasses close their connection)."""

    def _classify(self, db: sqlite3.Connection) -> int | None:
        """The schema version of a file that is ours (None: empty); raise :meth:`_foreign`
        for others."""
        raise NotImplementedError

    def _inspect(self) -> int | None:
        """The schema version of the file (None: empty, to initialise), without changing it."""
        try:
            header = read_header(self.path)
        except OSError as exc:
            raise DataError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if not header:
            return None
        if not header.startswith(SQLITE_MAGIC):
            raise self._foreign("it is not an SQLite file")
        try:
            db = connect_readonly(self.path, timeout_s=self.timeout_s)
            try:
                return self._classify(db)
            finally:
                db.close()
        except sqlite3.Error as exc:
            err = self._translate(exc, "read")
            if isinstance(err, StoreLockedError):
                raise err from None
            raise self._foreign(f"SQLite cannot read it: {exc}") from None

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.timeout_s
            )
        except sqlite3.Error as exc:
            raise self._translate(exc, "open") from None

    def _open_for_writing(self, setup: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
        """Connect for writing in WAL mode and run ``setup`` (create or migrate the schema) in
        one immediate transaction: under SQLite's write lock, so that another process creating
        the same file at the same moment waits, and what was inspected before is checked again."""
        db = self._connect_writer()
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("%s: journal mode %s (WAL not available here)", self.path, mode)
            db.execute("PRAGMA synchronous=NORMAL")
            with immediate_transaction(db):
                setup(db)
        except sqlite3.Error as exc:
            db.close()
            raise self._translate(exc, "open") from None
        except BaseException:
            db.close()
            raise
        return db

    def _foreign(self, reason: str) -> DataError:
        return DataError(f"{self.path} is not {self.what} ({reason}); {self.refuse_fix}")

    def _translate(self, exc: sqlite3.Error, action: str) -> HwnasError:
        return translate(
            exc,
            self.path,
            action,
            timeout_s=self.timeout_s,
            move=self.move_fix,
            damaged=self.damaged_fix,
        )
