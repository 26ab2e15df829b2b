"""Differentiable search on NB201, scored by the benchmark table: fidelity and latency control.

``fidelity``: every method searches the NB201 cell on proxy data that ships here (MNIST-5k),
then the derived cell (argmax) is looked up in the NB201 table: CIFAR-10 / CIFAR-100 /
ImageNet16-120 test accuracy (200 epochs), which the search never saw. Reports per method the
mean +- std over seeds, the parameter-free edges (DARTS's known collapse: all six skip-connect),
and wall time.

``hardware``: one method with a device's latency in the loss, the cost fitted on ``--rows`` rows
of that device's NB201 latency table (the only table rows the search reads): a sweep of latency
weights (does the derived cell's table latency fall as the weight rises?) and, with
``--target``, whether the derived cell is at or below the target + 10 % (moved into the
target's band by default, the argmax cell's table figures beside it; ``--derive argmax`` keeps
the argmax).

    python benchmarks/nb201_gradient.py fidelity --seeds 0 1 2 --epochs 10 \\
        --out benchmarks/results/nb201_gradient_fidelity
    (on a machine with a CUDA GPU: add --set compute_device=cuda)
    python benchmarks/nb201_gradient.py hardware --method proxyless --device raspi4 \\
        --weights 0 0.3 1 3 --seeds 0 1 2 --out benchmarks/results/nb201_gradient_hardware
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
import yaml

from _gradient_tables import table_md
from hwnas.data import load_dataset
from hwnas.errors import HwnasError
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.problem import Objective, Problem
from hwnas.spaces import NB201Space
from hwnas.strategies import create_strategy

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
METHODS = ("darts", "darts-2", "pc_darts", "sharpdarts", "rarts", "gdas", "fbnet", "proxyless")


def _search(method: str, options: dict[str, Any], dataset: Any, seed: int) -> Any:
    name, _, order = method.partition("-")
    if order:
        options = {**options, "order": int(order)}
    strategy = create_strategy(name, **options)
    strategy.attach(dataset)
    problem = Problem(NB201Space(), (Objective("accuracy", "maximize"),))
    strategy.setup(problem, np.random.default_rng(seed))
    return strategy.prepare()


def _argmax_arch(run: Any) -> str:
    """The NB201 cell of the last epoch's most probable choice per edge."""
    probs = run.trajectory[-1]
    ops = [run.choices[i][int(np.argmax(p))] for i, p in enumerate(probs)]
    return NB201Space().to_string({"ops": ops})


def _tables(device: str | None) -> dict[str, Any]:
    space = NB201Space()
    ctx = EvaluatorContext(space=space)
    out = {}
    for ds in DATASETS:
        opts = {"dataset": ds}
        if device is not None and ds == "cifar10":
            opts["devices"] = [device]
        out[ds] = create_evaluator("nb201", ctx, **opts)
    return out


def _score(tables: dict[str, Any], arch: str, device: str | None) -> dict[str, float]:
    row = {ds: tables[ds].lookup(arch)["accuracy"] for ds in DATASETS}
    if device is not None:
        row["latency_ms"] = tables["cifar10"].lookup(arch)[f"latency_ms@{device}"]
    return row


def _data_spec(args: argparse.Namespace) -> dict[str, Any]:
    """``--data`` (a dataset name, or ``npz`` with ``--data-path``) at ``--image-size``."""
    spec: dict[str, Any] = {"name": args.data, "image_size": args.image_size}
    if args.data_path is not None:
        spec["path"] = str(args.data_path)
    if args.crop_padding is not None:  # random crops of the padded image (translations)
        spec["augment"] = {"crop_padding": args.crop_padding, "flip": False}
    return spec


def _method_options(args: argparse.Namespace, method: str) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "epochs": args.epochs,
        "channels": args.channels,
        "cells": args.cells,
        "top_k": 1,
    }
    name = method.partition("-")[0]
    if args.batch_size is not None:
        opts["batch_size"] = args.batch_size
    # Warm-ups scaled from the papers' share of the epochs (PC-DARTS 15/50, FBNet 10/90).
    if name == "pc_darts":
        opts["warmup_epochs"] = round(args.epochs * 15 / 50)
    if name == "fbnet":
        opts["warmup_epochs"] = round(args.epochs * 10 / 90)
    if name in ("fbnet", "proxyless"):
        opts["cost"] = {"source": "flops"}
        opts["latency_weight"] = 0.0  # accuracy alone: the fidelity run compares the searches
    opts.update(args.set)
    return opts


