"""TAS against uniform-width pruning on a CIFAR ResNet (Dong & Yang, NeurIPS 2019, table 3).

For each seed the unpruned ResNet (the ``resnet`` space at full width and depth) is trained as
the teacher (cross-entropy, ``--kd-epochs``). For each target FLOPs ratio TAS searches widths
and depths (``--epochs``) and the derived network is trained from scratch with distillation from
the teacher (``--kd-epochs``). The baseline prunes every layer by one ratio: the largest ratio,
on a grid of ``--baseline-step`` (0.05), whose FLOPs do not exceed those of TAS's network,
trained with the same distillation recipe and epochs; ``--baseline-from`` an earlier run's JSON
reuses its TAS rows and trains only the teachers and the baseline. TAS derives its network with
``--derive`` (default ``target``: the argmax moved into the target's FLOPs band; ``argmax``: the
paper's). Test accuracy (the dataset's ``test`` split), FLOPs (MMACs) and wall time per method
go to ``--out`` as JSON, and a table of mean +- std over seeds is printed.

    python benchmarks/tas_resnet.py --dataset mnist --epochs 30 --kd-epochs 30 \\
        --ratios 0.3 0.5 0.7 --seeds 0 1 2 --out benchmarks/results/tas_resnet.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.data import Dataset, load_dataset
from hwnas.oneshot.relax.tas import TASConfig, distill, tas_search, uniform_at_flops
from hwnas.spaces import ResNetSpace
from hwnas.training import TrainConfig, evaluate, fit


def baseline_ratios(step: float) -> list[float]:
    """The uniform baseline's ratio grid (``--baseline-step``): fine enough to sit just under
    TAS's FLOPs."""
    n = round(1 / step)
    return [round(step * i, 2) for i in range(1, n + 1)]


def _space(dataset: Dataset, blocks: int, ratios: list[float] | None = None) -> ResNetSpace:
    c, h, _ = dataset.input_shape
    return ResNetSpace(
        blocks=blocks, ratios=ratios, in_channels=c, input_size=h, num_classes=dataset.num_classes
    )


def _test_acc(net: torch.nn.Module, dataset: Dataset) -> float:
    return evaluate(net, *dataset.tensors("test"))[1]


def _row(method: str, ratio: float, seed: int, space: ResNetSpace, arch: Any) -> dict[str, Any]:
    metrics = space.cheap_metrics(arch)
    return {
        "method": method,
        "ratio": ratio,
        "seed": seed,
        "arch": space.to_string(arch),
        "flops_m": metrics["flops_m"],
        "params_m": metrics["params_m"],
    }


