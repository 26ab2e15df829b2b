"""Crash tests: studies killed with SIGKILL at random moments, then resumed, until they finish.

Each run is a study on NB201 with :class:`hwnas.testing.MisbehavingEvaluator` (objectives
``accuracy`` max, ``latency_ms@test`` min; metrics are a deterministic function of the cell, every
evaluation sleeps ``sleep_s``), stored in ``<folder>/study.db`` by a subclass of
:class:`hwnas.storage.SQLiteStore` that holds each trial's write transaction open for
``commit_delay_s`` before committing. The study runs in a child process (``child`` below); the
parent kills it with SIGKILL 1-3 times, re-running the same command after each kill, and lets the
last re-run finish. A kill takes the child's whole process group (the study and its workers);
with the process executor, half the kills take the study process alone, as the OOM killer would,
leaving its workers orphaned while the study is resumed. Each kill is aimed by a seeded
generator:

* ``random``: at a random delay after the (re)start (may land while starting or replaying);
* ``eval``: inside the k-th slow evaluation of this start (the evaluator writes ``in-eval`` to a
  marker file before sleeping and ``done-eval`` after);
* ``commit``: inside the k-th commit (``in-commit N`` is written after the INSERT and before the
  COMMIT of trial N, ``committed N`` after it).

Where a kill landed is read back from the marker lines written before it: inside an open commit,
inside an open evaluation, while starting/replaying (before the study was ready), or elsewhere
(asking, telling, the strategy's own work).

Measured per run, against an uninterrupted run of the same study in a fresh folder:

* lost: a trial that the store reported committed (``committed N``), or that a read-only load of
  ``study.db`` showed after a kill, missing (or changed) in any later load or at the end;
* repeated: an architecture or a trial number stored twice at the end;
* equal: the final trials (number, arch, state, metrics, charged, asks_before, tell_seq) equal the
  uninterrupted run's (sequential executor; for the process executor the set of (arch, metrics)
  and the sequence are reported, without a goal: unordered asynchronous tells depend on timing).

The sequential references run with ``sleep_s = 0`` and no commit delay through the plain
``SQLiteStore`` (timing does not change what a sequential study asks for); the process references
run with the same sleep and commit delay as the killed run.

Usage::

    python benchmarks/crash_test.py run                 # the full benchmark, ~6 min on 2 cores
    python benchmarks/crash_test.py child --out DIR --seed 0 --budget 20 --strategy nsga2 \\
        --sleep-s 0.1 --commit-delay-s 0.2 --executor sequential --workers 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas import Objective, Study, create_space, create_strategy
from hwnas.execution import RunPolicy
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.storage import SQLiteStore
from hwnas.testing import MisbehavingEvaluator
from hwnas.trial import Trial

SCRIPT = Path(__file__).resolve()
OBJECTIVES = (Objective("accuracy", "maximize"), Objective("latency_ms@test", "minimize"))
STRATEGIES = ("random", "nsga2", "moea_bus", "thompson")
# Small populations so that a budget of 20 crosses several generations (survival steps).
STRATEGY_OPTIONS: dict[str, dict[str, Any]] = {
    "random": {},
    "nsga2": {"population_size": 8},
    "moea_bus": {"population_size": 8},
    "thompson": {"initial_samples": 6},
}
MARKERS = "markers.log"
DB = "study.db"
POLL_S = 0.003
STARTUP_S = 0.8  # a fresh interpreter importing hwnas here, for random kill delays
FINISH_TIMEOUT_S = 180.0


# -- child ----------------------------------------------------------------------------------------
def mark(path: Path, line: str) -> None:
    """Append one line; ``O_APPEND`` keeps lines from several processes whole."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class MarkedEvaluator(MisbehavingEvaluator):
    """MisbehavingEvaluator that writes ``in-eval ARCH`` before its sleep, ``done-eval ARCH`` after.

    Its key is MisbehavingEvaluator's, so the study's definition is the same as the reference's.
    Defined at module level so process-pool workers (spawned: they import this script as
    ``__mp_main__``) can unpickle it.
    """

    def __init__(self, *, space: SearchSpace, sleep_s: float, markers: str) -> None:
        super().__init__(space=space, sleep_s=sleep_s)
        self.markers = markers

    def evaluate(self, arch: Arch) -> dict[str, float]:
        s = self.space.to_string(arch)
        mark(Path(self.markers), f"in-eval {s} {os.getpid()}")
        out = super().evaluate(arch)
        mark(Path(self.markers), f"done-eval {s} {os.getpid()}")
        return out


