"""Weight-sharing fidelity: does inherited-weight accuracy rank sub-networks as training does?

Samples ``--n`` sub-networks of a config's space spread over FLOPs, scores each with the config's
trained supernet (the ``supernet`` evaluator: inherited weights, BatchNorm recalibrated) and
trains each from scratch (the ``train`` evaluator, ``--epochs``, otherwise the supernet's training
settings), both on the valid split, and
reports Kendall's tau and Spearman's rho between the two (issue #10's goal: tau >= 0.6 over >= 30
sub-networks). Train the supernet first (``hwnas supernet train CONFIG --out DIR`` or a search).

    python benchmarks/supernet_fidelity.py --config examples/mbv3-mnist-cpu.yaml \\
        --supernet runs/mbv3-mnist/supernet --n 30 --epochs 4 \\
        --out benchmarks/results/supernet_fidelity.md
"""

from __future__ import annotations

import argparse
import csv
import datetime
import time
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import kendalltau, spearmanr

from hwnas.data import load_dataset
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.hardware.calibrate import stratified_sample
from hwnas.oneshot import SupernetConfig
from hwnas.spaces import create_space


def breakdown(csv_path: Path) -> str:
    """What the ranking rests on, from a run's rows: Kendall tau against the scratch mean of
    inherited accuracy, of FLOPs, and against each scratch seed; tau within each resolution."""
    import pandas as pd

    d = pd.read_csv(csv_path)
    d["r"] = d["arch"].str.extract(r"^r(\d+)", expand=False).astype(int)
    seeds = [c for c in d.columns if c.startswith("scratch_acc_seed")]
    tau = lambda a, b: float(kendalltau(a, b).statistic)  # noqa: E731
    lines = [
        "| ranking | against | Kendall tau |",
        "|---|---|---:|",
        f"| inherited accuracy | scratch mean | {tau(d.inherited_acc, d.scratch_acc):.3f} |",
        f"| FLOPs | scratch mean | {tau(d.flops_m, d.scratch_acc):.3f} |",
        *(
            f"| inherited accuracy | scratch {c[12:]} | {tau(d.inherited_acc, d[c]):.3f} |"
            for c in seeds
        ),
        "",
        "| resolution | sub-networks | Kendall tau within | inherited acc. (mean) "
        "| scratch acc. (mean) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r, g in d.groupby("r"):
        within = f"{tau(g.inherited_acc, g.scratch_acc):.2f}" if len(g) > 1 else "-"
        lines.append(
            f"| {r} px | {len(g)} | {within} | {g.inherited_acc.mean():.2f} % "
            f"| {g.scratch_acc.mean():.2f} % |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--breakdown", type=Path, help="print the breakdown of a run's rows (.csv) and stop"
    )
    known, _ = ap.parse_known_args()
    if known.breakdown:
        if not known.breakdown.is_file():
            ap.error(f"--breakdown {known.breakdown}: no such file (a run's .csv of rows)")
        print(breakdown(known.breakdown))
        return
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--supernet", type=Path, required=True, help="the trained supernet's folder")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--scratch-seeds",
        type=int,
        default=1,
        help="train each sub-network from scratch this many times (seeds --seed, --seed + 1, "
        "...) and rank by the mean; with 2 or more, the seeds' agreement with each other is "
        "reported too (the ground truth's own repeatability)",
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    for what, path in (("--config", args.config), ("--supernet", args.supernet)):
        if not path.exists():
            ap.error(f"{what} {path}: no such file or folder")
    config = yaml.safe_load(args.config.read_text())
    spec = config["space"] if isinstance(config["space"], dict) else {"name": config["space"]}
    space = create_space(spec["name"], **spec.get("options", {}))
    data = config["data"] if isinstance(config["data"], dict) else {"name": config["data"]}
    dataset = load_dataset(data)

    def context(seed: int) -> EvaluatorContext:
        return EvaluatorContext(
            space=space,
            base_dir=args.config.parent,
            seed=seed,
            dataset=dataset,
            supernet_dir=args.supernet,
            supernet_config=SupernetConfig.from_dict(config["supernet"]).to_dict(),
        )

    inherited = create_evaluator("supernet", context(args.seed))
    # From scratch with the supernet's own training settings (batch, lr, warm-up), --epochs long.
    settings = {k: v for k, v in config["supernet"].get("train", {}).items() if k != "epochs"}
    scratches = [
        create_evaluator("train", context(args.seed + i), epochs=args.epochs, **settings)
        for i in range(args.scratch_seeds)
    ]
    archs = stratified_sample(space, args.n, np.random.default_rng(args.seed))
    rows = []
    start = time.perf_counter()
    for i, arch in enumerate(archs):
        t0 = time.perf_counter()
        a = inherited.evaluate(arch)["accuracy"]
        t1 = time.perf_counter()
        per_seed = [s.evaluate(arch)["accuracy"] for s in scratches]
        b = float(np.mean(per_seed))
        t2 = time.perf_counter()
        flops = space.cheap_metrics(arch)["flops_m"]
        rows.append((space.to_string(arch), flops, a, b, t1 - t0, t2 - t1, *per_seed))
        print(f"{i + 1}/{len(archs)} inherited {a:.2f} scratch {b:.2f} ({t2 - t0:.0f} s)")
    seconds = time.perf_counter() - start
    inh = np.array([r[2] for r in rows])
    scr = np.array([r[3] for r in rows])
    tau = float(kendalltau(inh, scr).statistic)
    rho = float(spearmanr(inh, scr).statistic)
    seeds = np.array([r[6:] for r in rows])
    pairs = [(i, j) for i in range(args.scratch_seeds) for j in range(i + 1, args.scratch_seeds)]
    repeat = [float(kendalltau(seeds[:, i], seeds[:, j]).statistic) for i, j in pairs]
    repeat_text = f"{np.mean(repeat):.3f}" if repeat else "-"
    csv_path = args.out.with_suffix(".csv")
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        seed_columns = [f"scratch_acc_seed{args.seed + i}" for i in range(args.scratch_seeds)]
        w.writerow(
            [
                "arch",
                "flops_m",
                "inherited_acc",
                "scratch_acc",
                "inherited_s",
                "scratch_s",
                *seed_columns,
            ]
        )
        w.writerows(rows)
    lines = [
        f"# Weight-sharing fidelity ({datetime.date.today()})",
        "",
        f"`python benchmarks/supernet_fidelity.py --config {args.config} --supernet "
        f"{args.supernet} --n {args.n} --epochs {args.epochs} --seed {args.seed} "
        f"--scratch-seeds {args.scratch_seeds} --out {args.out}`; {seconds:.0f} s. "
        f"Raw rows: `{csv_path.name}`.",
        "",
        "| sub-networks | scratch epochs x seeds | Kendall tau | Spearman | scratch seed vs seed "
        "tau | inherited acc. (min-max) | scratch acc. (min-max) |",
        "|---:|---:|---:|---:|---:|---|---|",
        f"| {len(rows)} | {args.epochs} x {args.scratch_seeds} | {tau:.3f} | {rho:.3f} | "
        f"{repeat_text} | {inh.min():.2f}-{inh.max():.2f} | {scr.min():.2f}-{scr.max():.2f} |",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
