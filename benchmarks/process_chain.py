"""In-process against separate-process latency agreement, paired in time (issue #13, part 4).

Issue #13, part 4 asks whether torch eager latency measured in separate processes agrees within
5 points of the in-process floor. Measuring the two floors one after the other (as
``latency_floors.py`` does) confounds the process with the machine's drift between the runs: two
runs of the same floor an hour apart differ by up to 30 points here. This benchmark pairs them.

A chain of ``--processes`` K fresh processes runs one after another; each times the same networks
twice, the first pass in order and the second in reverse. That gives, all adjacent in time:

- K **in-process** pairs: the two passes of process k;
- K - 1 **separate-process** pairs: the second pass of process k against the first of process k+1.

Within both kinds of pair, network i's two measurements lie the same set of times apart (a
network measured last in one pass is measured first in the next), so the only difference between
the kinds is the process boundary. Each pair's agreement (share within ±5 % / ±10 %, Spearman,
median difference) is reported, with the two kinds' means, their difference and its 95 % interval
(Welch). The **common shift** of a pair is the median of log(second / first): a fresh process
that runs every network a few per cent faster or slower moves it, noise per network does not.

    python benchmarks/process_chain.py --spaces nb201 fbnet --samples 60 --seed 2 --processes 6 \\
        --out benchmarks/results/process_chain.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from _cli import check_spaces
from hwnas.errors import HwnasError
from hwnas.hardware.calibrate import stratified_sample
from hwnas.hardware.measured import DEFAULT_MIN_BLOCK_S, DEFAULT_REPEATS, DEFAULT_WARMUP
from hwnas.hardware.noise import agreement, passes_in_fresh_process, set_options
from hwnas.spaces import create_space

KINDS = ("in-process", "separate processes")


def run_process(space: str, strings: list[str], backend: str, timing: str) -> list[list[float]]:
    """One fresh process: ``strings`` timed forward, then in reverse; both passes' medians in
    the order of ``strings``."""
    sp = create_space(space)
    archs = [sp.from_string(s) for s in strings]
    opts = set_options(
        backend=backend,
        batch=1,
        threads=1,
        warmup=DEFAULT_WARMUP,
        repeats=DEFAULT_REPEATS,
        min_block_s=DEFAULT_MIN_BLOCK_S,
        clock="wall",
        timing=timing,
    )
    try:
        first, second = passes_in_fresh_process(sp, [archs, archs[::-1]], opts)
    except (HwnasError, RuntimeError) as exc:
        raise SystemExit(f"error: {exc}") from None
    return [[m.median_ms for m in first], [m.median_ms for m in second][::-1]]


def pair_row(kind: str, k: int, a: list[float], b: list[float]) -> dict[str, Any]:
    shares = agreement(a, b)
    shift = float(np.median(np.log(np.asarray(b) / np.asarray(a))))
    # The same pair once the common shift is divided out: what is left is per-network noise.
    unshifted = agreement(a, list(np.asarray(b) / np.exp(shift)))
    return {
        "kind": kind,
        "pair": k,
        **{key: shares[key] for key in ("within_5pct", "within_10pct", "spearman")},
        "median_abs_rel_diff": shares["median_abs_rel_diff"],
        "shift": shift,
        "within_5pct_unshifted": unshifted["within_5pct"],
        "within_10pct_unshifted": unshifted["within_10pct"],
    }


def welch(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """mean(y) - mean(x) and its 95 % interval (Welch's t)."""
    a, b = np.asarray(x), np.asarray(y)
    diff = float(b.mean() - a.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof)) * se
    return diff, diff - half, diff + half


