"""Export one trial of a study as a standalone model: ``model.pt``, ``model.onnx`` and
``manifest.json``, checked with ONNX Runtime (see :mod:`hwnas.export.checks`).

``model.pt`` holds tensors and plain values only (``torch.load(..., weights_only=True)``)::

    {"state_dict": {name: tensor}, "arch": "<canonical string>",
     "space": {"name": "mbv3", "options": {...}}}

so the network is rebuilt from the space and the arch string alone (:func:`load_model`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import ConfigError, DataError, HwnasError, StoreError, one_line
from hwnas.export import checks
from hwnas.export.source import StudySource, read_study
from hwnas.export.weights import (
    Weights,
    check_data_fits,
    check_weights_source,
    obtain_weights,
    resize_inputs,
)

log = logging.getLogger(__name__)

FORMAT = "hwnas-export"
VERSION = 1
MODEL_PT = "model.pt"
MODEL_ONNX = "model.onnx"
MANIFEST = "manifest.json"
FILES = (MODEL_PT, MODEL_ONNX, MANIFEST)


class ExportCheckError(HwnasError):
    """The exported model failed a check; the files stay for inspection, the manifest says so."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_trial` wrote.

    Attributes:
        out: the export folder.
        files: ``{"model.pt", "model.onnx", "manifest.json"}`` -> path.
        manifest: the manifest as written.
        weights: how the weights were obtained, in one phrase.
    """

    out: Path
    files: dict[str, Path]
    manifest: dict[str, Any]
    weights: str


def export_trial(
    study_dir: str | os.PathLike[str],
    trial: int,
    out: str | os.PathLike[str],
    *,
    finetune_epochs: int | None = None,
    epochs: int | None = None,
    force: bool = False,
    measure_latency: bool = True,
    progress: Callable[[Any], None] | None = None,
) -> ExportResult:
    """Export trial ``trial`` of the study in ``study_dir`` into the folder ``out``.

    Weights come from the study's trained supernet (BatchNorm recalibrated, then fine-tuned
    ``finetune_epochs`` epochs when given) or, with ``epochs``, from training the network from
    scratch on the config's data (required when there is no supernet).

    Args:
        study_dir: the folder of an ``hwnas search`` (``study.db`` and ``config.yaml``).
        trial: the trial number (the ``trial`` column of ``trials.csv``).
        out: the export folder; it must be new or empty unless ``force``.
        finetune_epochs: epochs of fine-tuning of the supernet's weights.
        epochs: train from scratch for this many epochs instead.
        force: overwrite the export files of a non-empty ``out``.
        measure_latency: re-measure the latency (the CLI always does).
        progress: gets the training loop's epoch reports.

    Raises:
        ConfigError: bad input (no study, config or data block, missing or failed trial, ...).
        ExportCheckError: a check failed (the files are written, marked failed in the manifest).

    Example:
        >>> result = export_trial("runs/mnist", 3, "exports/t3")  # doctest: +SKIP
        >>> result.manifest["checks"]["accuracy"]["onnx"]  # percent  # doctest: +SKIP
        96.4
    """
    for name, value in (("finetune_epochs", finetune_epochs), ("epochs", epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value}")
    source = read_study(study_dir, trial)
    folder = Path(out).expanduser()
    _check_out(folder, force)
    check_weights_source(source, finetune_epochs=finetune_epochs, epochs=epochs)
    if source.data_spec is None:
        raise ConfigError(
            f"{source.config_path} has no data: block, and export trains and checks the network "
            "on the study's data: add data: {name: ...} (the load_dataset spec) to it"
        )
    from hwnas.data import load_dataset
    from hwnas.hardware.kernels import arch_input_shape

    dataset = load_dataset(source.data_spec)
    input_shape = tuple(int(s) for s in arch_input_shape(source.space, source.arch))
    check_data_fits(dataset, input_shape, source)
    if dataset.indices["test"].size == 0:
        raise ConfigError(
            f"the data's test split is empty; set test_fraction > 0 in the data: block of "
            f"{source.config_path}"
        )
    weights = obtain_weights(
        source,
        dataset,
        input_shape,
        finetune_epochs=finetune_epochs,
        epochs=epochs,
        progress=progress,
    )
    _make_out(folder)  # only now: bad input above leaves no folder behind
    files = {name: folder / name for name in FILES}
    state = {k: v.detach().cpu().clone() for k, v in weights.module.state_dict().items()}
    payload = {"state_dict": state, "arch": source.arch_string, "space": source.space_spec()}
    _write(files[MODEL_PT], lambda f: torch.save(payload, f))
    # Everything below checks the files on disk: the module rebuilt from model.pt, the ONNX
    # model read back from model.onnx.
    module, _ = load_model(files[MODEL_PT])
    from hwnas.hardware.backends import export_onnx, onnx_session

    onnx_bytes = export_onnx(module, input_shape, batch=1)
    _write(files[MODEL_ONNX], lambda f: f.write(onnx_bytes))
    session = onnx_session(files[MODEL_ONNX].read_bytes(), threads=1)
    metrics = source.metrics()
    record = _checks(module, session, dataset, input_shape, metrics, measure_latency)
    manifest = _manifest(source, dataset, input_shape, weights, metrics, record, files)
    _write(files[MANIFEST], lambda f: f.write(_json(manifest).encode()))
    if record["failures"]:
        raise ExportCheckError(
            f"export check failed: {'; '.join(record['failures'])}; the files in {folder} are "
            f"kept for inspection and marked failed in {MANIFEST}"
        )
    return ExportResult(out=folder, files=files, manifest=manifest, weights=weights.summary)


def _checks(
    module: nn.Module,
    session: Any,
    dataset: Any,
    input_shape: tuple[int, ...],
    metrics: dict[str, float | None],
    measure_latency: bool,
) -> dict[str, Any]:
    """The manifest's ``checks``: every test image through both models, then the latency."""
    x, y = dataset.tensors("test")
    x = resize_inputs(x, input_shape)
    torch_out = checks.torch_logits(module, x)
    onnx_out = checks.onnx_logits(session, x)
    record: dict[str, Any] = {
        "onnx_vs_pytorch": checks.compare_outputs(torch_out, onnx_out),
        "accuracy": checks.accuracy_record(torch_out, onnx_out, y.numpy(), metrics),
    }
    if measure_latency:
        record["latency"] = checks.latency_record(module, input_shape, metrics)
    failed = checks.failures(record)
    record["passed"] = not failed
    record["failures"] = failed
    return record


