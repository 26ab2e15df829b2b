"""``hwnas hw tinynas``: TinyNAS's first stage, the (width, resolution) sub-space whose networks
that fit the MCU's SRAM and flash have the most FLOPs.

    hwnas hw tinynas --space mbv3 --sram-kb S --flash-kb F [--widths ...] [--out FILE.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwnas.errors import ConfigError


def add_tinynas_command(hsub: Any) -> None:
    t = hsub.add_parser(
        "tinynas",
        help="TinyNAS stage 1: the width and resolution whose networks fitting the MCU's SRAM "
        "and flash have the most FLOPs",
    )
    t.add_argument("--space", required=True, help="the space (mbv3: its width and resolution)")
    t.add_argument("--preset", default="full", help="mbv3 preset: full (default) or small")
    t.add_argument("--sram-kb", type=float, required=True, help="SRAM for activations, kB")
    t.add_argument("--flash-kb", type=float, required=True, help="flash for the model, kB")
    t.add_argument("--widths", default=None, help="width multipliers, e.g. 0.3,0.4,0.5")
    t.add_argument("--resolutions", default=None, help="input resolutions, e.g. 96,112,128")
    t.add_argument("--samples", type=int, default=1000, help="random networks per grid cell")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--min-share",
        type=float,
        default=0.0,
        help="choose only among cells where at least this share of the samples fit (0..1; "
        "default 0, as TinyNAS)",
    )
    t.add_argument("--out", type=Path, default=None, help="write the table to this CSV file")
    t.set_defaults(func=cmd_tinynas)


def _number_list(flag: str, text: str | None, kind: type[int] | type[float]) -> list[Any] | None:
    """``0.3,0.4`` as a list for a grid flag; None when the flag is not given."""
    if text is None:
        return None
    example = "0.3,0.4,0.5" if kind is float else "96,112,128"
    what = "numbers" if kind is float else "whole numbers"
    items = [part.strip() for part in text.split(",")]
    values: list[Any] = []
    for item in items:
        try:
            values.append(kind(item))
        except ValueError:
            raise ConfigError(
                f"{flag}: {item!r} is not a number; give comma-separated {what} like {example}"
            ) from None
    return values


def cmd_tinynas(args: argparse.Namespace) -> int:
    import csv
    import math

    from hwnas.cli_output import check_file_flag, stdout
    from hwnas.hardware.tinynas import optimize_space
    from hwnas.spaces import list_spaces

    if args.space != "mbv3":
        known = args.space in list_spaces()
        why = "has no width multiplier and resolution to choose" if known else "is not a space"
        raise ConfigError(
            f"--space {args.space!r} {why}; tinynas runs on --space mbv3 (Once-for-All's "
            "MobileNetV3, --preset full or small)"
        )
    for flag, value in (("--sram-kb", args.sram_kb), ("--flash-kb", args.flash_kb)):
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(
                f"{flag} must be a number > 0 (kB, 1 kB = 1024 bytes), got {value}; e.g. "
                "--sram-kb 320 --flash-kb 1024 for an STM32F746"
            )
    if args.samples < 1:
        raise ConfigError(f"--samples must be a whole number >= 1, got {args.samples}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be a whole number >= 0, got {args.seed}")
    if not 0 <= args.min_share <= 1:
        raise ConfigError(f"--min-share must be a share in 0..1 (0.05: 5%), got {args.min_share}")
    if args.out is not None:
        check_file_flag("--out", args.out)
    widths = _number_list("--widths", args.widths, float)
    resolutions = _number_list("--resolutions", args.resolutions, int)
    err = Console(stderr=True)
    columns = (TextColumn("[bold]tinynas"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("tinynas", total=None)
        result = optimize_space(
            sram_kb=args.sram_kb,
            flash_kb=args.flash_kb,
            preset=args.preset,
            widths=widths,
            resolutions=resolutions,
            samples=args.samples,
            seed=args.seed,
            min_share=args.min_share,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    limits = f"--sram-kb {args.sram_kb:g} and --flash-kb {args.flash_kb:g}"
    fitting = [c for c in result.cells if c.feasible]
    if result.chosen is None and fitting:
        most = max(fitting, key=lambda c: c.share)
        raise ConfigError(
            f"no cell of the grid has --min-share {args.min_share:g} of its networks within "
            f"{limits} (the most was {most.share:.1%} at w={most.width:g} r={most.resolution}): "
            "lower --min-share or raise the limits"
        )
    if result.chosen is None:
        low_sram = min(result.cells, key=lambda c: c.min_peak_sram_kb)
        low_flash = min(result.cells, key=lambda c: c.min_flash_kb)
        raise ConfigError(
            f"no network of the grid fits {limits} ({result.samples} samples per cell; the "
            f"least peak SRAM was {low_sram.min_peak_sram_kb:.1f} kB at w={low_sram.width:g} "
            f"r={low_sram.resolution}, the least flash {low_flash.min_flash_kb:.1f} kB at "
            f"w={low_flash.width:g}): raise the limits or add smaller --widths and --resolutions"
        )
    out = stdout()
    table = Table(
        title=f"TinyNAS stage 1: mbv3 ({result.preset}) networks within {args.sram_kb:g} kB "
        f"SRAM and {args.flash_kb:g} kB flash, {result.samples} samples per cell, seed "
        f"{result.seed} (MFLOPs = millions of MACs of the networks that fit)",
        title_justify="left",
    )
    heads = ("w", "r", "fit", "mean MFLOPs", "median", "p90", "min SRAM kB", "min flash kB")
    for col in heads:
        table.add_column(col, justify="right")

    def flops(v: float) -> str:
        return "-" if math.isnan(v) else f"{v:.1f}"

    for c in result.cells:
        mark = "*" if c == result.chosen else ""
        table.add_row(
            f"{mark}{c.width:g}",
            str(c.resolution),
            f"{c.share:.1%}",
            flops(c.mean_flops_m),
            flops(c.median_flops_m),
            flops(c.p90_flops_m),
            f"{c.min_peak_sram_kb:.1f}",
            f"{c.min_flash_kb:.1f}",
        )
    out.print(table)
    best = result.chosen
    out.print(
        f"chosen: w={best.width!r} r={best.resolution} (mean {best.mean_flops_m:.1f} MFLOPs of "
        f"the {best.share:.1%} of its networks that fit; search it with widths: [{best.width!r}] "
        f"and resolutions: [{best.resolution}])",
        highlight=False,
    )
    if best.feasible < 10:
        out.print(
            f"note: only {best.feasible} of its {best.samples} samples fit, so its mean is "
            "uncertain: raise --samples, or give --min-share to choose among cells where more "
            "fit",
            highlight=False,
        )
    if args.out is not None:
        rows = result.rows()
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with args.out.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        except OSError as exc:
            raise ConfigError(
                f"--out {args.out}: cannot write it ({exc.strerror or exc}); the table is "
                "printed above; give a file in a folder you can write to"
            ) from None
        out.print(f"wrote {args.out}", highlight=False)
    return 0
