"""The plumbing of the two measurement backends: PyTorch threads and ONNX Runtime sessions.

:func:`pinned_threads` sets PyTorch's intra-op threads for a block and restores them;
:func:`export_onnx` turns a module into an in-memory ONNX model (opset ``ONNX_OPSET``) and
:func:`onnx_session` opens it in ONNX Runtime on the CPU with pinned threads and every graph
optimisation; :func:`hwnas.hardware.measured.measure_latency` times what they return.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hwnas.errors import MissingExtraError, require_torch

ONNX_OPSET = 17


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Set PyTorch's intra-op threads for the block, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def export_onnx(module: Any, input_shape: Sequence[int], *, batch: int = 1) -> bytes:
    """Export ``module`` (in eval mode) to an in-memory ONNX model for a fixed input shape.

    Uses the TorchScript-based exporter (``dynamo=False``): the new one needs ``onnxscript``.
    An NB201/FBNet network takes 1-2 s on one thread; unpinned threads on a busy machine, 8 s.

    Example:
        >>> import torch
        >>> len(export_onnx(torch.nn.Conv2d(3, 8, 3), (3, 8, 8))) > 0
        True
    """
    require_torch("exporting networks to ONNX")
    import torch

    module.eval()
    x = torch.zeros(batch, *input_shape)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter announces its own deprecation on every call.
        warnings.simplefilter("ignore")
        torch.onnx.export(  # the legacy exporter accepts a file object
            module,
            (x,),
            buf,  # type: ignore[arg-type]
            opset_version=ONNX_OPSET,
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            do_constant_folding=True,
        )
    return buf.getvalue()


def onnx_session(model: bytes, *, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session for ``model`` with pinned threads and all graph optimisations."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError("onnxruntime", "torch", "the onnxruntime backend") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
