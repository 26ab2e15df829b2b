"""Pilot for issue #13, part 4: which reference scale makes PyTorch eager latency repeatable
across processes?

Round-robin timing (:mod:`hwnas.hardware.roundrobin`) puts a set of networks on the machine's
scale through one compute-bound reference network. Eager NB201 networks are mostly framework
overhead (a cell of skips: 2.7 ms eager, 0.006 ms in ONNX Runtime), so when the machine's speed
for dispatch overhead and for arithmetic moves differently between passes, that scale moves them
wrongly. This pilot times every network (3 copies) beside the compute reference *and* an
overhead-bound reference (5 copies each) and keeps the raw rounds, so several scales are compared
on the same timings:

* ``none``: the speed-corrected median, no reference (what the pass's machine gave);
* ``compute``: over the compute reference (today's round-robin);
* ``overhead``: over the overhead reference;
* ``mixed``: ``compute ** (1 - f) * overhead ** f`` per network, ``f`` its share of dispatch
  overhead: its torch function calls per forward times the overhead reference's time per call,
  over its own time (capped at 1);
* ``space``: over a fixed network of the space itself (the middle of three networks spread over
  FLOPs, drawn with a fixed seed), 5 copies.

Process A runs two passes (the in-process pair), process B one; "separate processes" compares
each of A's passes with B's (both pairs pooled). ``--repeats`` runs the whole thing again.

Usage::

    python benchmarks/eager_reference_pilot.py --spaces nb201 fbnet --samples 60 --repeats 2 \\
        --out benchmarks/results/eager_reference_pilot.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _cli import check_spaces
from hwnas.hardware.noise import agreement
from hwnas.spaces import create_space

COPIES = 3
REF_COPIES = 5
SCHEMES = ("none", "compute", "overhead", "mixed", "space")
SPACE_REFERENCE_SEED = 12345


def child(space_name: str, samples: int, seed: int, passes: int, out: Path) -> None:
    import torch

    from hwnas.hardware.calibrate import stratified_sample
    from hwnas.hardware.kernels import arch_input_shape
    from hwnas.hardware.measured import _runner
    from hwnas.hardware.reference import (
        OVERHEAD_INPUT,
        REFERENCE_INPUT,
        overhead_module,
        reference_module,
        torch_calls,
    )
    from hwnas.hardware.roundrobin import CHUNK, DEFAULT_ROUNDS, ROUND_MINI_BLOCK_S, time_rounds

    torch.set_num_threads(1)
    space = create_space(space_name)
    archs = stratified_sample(space, samples, np.random.default_rng(seed))
    o_shape = OVERHEAD_INPUT
    calls = {
        "compute": torch_calls(reference_module(), REFERENCE_INPUT),
        "overhead": torch_calls(overhead_module(), o_shape),
    }
    nets = []
    for a in archs:
        with torch.random.fork_rng(devices=[]):
            net = space.build_network(a)
        nets.append((net, arch_input_shape(space, a)))
    net_calls = [torch_calls(n, s) for n, s in nets]
    space_ref = stratified_sample(space, 3, np.random.default_rng(SPACE_REFERENCE_SEED))[1]
    space_ref_shape = arch_input_shape(space, space_ref)

    def runner(module: Any, shape: tuple[int, ...]) -> Any:
        return _runner(module, shape, backend="torch", batch=1, threads=1)

    result: dict[str, Any] = {"calls": calls, "net_calls": net_calls, "passes": []}
    per_chunk = CHUNK // COPIES
    for p in range(passes):
        rng = np.random.default_rng(1000 * seed + p + 7 * os.getpid())
        chunks = []
        for start in range(0, len(archs), per_chunk):
            idx = list(range(start, min(start + per_chunk, len(archs))))
            runs = []
            for i in idx:  # fresh copies per pass, as a new measurement builds them
                for _ in range(COPIES):
                    with torch.random.fork_rng(devices=[]):
                        runs.append(runner(space.build_network(archs[i]), nets[i][1]))
            runs += [runner(reference_module(), REFERENCE_INPUT) for _ in range(REF_COPIES)]
            runs += [runner(overhead_module(), o_shape) for _ in range(REF_COPIES)]
            for _ in range(REF_COPIES):
                with torch.random.fork_rng(devices=[]):
                    runs.append(runner(space.build_network(space_ref), space_ref_shape))
            times, share = time_rounds(
                runs, rounds=DEFAULT_ROUNDS, warmup=5, block_s=ROUND_MINI_BLOCK_S, rng=rng
            )
            chunks.append({"idx": idx, "times": times.tolist(), "share": share})
        result["passes"].append(chunks)
    out.write_text(json.dumps(result))


def estimates(data: dict[str, Any], chunks: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per network and scheme, latency in units of the references (a stored reference latency
    would multiply both passes alike, so it is left out), and each network's overhead share."""
    from hwnas.hardware.roundrobin import speed_corrected

    n = len(data["net_calls"])
    out = {s: np.empty(n) for s in (*SCHEMES, "share")}  # share: f, the overhead share
    for ch in chunks:
        t = speed_corrected(np.asarray(ch["times"]))
        k = len(ch["idx"]) * COPIES
        ref_c = float(np.median(t[:, k : k + REF_COPIES]))
        ref_o = float(np.median(t[:, k + REF_COPIES : k + 2 * REF_COPIES]))
        ref_s = float(np.median(t[:, k + 2 * REF_COPIES :]))
        per_call = ref_o / data["calls"]["overhead"]
        for j, i in enumerate(ch["idx"]):
            own = float(np.median(t[:, j * COPIES : (j + 1) * COPIES]))
            f = min(1.0, data["net_calls"][i] * per_call / own)
            out["none"][i] = own
            out["compute"][i] = own / ref_c
            out["overhead"][i] = own / ref_o
            out["mixed"][i] = own / (ref_c ** (1 - f) * ref_o**f)
            out["space"][i] = own / ref_s
            out["share"][i] = f
    return out


