"""Search quality on NB201 with real device latency: hwnas strategies against pymoo and Optuna.

Each (task, strategy, seed) runs once, at the largest budget; every smaller budget B is scored
on the prefix of its first B distinct evaluations. That is the same as a run stopped at B because
no strategy is told the budget (hwnas strategies get only the problem and an rng in ``setup``;
the peers' samplers never see it) and each run evaluates one architecture at a time.

Usage::

    python benchmarks/nb201_hw.py --seeds 20 --budgets 100 300 \\
        --out benchmarks/results/nb201_hw.csv [--tasks ...] [--strategies ...] [--workers 2]

Writes one CSV row per (task, strategy, seed, budget) and a Markdown summary of medians beside
it (same name, ``.md``). See docs/BENCHMARKS.md for the figures and how to read them.

Strategies (``--strategies``, default all): every registered hwnas strategy (``hwnas:*``) and the
peers of ``_peers.py``, each seeded through its library's own seed option:

* Optuna: ``optuna:nsga2``, ``optuna:tpe`` (TPESampler's defaults: independent TPE for several
  objectives), ``optuna:tpe-mv`` (multivariate TPE), ``optuna:gp`` (GPSampler, deterministic
  objective; stopped by the CPU guard on long runs).
* pymoo: ``pymoo:nsga2`` (integer SBX/PM recipe), ``pymoo:nsga2-cat`` (uniform crossover,
  random-reset mutation), ``pymoo:mixed-ga`` (MixedVariableGA with Choice variables,
  rank-and-crowding survival).
* ``white:ls``: Pareto local search in the manner of White et al.'s local search (UAI 2021).

The exact configurations are in the docstrings of ``_peers_optuna.py``, ``_peers_pymoo.py`` and
``_peers_local.py``.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path

# One BLAS thread per worker process: the workers are the parallelism (set before numpy loads).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import RUNNERS  # noqa: E402
from _scoring import TASKS, TaskScorer, make_evaluator, task_of  # noqa: E402

COLUMNS = [
    "task",
    "strategy",
    "seed",
    "budget",
    "regret",
    "hv_gap",
    "n_evaluated",
    "wall_s",
    "n_asks",
    "stopped_early",
    "stop_reason",
]
REFERENCE_PEER = "pymoo:nsga2"

_scorers: dict[str, TaskScorer] = {}  # per worker process


def run_one(job: tuple[str, str, int, tuple[int, ...], float]) -> list[dict[str, object]]:
    """Run one (task, strategy, seed) at the largest budget; score every budget's prefix."""
    task_name, strategy, seed, budgets, max_cpu_s = job
    task = task_of(task_name)
    if task_name not in _scorers:
        _scorers[task_name] = TaskScorer(task, make_evaluator(task))
    scorer = _scorers[task_name]
    evaluator = make_evaluator(task)
    log = RUNNERS[strategy](task, evaluator, seed, max(budgets), max_cpu_s)
    if len(set(log.archs)) != len(log.archs):
        raise RuntimeError(f"{strategy} on {task_name} (seed {seed}) charged a repeat")
    rows = []
    for b in sorted(budgets):
        n = min(b, len(log.archs))
        regret, hv_gap = scorer.score(log.archs[:n])
        rows.append(
            {
                "task": task_name,
                "strategy": strategy,
                "seed": seed,
                "budget": b,
                "regret": round(regret, 6),
                "hv_gap": round(hv_gap, 8),
                "n_evaluated": n,
                "wall_s": round(log.seconds[n - 1], 4) if n else 0.0,
                "n_asks": log.asks[n - 1] if n else log.total_asks,
                "stopped_early": int(n < b),
                "stop_reason": log.stop_reason if n < b else "",
            }
        )
    return rows


def _task_order(names: Iterable[str]) -> list[str]:
    """The benchmark tasks first, in their order, then any others, sorted."""
    present = set(names)
    return [t for t in TASKS if t in present] + sorted(present - set(TASKS))