def _tas_row(
    space: ResNetSpace,
    dataset: Dataset,
    teacher: torch.nn.Module,
    config: TASConfig,
    ratio: float,
    seed: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    result = tas_search(space, dataset, config)
    search_s = time.perf_counter() - started
    arch = space.from_string(result.runs[0].archs[0])
    started = time.perf_counter()
    student, _ = distill(space, arch, dataset, teacher, config)
    kd_s = time.perf_counter() - started
    tas = _row("tas", ratio, seed, space, arch)
    tas.update(
        test_acc=_test_acc(student, dataset),
        search_s=search_s,
        kd_s=kd_s,
        wall_s=search_s + kd_s,
        expected_flops_m=result.runs[0].metrics["expected_flops_m"],
        argmax_flops_m=result.runs[0].metrics["argmax_flops_m"],
    )
    return tas


def _check_step(step: float) -> None:
    n = round(1 / step) if 0 < step <= 1 else 0
    if n < 1 or abs(n * step - 1) > 1e-9 or round(step, 2) != step:
        raise SystemExit(
            f"error: --baseline-step must divide 1 in steps of two decimals at most (0.05, "
            f"0.01, 0.1, ...), got {step:g}"
        )


def _earlier_rows(path: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows of an earlier run's JSON, refused in one line unless it holds a TAS row for
    every seed and ratio asked for."""
    try:
        rows = json.loads(path.read_text())["rows"]
        have = {(r["seed"], r["ratio"]) for r in rows if r["method"] == "tas"}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(
            f"error: --baseline-from {path}: not a tas_resnet result ({exc}); give the .json "
            "an earlier run of this script wrote"
        ) from None
    missing = [(s, r) for s in args.seeds for r in args.ratios if (s, r) not in have]
    if missing:
        raise SystemExit(
            f"error: --baseline-from {path} has no TAS row for (seed, ratio) {missing}; "
            "ask for the seeds and ratios it ran"
        )
    return list(rows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_dataset({"name": args.dataset})
    space = _space(dataset, args.blocks)
    baseline_space = _space(dataset, args.blocks, baseline_ratios(args.baseline_step))
    earlier = _earlier_rows(args.baseline_from, args) if args.baseline_from else None
    unpruned = space.cheap_metrics(space.full_arch())["flops_m"]
    rows: list[dict[str, Any]] = []
    teachers: list[dict[str, Any]] = []
    for seed in args.seeds:
        started = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            teacher = space.build_network(space.full_arch())
        train = TrainConfig(
            epochs=args.kd_epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=5e-4,
            label_smoothing=0.0,
            seed=seed,
        )
        fit(teacher, dataset.tensors("train"), config=train)
        teacher.eval()
        teachers.append(
            {
                "seed": seed,
                "flops_m": unpruned,
                "test_acc": _test_acc(teacher, dataset),
                "wall_s": time.perf_counter() - started,
            }
        )
        print(f"seed {seed}: teacher test acc {teachers[-1]['test_acc']:.4f}")
        for ratio in args.ratios:
            config = TASConfig(
                epochs=args.epochs,
                kd_epochs=args.kd_epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                target_flops_ratio=ratio,
                derive=args.derive,
                seed=seed,
            )
            if earlier is not None:  # TAS's row of an earlier run; only the baseline trains
                (tas,) = [
                    r
                    for r in earlier
                    if r["method"] == "tas" and r["seed"] == seed and r["ratio"] == ratio
                ]
                rows.append(tas)
            else:
                tas = _tas_row(space, dataset, teacher, config, ratio, seed)
                rows.append(tas)
            base_arch = uniform_at_flops(baseline_space, tas["flops_m"])
            started = time.perf_counter()
            student, _ = distill(baseline_space, base_arch, dataset, teacher, config)
            kd_s = time.perf_counter() - started
            base = _row("uniform", ratio, seed, baseline_space, base_arch)
            base.update(test_acc=_test_acc(student, dataset), search_s=0.0, kd_s=kd_s, wall_s=kd_s)
            rows.append(base)
            for r in (tas, base):
                print(
                    f"seed {seed} ratio {ratio:g} {r['method']:>7}: {r['flops_m']:.3f} MMACs "
                    f"({r['flops_m'] / unpruned:.2f}), test acc {r['test_acc']:.4f}, "
                    f"{r['wall_s']:.1f} s"
                )
    return {
        "benchmark": "tas_resnet",
        "date": datetime.date.today().isoformat(),
        "args": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"
        },
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
        "threads": torch.get_num_threads(),
        "unpruned_flops_m": unpruned,
        "teachers": teachers,
        "rows": rows,
    }


def _mean_std(values: list[float], digits: int) -> str:
    a = np.asarray(values, dtype=float)
    std = a.std(ddof=1) if a.size > 1 else 0.0
    return f"{a.mean():.{digits}f} ± {std:.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """Markdown: per target ratio and method, FLOPs, test accuracy and wall time over seeds."""
    unpruned = report["unpruned_flops_m"]
    teacher_acc = [t["test_acc"] for t in report["teachers"]]
    lines = [
        f"Unpruned: {unpruned:.3f} MMACs, test acc {_mean_std(teacher_acc, 4)} "
        f"(seeds: {len(teacher_acc)}).",
        "",
        "| target ratio | method | MMACs | FLOPs ratio | test acc | wall s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for ratio in report["args"]["ratios"]:
        for method in ("tas", "uniform"):
            rows = [r for r in report["rows"] if r["ratio"] == ratio and r["method"] == method]
            flops = [r["flops_m"] for r in rows]
            lines.append(
                f"| {ratio:g} | {method} | {_mean_std(flops, 3)} "
                f"| {_mean_std([f / unpruned for f in flops], 3)} "
                f"| {_mean_std([r['test_acc'] for r in rows], 4)} "
                f"| {_mean_std([r['wall_s'] for r in rows], 1)} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["mnist", "digits"], default="mnist")
    ap.add_argument("--epochs", type=int, default=30, help="TAS search epochs")
    ap.add_argument("--kd-epochs", type=int, default=30, help="teacher and distillation epochs")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--blocks", type=int, default=3, help="blocks per stage (3: ResNet-20)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument(
        "--derive", choices=["target", "argmax"], default="target", help="TAS's derivation"
    )
    ap.add_argument("--baseline-step", type=float, default=0.05, help="uniform ratio grid")
    ap.add_argument(
        "--baseline-from",
        type=Path,
        help="an earlier run's JSON: reuse its TAS rows and train only teachers and the baseline",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=Path("results.json"))
    args = ap.parse_args()
    _check_step(args.baseline_step)
    if args.baseline_from:
        _earlier_rows(args.baseline_from, args)  # refuses a bad file before anything trains
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print()
    print(table(report))


if __name__ == "__main__":
    main()
