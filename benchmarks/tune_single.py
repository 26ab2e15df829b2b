"""Choose single-objective settings on a task no benchmark scores: NB201 CIFAR-10 validation
accuracy (``benchmarks/tuning/c10valid-single.yaml``), evaluations to its optimum.

Runs ``benchmarks/nb201_single.py`` with thompson, the default and
``hwnas:thompson+structure`` (Thompson sampling with the space's structural features in its
model, :mod:`hwnas.strategies.structure`), and extra runners: the latter with 5 initial samples
(``/init5``),
candidates within 2 slot changes of the best (``/loc2``) or of the two best fronts
(``/depth1``).

Usage::

    python benchmarks/tune_single.py -- --seeds 20 --budget 300 --workers 1 \\
        --datasets benchmarks/tuning/c10valid-single.yaml \\
        --out benchmarks/results/tune_single.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nb201_single
from _peers import hwnas_runner

VARIANTS = {
    "hwnas:thompson+structure/init5": hwnas_runner("thompson", structure=True, initial_samples=5),
    "hwnas:thompson+structure/loc2": hwnas_runner("thompson", structure=True, locality=2),
    "hwnas:thompson+structure/depth1": hwnas_runner("thompson", structure=True, front_depth=1),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for nb201_single.py after --")
    args = p.parse_args()
    nb201_single.ALL_RUNNERS.update(VARIANTS)
    rest = [a for a in args.rest if a != "--"]
    if "--strategies" not in rest:
        rest += ["--strategies", "hwnas:thompson", "hwnas:default", "hwnas:thompson+structure"]
    return nb201_single.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