def summarize(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key in (
        "within_5pct",
        "within_10pct",
        "spearman",
        "median_abs_rel_diff",
        "within_5pct_unshifted",
        "within_10pct_unshifted",
    ):
        ins = [p[key] for p in pairs if p["kind"] == KINDS[0]]
        sep = [p[key] for p in pairs if p["kind"] == KINDS[1]]
        diff, lo, hi = welch(ins, sep)
        out.append(
            {
                "metric": key,
                "in_process": [float(np.mean(ins)), float(np.std(ins, ddof=1))],
                "separate": [float(np.mean(sep)), float(np.std(sep, ddof=1))],
                "difference": [diff, lo, hi],
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--spaces", nargs="+", default=["nb201", "fbnet"])
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--processes", type=int, default=6)
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    p.add_argument("--timing", default="round-robin", choices=["round-robin", "blocks"])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/process_chain.md"))
    raw = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw)
    if args.processes < 3:
        p.error(f"--processes {args.processes}: need at least 3 (two separate-process pairs)")
    check_spaces(p, args.spaces)
    if args.samples < 3:
        p.error(f"--samples {args.samples}: need at least 3 networks for a rank correlation")
    start = time.perf_counter()
    results = {}
    for name in args.spaces:
        space = create_space(name)
        archs = stratified_sample(space, args.samples, np.random.default_rng(args.seed))
        strings = [space.to_string(a) for a in archs]
        passes: list[list[float]] = []
        for k in range(args.processes):
            t = time.perf_counter()
            passes += run_process(name, strings, args.backend, args.timing)
            print(f"{name} process {k}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        pairs = []
        for k in range(args.processes):
            pairs.append(pair_row(KINDS[0], k, passes[2 * k], passes[2 * k + 1]))
            if k + 1 < args.processes:
                pairs.append(pair_row(KINDS[1], k, passes[2 * k + 1], passes[2 * k + 2]))
        results[name] = {
            "strings": strings,
            "passes": passes,
            "pairs": pairs,
            "summary": summarize(pairs),
        }
    total = time.perf_counter() - start
    write(args, raw, results, total)
    return 0


def write(args: argparse.Namespace, raw: list[str], results: dict[str, Any], total: float) -> None:
    command = " ".join(["python", "benchmarks/process_chain.py", *map(shlex.quote, raw)])
    lines = [
        f"## In-process against separate-process latency agreement, paired in time "
        f"({time.strftime('%Y-%m-%d')})",
        "",
        f"`{command}` on {platform.machine()} with {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {total:.0f} s. Backend {args.backend}, timing "
        f"{args.timing}, batch 1, one thread; {args.samples} networks per space, "
        f"{args.processes} processes of two passes each.",
        "",
    ]
    for name, res in results.items():
        lines += [
            f"### {name}: every pair",
            "",
            "| kind | pair | within ±5 % | within ±10 % | Spearman | median diff. | common shift "
            "| ±5 % without the shift | ±10 % without the shift |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in res["pairs"]:
            lines.append(
                f"| {r['kind']} | {r['pair']} | {r['within_5pct']:.1%} | {r['within_10pct']:.1%} "
                f"| {r['spearman']:.3f} | {r['median_abs_rel_diff']:.2%} | {r['shift']:+.2%} "
                f"| {r['within_5pct_unshifted']:.1%} | {r['within_10pct_unshifted']:.1%} |"
            )
        lines += [
            "",
            f"### {name}: means over pairs (± std), separate minus in-process with its 95 % "
            "interval",
            "",
            "| metric | in-process | separate processes | difference [95 % interval] |",
            "|---|---:|---:|---|",
        ]
        for s in res["summary"]:
            pct = s["metric"] != "spearman"
            f = (lambda v: f"{100 * v:.1f}") if pct else (lambda v: f"{v:.3f}")
            (mi, si), (ms, ss), (d, lo, hi) = s["in_process"], s["separate"], s["difference"]
            lines.append(
                f"| {s['metric']} | {f(mi)} ± {f(si)} | {f(ms)} ± {f(ss)} "
                f"| {f(d)} [{f(lo)}, {f(hi)}] |"
            )
        lines.append("")
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
