"""Evaluations needed to reach the NB201 optimum with the table's test accuracy as the objective.

White et al. (2020, "Local search is state of the art for NAS benchmarks") report local search
reaching the CIFAR-100 optimum in 127 evaluations on average; our goal is <= 100. Each
(dataset, strategy, seed) maximises the ``accuracy`` (test, 200 epochs) of the built-in ``nb201``
evaluator, with no latency metrics (``devices=[]``), up to ``--budget`` distinct evaluations. The
optimum (the table's best accuracy; any cell with that accuracy counts) is computed from the
evaluator's full table after the run and used only for scoring: no strategy sees it, and no
strategy is told the budget or tuned per dataset.

Strategies: every registered hwnas strategy but the Optuna adapter (with ``moea_bus`` also run with
its pairwise-SVM surrogate), and two peers charged like in ``_peers.py`` (a repeat proposal is
answered free from a memo and not counted):

* ``optuna:tpe`` -- ``optuna.samplers.TPESampler(seed=seed)`` (defaults), 6 categorical
  parameters ``e0..e5`` over the 5 NB201 operations, in-memory storage.
* ``pymoo:ga`` -- ``pymoo.algorithms.soo.nonconvex.ga.GA`` through pymoo's ask/tell with the same
  integer recipe as ``pymoo:nsga2`` in ``_peers.py``: pop_size 20, IntegerRandomSampling,
  SBX(prob=1.0, eta=3.0) and PM(prob=1.0, eta=3.0) on the float relaxation with RoundingRepair,
  eliminate_duplicates=True.

``pymoo:nsga2`` and ``optuna:nsga2`` from ``_peers.py`` can be added with ``--strategies``.

Usage::

    python benchmarks/nb201_single.py --seeds 20 --budget 500 \\
        --out benchmarks/results/nb201_single.csv [--datasets ...] [--strategies ...] [--workers 2]

Writes one CSV row per (dataset, strategy, seed) and a Markdown summary beside it (``.md``).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from pathlib import Path

# One BLAS thread per worker process: the workers are the parallelism (set before numpy loads).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import RUNNERS as PEER_RUNNERS  # noqa: E402
from _peers import RunLog, Runner, run_pymoo  # noqa: E402
from _scoring import Task, make_evaluator, task_of  # noqa: E402
from hwnas.evaluation.base import Evaluator  # noqa: E402

DATASETS = ("cifar100", "cifar10", "ImageNet16-120")  # cifar100 is the headline
HEADLINE = "cifar100"
REGRET_AT = (50, 100, 200)
GOAL = 100  # evaluations to the optimum we aim for (White et al. 2020: local search, 127)


def run_pymoo_ga(
    task: Task, evaluator: Evaluator, seed: int, budget: int, max_cpu_s: float
) -> RunLog:
    """pymoo's single-objective GA with the integer recipe of ``_peers.run_pymoo_nsga2``."""
    from pymoo.algorithms.soo.nonconvex.ga import GA

    if task.metrics != ("accuracy",):
        raise ValueError(f"pymoo:ga optimises accuracy alone, but the task has {task.metrics}")
    return run_pymoo(GA, task, evaluator, seed, budget, max_cpu_s)


# Every hwnas runner of _peers (all registered strategies but the Optuna adapter, moea_bus+svm),
# then the peers. Slow ones are started first (see main).
RUNNERS: dict[str, Runner] = {
    **{k: r for k, r in PEER_RUNNERS.items() if k.startswith("hwnas:")},
    "optuna:tpe": PEER_RUNNERS["optuna:tpe"],
    "pymoo:ga": run_pymoo_ga,
}
OPTIONAL: dict[str, Runner] = {k: PEER_RUNNERS[k] for k in ("pymoo:nsga2", "optuna:nsga2")}
ALL_RUNNERS: dict[str, Runner] = {**RUNNERS, **OPTIONAL}

