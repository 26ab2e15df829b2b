"""The searched front against a hand-designed width family at equal CPU time (issue #10).

Runs ``hwnas search CONFIG`` (supernet training included) and charges its CPU time T; exports
every member of the found front (weights from the supernet, BatchNorm recalibrated, as ``hwnas
export`` does; their CPU time is charged too); then trains MobileNetV2 at width multipliers 0.35 /
0.5 / 0.75 / 1.0 from scratch on the same train split, each for the number of epochs that fits
T / 4 of CPU time (timed from each network's first epoch, which counts). Every network of both sets
is then scored on the test split and re-measured in the same process (ONNX Runtime, batch 1, one
thread, reference-interleaved timing), and the hypervolumes of the two sets on test accuracy x
latency are compared (reference point: the lowest accuracy and the highest latency of all points,
each widened by 10 % of its range).

    python benchmarks/front_vs_family.py --config examples/mbv3-mnist-cpu.yaml \\
        --work /tmp/fvf --out benchmarks/results/front_vs_family.md
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from _mobilenet_v2 import mobilenet_v2
from hwnas.data import load_dataset
from hwnas.export import export_trial, load_model
from hwnas.export.weights import resize_inputs
from hwnas.hardware.measured import measure_latency
from hwnas.pareto import hypervolume
from hwnas.training import TrainConfig, fit

WIDTHS = (0.35, 0.5, 0.75, 1.0)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def search(config: Path, out: Path) -> float:
    """Run the search in a child process (one torch thread); its CPU seconds. A finished search
    in ``out`` (with its recorded CPU time) is reused."""
    record = out.parent / "search_cpu.json"
    if record.exists():
        return float(json.loads(record.read_text())["search_cpu_s"])
    before = children_cpu()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(["hwnas", "search", str(config), "--out", str(out)], env=env)
    if done.returncode != 0:
        raise SystemExit(f"error: hwnas search {config} failed (exit {done.returncode}); see above")
    cpu = children_cpu() - before
    record.write_text(json.dumps({"search_cpu_s": cpu}))
    return cpu


def front_members(study: Path) -> list[dict[str, str]]:
    with (study / "pareto.csv").open() as f:
        return list(csv.DictReader(f))


def test_correct(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Whether ``net`` classifies each test image correctly (its mean is the accuracy that
    :func:`hwnas.training.evaluate` reports)."""
    net.eval()
    with torch.no_grad():
        hits = [net(x[i : i + 500]).argmax(1) == y[i : i + 500] for i in range(0, len(x), 500)]
    return torch.cat(hits).numpy()


def bootstrap_ratio(
    rows: list[tuple], correct: np.ndarray, draws: int = 2000, seed: int = 0
) -> np.ndarray:
    """The hypervolume ratio (found / family) over ``draws`` resamples of the test images with
    replacement (``correct``: one row of per-image hits per entry of ``rows``); latencies stay as
    measured. It says how much of the ratio the 1,000 test images alone can move."""
    rng = np.random.default_rng(seed)
    n = correct.shape[1]
    ratios = np.empty(draws)
    for d in range(draws):
        acc = 100.0 * correct[:, rng.integers(0, n, n)].mean(axis=1)
        hv, _, _ = compare([(r[0], r[1], r[2], a, r[4]) for r, a in zip(rows, acc)])
        ratios[d] = hv["found"] / hv["family"] if hv["family"] > 0 else math.inf
    return ratios


def pooled_bootstrap(
    replicates: list[tuple[list[tuple], np.ndarray]], draws: int = 2000, seed: int = 0
) -> np.ndarray:
    """The mean hypervolume ratio over replicates scored on the same test images, over
    ``draws`` resamples of those images (one resample per draw, applied to every replicate:
    ``replicates`` holds per replicate its ``rows`` and per-image hits, rows x images). Per
    draw: the mean of the replicates' ratios."""
    sizes = {hits.shape[1] for _, hits in replicates}
    if len(sizes) != 1:
        raise ValueError(f"replicates scored on different test sets: {sorted(sizes)} images")
    n = sizes.pop()
    rng = np.random.default_rng(seed)
    means = np.empty(draws)
    for d in range(draws):
        pick = rng.integers(0, n, n)
        ratios = []
        for rows, hits in replicates:
            acc = 100.0 * hits[:, pick].mean(axis=1)
            hv, _, _ = compare([(r[0], r[1], r[2], a, r[4]) for r, a in zip(rows, acc)])
            ratios.append(hv["found"] / hv["family"] if hv["family"] > 0 else math.inf)
        means[d] = float(np.mean(ratios))
    return means


