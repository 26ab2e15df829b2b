"""Noise floors of latency measured here, per backend, in one process and across processes, and
whether PyTorch eager latency ranks networks as ONNX Runtime does.

For each space, ``--samples`` networks spread over FLOPs are measured twice per backend and mode
with :func:`hwnas.hardware.noise.noise_floor` (second pass in reverse order): both passes in this
process (in-process floor), and each pass in a fresh process (separate-process floor: what a later
study, or a prediction checked against a fresh measurement, meets). The rank agreement compares
each network's eager and ONNX Runtime medians (first separate-process passes). Run on a quiet
machine; the figures are this machine's. ``--batches`` and ``--threads`` give a floor per batch
size and intra-op thread count (``all``: every core), the settings that have metric names of
their own (``latency_ms@local-b8-t2``).

Usage::

    python benchmarks/latency_floors.py --samples 30 --out benchmarks/results/latency_floors.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from _cli import check_spaces
from hwnas.errors import ConfigError
from hwnas.hardware.calibrate import stratified_sample
from hwnas.hardware.fingerprint import resolve_threads
from hwnas.hardware.noise import noise_floor
from hwnas.spaces import create_space

BACKENDS = ("onnxruntime", "torch")
MODES = (("separate processes", True), ("one process", False))  # first word: --modes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--spaces", nargs="+", default=["nb201", "fbnet"])
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument(
        "--timings", nargs="+", default=["blocks"], choices=["blocks", "interleaved", "round-robin"]
    )
    p.add_argument("--modes", nargs="+", default=["separate", "one"], choices=["separate", "one"])
    p.add_argument("--batches", nargs="+", type=int, default=[1], help="batch sizes (part 5)")
    p.add_argument(
        "--threads", nargs="+", default=["1"], help="intra-op thread counts, or 'all' (part 5)"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/latency_floors.md"))
    raw = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw)
    threads: list[int] = []
    for value in args.threads:
        try:
            threads.append(resolve_threads(value if value == "all" else int(value)))
        except (ValueError, ConfigError):
            p.error(f"--threads {value}: give a count in 1..{os.cpu_count()} or 'all'")
    check_spaces(p, args.spaces)
    if any(b < 1 for b in args.batches):
        p.error(f"--batches {args.batches}: batch sizes must be at least 1")
    settings = [(b, n) for b in args.batches for n in threads]
    start = time.perf_counter()
    rows: list[dict[str, object]] = []
    ranks: list[dict[str, object]] = []
    for name in args.spaces:
        space = create_space(name)
        archs = stratified_sample(space, args.samples, np.random.default_rng(args.seed))
        first: dict[str, list[float]] = {}
        for backend, timing, (batch, n), (mode, separate) in itertools.product(
            args.backends, args.timings, settings, MODES
        ):
            if mode.split()[0] not in args.modes:
                continue
            t = time.perf_counter()
            out = noise_floor(
                space,
                archs,
                backend=backend,
                timing=timing,
                separate_processes=separate,
                batch=batch,
                threads=n,
            )
            took = time.perf_counter() - t
            label = f"b{batch}-t{n}"
            print(f"{name} {backend} {timing} {label} {mode}: {took:.0f} s", file=sys.stderr)
            rows.append(
                {
                    "space": name,
                    "backend": backend,
                    "timing": timing,
                    "batch": batch,
                    "threads": n,
                    "mode": mode,
                    **out,
                }
            )
            if separate and timing == "blocks" and (batch, n) == settings[0]:
                first[backend] = out["first_ms"]
        if not {"onnxruntime", "torch"} <= set(first):
            continue
        ort, eager = np.array(first["onnxruntime"]), np.array(first["torch"])
        ranks.append(
            {
                "space": name,
                "n": len(archs),
                "spearman": float(spearmanr(ort, eager).statistic),
                "median_eager_over_ort": float(np.median(eager / ort)),
                "ort_ms": [float(np.min(ort)), float(np.median(ort)), float(np.max(ort))],
                "eager_ms": [float(np.min(eager)), float(np.median(eager)), float(np.max(eager))],
            }
        )
    total = time.perf_counter() - start
    command = " ".join(["python", "benchmarks/latency_floors.py", *map(shlex.quote, raw)])
    lines = [
        f"## Latency noise floors and eager-vs-ONNX-Runtime ranks ({time.strftime('%Y-%m-%d')})",
        "",
        f"`{command}` on {platform.machine()} with {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {total:.0f} s. Wall clock; batch and threads as in their "
        "columns; "
        "timing 'blocks': 15 blocks of >= 20 ms per measurement (the defaults); "
        "'interleaved': 150 pairs of ~2 ms mini-blocks, network and reference network.",
        "",
        "| space | backend | timing | batch | threads | two passes in | within ±5 % "
        "| within ±10 % | Spearman | median diff. | largest diff. "
        "| median CV within a measurement |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['space']} | {r['backend']} | {r['timing']} | {r.get('batch', 1)} "
            f"| {r.get('threads', 1)} | {r['mode']} | "
            f"{r['within_5pct']:.1%} | {r['within_10pct']:.1%} | {r['spearman']:.3f} | "
            f"{r['median_abs_rel_diff']:.2%} | {r['max_abs_rel_diff']:.1%} | "
            f"{r['median_cv']:.3f} |"
        )
    lines += [
        "",
        "| space | networks | Spearman(eager, ONNX Runtime) | median eager / ORT | ORT ms "
        "(min, median, max) | eager ms (min, median, max) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in ranks:
        lines.append(
            f"| {r['space']} | {r['n']} | {r['spearman']:.3f} | {r['median_eager_over_ort']:.2f}x "
            f"| {', '.join(f'{v:.3f}' for v in r['ort_ms'])} "  # type: ignore[attr-defined]
            f"| {', '.join(f'{v:.3f}' for v in r['eager_ms'])} |"  # type: ignore[attr-defined]
        )
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"floors": rows, "ranks": ranks}, indent=1) + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
