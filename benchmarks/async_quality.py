"""What asynchrony costs: search quality with W asynchronous workers vs one at a time, at equal
budget, on the NB201 hardware tasks.

Each (task, strategy, seed) is run twice through ``Study.optimize``: with the sequential
executor, and on :class:`hwnas.execution.simulated.SimulatedBackend` with ``--workers`` virtual
workers, where an evaluation of a cell takes ``(0.5 + flops / median flops) * lognormal(0, 0.3)``
seconds (training time grows with FLOPs; the noise is seeded by the seed and the cell). The
strategy then sees the asks and tells of a real asynchronous run: W - 1 results are missing at
every ask, and they come back out of order. Budget B is scored on the first B architectures in
ask order, which is exactly what a run stopped at B evaluates (the driver never asks beyond the
budget, and no strategy is told it). Regret and HV gap as in ``nb201_hw.py``.

Usage::

    python benchmarks/async_quality.py --seeds 20 --budgets 100 300 --workers 2 \\
        --out benchmarks/results/async_quality.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import _objectives  # noqa: E402
from _scoring import TASKS, TaskScorer, make_evaluator, task_of  # noqa: E402
from hwnas import Problem, Study, create_space, create_strategy  # noqa: E402
from hwnas.execution import Job  # noqa: E402
from hwnas.execution.simulated import SimulatedBackend  # noqa: E402
from hwnas.strategies import default_strategy_spec  # noqa: E402

STRATEGIES = {
    "default": None,  # what a config that names no strategy gets
    "nsga2": {},
    "evolution": {},
    "thompson": {},
    "random": {},
}
COLUMNS = ["task", "strategy", "mode", "seed", "budget", "regret", "hv_gap", "utilisation"]
_scorers: dict[str, TaskScorer] = {}


def duration_model(seed: int):  # type: ignore[no-untyped-def]
    space = create_space("nb201")
    flops = [space.cheap_metrics(space.decode(np.array(c)))["flops_m"] for c in _sample_codes()]
    median = float(np.median(flops))

    def duration(job: Job) -> float:
        f = space.cheap_metrics(job.arch)["flops_m"]
        h = hashlib.sha256(f"{seed}:{job.arch_str}".encode()).digest()
        u = (int.from_bytes(h[:8], "big") + 0.5) / 2**64
        noise = float(np.exp(0.3 * _norm_ppf(u)))
        return (0.5 + f / median) * noise

    return duration


def _sample_codes() -> list[list[int]]:
    rng = np.random.default_rng(12345)
    return [list(rng.integers(0, 5, size=6)) for _ in range(500)]


def _norm_ppf(u: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(u))


def run_one(job: tuple[str, str, str, int, tuple[int, ...], int]) -> list[dict[str, object]]:
    task_name, strategy_name, mode, seed, budgets, workers = job
    task = task_of(task_name)
    if task_name not in _scorers:
        _scorers[task_name] = TaskScorer(task, make_evaluator(task))
    scorer = _scorers[task_name]
    evaluator = make_evaluator(task)
    space = create_space("nb201")
    objectives = _objectives(task)
    options = STRATEGIES[strategy_name]
    if options is None:
        name, options = default_strategy_spec(Problem(space, tuple(objectives), ()))
    else:
        name = strategy_name
    study = Study(
        space=space,
        evaluators=[evaluator],
        objectives=objectives,
        strategy=create_strategy(name, **options),
        seed=seed,
    )
    utilisation = 1.0
    if mode == "sequential":
        study.optimize(max(budgets))
    else:
        backend = SimulatedBackend([evaluator], workers=workers, duration=duration_model(seed))
        study.optimize(max(budgets), executor=backend)
        utilisation = backend.utilisation
    in_ask_order = [t.arch for t in sorted(study.trials, key=lambda t: t.number) if t.charged]
    rows = []
    for b in budgets:
        regret, hv_gap = scorer.score(in_ask_order[:b])
        rows.append(
            {
                "task": task_name,
                "strategy": strategy_name,
                "mode": mode,
                "seed": seed,
                "budget": b,
                "regret": round(regret, 6),
                "hv_gap": round(hv_gap, 8),
                "utilisation": round(utilisation, 4),
            }
        )
    return rows


def summarise(df: pd.DataFrame, workers: int, header: str) -> str:
    async_mode = f"async{workers}"
    out = [header, ""]
    for b in sorted(df["budget"].unique()):
        sub = df[df["budget"] == b]
        med = sub.pivot_table(
            index=["strategy", "mode"], columns="task", values="regret", aggfunc="median"
        )
        tasks = [t for t in TASKS if t in med.columns] + sorted(set(med.columns) - set(TASKS))
        out += [
            f"### Median regret at {b} evaluations: sequential / {workers} async workers "
            "(ratio; Wilcoxon signed-rank p over paired seeds)",
            "",
            "| strategy | " + " | ".join(tasks) + " |",
            "|---|" + "---|" * len(tasks),
        ]
        for s in [s for s in STRATEGIES if s in set(sub["strategy"])]:
            cells = []
            for t in tasks:
                seq = med.loc[(s, "sequential"), t]
                asy = med.loc[(s, async_mode), t]
                paired = sub[(sub["strategy"] == s) & (sub["task"] == t)].pivot_table(
                    index="seed", columns="mode", values="regret"
                )
                p = _wilcoxon(paired["sequential"], paired[async_mode])
                ratio = asy / seq if seq > 0 else float("nan")
                cells.append(f"{seq:.3f} / {asy:.3f} ({ratio:.2f}; p={p:.2f})")
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        out.append("")
    util = df[df["mode"] == async_mode]["utilisation"]
    out += [
        f"Worker utilisation in the asynchronous runs (share of virtual worker time spent "
        f"evaluating): median {util.median():.3f}, min {util.min():.3f}.",
        "",
    ]
    return "\n".join(out)


def _wilcoxon(a: pd.Series, b: pd.Series) -> float:
    from scipy.stats import wilcoxon

    diff = (a - b).to_numpy()
    if np.allclose(diff, 0):
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 300])
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    p.add_argument("--workers", type=int, default=2, help="asynchronous workers simulated")
    p.add_argument("--processes", type=int, default=2, help="processes running the benchmark")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/async_quality.csv"))
    raw = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw)
    budgets = tuple(sorted(set(args.budgets)))
    modes = ("sequential", f"async{args.workers}")
    jobs = [
        (t, s, m, seed, budgets, args.workers)
        for s in args.strategies
        for t in args.tasks
        for m in modes
        for seed in range(args.seeds)
    ]
    start = time.perf_counter()
    rows: list[dict[str, object]] = []
    with mp.get_context("fork").Pool(args.processes) as pool:
        for i, got in enumerate(pool.imap_unordered(run_one, jobs), start=1):
            rows += got
            if i % 50 == 0 or i == len(jobs):
                print(f"[{time.perf_counter() - start:7.1f} s] {i}/{len(jobs)}", file=sys.stderr)
    total = time.perf_counter() - start
    rows.sort(
        key=lambda r: (str(r["task"]), str(r["strategy"]), str(r["mode"]), r["seed"], r["budget"])
    )  # type: ignore[arg-type]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    command = " ".join(["python", "benchmarks/async_quality.py", *map(shlex.quote, raw)])
    header = (
        f"## Asynchronous evaluation vs one at a time: {args.seeds} seeds, {args.workers} "
        f"simulated workers\n\n`{command}` on {platform.machine()} with {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d')}; {len(jobs)} runs in {total:.0f} s."
    )
    text = summarise(pd.DataFrame(rows), args.workers, header)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