def train_family_member(
    width: float,
    budget_s: float,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
    train: dict,
    seed: int = 0,
) -> tuple[torch.nn.Module, int, float]:
    """MobileNetV2-``width`` trained from scratch for as many epochs as fit ``budget_s`` CPU
    seconds (the first, timed epoch counts), its weights initialised from ``seed``; the network,
    its epochs and its CPU seconds."""
    x, y = data["train"]
    c, n = x.shape[1], int(data["classes"])

    def make() -> torch.nn.Module:
        torch.manual_seed(seed)
        return mobilenet_v2(width, in_channels=c, num_classes=n, stem_stride=1)

    t0 = time.process_time()
    fit(make(), (x, y), config=TrainConfig.from_dict({**train, "epochs": 1, "warmup_epochs": 0}))
    first = time.process_time() - t0
    # What is left after the timed epoch; at least one epoch past the warm-up.
    epochs = max(int(train.get("warmup_epochs", 0)) + 1, math.floor(budget_s / first) - 1)
    net = make()
    fit(net, (x, y), config=TrainConfig.from_dict({**train, "epochs": epochs}))
    return net, epochs, time.process_time() - t0


def cached_member(
    path: Path, width: float, budget_s: float, data: dict, train: dict, seed: int = 0
) -> tuple[torch.nn.Module, int, float]:
    """:func:`train_family_member`, or its network read back from ``path`` (a rerun of the
    scoring trains nothing again; a file made with another budget is not reused)."""
    if path.exists():
        saved = torch.load(path, weights_only=True)
        if saved["budget_s"] == budget_s and saved.get("seed", 0) == seed:
            x, _ = data["train"]
            net = mobilenet_v2(
                width, in_channels=x.shape[1], num_classes=int(data["classes"]), stem_stride=1
            )
            net.load_state_dict(saved["state_dict"])
            return net, int(saved["epochs"]), float(saved["cpu_s"])
    net, epochs, cpu = train_family_member(width, budget_s, data, train, seed)
    state = {
        "state_dict": net.state_dict(),
        "epochs": epochs,
        "cpu_s": cpu,
        "budget_s": budget_s,
        "seed": seed,
    }
    torch.save(state, path)
    return net, epochs, cpu


def compare(rows: list[tuple]) -> tuple[dict[str, float], np.ndarray, int]:
    """Hypervolume of each set (``rows``: (set, name, arch, accuracy %, latency ms)) on
    accuracy x latency, the reference point (minimisation form: -accuracy, latency), and how
    many family networks the found set dominates."""
    F = np.array([[-r[3], r[4]] for r in rows], dtype=float)
    span = F.max(axis=0) - F.min(axis=0)
    ref = F.max(axis=0) + 0.1 * np.where(span > 0, span, 1.0)
    sets = {s: F[[r[0] == s for r in rows]] for s in ("found", "family")}
    hv = {s: hypervolume(f, ref) for s, f in sets.items()}
    dominated = sum(
        1
        for f in sets["family"]
        if np.any(np.all(sets["found"] <= f, axis=1) & np.any(sets["found"] < f, axis=1))
    )
    return hv, ref, dominated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="a new folder for the runs")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--finetune-epochs",
        type=int,
        default=None,
        help="fine-tune each front member's inherited weights this many epochs on export "
        "(charged to hwnas's CPU time)",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=None,
        help="a replicate: the study's seed (the data split stays the config's) and the family's "
        "weight initialisation (default: the config's seed, family seed 0)",
    )
    args = ap.parse_args()
    if not args.config.is_file():
        ap.error(f"--config {args.config}: no such file")
    torch.set_num_threads(1)
    config = yaml.safe_load(args.config.read_text())
    study = args.work / "study"
    start = time.perf_counter()
    config_path = args.config
    if args.seed is not None:
        config["seed"] = args.seed
        args.work.mkdir(parents=True, exist_ok=True)
        config_path = args.work / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    search_cpu = search(config_path, study)
    members = front_members(study)
    t0 = time.process_time()
    found = []
    for m in members:
        result = export_trial(
            study,
            int(m["trial"]),
            args.work / f"front_{m['trial']}",
            finetune_epochs=args.finetune_epochs,
            measure_latency=False,
            force=True,
        )
        module, _ = load_model(result.files["model.pt"])
        shape = tuple(int(s) for s in result.manifest["input_shape"][1:])
        found.append((f"trial {m['trial']}", m["arch"], module, shape))
    export_cpu = time.process_time() - t0
    total = search_cpu + export_cpu
    dataset = load_dataset(config["data"])
    x_test, y_test = dataset.tensors("test")
    data = {"train": dataset.tensors("train"), "classes": dataset.num_classes}
    train = {k: v for k, v in config["supernet"]["train"].items() if k != "epochs"}
    family = []
    for w in WIDTHS:
        path = args.work / f"family_{w}.pt"
        net, epochs, cpu = cached_member(
            path, w, total / len(WIDTHS), data, train, 0 if args.seed is None else args.seed
        )
        family.append((f"MobileNetV2-{w}", f"{epochs} epochs, {cpu:.0f} CPU s", net))
    # Each network at its own input size: a found sub-network's resolution (test images resized
    # as export does), the family's the data's.
    rows, correct = [], []
    for name, arch, module, shape in found:
        lat = measure_latency(module, shape, timing="interleaved").median_ms
        correct.append(test_correct(module, resize_inputs(x_test, shape), y_test))
        rows.append(("found", name, arch, 100.0 * correct[-1].mean(), lat))
    shape = tuple(x_test.shape[1:])
    for name, how, net in family:
        lat = measure_latency(net, shape, timing="interleaved").median_ms
        correct.append(test_correct(net, x_test, y_test))
        rows.append(("family", name, how, 100.0 * correct[-1].mean(), lat))
    hv, ref, dominated = compare(rows)
    boot = bootstrap_ratio(rows, np.array(correct))
    raw = args.out.with_suffix(".hits.npz")
    np.savez_compressed(raw, correct=np.array(correct), latency_ms=[r[4] for r in rows])
    write(args, rows, hv, ref, dominated, search_cpu, export_cpu, time.perf_counter() - start, boot)