class SlowCommitStore(SQLiteStore):
    """SQLiteStore whose ``append`` holds the write transaction open for ``commit_delay_s``.

    ``SQLiteStore.append`` runs one INSERT in autocommit mode; here the INSERT runs inside an
    explicit ``BEGIN IMMEDIATE`` ... ``COMMIT`` on the store's own connection, with the marker
    ``in-commit N`` and the delay between them, so that a kill can land inside the commit.
    """

    def __init__(self, path: Path, *, commit_delay_s: float, markers: Path) -> None:
        super().__init__(path)
        self.commit_delay_s = commit_delay_s
        self.markers = markers

    def append(self, trial: Trial) -> None:
        db = self._writer(f"store trial {trial.number} in")  # opens (creates) it like append would
        db.execute("BEGIN IMMEDIATE")
        try:
            super().append(trial)  # the INSERT, inside the open transaction
            mark(self.markers, f"in-commit {trial.number} {trial.arch}")
            time.sleep(self.commit_delay_s)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        mark(self.markers, f"committed {trial.number} {trial.arch}")


def child(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    markers = out / MARKERS
    space = create_space("nb201")
    store: SQLiteStore
    if args.plain:  # the library as it is: the uninterrupted reference
        evaluator: MisbehavingEvaluator = MisbehavingEvaluator(space=space, sleep_s=args.sleep_s)
        store = SQLiteStore(out / DB)
    else:
        evaluator = MarkedEvaluator(space=space, sleep_s=args.sleep_s, markers=str(markers))
        store = SlowCommitStore(out / DB, commit_delay_s=args.commit_delay_s, markers=markers)
        mark(markers, f"start {os.getpid()}")
    with store:
        study = Study(
            space=space,
            evaluators=[evaluator],
            objectives=OBJECTIVES,
            strategy=create_strategy(args.strategy, **STRATEGY_OPTIONS[args.strategy]),
            store=store,
            seed=args.seed,
        )
        if not args.plain:
            mark(markers, f"ready {len(study.trials)}")
        study.optimize(
            args.budget,
            executor=args.executor,
            workers=args.workers if args.executor != "sequential" else None,
            policy=RunPolicy(ordered=args.ordered),
        )
    if not args.plain:
        mark(markers, "done")
    return 0


def child_command(
    out: Path, spec: RunSpec, *, plain: bool = False, sleep_s: float | None = None
) -> list[str]:
    cmd = [
        sys.executable,
        str(SCRIPT),
        "child",
        "--out",
        str(out),
        "--seed",
        str(spec.seed),
        "--budget",
        str(spec.budget),
        "--strategy",
        spec.strategy,
        "--sleep-s",
        str(spec.sleep_s if sleep_s is None else sleep_s),
        "--commit-delay-s",
        str(0.0 if plain else spec.commit_delay_s),
        "--executor",
        spec.executor,
        "--workers",
        str(spec.workers),
    ]
    if spec.ordered:
        cmd.append("--ordered")
    if plain:
        cmd.append("--plain")
    return cmd


# -- parent ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    run: int
    strategy: str
    seed: int
    executor: str
    workers: int
    ordered: bool
    budget: int
    sleep_s: float
    commit_delay_s: float


@dataclass
class Kill:
    mode: str  # random | eval | commit
    aim: str  # what it waited for
    after_s: float  # seconds after the (re)start
    target: str = "group"  # group: the study and its workers; study: the study process only
    place: str = ""  # commit | eval | startup | other
    detail: str = ""


@dataclass
class RunResult:
    spec: RunSpec
    kills: list[Kill] = field(default_factory=list)
    missed: int = 0  # planned kills the child outran (it finished first)
    lost: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    redone: int = 0
    equal_sequence: bool = False
    equal_set: bool = False
    divergence: str = ""
    n_final: int = 0
    starts: int = 0
    wall_s: float = 0.0
    error: str = ""


Snapshot = dict[int, tuple[str, str, str]]  # number -> (arch, state, metrics JSON)


def snapshot(db: Path) -> Snapshot:
    if not db.exists():
        return {}
    _, trials = SQLiteStore(db, readonly=True).load()
    return {
        t.number: (t.arch, t.state, json.dumps(dict(t.metrics), sort_keys=True)) for t in trials
    }


def final_trials(db: Path) -> list[Trial]:
    _, trials = SQLiteStore(db, readonly=True).load()
    return sorted(trials, key=lambda t: t.number)


def trial_key(t: Trial) -> tuple[Any, ...]:
    metrics = tuple(sorted((k, float(v)) for k, v in t.metrics.items()))
    return (t.number, t.arch, t.state, metrics, t.charged, t.asks_before, t.tell_seq)


class MarkerReader:
    """Reads the marker file incrementally (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.rest = b""

    def new_lines(self, upto: int | None = None) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read(-1 if upto is None else max(0, upto - self.offset))
        self.offset += len(data)
        data = self.rest + data
        *lines, self.rest = data.split(b"\n")
        return [line.decode() for line in lines]


def where(lines: list[str], db_after: Snapshot) -> tuple[str, str]:
    """Where the kill landed, from the marker lines this start wrote before it."""
    ready = False
    open_evals: set[tuple[str, str]] = set()  # (arch, worker pid)
    open_commit: tuple[int, str] | None = None
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "ready":
            ready = True
        elif kind == "in-eval":
            open_evals.add((rest.split()[0], rest.split()[1]))
        elif kind == "done-eval":  # may come from an orphaned worker of an earlier start
            open_evals.discard((rest.split()[0], rest.split()[1]))
        elif kind == "in-commit":
            number, arch = rest.split()
            open_commit = (int(number), arch)
        elif kind == "committed":
            open_commit = None
    if open_commit is not None:
        number, arch = open_commit
        stored = db_after.get(number)
        evaluating = ", ".join(sorted(a for a, _ in open_evals))
        also = f"; evaluating {evaluating}" if open_evals else ""
        if stored is None:
            return "commit", f"trial {number} uncommitted, rolled back{also}"
        return "commit", f"trial {number} already committed (kill after COMMIT){also}"
    if open_evals:
        return "eval", "evaluating " + ", ".join(sorted(a for a, _ in open_evals))
    if not ready:
        return "startup", "starting or replaying the stored trials"
    return "other", "asking / telling / strategy"


def start_child(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as f:
        # A session of its own: the kill takes the study process and its workers together.
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)


def attempt_with_kill(
    cmd: list[str], folder: Path, rng: np.random.Generator, spec: RunSpec, remaining: int
) -> Kill | None:
    """Start the child and kill it as planned; None when it finished first."""
    per_trial = spec.sleep_s / (spec.workers if spec.executor != "sequential" else 1)
    per_trial += spec.commit_delay_s
    mode = str(rng.choice(["random", "eval", "commit"], p=[0.4, 0.3, 0.3]))
    # With workers, half the kills hit the study process alone (as the OOM killer would): its
    # workers live on, orphaned, while the study is resumed.
    victim = "study" if spec.executor != "sequential" and rng.random() < 0.5 else "group"
    reader = MarkerReader(folder / MARKERS)
    lines: list[str] = []
    if mode == "random":
        delay = float(rng.uniform(0.05, STARTUP_S + remaining * per_trial))
        aim = f"{delay:.3f} s after start"
        target = None
    else:
        k = int(rng.integers(1, min(6, max(2, remaining + 1))))
        window = spec.sleep_s if mode == "eval" else spec.commit_delay_s
        offset = float(rng.uniform(0.0, 0.8 * window))
        prefix = "in-eval " if mode == "eval" else "in-commit "
        aim = f"{offset * 1000:.0f} ms after {prefix.strip()} marker #{k}"
        target = (prefix, k, offset)
        delay = None
    proc = start_child(cmd, folder / "child.stderr")
    t0 = time.perf_counter()
    kill_at: float | None = None if delay is None else t0 + delay
    seen = 0
    while proc.poll() is None:
        now = time.perf_counter()
        new = reader.new_lines()
        lines += new
        if target is not None and kill_at is None:
            prefix, k, offset = target
            for line in new:
                if line.startswith(prefix):
                    seen += 1
                    if seen == k:
                        kill_at = now + offset
                        break
        if kill_at is not None and now >= kill_at:
            if victim == "group":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            # Orphaned workers may still write done-eval lines: classify by what came before.
            upto = (folder / MARKERS).stat().st_size if (folder / MARKERS).exists() else 0
            proc.wait()
            after = time.perf_counter() - t0
            lines += reader.new_lines(upto)
            place, detail = where(lines, snapshot(folder / DB))
            return Kill(mode, aim, after, target=victim, place=place, detail=detail)
        if now - t0 > FINISH_TIMEOUT_S:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"child ran past {FINISH_TIMEOUT_S} s: {' '.join(cmd)}")
        time.sleep(POLL_S)
    if proc.returncode != 0:
        raise RuntimeError(f"child exited {proc.returncode}; see {folder / 'child.stderr'}")
    return None


def run_to_end(cmd: list[str], folder: Path) -> None:
    proc = start_child(cmd, folder / "child.stderr")
    try:
        rc = proc.wait(timeout=FINISH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"child ran past {FINISH_TIMEOUT_S} s: {' '.join(cmd)}") from None
    if rc != 0:
        tail = (folder / "child.stderr").read_text().strip().splitlines()[-1:]
        raise RuntimeError(f"child exited {rc}: {' '.join(tail)}")


def committed_markers(folder: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    path = folder / MARKERS
    for line in path.read_text().splitlines() if path.exists() else []:
        kind, _, rest = line.partition(" ")
        if kind == "committed":
            number, arch = rest.split()
            out[int(number)] = arch
    return out


def check_kept(seen: Mapping[int, tuple[str, str, str]], now: Snapshot, when: str) -> list[str]:
    lost = []
    for number, entry in seen.items():
        if number not in now:
            lost.append(f"trial {number} ({entry[0]}) missing {when}")
        elif now[number] != entry:
            lost.append(f"trial {number} changed {when}: {entry} -> {now[number]}")
    return lost


def crash_run(spec: RunSpec, work: Path, rng: np.random.Generator) -> RunResult:
    result = RunResult(spec=spec)
    t0 = time.perf_counter()
    ref_dir, crash_dir = work / f"run{spec.run:02d}-ref", work / f"run{spec.run:02d}-crash"
    ref_dir.mkdir()
    crash_dir.mkdir()
    try:
        if spec.executor == "sequential":
            run_to_end(child_command(ref_dir, spec, plain=True, sleep_s=0.0), ref_dir)
        else:  # asynchronous tells depend on timing: the reference runs at the same pace
            run_to_end(child_command(ref_dir, spec), ref_dir)
        reference = final_trials(ref_dir / DB)

        cmd = child_command(crash_dir, spec)
        n_kills = int(rng.integers(1, 4))
        seen: dict[int, tuple[str, str, str]] = {}  # every trial any load after a kill showed
        for _ in range(n_kills):
            remaining = spec.budget - len(seen)
            kill = attempt_with_kill(cmd, crash_dir, rng, spec, remaining)
            result.starts += 1
            if kill is None:
                result.missed += 1
                break
            result.kills.append(kill)
            after = snapshot(crash_dir / DB)
            result.lost += check_kept(seen, after, f"after kill {len(result.kills)}")
            # Acknowledged commits (the store's append returned) must survive the kill.
            for number, arch in committed_markers(crash_dir).items():
                if after.get(number, ("",))[0] != arch:
                    result.lost.append(
                        f"trial {number} ({arch}) committed but missing after kill "
                        f"{len(result.kills)}"
                    )
            seen.update(after)
        else:
            run_to_end(cmd, crash_dir)
            result.starts += 1
        final = snapshot(crash_dir / DB)
        result.lost += check_kept(seen, final, "at the end")
        trials = final_trials(crash_dir / DB)
        result.n_final = len(trials)
        archs = Counter(t.arch for t in trials)
        numbers = Counter(t.number for t in trials)
        result.repeated += [f"arch {a} stored {n} times" for a, n in archs.items() if n > 1]
        result.repeated += [f"trial {k} stored {n} times" for k, n in numbers.items() if n > 1]
        evals = Counter(
            line.split()[1]
            for line in (crash_dir / MARKERS).read_text().splitlines()
            if line.startswith("in-eval ")
        )
        result.redone = sum(n - 1 for n in evals.values() if n > 1)
        result.equal_sequence = [trial_key(t) for t in trials] == [trial_key(t) for t in reference]
        result.equal_set = {(t.arch, trial_key(t)[3]) for t in trials} == {
            (t.arch, trial_key(t)[3]) for t in reference
        }
        if not result.equal_sequence:
            result.divergence = describe_divergence(trials, reference)
    except Exception as exc:  # recorded in the results, never ends the benchmark
        result.error = f"{type(exc).__name__}: {exc}"
    result.wall_s = time.perf_counter() - t0
    return result


def describe_divergence(got: list[Trial], want: list[Trial]) -> str:
    if len(got) != len(want):
        return f"{len(got)} trials, reference {len(want)}"
    names = ("number", "arch", "state", "metrics", "charged", "asks_before", "tell_seq")
    for a, b in zip(got, want):
        ka, kb = trial_key(a), trial_key(b)
        if ka != kb:
            fields = [n for n, x, y in zip(names, ka, kb) if x != y]
            return f"first at trial {a.number}: {', '.join(fields)} differ ({a.arch} vs {b.arch})"
    return "same trials"


def plan(args: argparse.Namespace) -> list[RunSpec]:
    rng = np.random.default_rng([args.seed, 1])
    specs: list[RunSpec] = []
    sleeps = (0.05, 0.1, 0.2)

    def add(strategy: str, seed: int, executor: str, workers: int, ordered: bool) -> None:
        specs.append(
            RunSpec(
                run=len(specs) + 1,
                strategy=strategy,
                seed=seed,
                executor=executor,
                workers=workers,
                ordered=ordered,
                budget=args.budget,
                sleep_s=float(rng.choice(sleeps)),
                commit_delay_s=args.commit_delay_s,
            )
        )

    for i in range(args.runs):
        add(STRATEGIES[i % len(STRATEGIES)], i // len(STRATEGIES), "sequential", 1, False)
    for i in range(args.process_runs):
        add(STRATEGIES[i % len(STRATEGIES)], 100 + i, "process", 2, False)
    for i in range(args.ordered_runs):
        add(STRATEGIES[i % len(STRATEGIES)], 200 + i, "process", 2, True)
    return specs


def is_finding(r: RunResult) -> bool:
    """A lost or repeated trial, an error, or a divergence where the goal is equality."""
    exact = r.spec.executor == "sequential" or r.spec.ordered
    return bool(r.lost or r.repeated or r.error or (r.divergence and exact))


def executor_label(spec: RunSpec) -> str:
    if spec.executor == "sequential":
        return "sequential"
    return f"process x{spec.workers}" + (" ordered" if spec.ordered else "")


def places(r: RunResult) -> str:
    shown = []
    for k in r.kills:
        how = k.mode + (", study process only" if k.target == "study" else "")
        shown.append(f"{k.place} @{k.after_s:.2f} s ({how})")
    return "; ".join(shown) or "-"


def equal_label(r: RunResult) -> str:
    if r.error:
        return "error"
    if r.spec.executor == "sequential":
        return "yes" if r.equal_sequence else "NO"
    return f"set {'yes' if r.equal_set else 'no'}, sequence {'yes' if r.equal_sequence else 'no'}"


def write_csv(path: Path, results: list[RunResult]) -> None:
    fields = [
        "run",
        "strategy",
        "seed",
        "executor",
        "workers",
        "ordered",
        "budget",
        "sleep_s",
        "commit_delay_s",
        "kills",
        "kill_places",
        "kill_details",
        "missed_kills",
        "starts",
        "lost",
        "repeated",
        "redone_evaluations",
        "final_trials",
        "equal_sequence",
        "equal_set",
        "divergence",
        "wall_s",
        "error",
    ]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in results:
            s = r.spec
            w.writerow(
                {
                    "run": s.run,
                    "strategy": s.strategy,
                    "seed": s.seed,
                    "executor": s.executor,
                    "workers": s.workers,
                    "ordered": s.ordered,
                    "budget": s.budget,
                    "sleep_s": s.sleep_s,
                    "commit_delay_s": s.commit_delay_s,
                    "kills": len(r.kills),
                    "kill_places": ";".join(k.place for k in r.kills),
                    "kill_details": json.dumps(
                        [
                            {
                                "aim": f"{k.mode}: {k.aim}",
                                "target": k.target,
                                "killed_at_s": round(k.after_s, 3),
                                "place": k.place,
                                "detail": k.detail,
                            }
                            for k in r.kills
                        ]
                    ),
                    "missed_kills": r.missed,
                    "starts": r.starts,
                    "lost": len(r.lost),
                    "repeated": len(r.repeated),
                    "redone_evaluations": r.redone,
                    "final_trials": r.n_final,
                    "equal_sequence": r.equal_sequence,
                    "equal_set": r.equal_set,
                    "divergence": r.divergence,
                    "wall_s": f"{r.wall_s:.2f}",
                    "error": r.error,
                }
            )


def write_md(path: Path, results: list[RunResult], command: str, wall_s: float) -> None:
    seq = [r for r in results if r.spec.executor == "sequential"]
    par = [r for r in results if r.spec.executor != "sequential"]
    kills = [k for r in results for k in r.kills]
    by_place = Counter(k.place for k in kills)
    by_mode = Counter(k.mode for k in kills)
    lost = sum(len(r.lost) for r in results)
    repeated = sum(len(r.repeated) for r in results)
    equal = sum(r.equal_sequence and not r.error for r in seq)
    errors = [r for r in results if r.error]
    nproc = os.cpu_count()
    lines = [
        "# Crash tests: SIGKILL at random moments, then resume",
        "",
        f"- Date: 2026-11-30. Machine: {nproc} cores (`nproc` = {nproc}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}.",
        f"- Command: `{command}` (wall time {wall_s / 60:.1f} min).",
        "- Each run: an uninterrupted reference in a fresh folder, then the same study in another "
        "fresh folder whose process group (or, for half the process-executor kills, the study "
        "process alone, orphaning its workers) gets 1-3 SIGKILLs (aimed by a seeded generator: "
        "at a random delay, inside the k-th slow evaluation, or inside the k-th commit, read from "
        "marker lines the child writes), each followed by a re-run of the same command, until it "
        "finishes. NB201, `MisbehavingEvaluator` (accuracy max, latency_ms@test min), budget "
        f"{results[0].spec.budget if results else 0}, evaluation sleep 0.05 / 0.1 / 0.2 s, "
        f"commit held open {results[0].spec.commit_delay_s if results else 0} s "
        "(`SlowCommitStore`: BEGIN IMMEDIATE, INSERT, marker, sleep, COMMIT).",
        "- Lost: a trial the store acknowledged (`committed N`) or a read-only load showed after a "
        "kill, missing or changed later. Repeated: an architecture or trial number stored twice. "
        "Redone: evaluations run again because the kill came before their commit (expected, not "
        "stored twice). Equal: final trials (number, arch, state, metrics, charged, asks_before, "
        "tell_seq) identical to the uninterrupted run's.",
        "",
        "## Totals",
        "",
        f"- Runs: {len(results)} ({len(seq)} sequential, {len(par)} process x2); "
        f"kills: {len(kills)} (aimed: {by_mode['random']} random delay, {by_mode['eval']} "
        f"at an evaluation, {by_mode['commit']} at a commit; "
        f"{sum(k.target == 'study' for k in kills)} of the study process alone).",
        f"- Kills landed: {by_place['eval']} during an evaluation, {by_place['commit']} during a "
        f"commit, {by_place['startup'] + by_place['other']} elsewhere "
        f"({by_place['startup']} while starting / replaying, {by_place['other']} between "
        "steps).",
        f"- **Finished evaluations lost: {lost} (goal 0). Repeated: {repeated} (goal 0). "
        f"Sequential runs whose final trials equal the uninterrupted run: {equal} / {len(seq)} "
        "(goal all).**",
    ]
    if par:
        same_set = sum(r.equal_set and not r.error for r in par)
        same_seq = sum(r.equal_sequence and not r.error for r in par)
        lines.append(
            f"- Process executor (2 workers): lost {sum(len(r.lost) for r in par)}, repeated "
            f"{sum(len(r.repeated) for r in par)}; final set equal to a 2-worker uninterrupted "
            f"run in {same_set} / {len(par)}, same sequence in {same_seq} / {len(par)} (no goal)."
        )
    if errors:
        lines.append(f"- Errors: {len(errors)} runs (see the table).")
    lines += [
        "",
        "## Runs",
        "",
        "| run | strategy | seed | executor | sleep s | kills | where each landed, when (after the "
        "start), aimed how | lost | repeated | redone | equal to uninterrupted |",
        "|---:|---|---:|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in results:
        s = r.spec
        lines.append(
            f"| {s.run} | {s.strategy} | {s.seed} | {executor_label(s)} | {s.sleep_s:g} | "
            f"{len(r.kills)} | {places(r)} | {len(r.lost)} | {len(r.repeated)} | {r.redone} | "
            f"{equal_label(r)} |"
        )
    findings = [r for r in results if is_finding(r)]
    timing = [r for r in results if r.divergence and not is_finding(r)]
    if findings:
        lines += ["", "## Findings", ""]
        for r in findings:
            what = r.lost + r.repeated + ([r.divergence] if r.divergence else [])
            what += [r.error] if r.error else []
            lines.append(f"- Run {r.spec.run} ({r.spec.strategy}, {executor_label(r.spec)}): ")
            lines[-1] += "; ".join(what[:5])
            cmd = child_command(Path("DIR"), r.spec)
            cmd[:2] = ["python", os.path.relpath(SCRIPT)]
            lines.append(f"  - child: `{' '.join(cmd)}`")
            lines += [
                f"  - kill {i} ({k.target}): {k.mode}, {k.aim}; {k.detail}"
                for i, k in enumerate(r.kills, 1)
            ]
    if timing:
        lines += [
            "",
            "## Process runs with unordered tells whose sequence differs (no goal)",
            "",
            "Results are told as they arrive, so the tell order (and with it what an adaptive "
            "strategy asks next) depends on timing, killed or not:",
            "",
        ]
        lines += [f"- Run {r.spec.run} ({r.spec.strategy}): {r.divergence}" for r in timing]
    lines.append("")
    path.write_text("\n".join(lines))


def parent(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    specs = plan(args)
    work = Path(tempfile.mkdtemp(prefix="hwnas-crash-"))
    rng = np.random.default_rng([args.seed, 2])
    results = []
    for spec in specs:
        r = crash_run(spec, work, rng)
        results.append(r)
        status = (
            f"lost {len(r.lost)} repeated {len(r.repeated)} equal {equal_label(r)}"
            if not r.error
            else f"ERROR {r.error}"
        )
        print(
            f"run {spec.run:2d} {spec.strategy:9s} seed {spec.seed:3d} {executor_label(spec):20s}"
            f" kills {len(r.kills)} [{places(r)}] {status} ({r.wall_s:.1f} s)",
            flush=True,
        )
    wall = time.perf_counter() - started
    command = "python " + " ".join([os.path.relpath(SCRIPT), *sys.argv[1:]])
    args.results.mkdir(parents=True, exist_ok=True)
    write_csv(args.results / "crash_test.csv", results)
    write_md(args.results / "crash_test.md", results, command, wall)
    bad = [r for r in results if is_finding(r)]
    if bad and not args.clean:
        print(f"kept the run folders in {work}")
    else:
        shutil.rmtree(work)
    print(f"wrote {args.results / 'crash_test.md'} ({wall / 60:.1f} min)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="the benchmark (parent)")
    r.add_argument("--runs", type=int, default=24, help="sequential runs")
    r.add_argument("--process-runs", type=int, default=4, help="process x2 runs, unordered tells")
    r.add_argument("--ordered-runs", type=int, default=2, help="process x2 runs, ordered tells")
    r.add_argument("--budget", type=int, default=20)
    r.add_argument("--commit-delay-s", type=float, default=0.2)
    r.add_argument("--seed", type=int, default=0, help="seeds the kill moments and sleeps")
    r.add_argument("--results", type=Path, default=SCRIPT.parent / "results")
    r.add_argument("--clean", action="store_true", help="remove run folders even after a finding")
    c = sub.add_parser("child", help="one study, resumed when DIR/study.db exists")
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("--budget", type=int, required=True)
    c.add_argument("--strategy", choices=STRATEGIES, required=True)
    c.add_argument("--sleep-s", type=float, default=0.1)
    c.add_argument("--commit-delay-s", type=float, default=0.2)
    c.add_argument("--executor", choices=("sequential", "process"), default="sequential")
    c.add_argument("--workers", type=int, default=1)
    c.add_argument("--ordered", action="store_true", help="RunPolicy(ordered=True)")
    c.add_argument("--plain", action="store_true", help="plain SQLiteStore, no markers")
    args = p.parse_args(argv)
    return child(args) if args.cmd == "child" else parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