def _setting(text: str) -> tuple[str, Any]:
    """``--set KEY=VALUE``: one method option, the value read as YAML (``gradient=sampled``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected KEY=VALUE, e.g. gradient=all")
    return key, yaml.safe_load(value)


def fidelity(args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_dataset(_data_spec(args))
    tables = _tables(None)
    rows = []
    for method in args.methods:
        for seed in args.seeds:
            start = time.perf_counter()
            result = _search(method, _method_options(args, method), dataset, seed)
            wall = time.perf_counter() - start
            run = result.runs[0]
            row = {"method": method, "seed": seed, "arch": run.archs[0], "wall_s": wall,
                   "parameter_free_edges": run.metrics["parameter_free_edges"],
                   "proxy_valid_accuracy": run.metrics.get("valid_accuracy"),
                   "search_train_loss": run.metrics.get("train_loss"),
                   "search_train_accuracy": run.metrics.get("train_accuracy"),
                   **_score(tables, run.archs[0], None)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows}


def hardware(args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_dataset(_data_spec(args))
    tables = _tables(args.device)
    rows = []
    cost = {"source": "table", "device": args.device, "rows": args.rows}
    for seed in args.seeds:
        options = {**_method_options(args, args.method), "cost": cost}
        options.pop("latency_weight", None)
        options["latency_weights"] = list(args.weights)
        if args.target is not None:
            options["target"] = args.target
        if args.derive is not None:
            options["derive"] = args.derive
        if args.target_cost is not None:
            options["target_cost"] = args.target_cost
        start = time.perf_counter()
        if args.repairs is not None:
            options["target_repairs"] = args.repairs
            result, chains = _search_and_repair(args, options, dataset, seed, tables)
        else:
            result, chains = _search(args.method, options, dataset, seed), None
        wall = time.perf_counter() - start
        for r, run in enumerate(result.runs):
            row = {"seed": seed, "label": run.label, "arch": run.archs[0], "wall_s": wall,
                   "expected_cost": run.metrics.get("expected_cost"),
                   "derived_cost": run.metrics.get("derived_cost"),
                   "cost_rows": result.cost["source"]["rows"],
                   "cost_cv_spearman": result.cost["source"].get("cv_spearman"),
                   **_score(tables, run.archs[0], args.device)}  # fmt: skip
            if "argmax_cost" in run.metrics:  # moved into the target's band: the argmax too
                argmax = _argmax_arch(run)
                scored = _score(tables, argmax, args.device)
                row.update(argmax_arch=argmax, argmax_cost=run.metrics["argmax_cost"],
                           argmax_latency_ms=scored["latency_ms"],
                           argmax_cifar10=scored["cifar10"])  # fmt: skip
            if chains is not None:  # the cells measured in turn: derived, then repaired
                # What a repair needs, kept so that repair rules can be compared offline.
                row.update(probs=run.trajectory[-1], pick=run.picks[0] if run.picks else None,
                           cost_model=result.cost)  # fmt: skip
                row["chain"] = chains[r]
                _add_kept(row, tables, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows}


def _add_kept(row: dict[str, Any], tables: Any, args: argparse.Namespace) -> None:
    """The row's chain of measured cells scored, and the cell kept for the target (the
    strategy's rule, :func:`hwnas.oneshot.relax.band.choose`, on the table latencies the
    study measured): ``final_*`` the last cell measured, ``kept_*`` the kept one."""
    from hwnas.oneshot.relax.band import choose

    scored = [_score(tables, a, args.device) for a in row["chain"]]
    kept = choose([(a, s["latency_ms"]) for a, s in zip(row["chain"], scored)],
                  0.9 * args.target, args.target)  # fmt: skip
    row.update(measurements=len(row["chain"]),
               chain_latency_ms=[s["latency_ms"] for s in scored],
               chain_cifar10=[s["cifar10"] for s in scored],
               final_arch=row["chain"][-1], final_latency_ms=scored[-1]["latency_ms"],
               final_cifar10=scored[-1]["cifar10"], kept_arch=kept,
               kept_latency_ms=scored[row["chain"].index(kept)]["latency_ms"],
               kept_cifar10=scored[row["chain"].index(kept)]["cifar10"])  # fmt: skip


def rescore(args: argparse.Namespace) -> dict[str, Any]:
    """A stored ``hardware --repairs`` run's chains scored again (table lookups only)."""
    data = json.loads(args.from_json.read_text())
    stored = argparse.Namespace(**data["args"])
    tables = _tables(stored.device)
    for row in data["rows"]:
        if "chain" in row:
            _add_kept(row, tables, stored)
    args.kind = "hardware"  # its tables
    data["rescored"] = datetime.date.today().isoformat()
    return data


