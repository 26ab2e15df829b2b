"""Latency predictors on the tabular devices: fit on 300 random architectures, score the rest.

For every (space, device, seed) it calls :func:`hwnas.hardware.tabular.validate_on_table` with the
gbdt and ridge predictors and the FLOPs-only baseline, and reports medians over seeds of the
held-out share within +-10 % and +-5 %, RMSPE and Spearman. NB201 figures are given without the
degenerate cells (no input->output path; ~0.01 ms on pixel3/raspi4, where a relative error is
meaningless) and, for the +-10 % share and Spearman, over all held-out cells too.

Usage::

    python benchmarks/latency_predictor_tabular.py --seeds 5 \\
        --out benchmarks/results/latency_predictor_tabular [--workers 2] [--data-dir DIR]

Writes ``OUT.csv`` (one row per space, device, seed, kind and cell subset) and ``OUT.md``
(the median tables).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pandas as pd  # noqa: E402

from hwnas.hardware.predictor import ARCH_KINDS  # noqa: E402
from hwnas.hardware.tabular import table_devices, validate_on_table  # noqa: E402

MAIN_DEVICES = ("raspi4", "pixel3", "eyeriss", "fpga", "gold_6226")
CEILING_TRAIN = 10_000
FIGURES = ("share_within_10pct", "share_within_5pct", "rmspe_pct", "spearman")
ALL_FIGURES = (*FIGURES, "mape_pct", "kendall_tau", "n")


def run_one(job: tuple[str, str, int, int, str | None, tuple[str, ...]]) -> list[dict[str, object]]:
    space, device, seed, n_train, data_dir, kinds = job
    r = validate_on_table(space, device, n_train=n_train, seed=seed, kinds=kinds, data_dir=data_dir)
    rows: list[dict[str, object]] = []
    for kind, res in r["models"].items():
        for subset in ("all", "non_degenerate"):
            row: dict[str, object] = {
                "space": space,
                "device": device,
                "seed": seed,
                "kind": kind,
                "subset": subset,
                "n_train": r["n_train"],
                "n_degenerate_test": r["n_degenerate_test"],
                "fit_s": res["fit_s"],
            }
            row.update({f: res[subset][f] for f in ALL_FIGURES})
            rows.append(row)
    return rows


def _fmt(v: float, figure: str) -> str:
    if figure.startswith("share"):
        return f"{100 * v:.1f}"
    if figure == "rmspe_pct":
        return f"{v:.1f}" if v < 1000 else f"{v:.0f}"
    return f"{v:.3f}"


def median_table(
    df: pd.DataFrame,
    space: str,
    devices: list[str],
    with_all: bool,
    kinds: tuple[str, ...] = ARCH_KINDS,
) -> str:
    head = "| device | model | ±10 % | ±5 % | RMSPE % | Spearman |"
    sep = "|---|---|---:|---:|---:|---:|"
    if with_all:
        head += " ±10 % (all cells) | Spearman (all cells) |"
        sep += "---:|---:|"
    lines = [head, sep]
    d = df[df.space == space]
    for device in devices:
        for kind in kinds:
            sub = d[(d.device == device) & (d.kind == kind)]
            core = sub[sub.subset == "non_degenerate"][list(FIGURES)].median()
            cells = [_fmt(core[f], f) for f in FIGURES]
            if with_all:
                everything = sub[sub.subset == "all"][["share_within_10pct", "spearman"]].median()
                cells += [
                    _fmt(everything["share_within_10pct"], "share_within_10pct"),
                    _fmt(everything["spearman"], "spearman"),
                ]
            lines.append(f"| {device} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=300)
    ap.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/latency_predictor_tabular")
    )
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    command = "python benchmarks/latency_predictor_tabular.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    nb201_all = table_devices("nb201", data_dir=args.data_dir)
    nb201_other = [d for d in nb201_all if d not in MAIN_DEVICES]
    jobs = [
        (space, device, seed, args.n_train, args.data_dir, ARCH_KINDS)
        for space, devices in (("nb201", [*MAIN_DEVICES, *nb201_other]), ("fbnet", MAIN_DEVICES))
        for device in devices
        for seed in range(args.seeds)
    ]
    # How far more data goes with the same features: one split with 10,000 training cells.
    jobs += [("nb201", d, 0, CEILING_TRAIN, args.data_dir, ("gbdt", "ridge")) for d in MAIN_DEVICES]
    start = time.perf_counter()
    if args.workers > 1:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(run_one, jobs, chunksize=1)
    else:
        results = [run_one(j) for j in jobs]
    wall = time.perf_counter() - start
    df = pd.DataFrame([row for rows in results for row in rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False)
    ceiling = df[df.n_train == CEILING_TRAIN]
    df = df[df.n_train == args.n_train]
    n_deg = int(df[(df.space == "nb201")]["n_degenerate_test"].median())
    rmspe_all = df[(df.space == "nb201") & (df.subset == "all")]
    rmspe_all = rmspe_all[rmspe_all.device.isin(["raspi4", "pixel3"])]
    rmspe_all = rmspe_all.groupby("kind")["rmspe_pct"].median()
    md = [
        "# Latency predictors on tabular devices",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"{len(jobs)} runs in {wall:.0f} s.",
        "",
        f"Each run fits on {args.n_train} random architectures of a device's table and scores "
        f"all the others; figures are medians over {args.seeds} seeds (seed = split and model "
        "seed). Models: `gbdt` = LightGBM with linear leaves on log latency, `ridge` = ridge "
        "regression on the same features (latency target), `flops` = latency = a + b * FLOPs. "
        "Shares are % of held-out architectures predicted within ±10 % / ±5 %.",
        "",
        f"NB201 columns without a suffix leave out the ~{n_deg} held-out degenerate cells (no "
        "path from cell input to output); the *all cells* columns keep them. On pixel3 and "
        "raspi4 most degenerate cells measure 0.003-0.4 ms (the exported network folds to a "
        "constant), so any relative error over them explodes: median RMSPE over all cells on "
        "these two devices is "
        + ", ".join(f"{k} {v:.0f} %" for k, v in rmspe_all.items())
        + " (per run in the CSV).",
        "",
        f"## NB201 (15,625 cells; train {args.n_train}, test the rest)",
        "",
        median_table(df, "nb201", list(MAIN_DEVICES), with_all=True),
        "",
        "## NB201, every other device column (robustness check)",
        "",
        median_table(df, "nb201", nb201_other, with_all=False),
        "",
        f"## FBNet (5,000 sampled architectures; train {args.n_train}, test the rest)",
        "",
        median_table(df, "fbnet", list(MAIN_DEVICES), with_all=False),
        "",
        f"## NB201 with {CEILING_TRAIN:,} training cells (seed 0): what more data buys",
        "",
        median_table(ceiling, "nb201", list(MAIN_DEVICES), with_all=True, kinds=("gbdt", "ridge")),
        "",
        "## Notes",
        "",
        "- FBNet raspi4/pixel3/eyeriss/fpga are exactly additive over layers (ridge on the "
        "one-hot features: held-out RMSPE <= 4e-6 % on every seed) and NB201 eyeriss/fpga nearly "
        "so (median RMSPE < 0.001 %, worst seed 0.26 %), consistent with HW-NAS-Bench "
        "estimating these costs per layer or block and summing them. They check the pipeline; "
        "gold_6226 (both spaces), the GPUs and NB201 raspi4/pixel3 are whole-network "
        "measurements and the real test.",
        "- NB201 raspi4/pixel3 stay far below the issue's +-10 % goal even with "
        f"{CEILING_TRAIN:,} training cells: the tables carry per-architecture effects that the "
        "architecture features do not explain (see the last table).",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print(command)
    print(f"wrote {args.out.with_suffix('.csv')} and {args.out.with_suffix('.md')} in {wall:.0f} s")


if __name__ == "__main__":
    main()