def write(args, rows, hv, ref, dominated, search_cpu, export_cpu, seconds, boot) -> None:  # type: ignore[no-untyped-def]
    raw = args.out.with_suffix(".json")
    raw.write_text(
        json.dumps(
            {
                "rows": rows,
                "hv": hv,
                "reference": ref.tolist(),
                "search_cpu_s": search_cpu,
                "export_cpu_s": export_cpu,
                "bootstrap_ratio": {
                    "draws": len(boot),
                    "q025": float(np.quantile(boot, 0.025)),
                    "median": float(np.median(boot)),
                    "q975": float(np.quantile(boot, 0.975)),
                    "p_at_least_1_1": float(np.mean(boot >= 1.1)),
                },
            },
            indent=1,
        )
    )
    ratio = hv["found"] / hv["family"] if hv["family"] > 0 else math.inf
    finetune = f" --finetune-epochs {args.finetune_epochs}" if args.finetune_epochs else ""
    if args.seed is not None:
        finetune += f" --seed {args.seed}"
    n_family = sum(r[0] == "family" for r in rows)
    lines = [
        f"# Found front vs MobileNetV2 width family at equal CPU time ({datetime.date.today()})",
        "",
        f"`python benchmarks/front_vs_family.py --config {args.config} --work {args.work} --out "
        f"{args.out}{finetune}`; {seconds:.0f} s wall. Raw: `{raw.name}`.",
        "",
        f"CPU time charged to hwnas: search {search_cpu:.0f} s (supernet training included) + "
        f"export of the front {export_cpu:.0f} s"
        + (f" (fine-tuned {args.finetune_epochs} epochs)" if args.finetune_epochs else "")
        + "; each family member got a quarter of it.",
        "",
        "| set | network | arch / training | test acc. % | latency ms (ORT, re-measured) |",
        "|---|---|---|---:|---:|",
        *(f"| {s} | {n} | `{a}` | {acc:.2f} | {lat:.4f} |" for s, n, a, acc, lat in rows),
        "",
        f"Hypervolume (accuracy x latency, reference {-ref[0]:.2f} % / {ref[1]:.4f} ms): found "
        f"{hv['found']:.4f}, family {hv['family']:.4f}, ratio **{ratio:.2f}** (goal >= 1.1); "
        f"{dominated} of {n_family} family networks are dominated by the found front.",
        "",
        f"Resampling the test images ({len(boot)} bootstrap draws, latencies as measured): ratio "
        f"95 % interval {np.quantile(boot, 0.025):.2f}-{np.quantile(boot, 0.975):.2f}, median "
        f"{np.median(boot):.2f}; {100 * np.mean(boot >= 1.1):.0f} % of draws reach 1.1. Per-image "
        f"hits: `{args.out.with_suffix('.hits.npz').name}`.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