def _median_table(df: pd.DataFrame, value: str, budget: int, fmt: str) -> list[str]:
    sub = df[df["budget"] == budget]
    med = sub.pivot_table(index="strategy", columns="task", values=value, aggfunc="median")
    tasks = _task_order(med.columns)
    # Registered runners in their order, then any other (e.g. relabelled earlier rows) by name.
    strategies = [s for s in RUNNERS if s in med.index]
    strategies += sorted(set(med.index) - set(strategies))
    lines = ["| strategy | " + " | ".join(tasks) + " |", "|---|" + "---:|" * len(tasks)]
    for s in strategies:
        cells = []
        for t in tasks:
            v = med.loc[s, t]
            best = v == med[t].min()
            cell = format(v, fmt)
            cells.append(f"**{cell}**" if best else cell)
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return lines


BAR_BUDGETS = (100, 300)  # the budgets the issues' bars and goals are set at
DEFAULT_STRATEGY = "hwnas:default"  # what a config that names no strategy gets
PEERS = (
    "pymoo:nsga2",
    "pymoo:nsga2-cat",
    "pymoo:mixed-ga",
    "optuna:nsga2",
    "optuna:tpe",
    "optuna:tpe-mv",
    "optuna:gp",
    "white:ls",
)


def _bar_check(df: pd.DataFrame) -> list[str]:
    """Which hwnas strategies have median regret <= pymoo NSGA-II's on every task and budget."""
    df = df[df["budget"].isin(BAR_BUDGETS)]
    med = df.groupby(["strategy", "task", "budget"])["regret"].median()
    if REFERENCE_PEER not in med.index.get_level_values(0):
        return [f"({REFERENCE_PEER} not run: no bar check)"]
    lines = [
        f"Bar: median regret no worse than {REFERENCE_PEER} on every task at budgets "
        f"{' and '.join(map(str, BAR_BUDGETS))}.",
        "",
        "| hwnas strategy | passes | tasks x budgets where it is worse (its median vs pymoo's) |",
        "|---|---|---|",
    ]
    for s in [s for s in RUNNERS if s.startswith("hwnas:") and s in med.index]:
        worse = []
        for (task, budget), ref in med[REFERENCE_PEER].items():
            mine = med.get((s, task, budget))
            if mine is not None and mine > ref:
                worse.append(f"{task} @{budget} ({mine:.3f} vs {ref:.3f})")
        lines.append(f"| {s} | {'yes' if not worse else 'no'} | {'; '.join(worse) or '-'} |")
    return lines


def _goal_check(df: pd.DataFrame) -> list[str]:
    """The default strategy's median regret over the best peer's, per task and budget."""
    med = df.groupby(["strategy", "task", "budget"])["regret"].median()
    peers = [p for p in PEERS if p in med.index.get_level_values(0)]
    if DEFAULT_STRATEGY not in med.index.get_level_values(0) or not peers:
        return [f"({DEFAULT_STRATEGY} or the peers not run: no goal check)"]
    budgets = sorted(set(df["budget"]) & {50, *BAR_BUDGETS})
    tasks = _task_order(set(df["task"]))
    lines = [
        f"Goal: {DEFAULT_STRATEGY} (the default) at <= 0.5x the best peer's median regret "
        f"({', '.join(peers)}). Cells: ratio (best peer).",
        "",
        "| budget | " + " | ".join(tasks) + " |",
        "|---:|" + "---|" * len(tasks),
    ]
    for b in budgets:
        cells = []
        for t in tasks:
            ref = {p: med.get((p, t, b)) for p in peers}
            ref = {p: v for p, v in ref.items() if v is not None}
            mine = med.get((DEFAULT_STRATEGY, t, b))
            if not ref or mine is None:
                cells.append("-")
                continue
            best = min(ref, key=lambda p: ref[p])
            ratio = mine / ref[best] if ref[best] > 0 else float("inf")
            cells.append(f"{ratio:.2f} ({best})")
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return lines


