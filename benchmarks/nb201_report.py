"""Merge result CSVs of separate ``nb201_hw.py`` runs (e.g. a slow peer run on its own) into one
summary, and plot median regret against the number of evaluations.

    python benchmarks/nb201_report.py RUN1.csv RUN2.csv ... --out benchmarks/results/nb201_hw.md \\
        [--plot benchmarks/results/nb201_hw_regret.png]

Where two files hold the same (task, strategy, seed, budget), the later file on the command line
wins: a rerun of one strategy replaces its rows and keeps everything else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nb201_hw import summarise

KEY = ["task", "strategy", "seed", "budget"]


def merge(csvs: list[Path], relabel: dict[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """Rows of all files; for a repeated (task, strategy, seed, budget), the last file's row.
    ``relabel`` maps a file (as given) to (strategy, new name) for that file's rows only, e.g.
    to keep an earlier default's rows beside a rerun of the new one."""
    frames = []
    for c in csvs:
        frame = pd.read_csv(c)
        if relabel and str(c) in relabel:
            old, new = relabel[str(c)]
            frame.loc[frame["strategy"] == old, "strategy"] = new
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates(subset=KEY, keep="last").reset_index(drop=True)


def plot_regret(df: pd.DataFrame, path: Path) -> None:
    """One panel per task: median regret (log scale) against evaluations, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(df["task"]))
    strategies = list(dict.fromkeys(df["strategy"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.8), sharey=False)
    axes = [axes] if len(tasks) == 1 else list(axes)
    med = df.groupby(["task", "strategy", "budget"])["regret"].median()
    colours = dict(zip(strategies, plt.get_cmap("tab20").colors))
    for ax, task in zip(axes, tasks):
        for s in strategies:
            if (task, s) not in med.index.droplevel(2):
                continue
            line = med.loc[(task, s)]
            style = "-" if s.startswith("hwnas:") else "--"
            ax.plot(
                line.index,
                line.clip(lower=1e-3).values,
                style,
                marker=".",
                color=colours[s],
                label=s,
            )
        ax.set_yscale("log")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("distinct evaluations")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("median regret (accuracy points)")
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("csvs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True, help="merged .md (a .csv is written beside)")
    p.add_argument("--plot", type=Path, default=None, help="PNG of median regret vs evaluations")
    p.add_argument(
        "--relabel",
        nargs=3,
        action="append",
        default=[],
        metavar=("CSV", "STRATEGY", "NAME"),
        help="in CSV's rows, call STRATEGY NAME (e.g. an earlier default's runs)",
    )
    args = p.parse_args(argv)
    df = merge(args.csvs, {c: (old, new) for c, old, new in args.relabel})
    df.to_csv(args.out.with_suffix(".csv"), index=False)
    seeds = df.groupby("strategy")["seed"].nunique()
    header = (
        "## NB201 hardware benchmark (merged runs)\n\n"
        + "Seeds per strategy: "
        + ", ".join(f"{s} {n}" for s, n in seeds.items())
        + "\n\nMerged from (later files replace earlier rows of the same run): "
        + ", ".join(f"`{c}`" for c in args.csvs)
        + "".join(f"; in `{c}`, {old} is called {new}" for c, old, new in args.relabel)
    )
    args.out.write_text(summarise(df, header) + "\n")
    if args.plot is not None:
        plot_regret(df, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
