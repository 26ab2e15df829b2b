"""Choose the switch point of the ``staged`` strategy (Thompson sampling, then MOEA-BUS with its
surrogate) on tasks no benchmark scores: CIFAR-10 validation accuracy against four NB201 device
columns no benchmark task uses (``benchmarks/tuning/*.yaml``).

Runs ``benchmarks/nb201_hw.py`` with extra runners: ``hwnas:staged@K`` (thompson for the first K
evaluations, then the default's MOEA-BUS settings, told everything), beside thompson and the
current default alone.

Usage::

    python benchmarks/tune_staged.py --switch 50 100 150 -- --seeds 8 \\
        --budgets 50 100 150 200 300 --tasks benchmarks/tuning/*.yaml \\
        --out benchmarks/results/tune_staged.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nb201_hw
from _peers import RUNNERS, hwnas_runner
from hwnas.strategies import DEFAULT_SPEC


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--switch", type=int, nargs="+", default=[50, 100, 150])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for nb201_hw.py after --")
    args = p.parse_args()
    then = {"name": DEFAULT_SPEC[0], **DEFAULT_SPEC[1]}
    names = []
    for k in args.switch:
        name = f"hwnas:staged@{k}"
        RUNNERS[name] = hwnas_runner(
            "staged", first={"name": "thompson"}, then=then, switch_after=k
        )
        names.append(name)
    rest = [a for a in args.rest if a != "--"]
    return nb201_hw.main([*rest, "--strategies", "hwnas:thompson", "hwnas:default", *names])


if __name__ == "__main__":
    raise SystemExit(main())