def run_space(space: str, samples: int, seed: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            files = []
            for name, passes in (("a", 2), ("b", 1)):
                path = Path(tmp) / f"{space}-{r}-{name}.json"
                cmd = [sys.executable, __file__, "--child", space, "--samples", str(samples)]
                cmd += ["--seed", str(seed), "--passes", str(passes), "--child-out", str(path)]
                subprocess.run(cmd, check=True)
                files.append(json.loads(path.read_text()))
            a, b = files
            ea = [estimates(a, ch) for ch in a["passes"]]
            eb = estimates(b, b["passes"][0])
            f_share = float(np.median(ea[0]["share"]))
            for s in SCHEMES:
                one = agreement(ea[0][s], ea[1][s])
                sep = [agreement(e[s], eb[s]) for e in ea]
                rows.append({"space": space, "repeat": r, "scheme": s, "one": one,
                             "separate": {k: float(np.mean([d[k] for d in sep])) for k in one},
                             "overhead_share_median": f_share})  # fmt: skip
    return rows


def _markdown(rows: list[dict[str, Any]], command: str, wall: float) -> str:
    lines = [
        "# Eager reference scales across processes (issue #13, part 4)",
        "",
        f"`{command}`",
        "",
        f"{platform.node()}, {time.strftime('%Y-%m-%d')}, {wall:.0f} s. Batch 1, one thread, "
        f"round-robin, {COPIES} copies per network, {REF_COPIES} per reference.",
        "",
        "| space | repeat | scheme | one process ±5 % | ±10 % | Spearman | separate ±5 % | ±10 % "
        "| Spearman | median overhead share |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        o, s = r["one"], r["separate"]
        lines.append(
            f"| {r['space']} | {r['repeat']} | {r['scheme']} | {_pct(o['within_5pct'])} | "
            f"{_pct(o['within_10pct'])} | {o['spearman']:.3f} | {_pct(s['within_5pct'])} | "
            f"{_pct(s['within_10pct'])} | {s['spearman']:.3f} | {r['overhead_share_median']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--spaces", nargs="+", default=["nb201", "fbnet"])
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path)
    p.add_argument("--child")
    p.add_argument("--passes", type=int, default=1)
    p.add_argument("--child-out", type=Path)
    args = p.parse_args()
    if not args.child and args.out is None:
        p.error("--out is required: the path of the markdown table (a .json goes beside it)")
    if args.samples < 3 or args.repeats < 1:
        p.error("--samples must be >= 3 and --repeats >= 1")
    if args.child:
        child(args.child, args.samples, args.seed, args.passes, args.child_out)
        return 0
    check_spaces(p, args.spaces)
    start = time.perf_counter()
    rows = [r for s in args.spaces for r in run_space(s, args.samples, args.seed, args.repeats)]
    wall = time.perf_counter() - start
    command = "python benchmarks/eager_reference_pilot.py " + shlex.join(sys.argv[1:])
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    args.out.write_text(_markdown(rows, command, wall))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
