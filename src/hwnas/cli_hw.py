"""``hwnas hw ...``: measure, calibrate and predict latency on this machine.

    hwnas hw measure   --space nb201 --arch STR [--backend torch] [--batch 1] [--threads 1]
    hwnas hw calibrate --space nb201 --backend torch --samples N --out DIR
    hwnas hw noise     --space nb201 --samples N [--backend onnxruntime] [--in-process]
    hwnas hw predict   --model DIR --arch STR
    hwnas hw tinynas   --space mbv3 --sram-kb S --flash-kb F [--widths ...] [--out FILE.csv]

``measure`` and ``predict`` print one number in milliseconds, for scripts. ``tinynas`` is
TinyNAS's first stage: the (width, resolution) sub-space whose networks that fit the MCU's SRAM
and flash have the most FLOPs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwnas.cli_tinynas import add_tinynas_command
from hwnas.errors import ConfigError


def add_hw_commands(sub: Any) -> None:
    hw = sub.add_parser("hw", help="hardware cost models: measure, calibrate, predict latency")
    hsub = hw.add_subparsers(dest="hw_command", required=True)

    def timing(p: argparse.ArgumentParser, default: str = "blocks") -> None:
        p.add_argument(
            "--backend",
            default="onnxruntime",
            help="onnxruntime (default: what deploys) or torch (PyTorch eager)",
        )
        p.add_argument("--batch", type=int, default=1)
        p.add_argument("--threads", default="1", help="intra-op threads, or 'all'")
        p.add_argument("--clock", default="wall", help="wall (default) or cpu (thread CPU time)")
        sets = default == "round-robin"
        p.add_argument(
            "--timing",
            default=default,
            help=(
                "round-robin (default: every network timed in each round, round speed removed), "
                "interleaved or blocks"
                if sets
                else "blocks (default) or interleaved (alternating with a reference network)"
            ),
        )
        p.add_argument("--repeats", type=int, default=None, help="timed blocks per network")

    m = hsub.add_parser("measure", help="measure one architecture; prints its median latency (ms)")
    m.add_argument("--space", required=True)
    m.add_argument("--arch", required=True, help="canonical architecture string")
    timing(m)
    m.set_defaults(func=cmd_measure)

    c = hsub.add_parser("calibrate", help="measure samples, fit LUT and predictor, validate")
    c.add_argument("--space", required=True)
    c.add_argument("--samples", type=int, default=300)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--test-fraction", type=float, default=0.3)
    c.add_argument(
        "--device",
        default=None,
        help="name in latency_ms@<device> (default: local, with the backend, batch and threads "
        "when they are not onnxruntime, 1 and 1)",
    )
    c.add_argument(
        "--predictor",
        default=None,
        help="learned model: kernels (default with onnxruntime: ONNX Runtime's executed kernels), "
        "gbdt (default with torch) or ridge",
    )
    timing(c, "round-robin")
    c.set_defaults(func=cmd_calibrate)

    n = hsub.add_parser(
        "noise",
        help="time networks twice in separate processes: the agreement any predictor can reach",
    )
    n.add_argument("--space", required=True)
    n.add_argument("--samples", type=int, default=30, help="networks, spread over FLOPs")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument(
        "--in-process",
        action="store_true",
        help="both passes in this process (the in-process floor)",
    )
    n.add_argument("--out", type=Path, default=None, help="write the figures to this JSON file")
    timing(n, "round-robin")
    n.set_defaults(func=cmd_noise)

    p = hsub.add_parser("predict", help="predict one architecture's latency (ms) with a model")
    p.add_argument("--model", type=Path, required=True, help="folder written by calibrate")
    p.add_argument("--arch", required=True, help="canonical architecture string")
    p.set_defaults(func=cmd_predict)

    add_tinynas_command(hsub)


def _timing_options(args: argparse.Namespace) -> dict[str, Any]:
    from hwnas.hardware.fingerprint import resolve_threads

    threads: int | str = args.threads
    if isinstance(threads, str) and threads != "all":
        try:
            threads = int(threads)
        except ValueError:
            raise ConfigError(
                f"--threads must be a whole number or 'all', got {threads!r}"
            ) from None
    opts: dict[str, Any] = {
        "backend": args.backend,
        "batch": args.batch,
        "threads": resolve_threads(threads),
        "clock": args.clock,
        "timing": args.timing,
    }
    if args.repeats is not None:
        opts["repeats"] = args.repeats
    return opts


def cmd_measure(args: argparse.Namespace) -> int:
    from hwnas.hardware.fingerprint import local_target
    from hwnas.hardware.measured import measure_arch
    from hwnas.spaces import create_space

    space = create_space(args.space)
    arch = space.from_string(args.arch)
    opts = _timing_options(args)
    m = measure_arch(space, arch, **opts)
    target = local_target(m.backend, m.batch, m.threads)
    backend = "ONNX Runtime" if m.backend == "onnxruntime" else "PyTorch eager"
    Console(stderr=True).print(
        f"latency_ms@{target}: {m.median_ms:.4f} ms per forward pass ({backend}, batch "
        f"{m.batch}, {m.threads} thread{'s' if m.threads > 1 else ''}, {m.clock} clock; IQR "
        f"{m.iqr_ms:.4f} ms, CV {m.cv:.3f}, {m.n_samples} blocks of {m.runs_per_block} runs)",
        highlight=False,
        soft_wrap=True,
    )
    print(f"{m.median_ms:.4f}")  # stdout: the number alone, for scripts
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from hwnas.hardware.predictor import LatencyPredictor

    predictor = LatencyPredictor.load(args.model)
    assert predictor.space is not None
    arch = predictor.space.from_string(args.arch)
    print(f"{float(predictor.predict([arch])[0]):.4f}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from hwnas.hardware.calibrate import calibrate, write_calibration
    from hwnas.spaces import create_space

    if args.samples < 10:
        raise ConfigError(f"--samples must be at least 10, got {args.samples}")
    space = create_space(args.space)
    err = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        cal = calibrate(
            space,
            samples=args.samples,
            seed=args.seed,
            device=args.device,
            test_fraction=args.test_fraction,
            predictor_kind=args.predictor,
            progress=progress,
            **_timing_options(args),
        )
    files = write_calibration(cal, args.out)
    out = Console(width=None if Console().is_terminal else 160)
    table = Table(
        title=f"held-out latency prediction, {space.name} on {cal.device} "
        f"(n_train={len(cal.train)}, n_test={len(cal.test)}, {cal.seconds:.0f} s)",
        title_justify="left",
    )
    for col in ("model", "within ±5%", "within ±10%", "RMSPE %", "Spearman", "Kendall τ"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for name, fig in cal.figures.items():
        table.add_row(
            name,
            f"{fig['share_within_5pct']:.1%}",
            f"{fig['share_within_10pct']:.1%}",
            f"{fig['rmspe_pct']:.2f}",
            f"{fig['spearman']:.3f}",
            f"{fig['kendall_tau']:.3f}",
        )
    out.print(table)
    out.print(
        f"noise floor (the held-out networks measured again in a fresh process): "
        f"{cal.noise['within_5pct']:.1%} within ±5%, {cal.noise['within_10pct']:.1%} "
        f"within ±10%, Spearman {cal.noise['spearman']:.3f}: no model can agree with a "
        "measurement better than that",
        highlight=False,
    )
    out.print(f"wrote {', '.join(str(p) for p in files.values())}", highlight=False)
    return 0


def cmd_noise(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from hwnas.cli_output import check_file_flag
    from hwnas.hardware.calibrate import stratified_sample
    from hwnas.hardware.fingerprint import local_target
    from hwnas.hardware.noise import noise_floor
    from hwnas.spaces import create_space

    if args.samples < 3:
        raise ConfigError(f"--samples must be at least 3, got {args.samples}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.out is not None:
        check_file_flag("--out", args.out)
        try:  # before minutes of measuring, not after
            args.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"--out {args.out}: cannot make its folder ({exc.strerror or exc}); give a file "
                "in a folder you can write to"
            ) from None
    opts = _timing_options(args)
    space = create_space(args.space)
    archs = stratified_sample(space, args.samples, np.random.default_rng(args.seed))
    err = Console(stderr=True)
    columns = (TextColumn("[bold]noise"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("noise", total=2 * len(archs))
        out = noise_floor(
            space,
            archs,
            separate_processes=not args.in_process,
            progress=lambda done, total: bar.update(task, completed=done),
            **opts,
        )
    target = local_target(opts["backend"], opts["batch"], opts["threads"])
    where = "in this process" if args.in_process else "each in a fresh process"
    backend = "ONNX Runtime" if opts["backend"] == "onnxruntime" else "PyTorch eager"
    console = Console(width=None if Console().is_terminal else 160)
    console.print(
        f"noise floor of latency_ms@{target} ({backend}, batch {opts['batch']}, "
        f"{opts['threads']} thread(s), {opts['clock']} clock) over {out['n']} {space.name} "
        f"networks, two passes {where}: {out['within_5pct']:.1%} within ±5%, "
        f"{out['within_10pct']:.1%} within ±10%, Spearman {out['spearman']:.3f}; median "
        f"difference {out['median_abs_rel_diff']:.2%}, largest {out['max_abs_rel_diff']:.1%}; "
        f"within a measurement: median CV {out['median_cv']:.3f}, median IQR "
        f"{out['median_iqr_rel']:.2%} of the median",
        highlight=False,
    )
    if out["median_cpu_share"] < 0.8 and opts["threads"] == 1 and opts["clock"] == "wall":
        console.print(
            f"the machine was busy (the measuring thread ran {out['median_cpu_share']:.0%} of "
            "the wall time): measure on a quiet machine for a floor worth comparing",
            highlight=False,
        )
    if args.out is not None:
        record = {"space": space.name, "target": target, "options": opts, **out}
        try:
            args.out.write_text(json.dumps(record, indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(
                f"--out {args.out}: cannot write it ({exc.strerror or exc}); the figures are "
                "printed above; give a file in a folder you can write to"
            ) from None
        console.print(f"wrote {args.out}", highlight=False)
    return 0