def _search_and_repair(
    args: argparse.Namespace, options: dict[str, Any], dataset: Any, seed: int, tables: Any
) -> tuple[Any, list[list[str]]]:
    """The search in a study whose evaluator is the device's table (the measurement): each
    derived cell is measured, and one outside the target's band is moved again by the cost
    model's error there (``target_repairs``) and measured in turn. Returns the search result
    and, per run, the cells measured in order."""
    from hwnas.study import Study

    name, _, order = args.method.partition("-")
    if order:
        options = {**options, "order": int(order)}
    strategy = create_strategy(name, **options)
    strategy.attach(dataset)
    latency = f"latency_ms@{args.device}"
    study = Study(
        space=NB201Space(), evaluators=[tables["cifar10"]],
        objectives=[Objective("accuracy", "maximize"), Objective(latency, "minimize")],
        strategy=strategy, seed=seed,
    )  # fmt: skip
    study.optimize(budget=100)  # stops when the derived and repaired cells run out
    chains: list[list[str]] = [[] for _ in strategy.result.runs]
    for trial in study.trials:
        origin = strategy.derived_from(trial.arch)
        if origin is not None:
            chains[origin[0]].append(trial.arch)
    return strategy.result, chains


def multitrial(args: argparse.Namespace) -> dict[str, Any]:
    """The default multi-trial strategy at the gradient sweep's wall time, on the same footing:
    it sees accuracy on the same proxy data (each cell trained from scratch at the search
    network's size, ``--train-epochs``) and the device's table latency (one row per evaluation),
    and stops when the sweep's wall time (``--wall-from``, per seed) is spent. Both fronts are
    then scored by the table (CIFAR-10 test accuracy x device latency): hypervolume with both
    axes scaled to the table's range over all cells."""
    from hwnas.evaluation.nb201 import NB201Benchmark
    from hwnas.pareto import hypervolume
    from hwnas.study import Study

    sweep = json.loads(args.wall_from.read_text())["rows"]
    dataset = load_dataset(_data_spec(args))
    space = NB201Space(
        input_size=args.image_size, in_channels=dataset.input_shape[0], channels=args.channels,
        cells=args.cells,
    )  # fmt: skip
    tables = _tables(args.device)
    latency = f"latency_ms@{args.device}"
    rows = []
    for seed in args.seeds:
        wall = max(r["wall_s"] for r in sweep if r["seed"] == seed)
        ctx = EvaluatorContext(space=space, dataset=dataset, seed=seed)
        train = create_evaluator(
            "train", ctx, epochs=args.train_epochs, batch_size=args.batch_size or 64,
            metric="proxy_accuracy",
        )  # fmt: skip
        lat = NB201Benchmark(dataset="cifar10", devices=[args.device], context=ctx)
        study = Study(
            space=space, evaluators=[train, lat],
            objectives=[Objective("proxy_accuracy", "maximize"), Objective(latency, "minimize")],
            seed=seed,
        )  # fmt: skip
        start = time.perf_counter()
        while time.perf_counter() - start < wall:
            study.optimize(study.n_charged + 1)
        spent = time.perf_counter() - start
        front = [t.arch for t in study.pareto_front()]
        mine = [_score(tables, a, args.device) for a in front]
        theirs = [r for r in sweep if r["seed"] == seed]
        rows.append(
            {"seed": seed, "wall_s": wall, "multitrial_wall_s": spent,
             "evaluations": study.n_charged, "multitrial_front": front,
             "multitrial_scored": mine, "gradient_scored": theirs}
        )  # fmt: skip
    acc, lat_ms = _table_ranges(tables, args.device)
    for row in rows:
        for key, points in (("hv_multitrial", row["multitrial_scored"]),
                            ("hv_gradient", row["gradient_scored"])):  # fmt: skip
            F = np.array([[(acc[1] - p["cifar10"]) / (acc[1] - acc[0]),
                           (p["latency_ms"] - lat_ms[0]) / (lat_ms[1] - lat_ms[0])]
                          for p in points])  # fmt: skip
            row[key] = hypervolume(F, np.array([1.0, 1.0]))
        print(json.dumps({k: v for k, v in row.items() if k.startswith(("seed", "hv", "eval"))}))
    return {"rows": rows}


