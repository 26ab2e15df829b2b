"""Pilot for issue #13: does timing each network interleaved with a fixed reference network
cancel this VM's drift in speed?

Each pass runs in a fresh process and, for each of ``--samples`` NB201 networks (spread over
FLOPs; the second pass in reverse order), alternates ~2 ms mini-blocks of the network and of a
fixed reference cell for ``--seconds`` seconds (ONNX Runtime, one thread). Three estimates per
network are compared across the two passes: the network's median (raw), the ratio of the two
medians, and the median of the per-pair ratios. The reference's own agreement is the drift.

Usage::

    python benchmarks/reference_timing_pilot.py --samples 24 \\
        --out benchmarks/results/reference_timing_pilot.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REFERENCE = (  # a mid-size NB201 cell, timed beside every network
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
)


def one_pass(samples: int, seed: int, reverse: bool, seconds: float) -> list[list[object]]:
    import torch

    from hwnas.hardware.backends import export_onnx, onnx_session
    from hwnas.hardware.calibrate import stratified_sample
    from hwnas.spaces import create_space

    torch.set_num_threads(1)
    space = create_space("nb201")
    archs = stratified_sample(space, samples, np.random.default_rng(seed))
    if reverse:
        archs = archs[::-1]
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)

    def runner(arch: object) -> partial[object]:
        session = onnx_session(export_onnx(space.build_network(arch), (3, 32, 32)), threads=1)
        return partial(session.run, None, {i.name: x for i in session.get_inputs()})

    def mini(fn: partial[object], target: float = 0.002) -> float:
        t = time.perf_counter()
        fn()
        n = max(1, int(target / max(time.perf_counter() - t, 1e-7)))
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n

    ref = runner(space.from_string(REFERENCE))
    out = []
    for arch in archs:
        net = runner(arch)
        for _ in range(20):
            net()
            ref()
        nets, refs = [], []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            nets.append(mini(net))
            refs.append(mini(ref))
        n, r = np.array(nets), np.array(refs)
        out.append(
            [
                space.to_string(arch),
                float(np.median(n) * 1e3),
                float(np.median(r) * 1e3),
                float(np.median(n / r)),
            ]
        )
    return out


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    from scipy.stats import spearmanr

    rel = np.abs(a - b) / ((a + b) / 2)
    return (
        f"{np.mean(rel <= 0.05):.1%} | {np.mean(rel <= 0.10):.1%} | {np.median(rel):.2%} | "
        f"{spearmanr(a, b).statistic:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, default=0.6)
    p.add_argument("--pass", dest="one", choices=["forward", "reverse"], default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/reference_timing_pilot.md"))
    raw = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw)
    if args.one is not None:  # a child: one pass, JSON on stdout
        print(json.dumps(one_pass(args.samples, args.seed, args.one == "reverse", args.seconds)))
        return 0
    passes = []
    for direction in ("forward", "reverse"):
        cmd = [sys.executable, __file__, "--pass", direction, "--samples", str(args.samples)]
        cmd += ["--seed", str(args.seed), "--seconds", str(args.seconds)]
        passes.append({r[0]: r for r in json.loads(subprocess.check_output(cmd, text=True))})
    first, second = passes
    keys = list(first)

    def column(i: int, d: dict[str, list[object]]) -> np.ndarray:
        return np.array([float(d[k][i]) for k in keys])  # type: ignore[arg-type]

    command = " ".join(["python", "benchmarks/reference_timing_pilot.py", *map(shlex.quote, raw)])
    lines = [
        f"## Reference-interleaved timing, pilot ({time.strftime('%Y-%m-%d')})",
        "",
        f"`{command}` on {platform.machine()} with {os.cpu_count()} CPUs; two passes, each in "
        f"a fresh process, over {len(keys)} NB201 networks (ONNX Runtime, one thread).",
        "",
        "| estimate | within ±5 % | within ±10 % | median diff. | Spearman |",
        "|---|---:|---:|---:|---:|",
        f"| network median (raw ms) | {agreement(column(1, first), column(1, second))} |",
        "| network median / reference median | "
        + agreement(column(1, first) / column(2, first), column(1, second) / column(2, second))
        + " |",
        f"| median of per-pair ratios | {agreement(column(3, first), column(3, second))} |",
        f"| the reference itself (drift) | {agreement(column(2, first), column(2, second))} |",
        "",
        f"Reference median over each pass: {np.median(column(2, first)):.3f} ms and "
        f"{np.median(column(2, second)):.3f} ms.",
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
