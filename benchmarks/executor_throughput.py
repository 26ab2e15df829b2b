"""Throughput of the executors on this machine: speed-up with 1 and 2 workers on a CPU-bound
evaluator, and the per-trial overhead of each executor on an evaluator that does nothing.

* CPU-bound: a short training run of each NB201 cell's PyTorch network (``--steps`` SGD steps
  on a fixed batch of 32 random 32x32 images, one intra-op thread), so that one evaluation keeps
  one core busy for a fraction of a second.
* Overhead: an evaluator that returns at once; ``(wall - sequential wall) / trials`` is what an
  executor adds to every trial (dispatch, pickling, result, commit).

Every configuration runs ``--repeats`` times, interleaved, each on a fresh study of the same
seed; the table gives the median. Worker start-up (process spawn, ``ray.init``) is reported on
its own and not counted in the rates. Run it on a quiet machine.

Usage::

    python benchmarks/executor_throughput.py --trials 40 --repeats 3 \\
        --out benchmarks/results/executor_throughput.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas import Objective, Study, create_space, create_strategy  # noqa: E402
from hwnas.evaluation.base import Evaluator  # noqa: E402
from hwnas.execution import create_backend  # noqa: E402
from hwnas.spaces.base import Arch  # noqa: E402

CONFIGS = [
    ("sequential", 1),
    ("process", 1),
    ("process", 2),
    ("ray", 1),
    ("ray", 2),
]


class ShortTraining(Evaluator):
    """``steps`` SGD steps of the cell's network on a fixed random batch (one thread)."""

    cacheable = False

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.space = create_space("nb201")

    def metrics(self) -> tuple[str, ...]:
        return ("loss", "flops_m_again")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(0)
        net = self.space.build_network(arch)
        x = torch.randn(32, 3, 32, 32)
        y = torch.randint(0, 10, (32,))
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        loss = torch.zeros(())
        for _ in range(self.steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
        flops = self.space.cheap_metrics(arch)["flops_m"]
        return {"loss": float(loss.detach()), "flops_m_again": flops}

    def key(self) -> str:
        return f"short-training:{self.steps}"


class Nothing(Evaluator):
    """Returns at once: what remains of a trial's time is the executor's overhead."""

    cacheable = False

    def metrics(self) -> tuple[str, ...]:
        return ("loss", "flops_m_again")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return {"loss": float(len(arch["ops"])), "flops_m_again": 0.0}

    def key(self) -> str:
        return "nothing"


def one_run(
    make_ev: Callable[[], Evaluator], executor: str, workers: int, trials: int
) -> dict[str, float]:
    ev = make_ev()
    study = Study(
        space=create_space("nb201"),
        evaluators=[ev],
        objectives=[Objective("loss", "minimize"), Objective("flops_m", "minimize")],
        strategy=create_strategy("random"),
        seed=0,
    )
    t0 = time.perf_counter()
    backend = create_backend(executor, [ev], workers=workers if executor != "sequential" else None)
    started = time.perf_counter()
    stamps: list[float] = []
    study.optimize(
        trials, executor=backend, callbacks=[lambda s, t: stamps.append(time.perf_counter())]
    )
    end = time.perf_counter()
    return {
        "startup_s": started - t0,
        "wall_s": end - started,
        # first result to last: the steady state, without the pipeline filling up
        "rate": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan"),
        "trials": float(len(study.trials)),
    }


def measure(
    make_ev: Callable[[], Evaluator], trials: int, repeats: int
) -> dict[tuple[str, int], list[dict[str, float]]]:
    out: dict[tuple[str, int], list[dict[str, float]]] = {c: [] for c in CONFIGS}
    import ray

    for r in range(repeats):
        for executor, workers in CONFIGS:
            if executor == "ray":
                t = time.perf_counter()
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
                init_s = time.perf_counter() - t
            got = one_run(make_ev, executor, workers, trials)
            if executor == "ray":
                got["startup_s"] += init_s
                ray.shutdown()
            out[(executor, workers)].append(got)
            print(f"repeat {r}: {executor} x{workers}: {got}", file=sys.stderr)
    return out


def med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--trials", type=int, default=40, help="evaluations per CPU-bound run")
    p.add_argument("--overhead-trials", type=int, default=300)
    p.add_argument("--steps", type=int, default=4, help="SGD steps per training run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/executor_throughput.md"))
    raw = sys.argv[1:] if argv is None else argv
    args = p.parse_args(raw)

    busy = measure(lambda: ShortTraining(args.steps), args.trials, args.repeats)
    idle = measure(Nothing, args.overhead_trials, args.repeats)

    seq_rate = med(busy[("sequential", 1)], "rate")
    seq_idle = med(idle[("sequential", 1)], "wall_s") / args.overhead_trials
    lines = [
        f"## Executor throughput ({time.strftime('%Y-%m-%d')})",
        "",
        f"`python benchmarks/executor_throughput.py {' '.join(map(shlex.quote, raw))}` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"median of {args.repeats} interleaved repeats.",
        "",
        f"CPU-bound: {args.trials} short training runs ({args.steps} SGD steps of the NB201 "
        "network, batch 32, one thread each).",
        "",
        "| executor | workers | evaluations / s | speed-up vs sequential | speed-up vs 1 worker "
        "| start-up (s) | wall incl. start-up (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for executor, workers in CONFIGS:
        runs = busy[(executor, workers)]
        rate = med(runs, "rate")
        one = med(busy[(executor, 1)], "rate")
        lines.append(
            f"| {executor} | {workers} | {rate:.2f} | {rate / seq_rate:.2f}x | {rate / one:.2f}x "
            f"| {med(runs, 'startup_s'):.2f} | {med(runs, 'startup_s') + med(runs, 'wall_s'):.1f} |"
        )
    lines += [
        "",
        f"Overhead: {args.overhead_trials} trials of an evaluator that returns at once.",
        "",
        "| executor | workers | ms per trial | overhead vs sequential (ms per trial) |",
        "|---|---:|---:|---:|",
    ]
    for executor, workers in CONFIGS:
        per = med(idle[(executor, workers)], "wall_s") / args.overhead_trials
        lines.append(f"| {executor} | {workers} | {per * 1e3:.3f} | {(per - seq_idle) * 1e3:.3f} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    raw_rows = {"busy": busy, "idle": idle}
    args.out.with_suffix(".raw.txt").write_text(_raw(raw_rows))
    print(text)
    return 0


def _raw(rows: dict[str, Any]) -> str:
    out = []
    for kind, per_config in rows.items():
        for (executor, workers), runs in per_config.items():
            for i, r in enumerate(runs):
                cells = " ".join(f"{k}={v:.6g}" for k, v in r.items())
                out.append(f"{kind} {executor} workers={workers} repeat={i} {cells}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