COLUMNS = [
    "dataset",
    "strategy",
    "seed",
    "budget",
    "optimum",
    "n_optimal_cells",
    "evals_to_optimum",  # "" when not reached within the budget
    "best_found",
    *(f"regret@{b}" for b in REGRET_AT),
    "n_evaluated",
    "wall_s",
    "n_asks",
    "stop_reason",
]


def run_single(
    dataset: str, strategy: str, seed: int, budget: int, max_cpu_s: float = 60.0
) -> dict[str, object]:
    """One run of ``strategy`` maximising NB201 test accuracy on ``dataset``, scored on the table.

    Returns one CSV row (keys :data:`COLUMNS`); ``evals_to_optimum`` is the number of distinct
    evaluations at which a cell with the table's best accuracy was first evaluated, or ``None``
    when the run did not evaluate one. ``regret@B`` (optimum minus the best accuracy among the
    first B evaluations) is ``None`` for B above the budget.

    Example::

        row = run_single("cifar100", "hwnas:local_search", seed=0, budget=100)
    """
    # A dataset name: no devices, the evaluator gives accuracy only; or a single-objective config.
    task = task_of(dataset) if dataset.endswith((".yaml", ".yml")) else Task(dataset, ())
    evaluator = make_evaluator(task)
    start = time.perf_counter()
    log = ALL_RUNNERS[strategy](task, evaluator, seed, budget, max_cpu_s)
    wall = time.perf_counter() - start
    if len(set(log.archs)) != len(log.archs):
        raise RuntimeError(f"{strategy} on {dataset} (seed {seed}) charged a repeat")
    if len(log.archs) > budget:
        raise RuntimeError(f"{strategy} on {dataset} (seed {seed}) went over the budget")

    # Scoring only, after the run: the full table.
    table = evaluator.table()  # type: ignore[attr-defined]
    accuracy = table[task.metrics[0]]
    optimum = float(accuracy.max())
    found = accuracy.loc[log.archs].to_numpy(dtype=float)
    hits = np.flatnonzero(found == optimum)
    best_so_far = np.maximum.accumulate(found) if len(found) else found
    regrets: dict[str, object] = {}
    for b in REGRET_AT:
        n = min(b, len(found))
        if b > budget:
            regrets[f"regret@{b}"] = None
        else:
            regrets[f"regret@{b}"] = round(optimum - best_so_far[n - 1], 6) if n else None
    return {
        "dataset": dataset,
        "strategy": strategy,
        "seed": seed,
        "budget": budget,
        "optimum": round(optimum, 6),
        "n_optimal_cells": int((accuracy == optimum).sum()),
        "evals_to_optimum": int(hits[0]) + 1 if len(hits) else None,
        "best_found": round(float(best_so_far[-1]), 6) if len(found) else None,
        **regrets,
        "n_evaluated": len(log.archs),
        "wall_s": round(wall, 4),
        "n_asks": log.total_asks,
        "stop_reason": log.stop_reason,
    }


def _order(dataset: str) -> tuple[int, str]:
    """Datasets in :data:`DATASETS` order, then configs by name."""
    return (DATASETS.index(dataset), "") if dataset in DATASETS else (len(DATASETS), dataset)


def _run_job(job: tuple[str, str, int, int, float]) -> dict[str, object]:
    return run_single(*job)


# -- summary --------------------------------------------------------------------------------------
def _fmt_evals(v: float, budget: int) -> str:
    return f"> {budget}" if not np.isfinite(v) else f"{v:.0f}" if v == int(v) else f"{v:.1f}"


