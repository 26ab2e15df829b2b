"""The checks of an export, each a JSON-ready record with ``passed`` where it can fail.

- ``onnx_vs_pytorch``: the ONNX model, run by ONNX Runtime one image at a time (it is exported
  at batch 1), against the PyTorch module rebuilt from ``model.pt``, on every test image. The
  largest absolute difference of their logits, divided by the largest absolute PyTorch logit
  (the logit scale), must stay within :data:`OUTPUT_TOLERANCE`.
- ``accuracy``: test accuracy of both, in percent; they must agree within
  :data:`ACCURACY_POINTS` percentage points. The study's stored accuracy metrics stand beside
  them (measured on other images or with other weights, so they are reported, not checked).
- ``latency``: the ONNX model re-measured with ONNX Runtime on this machine (interleaved timing,
  batch 1, one thread), beside the ``latency_ms@local`` the study stored for the trial, if any,
  with the relative difference. Machines differ, so this is reported, not checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

OUTPUT_TOLERANCE = 1e-3  # max |onnx - torch| / max |torch logit|
ACCURACY_POINTS = 0.5  # percentage points between the ONNX and the PyTorch test accuracy
LATENCY_METRIC = "latency_ms@local"  # what the study's measured evaluator stores (ORT, b1, t1)
_EVAL_BATCH = 256


def torch_logits(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Logits of ``module`` (eval mode, no gradients) on ``x``, as float32 numpy."""
    module.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, x.shape[0], _EVAL_BATCH):
            parts.append(module(x[start : start + _EVAL_BATCH]).float().numpy())
    return np.concatenate(parts)


def onnx_logits(session: Any, x: torch.Tensor) -> np.ndarray:
    """Logits of an ONNX Runtime session exported at batch 1, one image per run."""
    names = [i.name for i in session.get_inputs()]
    x_np = np.ascontiguousarray(x.numpy(), dtype=np.float32)
    # An op whose output ignores the input values exports without an input.
    parts = [session.run(None, {n: x_np[i : i + 1] for n in names})[0] for i in range(len(x_np))]
    return np.concatenate(parts).astype(np.float32)


def compare_outputs(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """The ``onnx_vs_pytorch`` record: ``other`` (ONNX) against ``reference`` (PyTorch)."""
    if reference.shape != other.shape:
        return {
            "passed": False,
            "images": int(reference.shape[0]),
            "error": f"output shapes differ: PyTorch {reference.shape}, ONNX {other.shape}",
        }
    diff = float(np.max(np.abs(reference - other))) if reference.size else 0.0
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    relative = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
    return {
        "passed": bool(relative <= OUTPUT_TOLERANCE),
        "images": int(reference.shape[0]),
        "max_abs_diff": diff,
        "logit_scale": scale,
        "relative": relative,
        "tolerance": OUTPUT_TOLERANCE,
    }


def accuracy_record(
    torch_out: np.ndarray, onnx_out: np.ndarray, labels: np.ndarray, metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``accuracy`` record: test accuracy of both models in percent (as the study's
    ``supernet`` and ``train`` evaluators store accuracy)."""
    n = int(labels.shape[0])
    acc_torch = 100.0 * float(np.mean(torch_out.argmax(axis=1) == labels)) if n else math.nan
    acc_onnx = 100.0 * float(np.mean(onnx_out.argmax(axis=1) == labels)) if n else math.nan
    points = abs(acc_onnx - acc_torch)
    return {
        "passed": bool(points <= ACCURACY_POINTS),
        "unit": "percent",
        "split": "test",
        "images": n,
        "onnx": acc_onnx,
        "pytorch": acc_torch,
        "difference_points": points,
        "tolerance_points": ACCURACY_POINTS,
        "searched": {k: v for k, v in metrics.items() if "accuracy" in k},
    }


def latency_record(
    module: nn.Module, input_shape: tuple[int, ...], metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``latency`` record: ``module`` re-measured in ONNX Runtime beside the stored value."""
    from hwnas.hardware.measured import measure_latency

    m = measure_latency(
        module, input_shape, backend="onnxruntime", batch=1, threads=1, timing="interleaved"
    )
    searched = metrics.get(LATENCY_METRIC)
    relative = None
    if isinstance(searched, (int, float)) and searched > 0:
        relative = (m.median_ms - searched) / searched
    return {
        "metric": LATENCY_METRIC,
        "remeasured_ms": m.median_ms,
        "searched_ms": searched,
        "relative_difference": relative,
        "measurement": m.as_dict(),
    }


def failures(checks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One phrase per failed check."""
    out = []
    outputs = checks.get("onnx_vs_pytorch", {})
    if outputs and not outputs.get("passed", True):
        if "error" in outputs:
            out.append(f"ONNX and PyTorch disagree: {outputs['error']}")
        else:
            out.append(
                f"ONNX Runtime and PyTorch outputs differ by {outputs['max_abs_diff']:.3g} "
                f"({outputs['relative']:.3g} of the logit scale {outputs['logit_scale']:.3g}; "
                f"allowed {OUTPUT_TOLERANCE:g})"
            )
    acc = checks.get("accuracy", {})
    if acc and not acc.get("passed", True):
        out.append(
            f"ONNX test accuracy {acc['onnx']:.2f}% differs from PyTorch's {acc['pytorch']:.2f}% "
            f"by {acc['difference_points']:.2f} points (allowed {ACCURACY_POINTS:g})"
        )
    return out
