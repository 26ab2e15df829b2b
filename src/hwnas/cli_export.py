"""``hwnas export``: one trial of a study as a standalone, checked model.

    hwnas export DIR --trial N --out PATH [--finetune-epochs K] [--epochs E] [--force]

Writes ``model.pt``, ``model.onnx`` and ``manifest.json`` into PATH (see ``docs/export.md``) and
prints where, the accuracy searched against exported, and the latency searched against
re-measured. Bad input: one ``error:`` line, exit 2; a failed check (ONNX Runtime and PyTorch
disagree): one ``error:`` line, exit 1, the files kept and marked failed in the manifest.
"""

from __future__ import annotations

import argparse
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from hwnas.cli_output import positive_int
from hwnas.errors import one_line

EXIT_CHECK_FAILED = 1


def _trial_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a trial number (the trial column of trials.csv), got {text!r}"
        ) from None


def add_export_command(sub: Any) -> None:
    e = sub.add_parser(
        "export",
        help="write one trial's network as model.pt + model.onnx + manifest.json, checked with "
        "ONNX Runtime",
    )
    e.add_argument("dir", type=Path, help="the study folder (the --out of hwnas search)")
    e.add_argument(
        "--trial", type=_trial_number, required=True, help="trial number (see trials.csv)"
    )
    e.add_argument("--out", type=Path, required=True, help="the export folder (new or empty)")
    e.add_argument(
        "--finetune-epochs",
        type=positive_int,
        default=None,
        help="fine-tune the supernet's weights this many epochs on the train split",
    )
    e.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="train the network from scratch this many epochs (needed without a supernet)",
    )
    e.add_argument(
        "--force", action="store_true", help="overwrite the export files in a non-empty --out"
    )
    e.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from hwnas.cli_output import stdout
    from hwnas.export import ExportCheckError, export_trial

    err = Console(stderr=True)
    try:
        with err.status("exporting") if err.is_terminal else nullcontext() as status:

            def progress(report: Any) -> None:
                if status is not None:  # a terminal: say which epoch training is at
                    status.update(f"exporting: training epoch {report.epoch}/{report.epochs}")

            result = export_trial(
                args.dir,
                args.trial,
                args.out,
                finetune_epochs=args.finetune_epochs,
                epochs=args.epochs,
                force=args.force,
                progress=progress,
            )
    except ExportCheckError as exc:
        err.print(f"[bold red]error:[/] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
        return EXIT_CHECK_FAILED
    out = stdout()
    for line in summary_lines(result.manifest, result.weights, result.out):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0


def summary_lines(manifest: dict[str, Any], weights: str, folder: Path) -> list[str]:
    """The few lines ``hwnas export`` prints."""
    checks = manifest["checks"]
    acc, outputs = checks["accuracy"], checks["onnx_vs_pytorch"]
    lines = [
        f"exported trial {manifest['study']['trial']} ({manifest['arch']}) to {folder}: "
        "model.pt, model.onnx, manifest.json",
        f"weights: {weights}",
    ]
    searched = ", ".join(f"{k} {_num(v)}" for k, v in acc["searched"].items()) or "none stored"
    lines.append(
        f"accuracy: searched {searched}; exported {_num(acc['onnx'])} (ONNX Runtime) / "
        f"{_num(acc['pytorch'])} (PyTorch) on {acc['images']} test images"
    )
    lines.append(
        f"ONNX vs PyTorch: max |diff| {outputs['max_abs_diff']:.2g} "
        f"({outputs['relative']:.2g} of the logit scale)"
    )
    lat = checks.get("latency")
    if lat is not None:
        text = f"latency: re-measured {lat['remeasured_ms']:.4g} ms (ONNX Runtime, 1 thread)"
        if lat["searched_ms"] is not None:
            rel = lat["relative_difference"]
            change = f", {rel:+.1%}" if rel is not None else ""
            text += f"; searched {lat['metric']} {lat['searched_ms']:.4g} ms{change}"
        else:
            text += f"; the study stored no {lat['metric']}"
        lines.append(text)
    return lines


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"