def _dataset_table(df: pd.DataFrame, budget: int, strategies: list[str]) -> list[str]:
    regret_cols = [f"regret@{b}" for b in REGRET_AT if b <= budget]
    within = sorted({b for b in (GOAL, budget) if b <= budget})
    lines = [
        "| strategy | mean evals to opt. | median evals to opt. | "
        + " | ".join(f"reached <= {b}" for b in within)
        + " | "
        + " | ".join(f"median regret @{c.split('@')[1]}" for c in regret_cols)
        + " | median wall s |",
        "|---|---:|---:|" + "---:|" * (len(within) + len(regret_cols)) + "---:|",
    ]
    for s in strategies:
        g = df[df["strategy"] == s]
        if g.empty:
            continue
        e = pd.to_numeric(g["evals_to_optimum"], errors="coerce").to_numpy(dtype=float)
        reached = np.isfinite(e)
        mean = np.where(reached, e, budget).mean()
        mean_cell = f"{mean:.1f}" if reached.all() else f">= {mean:.1f}"
        median = float(np.median(np.where(reached, e, np.inf)))
        cells = [
            mean_cell,
            _fmt_evals(median, budget),
            *(f"{np.mean(reached & (e <= b)):.0%}" for b in within),
            *(f"{g[c].astype(float).median():.3f}" for c in regret_cols),
            f"{g['wall_s'].median():.2f}",
        ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return lines


def _stopped(df: pd.DataFrame) -> list[str]:
    early = df[df["stop_reason"] != ""]
    if early.empty:
        return ["Every run evaluated its full budget of distinct architectures."]
    lines = [
        "Runs that stopped before the budget (scored on what they evaluated):",
        "",
        "| strategy | dataset | runs | why | median n_evaluated | median asks |",
        "|---|---|---:|---|---:|---:|",
    ]
    for (s, d, why), g in early.groupby(["strategy", "dataset", "stop_reason"], sort=False):
        lines.append(
            f"| {s} | {d} | {len(g)} | {why} | {g['n_evaluated'].median():.0f} "
            f"| {g['n_asks'].median():.0f} |"
        )
    return lines


def summarise(df: pd.DataFrame, header: str, budget: int) -> str:
    strategies = [s for s in ALL_RUNNERS if s in set(df["strategy"])]
    datasets = sorted(set(df["dataset"]), key=_order)
    out = [header, ""]
    for d in datasets:
        sub = df[df["dataset"] == d]
        title = "headline; " if d == HEADLINE else ""
        what, unit = ("test accuracy ", " %") if d in DATASETS else ("", "")
        n_cells = int(sub["n_optimal_cells"].iloc[0])
        out += [
            f"### {d} ({title}optimum: {what}{sub['optimum'].iloc[0]:.3f}{unit}, "
            f"{n_cells} cell{'s' if n_cells > 1 else ''}; {sub['seed'].nunique()} seeds)",
            "",
            *_dataset_table(sub, budget, strategies),
            "",
        ]
    out += [*_stopped(df), ""]
    return "\n".join(out)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _explanation(budget: int, load: str) -> str:
    """How to read the tables (shared by a run's summary and a merged one)."""
    return (
        "Objective: maximise NB201 test accuracy (200 epochs) of the dataset, the table's "
        "own value as the signal; the optimum is the table's best accuracy (any cell with "
        "it counts), used only for scoring. Budget = distinct architectures; a repeat is "
        f"free and not counted. Goal: <= {GOAL} evaluations on {HEADLINE} (White et al. 2020 "
        "report 127 for local search).\n\n"
        f"*Mean evals to opt.* counts a run that did not reach the optimum as {budget}, "
        "so where some runs did not reach it (marked `>=`) the mean is a lower bound; the "
        f"median is `> {budget}` when the median run did not reach it. *Reached* = share "
        "of runs that evaluated the optimum within 100 and within the budget. *Regret @B* = "
        "optimum minus the best accuracy among the first B evaluations (accuracy points). "
        f"*Wall s* = one whole run to the budget (load average at the start: {load})."
    )


def merge(csvs: list[Path]) -> pd.DataFrame:
    """Rows of all files; for a repeated (dataset, strategy, seed), the last file's row."""
    df = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    return df.drop_duplicates(subset=["dataset", "strategy", "seed"], keep="last")


def main_merge(csvs: list[Path], out: Path) -> int:
    """Summarise result files of separate runs (a rerun of one strategy replaces its rows)."""
    df = merge(csvs)
    budgets = sorted(set(df["budget"]))
    if len(budgets) != 1:
        raise SystemExit(f"the files mix budgets {budgets}: merge runs of one budget only")
    df.to_csv(out, index=False)
    header = (
        f"## NB201 single objective: evaluations to the optimum, budget {budgets[0]} "
        "(merged runs)\n\nSeeds per strategy: "
        + ", ".join(f"{s} {n}" for s, n in df.groupby("strategy")["seed"].nunique().items())
        + "\n\nMerged from (later files replace earlier rows of the same run): "
        + ", ".join(f"`{c}`" for c in csvs)
        + "\n\n"
        + _explanation(budgets[0], "see the source runs")
    )
    text = summarise(df, header, budgets[0])
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (default 20)")
    p.add_argument("--budget", type=int, default=500, help="max distinct evaluations (500)")
    p.add_argument(
        "--datasets",
        nargs="+",
        default=list(DATASETS),
        help=f"of {', '.join(DATASETS)}, or hwnas configs (.yaml) with one objective to maximise "
        "and one evaluator holding the whole table (e.g. benchmarks/tuning/c10valid-single.yaml)",
    )
    p.add_argument("--strategies", nargs="+", default=list(RUNNERS), choices=list(ALL_RUNNERS))
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--max-run-cpu-s",
        type=float,
        default=60.0,
        help="stop a peer's run after this much CPU time (default 60; stop_reason=cpu)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nb201_single.csv"))
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="summarise these result CSVs into --out instead of running (later files win)",
    )
    raw_argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw_argv)
    if args.seeds < 1 or args.workers < 1 or args.budget < 1:
        p.error("--seeds, --workers and --budget must be positive")
    if args.merge:
        return main_merge(args.merge, args.out)
    for d in args.datasets:
        if d in DATASETS:
            continue
        if not d.endswith((".yaml", ".yml")):
            p.error(f"dataset {d!r}: expected one of {', '.join(DATASETS)} or a .yaml config")
        try:
            task = task_of(d)
            make_evaluator(task)
        except Exception as exc:  # a bad config: one line, not a traceback
            p.error(str(exc))
        if task.latency_metrics:
            p.error(f"{d}: has {len(task.metrics)} objectives; nb201_single scores one")

    # Slow strategies first, so the pool ends with short jobs.
    slow = ["hwnas:linas", "optuna:tpe", "optuna:nsga2", "hwnas:moea_bus+svm"]
    order = {s: i for i, s in enumerate(slow)}
    strategies = sorted(dict.fromkeys(args.strategies), key=lambda s: order.get(s, len(order)))
    jobs = [
        (d, s, seed, args.budget, args.max_run_cpu_s)
        for s in strategies
        for d in args.datasets
        for seed in range(args.seeds)
    ]

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    start = time.perf_counter()
    rows: list[dict[str, object]] = []

    def progress(i: int) -> None:
        if i % 20 == 0 or i == len(jobs):
            print(f"[{time.perf_counter() - start:7.1f} s] {i}/{len(jobs)} runs", file=sys.stderr)

    if args.workers == 1:
        for i, job in enumerate(jobs, start=1):
            rows.append(_run_job(job))
            progress(i)
    else:
        with mp.get_context("fork").Pool(args.workers) as pool:
            for i, row in enumerate(pool.imap_unordered(_run_job, jobs), start=1):
                rows.append(row)
                progress(i)
    total = time.perf_counter() - start

    names = list(ALL_RUNNERS)
    rows.sort(
        key=lambda r: (
            _order(str(r["dataset"])),
            names.index(str(r["strategy"])),
            int(r["seed"]),  # type: ignore[call-overload]
        )
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    df = pd.DataFrame(rows, columns=COLUMNS)
    command = " ".join(["python", "benchmarks/nb201_single.py", *map(shlex.quote, raw_argv)])
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    header = (
        f"## NB201 single objective: evaluations to the optimum, {args.seeds} seeds, "
        f"budget {args.budget}\n\n"
        f"`{command}`\n\n"
        f"Finished {when} on {platform.node()} ({_cpu_model()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}), "
        f"{args.workers} worker(s); {len(jobs)} runs in {total:.0f} s.\n\n"
        + _explanation(args.budget, load)
    )
    text = summarise(df, header, args.budget)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