def load_model(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The network saved in an export's ``model.pt`` (the file, or its folder), in eval mode,
    and the file's ``arch`` and ``space``; read with ``weights_only=True`` (no unpickling).

    Example:
        >>> net, info = load_model("exports/t3")  # doctest: +SKIP
        >>> info["arch"]  # doctest: +SKIP
        'r28-w1.0|k3e3,k5e4|...'
    """
    from hwnas.spaces import create_space

    p = Path(path).expanduser()
    if p.is_dir():
        p = p / MODEL_PT
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{p} does not exist; give an export folder or its model.pt") from None
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise DataError(f"{p} is not a readable hwnas model ({one_line(exc)[:120]})") from None
    spec = obj.get("space") if isinstance(obj, dict) else None
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("state_dict"), dict)
        or not isinstance(obj.get("arch"), str)
        or not isinstance(spec, dict)
        or not isinstance(spec.get("name"), str)
        or not isinstance(spec.get("options", {}), dict)
    ):
        raise DataError(f"{p} is not an hwnas export (it needs state_dict, arch and space)")
    space = create_space(spec["name"], **spec.get("options", {}))
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten anyway
        net = space.build_network(space.from_string(obj["arch"]))
    net.load_state_dict(obj["state_dict"])
    return net.eval(), {"arch": obj["arch"], "space": obj["space"]}


# -- helpers ------------------------------------------------------------------------------------
def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the export")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(
            f"--out {out} exists and is not empty; give a new folder, or --force to overwrite "
            f"its {', '.join(FILES)}"
        )


def _make_out(out: Path) -> None:
    for name in FILES:  # no file of an earlier export may survive a failed one
        (out / name).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create --out {out} ({exc.strerror or exc}); give a folder you can write to"
        ) from None


def _write(path: Path, write: Callable[[Any], Any]) -> None:
    """Write through a temporary file, so an interrupted write leaves no half file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path} ({exc.strerror or exc}); free disk space") from None
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("hwnas", "torch", "onnx", "onnxruntime", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _manifest(
    source: StudySource,
    dataset: Any,
    input_shape: tuple[int, ...],
    weights: Weights,
    metrics: dict[str, float | None],
    record: dict[str, Any],
    files: dict[str, Path],
) -> dict[str, Any]:
    provenance = dataset.provenance()
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "study": {
            "dir": str(source.study_dir.resolve()),
            "config": str(source.config_path.resolve()),
            "trial": source.trial.number,
        },
        "arch": source.arch_string,
        "space": source.space_spec(),
        "metrics": metrics,
        "dataset": {"name": dataset.name, "provenance": provenance},
        "test_indices": [int(i) for i in dataset.indices["test"]],
        "preprocessing": {
            "input_size": list(input_shape[1:]),
            "channels": int(input_shape[0]),
            "mean": list(dataset.mean),
            "std": list(dataset.std),
            "dataset_image_size": list(dataset.input_shape[1:]),
            "steps": [
                "pixels scaled to [0, 1] as the dataset loader does",
                f"resized to {dataset.input_shape[1]}x{dataset.input_shape[2]} by the loader "
                "(image_size), when the data spec sets it",
                "per channel: (x - mean) / std",
                f"resized bilinearly (align_corners=False) to {input_shape[1]}x{input_shape[2]}"
                " when that differs",
            ],
            "layout": "NCHW float32",
        },
        "input_shape": [1, *input_shape],
        "onnx": {"input": "input", "output": "output", "opset": _opset()},
        "files": {n: {"sha256": _sha256(p)} for n, p in files.items() if n != MANIFEST},
        "versions": _versions(),
        "weights": weights.how,
        "checks": record,
    }


def _opset() -> int:
    from hwnas.hardware.backends import ONNX_OPSET

    return ONNX_OPSET


def _json(value: Any) -> str:
    """JSON with NaN and infinities as null (JSON has neither)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), indent=2, sort_keys=False) + "\n"
