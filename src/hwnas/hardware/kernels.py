"""The kernels ONNX Runtime executes for a network: latency features that see what the runtime did.

ONNX Runtime rewrites a network before it runs it: it folds BatchNorm into convolutions, fuses
activations and residual sums into them, drops computations whose result is never used or is
constant (NB201's dead edges and degenerate cells), merges duplicate ReLUs, and on x86 moves
convolutions to a blocked channel layout with reorder kernels where the layout changes. A latency
model over the *architecture* (op per edge, FLOPs of the PyTorch graph) has to learn all of this
from a few hundred measurements and does not (``benchmarks/results/kernel_features.md``); a model
over the kernels the runtime executes only has to learn what each kernel class costs.
nn-Meter (Zhang et al., MobiSys 2021) predicts per fused kernel for the same reason.

:func:`executed_kernels` exports the network, opens an ONNX Runtime session with every graph
optimisation and profiling on, runs it once on zeros and reads the profile: one :class:`Kernel`
per executed node with its operator, its class (convolution kind, kernel size, stride, fused
activation and sum), its multiply-accumulates and the bytes it reads and writes. No timing is
used, so the features are the same on a busy or a quiet machine. :func:`kernel_features` sums
them per class into named features (count, MMACs, MB per class, plus per-operator totals);
:class:`~hwnas.hardware.predictor.LatencyPredictor` kind ``kernels`` fits latency on them.

One network costs an export and a session (~0.3 s for NB201 on one core); results are cached per
architecture string in the process.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import MissingExtraError, require_torch
from hwnas.spaces.base import Arch, SearchSpace

CONV_OPS = ("Conv", "FusedConv", "NchwcConv")
CACHE_SIZE = 8192
_cache: OrderedDict[tuple[Any, ...], tuple[Kernel, ...]] = OrderedDict()


@dataclass(frozen=True)
class Kernel:
    """One executed node: operator, class key, mega multiply-accumulates, megabytes moved."""

    op: str
    key: str
    mmacs: float
    mb: float


def arch_input_shape(space: SearchSpace, arch: Arch) -> tuple[int, ...]:
    """The input shape of ``arch``: the space's own per-arch shape (``input_shape_for``, e.g. an
    mbv3 resolution) where it has one, else ``space.input_shape``."""
    per_arch = getattr(space, "input_shape_for", None)
    if callable(per_arch):
        return tuple(per_arch(arch))
    return tuple(space.input_shape)


def executed_kernels(space: SearchSpace, arch: Arch | str, *, batch: int = 1) -> tuple[Kernel, ...]:
    """The kernels ONNX Runtime (CPU, every graph optimisation, one thread) runs for ``arch``."""
    if isinstance(arch, str):
        arch = space.from_string(arch)
    key = (space.name, json.dumps(space.options, sort_keys=True), space.to_string(arch), batch)
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit
    require_torch("computing kernel features")
    import torch

    from hwnas.hardware.backends import export_onnx, pinned_threads

    # one thread: the exporter is several times slower with threads on a busy machine
    with torch.random.fork_rng(devices=[]), pinned_threads(1):
        net = space.build_network(arch)  # weight init must not move the global RNG
        model = export_onnx(net, arch_input_shape(space, arch), batch=batch)
    kernels = tuple(profile_kernels(model))
    _cache[key] = kernels
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return kernels


def profile_kernels(model: bytes) -> list[Kernel]:
    """Run an ONNX model once in a profiling session and return its executed kernels."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError("onnxruntime", "torch", "kernel latency features") from None
    with tempfile.TemporaryDirectory(prefix="hwnas-kernels-") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        feed = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) else 1 for d in i.shape]
            feed[i.name] = np.zeros(shape, dtype=np.float32)
        session.run(None, feed)
        profile = Path(session.end_profiling())
        events = json.loads(profile.read_text())
        graph = onnx.load(str(Path(tmp) / "optimized.onnx"), load_external_data=False).graph
        os.remove(profile)
    nodes = {n.name: n for n in graph.node}
    out = []
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        node = nodes.get(e["name"][: -len("_kernel_time")])
        out.append(_kernel(args, node))
    return out


def _shapes(entries: Any) -> list[list[int]]:
    shapes = []
    for entry in entries or []:
        for dims in entry.values():
            shapes.append([int(d) for d in dims])
    return shapes


def _attrs(node: Any) -> dict[str, Any]:
    if node is None:
        return {}
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _kernel(args: dict[str, Any], node: Any) -> Kernel:
    op = str(args.get("op_name", "?"))
    inputs = _shapes(args.get("input_type_shape"))
    outputs = _shapes(args.get("output_type_shape"))
    moved = float(args.get("activation_size", 0)) + float(args.get("output_size", 0))
    out_elems = float(sum(np.prod(s) for s in outputs))
    attrs = _attrs(node)
    mmacs = 0.0
    key = op
    if op in CONV_OPS and len(inputs) >= 2:
        w = inputs[1]
        mmacs = out_elems * float(np.prod(w[1:])) / 1e6
        groups = int(attrs.get("group", 1))
        k = w[2] if len(w) > 2 else 1
        strides = attrs.get("strides") or [1]
        kind = "dw" if groups > 1 and w[1] == 1 else (f"g{groups}" if groups > 1 else "dense")
        act = attrs.get("activation")
        act = act.decode() if isinstance(act, bytes) else act
        fused_sum = len(inputs) >= 4 and op != "FusedConv"
        key = f"conv:{kind}:k{k}:s{strides[0]}" + (f":{act}" if act else "")
        key += ":sum" if fused_sum else ""
    elif op == "Gemm" and len(inputs) >= 2:
        mmacs = float(np.prod(inputs[1])) * (inputs[0][0] if inputs[0] else 1) / 1e6
    return Kernel(op=op, key=key, mmacs=mmacs, mb=moved / 1e6)


def kernel_features(kernels: Iterable[Kernel]) -> dict[str, float]:
    """Per kernel class ``key``: ``key|n`` (count), ``key|mmacs``, ``key|mb``; per operator
    ``op:NAME|n`` and ``op:NAME|mb``; and the totals ``total|n``, ``total|mmacs``, ``total|mb``."""
    out: dict[str, float] = {}

    def add(name: str, value: float) -> None:
        out[name] = out.get(name, 0.0) + value

    for k in kernels:
        add(f"{k.key}|n", 1.0)
        add(f"{k.key}|mb", k.mb)
        if k.mmacs:
            add(f"{k.key}|mmacs", k.mmacs)
        add(f"op:{k.op}|n", 1.0)
        add(f"op:{k.op}|mb", k.mb)
        add("total|n", 1.0)
        add("total|mmacs", k.mmacs)
        add("total|mb", k.mb)
    return out


def kernel_matrix(
    space: SearchSpace,
    archs: Sequence[Arch | str],
    names: Sequence[str] | None = None,
    *,
    batch: int = 1,
) -> tuple[np.ndarray, list[str]]:
    """Kernel features of ``archs`` as a matrix. With ``names`` (a fitted predictor's), the
    columns are those names (classes the predictor never saw are left out of the class columns
    but stay in the per-operator and total ones); without, the names are every feature seen,
    sorted."""
    rows = [kernel_features(executed_kernels(space, a, batch=batch)) for a in archs]
    if names is None:
        names = sorted({n for r in rows for n in r})
    cols = list(names)
    X = np.array([[r.get(n, 0.0) for n in cols] for r in rows], dtype=np.float64)
    return X.reshape(len(rows), len(cols)), cols
