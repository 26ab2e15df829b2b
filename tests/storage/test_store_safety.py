"""The study store refuses what is not its own untouched, migrates old schemas, reads without
writing, and turns every SQLite failure into one line naming the file and the fix."""

from __future__ import annotations

import errno
import math
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import V1_ROWS, make_v1_study, snapshot

from hwnas.errors import DataError, HwnasError, StoreError, StoreLockedError
from hwnas.storage import SQLiteStore
from hwnas.storage._files import translate
from hwnas.storage.lock import FileLock
from hwnas.storage.sqlite import SCHEMA_VERSION
from hwnas.trial import Trial

NOT_OURS = "is not an hwnas study database"


def as_unprivileged(test):  # type: ignore[no-untyped-def]
    """Run ``test(folder)`` where file permissions hold: as this user, or (root ignores them)
    in a forked child switched to the user ``nobody``, in a folder that user owns."""

    def wrapper(tmp_path: Path) -> None:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            test(tmp_path)
            return
        import pwd
        import tempfile
        import traceback

        nobody = pwd.getpwnam("nobody")
        folder = Path(tempfile.mkdtemp(prefix="hwnas-perm-"))
        folder.chmod(0o755)
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(read)
            code = 0
            try:
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                test(folder)
            except BaseException:
                os.write(write, traceback.format_exc().encode())
                code = 1
            os._exit(code)
        os.close(write)
        with os.fdopen(read) as fh:
            report = fh.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, report

    wrapper.__name__ = test.__name__
    return wrapper


def _trial(number: int, **kw: object) -> Trial:
    kw.setdefault("tell_seq", number)
    return Trial(number=number, arch=f"a{number}", metrics={"m": float(number)}, **kw)  # type: ignore[arg-type]


# -- files another tool wrote: refused, byte for byte untouched --------------------------------
def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 100)


def _other_tables(path: Path, *, wal: bool) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE results (x INTEGER, y TEXT)")
    db.execute("CREATE TABLE runs (id INTEGER)")
    db.execute("INSERT INTO results VALUES (1, 'one')")
    db.close()