def _table_ranges(tables: dict[str, Any], device: str) -> tuple[tuple[float, float], ...]:
    """CIFAR-10 test accuracy and device latency ranges over every NB201 cell (the HV's box)."""
    ev = tables["cifar10"]
    accs, lats = [], []
    for arch in ev.tables.index:
        row = ev.lookup(arch)
        accs.append(row["accuracy"])
        lats.append(row[f"latency_ms@{device}"])
    return (min(accs), max(accs)), (min(lats), max(lats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("fidelity", "hardware", "multitrial", "rescore"))
    ap.add_argument("--from-json", type=Path, help="rescore: a hardware --repairs run's .json")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--method", default="proxyless")
    ap.add_argument("--device", default="raspi4")
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 1.0, 3.0])
    ap.add_argument("--target", type=float, default=None)
    ap.add_argument(
        "--derive",
        choices=("target", "argmax"),
        default=None,
        help="with --target: move the derived cell into the target's band (the default) or "
        "keep the argmax",
    )
    ap.add_argument(
        "--target-cost",
        choices=("expected", "argmax"),
        default=None,
        help="with --target: the cost the hinge acts on (default: expected)",
    )
    ap.add_argument(
        "--repairs",
        type=int,
        default=None,
        help="hardware with --target: search in a study that measures each derived cell on "
        "the device's table and repairs a miss of the band up to this many times",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells", type=int, default=1)
    ap.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="the searches' batch (default: each method's own: 64, PC-DARTS 256); multitrial: "
        "the train evaluator's (default 64)",
    )
    ap.add_argument("--data", default="mnist")
    ap.add_argument(
        "--data-path", type=Path, help="the .npz of --data npz (e.g. cluttered_mnist.py's)"
    )
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument(
        "--crop-padding",
        type=int,
        default=None,
        help="augment the searches' training images by random crops of the image padded by "
        "this many pixels (no flips: digits); default: no augmentation",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option for every search (repeatable), e.g. --set gradient=sampled",
    )
    ap.add_argument("--wall-from", type=Path, help="multitrial: the hardware run's .json")
    ap.add_argument("--train-epochs", type=int, default=3, help="multitrial: epochs per cell")
    ap.add_argument("--out", type=Path, required=True, help="path stem: writes .json and .md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    kinds = {"fidelity": fidelity, "hardware": hardware, "multitrial": multitrial,
             "rescore": rescore}  # fmt: skip
    run = kinds[args.kind]
    try:
        data = run(args)
    except HwnasError as exc:  # bad options: one line, nothing written
        raise SystemExit(f"error: {exc}") from None
    # A rescored run keeps its own arguments, machine, date and wall time.
    data.setdefault(
        "args", {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    )
    data.setdefault(
        "machine", f"{platform.node()} {platform.processor()} torch {torch.__version__}"
    )
    data.setdefault("date", datetime.date.today().isoformat())
    data.setdefault("wall_s", time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=1))
    md = table_md(args.kind, data["rows"])
    header = f"# nb201_gradient {args.kind} ({data['date']}, {data['wall_s']:.0f} s)\n\n"
    args.out.with_suffix(".md").write_text(header + md + "\n")
    print(md)


if __name__ == "__main__":
    main()
