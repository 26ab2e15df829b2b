"""One writer per study.db across processes; the lock dies with its process, even by SIGKILL."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from hwnas.errors import StoreError, StoreLockedError
from hwnas.storage import SQLiteStore
from hwnas.trial import Trial

# Forked children: separate processes with their own pids, without paying for a new interpreter.
CTX = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
pytestmark = pytest.mark.skipif(CTX is None, reason="needs fork and POSIX signals")


def _holder(path: Path, fork_worker: bool, ready: Connection, done: Event) -> None:
    """Open the store for writing, commit one trial, maybe fork a worker, wait to be killed."""
    store = SQLiteStore(path)
    store.append(Trial(number=0, arch="from-child", metrics={"m": 1.0}))
    worker = 0
    if fork_worker:
        worker = os.fork()
        if worker == 0:  # a worker process: it never touches the store
            time.sleep(60)
            os._exit(0)
    ready.send((os.getpid(), worker))
    done.wait(60)


def _hold(path: Path, *, fork_worker: bool = False) -> tuple[BaseProcess, int]:
    assert CTX is not None
    ours, theirs = CTX.Pipe()
    child = CTX.Process(target=_holder, args=(path, fork_worker, theirs, CTX.Event()))
    child.start()
    assert ours.poll(30), "the child did not open the store"
    pid, worker = ours.recv()
    assert pid == child.pid
    return child, worker


def _reap(child: BaseProcess) -> None:
    # Not join(): a forked worker holds the child's sentinel pipe open, join would wait for it.
    deadline = time.monotonic() + 10
    while child.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.01)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_the_lock_is_held_across_processes_and_freed_by_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    child, _ = _hold(path)
    try:
        with pytest.raises(StoreLockedError) as info:
            SQLiteStore(path)
        assert str(info.value) == (
            f"{path} is in use by another hwnas process (pid {child.pid}); "
            "wait for it to finish, or use another --out folder"
        )
        with SQLiteStore(path, readonly=True) as reader:  # reading goes on meanwhile
            assert [t.arch for t in reader.load()[1]] == ["from-child"]
    finally:
        child.kill()  # SIGKILL: no close(), no cleanup
        _reap(child)
    assert child.exitcode == -signal.SIGKILL
    with SQLiteStore(path, readonly=True) as reader:  # a crashed writer's WAL is read too
        assert [t.arch for t in reader.load()[1]] == ["from-child"]
    with SQLiteStore(path) as store:  # the kernel dropped the lock with the process
        assert [t.arch for t in store.load()[1]] == ["from-child"]  # and the commit stayed


def test_a_forked_worker_does_not_keep_the_study_locked(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    child, worker = _hold(path, fork_worker=True)
    try:
        with pytest.raises(StoreLockedError, match=f"pid {child.pid}"):
            SQLiteStore(path)
        child.kill()
        _reap(child)
        assert child.exitcode == -signal.SIGKILL
        os.kill(worker, 0)  # the forked worker outlives the study process, yet the lock is free
        with SQLiteStore(path) as store:
            assert [t.arch for t in store.load()[1]] == ["from-child"]
    finally:
        child.kill()
        _kill(worker)


def _write_inherited(store: SQLiteStore, out: Connection) -> None:
    try:
        store.append(Trial(number=1, arch="from-fork", metrics={"m": 2.0}, tell_seq=1))
        out.send("written")
    except StoreError as exc:
        out.send(str(exc))


def test_a_forked_child_cannot_write_and_leaves_the_parents_lock(tmp_path: Path) -> None:
    assert CTX is not None
    path = tmp_path / "study.db"
    with SQLiteStore(path) as store:
        store.append(Trial(number=0, arch="from-parent", metrics={"m": 1.0}))
        ours, theirs = CTX.Pipe()
        child = CTX.Process(target=_write_inherited, args=(store, theirs))
        child.start()
        child.join(30)
        assert ours.recv() == (
            f"cannot store trial 1 in {path}: this process does not hold the study's lock "
            "(a forked child?); only the process that opened the store may write to it"
        )
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
            SQLiteStore(path)  # the child's exit did not release the parent's lock
        store.append(Trial(number=1, arch="again", metrics={"m": 1.0}, tell_seq=1))
        assert [t.arch for t in store.load()[1]] == ["from-parent", "again"]