def _meta_without_version(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE trials (number INTEGER PRIMARY KEY, arch TEXT)")
    db.execute("""INSERT INTO meta VALUES ('definition', '{"seed": 1}')""")
    db.close()


def _damaged(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)


def _newer(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE trials_v3 (number INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    db.close()


FOREIGN: dict[str, tuple[Callable[[Path], None], str]] = {
    "not sqlite": (_not_sqlite, f"{NOT_OURS} (it is not an SQLite file); give a new --out folder"),
    "other tables": (
        lambda p: _other_tables(p, wal=False),
        f"{NOT_OURS} (it holds the tables results, runs and no hwnas meta table); "
        "give a new --out folder",
    ),
    "other tables, wal": (
        lambda p: _other_tables(p, wal=True),
        f"{NOT_OURS} (it holds the tables results, runs and no hwnas meta table); "
        "give a new --out folder",
    ),
    "meta without schema_version": (
        _meta_without_version,
        f"{NOT_OURS} (its meta table has no schema_version); give a new --out folder",
    ),
    "damaged": (
        _damaged,
        f"{NOT_OURS} (SQLite cannot read it: file is not a database); give a new --out folder",
    ),
    "newer schema": (
        _newer,
        f"has schema version 3, newer than version {SCHEMA_VERSION} that this hwnas reads; "
        "use the hwnas version that wrote it, or give a new --out folder",
    ),
}


@pytest.mark.parametrize("readonly", [False, True], ids=["write", "readonly"])
@pytest.mark.parametrize("case", list(FOREIGN))
def test_a_file_that_is_not_ours_is_refused_untouched(
    tmp_path: Path, case: str, readonly: bool
) -> None:
    make, message = FOREIGN[case]
    path = tmp_path / "study.db"
    make(path)
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        SQLiteStore(path, readonly=readonly)
    assert str(info.value) == f"{path} {message}"
    assert snapshot(tmp_path) == before  # same bytes, no -wal/-shm/.lock left, nothing created


def test_an_empty_file_is_initialised(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    path.touch()
    with SQLiteStore(path) as store:
        store.append(_trial(0))
    with SQLiteStore(path, readonly=True) as store:
        meta, trials = store.load()
    assert meta == {"schema_version": SCHEMA_VERSION}
    assert [t.arch for t in trials] == ["a0"]


def test_nothing_is_created_before_the_first_write(tmp_path: Path) -> None:
    # A study that fails on its config never starts: it must not leave an empty study.db behind.
    with SQLiteStore(tmp_path / "out" / "study.db") as store:
        assert store.load() == ({}, [])
        assert sorted(snapshot(tmp_path)) == ["out/study.db.lock"]  # the writer's lock, no db
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]
    assert list((tmp_path / "out").iterdir()) == []


# -- schema versions ----------------------------------------------------------------------------
@pytest.fixture
def v1_study(tmp_path: Path) -> Path:
    path = tmp_path / "study.db"
    make_v1_study(path)
    return path


def _v1_expected() -> list[tuple[object, ...]]:
    out = []
    for number, arch, state, _, error, charged, asks, seq, dur, fin in sorted(
        V1_ROWS, key=lambda r: r[7]
    ):
        out.append((number, arch, state, error, bool(charged), asks, seq, dur, fin, 1, False))
    return out


def _fields(t: Trial) -> tuple[object, ...]:
    return (
        t.number,
        t.arch,
        t.state,
        t.error,
        t.charged,
        t.asks_before,
        t.tell_seq,
        t.duration_s,
        t.finished_at,
        t.attempts,
        t.cached,
    )


def test_a_v1_study_is_migrated_when_opened_for_writing(v1_study: Path) -> None:
    with SQLiteStore(v1_study) as store:
        meta, trials = store.load()
        assert meta == {"schema_version": 2, "definition": {"seed": 7}}
        assert [_fields(t) for t in trials] == _v1_expected()
        assert trials[0].metrics == {"m": 1.5, "lat": 2.0}
        assert math.isnan(trials[1].metrics["m"]) and trials[1].metrics["lat"] == math.inf
        store.append(_trial(3, tell_seq=3, attempts=2, cached=True))
    db = sqlite3.connect(v1_study)
    columns = [r[1] for r in db.execute("PRAGMA table_info(trials)")]
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert columns[-2:] == ["attempts", "cached"] and version == ("2",)
    with SQLiteStore(v1_study) as store:
        _, trials = store.load()
    assert [_fields(t) for t in trials[:3]] == _v1_expected()
    assert (trials[3].attempts, trials[3].cached) == (2, True)


def test_a_v1_study_is_read_without_migrating_when_readonly(v1_study: Path) -> None:
    before = snapshot(v1_study.parent)
    with SQLiteStore(v1_study, readonly=True) as store:
        meta, trials = store.load()
    assert meta == {"schema_version": 1, "definition": {"seed": 7}}
    assert [_fields(t) for t in trials] == _v1_expected()
    assert snapshot(v1_study.parent) == before


def test_attempts_and_cached_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    stored = [
        _trial(0),
        _trial(1, attempts=3, cached=False),
        _trial(2, attempts=1, cached=True),
        Trial(
            number=3,
            arch="a3",
            metrics={"m": math.nan},
            state="failed",
            error="timed out after 5 s",
            charged=False,
            asks_before=4,
            tell_seq=3,
            duration_s=5.5,
            finished_at=12.0,
            attempts=4,
        ),
    ]
    with SQLiteStore(path) as store:
        for t in stored:
            store.append(t)
    with SQLiteStore(path) as store:
        _, back = store.load()
    assert [_fields(t) for t in back] == [_fields(t) for t in stored]
    assert [t.attempts for t in back] == [1, 3, 1, 4]
    assert [t.cached for t in back] == [False, False, True, False]


# -- read-only ----------------------------------------------------------------------------------
def test_readonly_reads_while_a_writer_holds_the_lock_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    writer = SQLiteStore(path)
    writer.set_meta({"definition": {"seed": 1}})
    writer.append(_trial(0))
    reader = SQLiteStore(path, readonly=True)
    assert [t.arch for t in reader.load()[1]] == ["a0"]
    writer.append(_trial(1))
    assert [t.arch for t in reader.load()[1]] == ["a0", "a1"]  # sees new commits
    with pytest.raises(StoreError) as info:
        reader.append(_trial(2))
    assert str(info.value) == (
        f"cannot store trial 2 in {path}: it was opened with readonly=True; "
        "open it without readonly to write"
    )
    writer.close()
    reader.close()
    # No writer: the reader must not leave -wal/-shm behind (SQLite does in plain mode=ro).
    before = snapshot(tmp_path)
    assert sorted(before) == ["study.db"]
    with SQLiteStore(path, readonly=True) as again:
        assert len(again.load()[1]) == 2
    assert snapshot(tmp_path) == before


def test_readonly_needs_an_existing_file_and_creates_no_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "study.db"
    with pytest.raises(DataError) as info:
        SQLiteStore(path, readonly=True)
    assert str(info.value) == f"{path} does not exist; give the --out folder of an hwnas search"
    assert list(tmp_path.iterdir()) == []


# -- impossible locations -----------------------------------------------------------------------
def test_a_folder_at_the_database_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    with pytest.raises(DataError) as info:
        SQLiteStore(path)
    assert str(info.value) == (
        f"{path} is a directory, not an hwnas study database; use another --out folder"
    )
    assert snapshot(tmp_path) == {"study.db/keep.txt": b"mine"}


def test_a_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file")
    path = tmp_path / "out" / "sub" / "study.db"
    with pytest.raises(DataError) as info:
        SQLiteStore(path)
    assert str(info.value) == (
        f"cannot create {path}: {tmp_path / 'out'} is a file, not a folder; "
        "use another --out folder"
    )
    assert snapshot(tmp_path) == {"out": b"a file"}


def test_a_read_only_file_system_is_one_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(path: Path) -> FileLock:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(FileLock, "acquire", staticmethod(refuse))
    path = tmp_path / "study.db"
    with pytest.raises(DataError) as info:
        SQLiteStore(path)
    assert str(info.value) == (
        f"cannot write in {tmp_path} (for {path}): read-only file system; use another --out folder"
    )


@as_unprivileged
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(DataError) as info:
            SQLiteStore(folder / "study.db")
        assert str(info.value) == (
            f"cannot write in {folder} (for {folder / 'study.db'}): permission denied; "
            "use another --out folder"
        )
        with pytest.raises(DataError, match=r"cannot create the folder .*: permission denied"):
            SQLiteStore(folder / "sub" / "study.db")
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


@as_unprivileged
def test_a_read_only_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    with SQLiteStore(path) as store:
        store.append(_trial(0))
    path.chmod(0o444)
    with pytest.raises(DataError) as info:
        SQLiteStore(path)
    assert str(info.value) == f"{path} is read-only; make it writable, or use another --out folder"
    with SQLiteStore(path, readonly=True) as store:
        assert len(store.load()[1]) == 1


# -- one writer, and SQLite locks held by other programs ----------------------------------------
def test_a_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    with SQLiteStore(path) as first:
        first.append(_trial(0))
        with pytest.raises(StoreLockedError) as info:
            SQLiteStore(path)
        assert str(info.value) == (
            f"{path} is in use by another hwnas process (pid {os.getpid()}); "
            "wait for it to finish, or use another --out folder"
        )
        first.append(_trial(1))  # the refused one took nothing away
    assert sorted(snapshot(tmp_path)) == ["study.db"]  # closing removed the lock file
    with SQLiteStore(path) as again:
        assert [t.number for t in again.load()[1]] == [0, 1]


def test_a_dropped_store_releases_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    SQLiteStore(path).append(_trial(0))  # never closed: garbage collected at once
    with SQLiteStore(path) as store:
        assert len(store.load()[1]) == 1


def test_an_sqlite_lock_held_by_another_program_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    store = SQLiteStore(path, timeout_s=0.2)
    store.append(_trial(0))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    locked = (
        f"{path} is locked by another program (still busy after 0.2 s); "
        "close the program that holds it, or use another --out folder"
    )
    for write in (lambda: store.append(_trial(1)), lambda: store.set_meta({"x": 1})):
        with pytest.raises(StoreLockedError) as info:
            write()
        assert str(info.value) == locked
    assert [t.number for t in store.load()[1]] == [0]  # readers go on (WAL)
    store.close()
    with pytest.raises(StoreLockedError) as info:  # opening waits as long, then says so too
        SQLiteStore(path, timeout_s=0.2)
    assert str(info.value) == locked
    assert sorted(snapshot(tmp_path)) == ["study.db", "study.db-shm", "study.db-wal"]  # no .lock
    other.execute("ROLLBACK")
    other.close()
    with SQLiteStore(path) as store:
        store.append(_trial(1))
        assert [t.number for t in store.load()[1]] == [0, 1]


def test_a_full_disk_keeps_what_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    store = SQLiteStore(path)
    for i in range(3):
        store.append(_trial(i))
    # A full disk, as SQLite reports it: no page may be added to the file.
    assert store._db is not None
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    big = Trial(number=3, arch="a3", metrics={f"m{i}": float(i) for i in range(3000)}, tell_seq=3)
    with pytest.raises(StoreError) as info:
        store.append(big)
    assert str(info.value) == (
        f"cannot store trial 3 in {path}: the disk is full; free some space and run again "
        "(what was committed is kept)"
    )
    assert [t.number for t in store.load()[1]] == [0, 1, 2]
    store._db.execute("PRAGMA max_page_count = 1073741823")
    store.append(big)
    store.close()
    with SQLiteStore(path, readonly=True) as reader:
        assert [t.number for t in reader.load()[1]] == [0, 1, 2, 3]


def test_a_duplicate_trial_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    with SQLiteStore(path) as store:
        store.append(_trial(0))
        with pytest.raises(StoreError) as info:
            store.append(_trial(0))
        assert str(info.value) == (
            f"cannot store trial 0 in {path}: UNIQUE constraint failed: trials.number"
        )
        assert len(store.load()[1]) == 1


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    store = SQLiteStore(path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match=r"cannot read .*: the store is closed; open it again"):
        store.load()


def _error(name: str, text: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("name", "text", "kind", "expected"),
    [
        (
            "SQLITE_IOERR_WRITE",
            "disk I/O error",
            StoreError,
            "cannot store trial 3 in {p}: disk I/O error (disk I/O error); check the disk and "
            "run again (what was committed is kept)",
        ),
        (
            "SQLITE_READONLY",
            "attempt to write a readonly database",
            StoreError,
            "cannot store trial 3 in {p}: the file or its folder is read-only; make them "
            "writable, or use another --out folder",
        ),
        (
            "SQLITE_CORRUPT",
            "database disk image is malformed",
            StoreError,
            "{p} is damaged (database disk image is malformed); give a new --out folder",
        ),
        (
            "SQLITE_BUSY",
            "database is locked",
            StoreLockedError,
            "{p} is locked by another program (still busy after 5 s); close the program that "
            "holds it, or use another --out folder",
        ),
    ],
)
def test_sqlite_errors_become_one_line(
    tmp_path: Path, name: str, text: str, kind: type[HwnasError], expected: str
) -> None:
    path = tmp_path / "study.db"
    err = translate(
        _error(name, text),
        path,
        "store trial 3 in",
        timeout_s=5.0,
        move="use another --out folder",
        damaged="give a new --out folder",
    )
    assert type(err) is kind
    assert str(err) == expected.format(p=path)
