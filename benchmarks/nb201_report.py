"""Merge result CSVs of separate ``nb201_hw.py`` runs (e.g. a slow peer run on its own) into one
summary.

    python benchmarks/nb201_report.py RUN1.csv RUN2.csv ... --out benchmarks/results/nb201_hw.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nb201_hw import summarise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("csvs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True, help="merged .md (a .csv is written beside)")
    args = p.parse_args(argv)
    df = pd.concat([pd.read_csv(c) for c in args.csvs], ignore_index=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False)
    seeds = df.groupby("strategy")["seed"].nunique()
    header = (
        "## NB201 hardware benchmark (merged runs)\n\n"
        + "Seeds per strategy: "
        + ", ".join(f"{s} {n}" for s, n in seeds.items())
        + "\n\nMerged from: "
        + ", ".join(f"`{c}`" for c in args.csvs)
    )
    args.out.write_text(summarise(df, header) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
