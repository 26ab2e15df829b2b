"""Latency models on the same measurements: architecture features against executed kernels.

Reads the ``measurements.csv`` of one or more ``hwnas hw calibrate`` runs and fits, on each run's
own training share, the learned predictors over architecture features (``gbdt``, ``ridge``), the
FLOPs baseline and the ``kernels`` predictor (ONNX Runtime's executed kernels); scores each on the
held-out share against the first measurement and against the fresh one (the second pass, in a new
process), beside the noise floor (first against fresh measurement). Writes a markdown table.

    python benchmarks/kernel_features.py --space nb201 \\
        --runs benchmarks/results/calibration/nb201_kernels_this_vm_measurements.csv \\
        --out benchmarks/results/kernel_features.md
"""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
from pathlib import Path

import numpy as np

from hwnas.hardware.accuracy import evaluate_predictions
from hwnas.hardware.predictor import LatencyPredictor
from hwnas.spaces import create_space


def read_run(path: Path) -> dict[str, list]:
    out: dict[str, list] = {"train": [], "train_ms": [], "test": [], "test_ms": [], "fresh_ms": []}
    with path.open() as f:
        for row in csv.DictReader(f):
            split = row["split"]
            out[split].append(row["arch"])
            out[f"{split}_ms"].append(float(row["latency_ms"]))
            if split == "test":
                out["fresh_ms"].append(float(row["second_ms"]))
    return out


def score_run(space_name: str, path: Path) -> list[tuple[str, dict, dict]]:
    space = create_space(space_name)
    run = read_run(path)
    test_ms, fresh_ms = np.array(run["test_ms"]), np.array(run["fresh_ms"])
    rows = [("second measurement (floor)", evaluate_predictions(test_ms, fresh_ms), None)]
    kinds = ["kernels", "gbdt", "ridge", "flops"]
    for kind in kinds:
        try:
            p = LatencyPredictor(kind).fit(space, run["train"], run["train_ms"])
        except Exception as exc:  # a kind the space has no features for
            rows.append((f"{kind} ({type(exc).__name__})", {}, {}))
            continue
        pred = p.predict(run["test"])
        rows.append(
            (kind, evaluate_predictions(test_ms, pred), evaluate_predictions(fresh_ms, pred))
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", required=True)
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    lines = [
        f"# Latency models on the same measurements ({args.space})",
        "",
        f"Command: `python benchmarks/kernel_features.py --space {args.space} --runs "
        + " ".join(str(r) for r in args.runs)
        + f" --out {args.out}`",
        f"Date: {datetime.date.today()}; machine: {platform.machine()}, "
        f"{platform.processor() or 'cpu'}, {Path('/proc/cpuinfo').read_text().count('processor')}"
        " logical cores.",
        "",
        "Within ±5/±10 %: share of held-out networks; 'first' scores against the measurement of "
        "the calibration pass (same process as the training labels), 'fresh' against the second "
        "measurement in a new process. The floor row compares the two measurements.",
        "",
    ]
    for run in args.runs:
        lines += [
            f"## {run}",
            "",
            "| model | first ±5 % | first ±10 % | first Spearman | fresh ±5 % | fresh ±10 % "
            "| fresh Spearman |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, first, fresh in score_run(args.space, run):
            if not first:
                lines.append(f"| {name} | | | | | | |")
                continue

            def cells(f: dict | None) -> str:
                if not f:
                    return " | | "
                return (
                    f"{f['share_within_5pct']:.1%} | {f['share_within_10pct']:.1%} "
                    f"| {f['spearman']:.3f}"
                )

            lines.append(f"| {name} | {cells(first)} | {cells(fresh)} |")
        lines.append("")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