def _stopped(df: pd.DataFrame) -> list[str]:
    """Runs that evaluated fewer architectures than a budget, and why."""
    early = df[df["stopped_early"] == 1]
    if early.empty:
        return ["Every run reached every budget."]
    lines = [
        "Runs that stopped before a budget (scored on what they evaluated):",
        "",
        "| strategy | task | budget | runs | why | median n_evaluated | median asks |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    keys = ["strategy", "task", "budget", "stop_reason"]
    for (s, t, b, why), g in early.groupby(keys, sort=False):
        lines.append(
            f"| {s} | {t} | {b} | {len(g)} | {why} | {g['n_evaluated'].median():.0f} "
            f"| {g['n_asks'].median():.0f} |"
        )
    return lines


def summarise(df: pd.DataFrame, header: str) -> str:
    out = [header, ""]
    for budget in sorted(df["budget"].unique()):
        out += [f"### Median regret (accuracy points), budget {budget}", ""]
        out += [*_median_table(df, "regret", budget, ".3f"), ""]
    for budget in sorted(df["budget"].unique()):
        out += [f"### Median 1 - HV/HV*, budget {budget}", ""]
        out += [*_median_table(df, "hv_gap", budget, ".4f"), ""]
    top = int(df["budget"].max())
    out += [f"### Median wall time per run to {top} evaluations (s)", ""]
    out += [*_median_table(df, "wall_s", top, ".2f"), ""]
    out += [*_stopped(df), ""]
    out += [*_bar_check(df), ""]
    out += [*_goal_check(df), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (default 20)")
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 300])
    p.add_argument(
        "--tasks",
        nargs="+",
        default=list(TASKS),
        help="benchmark tasks (default: the five), or DATASET/DEVICE[+DEVICE] of the NB201 table",
    )
    p.add_argument("--strategies", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--max-run-cpu-s",
        type=float,
        default=60.0,
        help="stop a peer's run after this much CPU time (default 60; recorded as stop_reason=cpu)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nb201_hw.csv"))
    raw_argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw_argv)
    if args.seeds < 1 or args.workers < 1 or min(args.budgets) < 1:
        p.error("--seeds, --workers and --budgets must be positive")
    for name in args.tasks:
        try:
            make_evaluator(task_of(name))
        except Exception as exc:  # unknown dataset or device: one line, not a traceback
            p.error(str(exc))
        if not task_of(name).latency_metrics:
            p.error(f"task {name}: has one objective; score it with nb201_single.py")

    budgets = tuple(sorted(set(args.budgets)))
    # Slow strategies first, so the pool ends with short jobs.
    slow = ["optuna:gp", "optuna:tpe", "optuna:tpe-mv", "pymoo:nsga2", "optuna:nsga2"]
    order = {s: i for i, s in enumerate(slow)}
    strategies = sorted(args.strategies, key=lambda s: order.get(s, len(order)))
    jobs = [
        (t, s, seed, budgets, args.max_run_cpu_s)
        for s in strategies
        for t in args.tasks
        for seed in range(args.seeds)
    ]

    start = time.perf_counter()
    rows: list[dict[str, object]] = []
    with mp.get_context("fork").Pool(args.workers) as pool:
        for i, got in enumerate(pool.imap_unordered(run_one, jobs), start=1):
            rows += got
            if i % 20 == 0 or i == len(jobs):
                print(
                    f"[{time.perf_counter() - start:7.1f} s] {i}/{len(jobs)} runs", file=sys.stderr
                )
    total = time.perf_counter() - start

    rows.sort(
        key=lambda r: (
            _task_order(args.tasks).index(r["task"]),
            list(RUNNERS).index(r["strategy"]),
            r["seed"],
            r["budget"],
        )
    )  # type: ignore[arg-type]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    df = pd.DataFrame(rows)
    command = " ".join(["python", "benchmarks/nb201_hw.py", *map(shlex.quote, raw_argv)])
    header = (
        f"## NB201 hardware benchmark: {args.seeds} seeds, budgets {', '.join(map(str, budgets))}"
        f"\n\n`{command}` on {platform.machine()} with {os.cpu_count()} CPUs; "
        f"{len(jobs)} runs in {total:.0f} s. Best median per task in bold."
    )
    text = summarise(df, header)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
