"""Peak activation memory (SRAM) and flash of a network, MCUNet style (Lin et al., NeurIPS 2020).

**Peak SRAM**: the network runs one operator at a time in traced order, batch 1. A tensor is alive
from the operator producing it until its last consumer has run; at each operator the memory is all
live tensors plus its output; the peak is the maximum over operators. The INPUT counts like any
tensor, alive until its last use (MCUNet issue #9 was about leaving it out).

- The graph: ``torch.fx.symbolic_trace`` + ``ShapeProp`` on a batch-1 input of zeros. Where fx
  fails, an op-order trace: a ``torch.overrides.TorchFunctionMode`` records each torch function
  call (fx-node granularity) and forward hooks name the module it runs in.
- Buffers are storages: an output sharing storage with an input (``reshape``/``flatten``/
  ``getitem`` views, ``nn.Identity``, in-place ops) aliases it and allocates nothing; a buffer
  lives until the last use of any alias. Metadata reads (``x.shape``) keep nothing alive.
- ``inplace=True`` (default): an element-wise op (activation, BatchNorm, add/mul) writes into an
  input of at least its output's size whose last use it is, as an MCU runtime's fused
  conv-BN-ReLU or in-place residual add does. In-place depthwise convolution (MCUNetV2) and
  zero-copy concatenation are not modelled.
- Sizes are elements at ``act_bits`` bits (default 8: int8 MCU deployment), whatever torch's dtype.

**Flash**: parameters at ``weight_bits`` bits (default 8). ``fold_bn=True`` (default; MCU
deployments fold BN): a BatchNorm reading a conv/linear output that nothing else reads is folded
into it (the BN costs nothing, the conv gains a bias if it had none); a BN that cannot fold costs a
scale and a shift per channel; other parameters count as they are. Per-channel quantisation scales
and int32 biases are not modelled. ``fold_bn=False`` counts every parameter once.

kB = 1024 bytes. NB201's ``none`` edge is built as ``zeros_like`` + add and counted as the graph
runs it (a deployment compiler would drop it). The traces come from
:mod:`hwnas.hardware.memory_trace`; this module turns them into the peak and the flash figure.

Example:
    >>> from hwnas.spaces import create_space
    >>> space = create_space("nb201")
    >>> r = memory_of(space, space.from_string(
    ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    ...     "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"))
    >>> r.peak_sram_kb, round(r.flash_kb, 1), r.peak_node
    (64.0, 781.8, 'cells_0_edges_1_1')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.hardware.memory_trace import Recorder, Tracer, storage_ptr, trace_network

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

KB = 1024
_WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass(frozen=True)
class MemoryStep:
    """One operator of the schedule: what it allocates and what is alive while it runs."""

    name: str
    op: str
    alloc_bytes: int
    live_bytes: int


@dataclass(frozen=True)
class MemoryReport:
    """Peak SRAM and flash of one network; ``timeline`` has one entry per operator.

    ``peak_tensors`` lists the buffers alive at the peak as (producing operator, bytes).
    """

    peak_sram_kb: float
    flash_kb: float
    peak_node: str
    peak_bytes: int
    flash_bytes: int
    peak_tensors: tuple[tuple[str, int], ...]
    timeline: tuple[MemoryStep, ...] = field(repr=False)
    tracer: str = "fx"

    def metrics(self) -> dict[str, float]:
        """``peak_sram_kb`` and ``flash_kb``, the metric names studies use."""
        return {"peak_sram_kb": self.peak_sram_kb, "flash_kb": self.flash_kb}


def _check_bits(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise ConfigError(f"{name} must be an integer in 1..32, got {value!r}")
    return value


def network_memory(
    net: nn.Module,
    input_shape: Sequence[int],
    *,
    act_bits: int = 8,
    weight_bits: int = 8,
    fold_bn: bool = True,
    inplace: bool = True,
    tracer: Tracer = "auto",
) -> MemoryReport:
    """Peak SRAM and flash of ``net`` on one input of ``input_shape`` (batch 1 is prepended).

    Args:
        net: the network; it runs in eval mode on zeros and its train/eval flags are restored.
        input_shape: one sample's shape, e.g. ``(3, 32, 32)``.
        act_bits: bits per activation value (8: int8 deployment).
        weight_bits: bits per stored parameter.
        fold_bn: fold BatchNorm into the preceding conv/linear (see the module docstring).
        inplace: let element-wise ops overwrite an input whose last use they are.
        tracer: ``fx``, ``hooks`` (op-order trace), or ``auto`` (fx, else hooks).

    Returns:
        A :class:`MemoryReport`; kB = 1024 bytes.

    Raises:
        ConfigError: a bit width, the input shape or the tracer is invalid.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        >>> network_memory(net, (3, 8, 8)).peak_bytes  # input 192 B + conv output 512 B
        704
    """
    act_bits = _check_bits("act_bits", act_bits)
    weight_bits = _check_bits("weight_bits", weight_bits)
    shape = tuple(input_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ConfigError(f"input_shape must be positive integers like (3, 32, 32), got {shape!r}")
    if tracer not in ("auto", "fx", "hooks"):
        raise ConfigError(f"tracer must be 'auto', 'fx' or 'hooks', got {tracer!r}")
    weights = {storage_ptr(t) for t in (*net.parameters(), *net.buffers())}
    dtype = next((p.dtype for p in net.parameters() if p.is_floating_point()), torch.float32)
    x = torch.zeros((1, *shape), dtype=dtype)
    flags = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        with torch.no_grad():
            rec, used = trace_network(net, x, weights, tracer)
    finally:
        for m, training in flags:
            m.training = training
    return _report(net, rec, used, act_bits, weight_bits, fold_bn, inplace)


def _report(
    net: nn.Module,
    rec: Recorder,
    tracer: str,
    act_bits: int,
    weight_bits: int,
    fold_bn: bool,
    inplace: bool,
) -> MemoryReport:
    steps, n_buf = rec.steps, len(rec.elems)
    last = list(rec.producer)  # last step reading each buffer
    readers = [0] * n_buf
    for k, s in enumerate(steps):
        for b in s.reads:
            last[b] = max(last[b], k)
            readers[b] += 1
    # In-place reuse: an element-wise output joins the buffer of an input dying at that step.
    root = list(range(n_buf))
    end = list(last)
    for k, s in enumerate(steps):
        if not (inplace and s.elementwise and len(s.allocs) == 1):
            continue
        new = s.allocs[0]
        for b in s.reads:
            r = root[b]
            if end[r] == k and rec.elems[r] >= rec.elems[new]:
                root[new] = r
                end[r] = max(end[r], last[new])
                break
    nbytes = [math.ceil(e * act_bits / 8) for e in rec.elems]
    delta = [0] * (len(steps) + 1)
    alloc = [0] * len(steps)
    for b in range(n_buf):
        if root[b] == b:
            start = rec.producer[b]
            alloc[start] += nbytes[b]
            delta[start] += nbytes[b]
            delta[end[b] + 1] -= nbytes[b]
    timeline, live = [], 0
    for k, s in enumerate(steps):
        live += delta[k]
        timeline.append(MemoryStep(s.name, s.op, alloc[k], live))
    peak = max(range(len(timeline)), key=lambda k: timeline[k].live_bytes)
    at_peak = tuple(
        (steps[rec.producer[b]].name, nbytes[b])
        for b in range(n_buf)
        if root[b] == b and rec.producer[b] <= peak <= end[b]
    )
    flash = _flash_bytes(net, rec, readers, weight_bits, fold_bn)
    return MemoryReport(
        peak_sram_kb=timeline[peak].live_bytes / KB,
        flash_kb=flash / KB,
        peak_node=timeline[peak].name,
        peak_bytes=timeline[peak].live_bytes,
        flash_bytes=flash,
        peak_tensors=at_peak,
        timeline=tuple(timeline),
        tracer=tracer,
    )


def _flash_bytes(
    net: nn.Module, rec: Recorder, readers: list[int], weight_bits: int, fold_bn: bool
) -> int:
    modules = dict(net.named_modules())
    folded: set[str] = set()  # BN modules folded away
    biased: set[str] = set()  # conv/linear modules that receive a folded BN's bias
    for s in rec.steps if fold_bn else ():
        bn = modules.get(s.module or "")
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or not s.reads:
            continue
        b = s.reads[0]
        src = rec.steps[rec.producer[b]].module
        if isinstance(modules.get(src or ""), _WEIGHTED) and readers[b] == 1:
            folded.add(str(s.module))
            biased.add(str(src))
    total, seen = 0, set[int]()
    for qualname, mod in modules.items():
        own = [p for p in mod.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if fold_bn and isinstance(mod, nn.modules.batchnorm._BatchNorm):
            total += 0 if qualname in folded else 2 * mod.num_features
            continue
        total += sum(p.numel() for p in own)
        if qualname in biased and getattr(mod, "bias", None) is None:
            total += int(getattr(mod, "out_channels", 0) or getattr(mod, "out_features", 0))
    return math.ceil(total * weight_bits / 8)


def memory_of(
    space: SearchSpace,
    arch: Arch,
    *,
    act_bits: int = 8,
    weight_bits: int = 8,
    fold_bn: bool = True,
    inplace: bool = True,
    tracer: Tracer = "auto",
) -> MemoryReport:
    """Peak SRAM and flash of ``space.build_network(arch)`` on ``space.input_shape``.

    Args:
        space: a space with a PyTorch builder (``build_network`` and ``input_shape``).
        arch: an architecture of the space.
        act_bits: bits per activation value.
        weight_bits: bits per stored parameter.
        fold_bn: fold BatchNorm into the preceding conv (MCU deployment).
        inplace: let element-wise ops overwrite an input whose last use they are.
        tracer: ``auto``, ``fx`` or ``hooks`` (same figures on NB201 and FBNet; hooks is faster).

    Example:
        >>> from hwnas.spaces import create_space
        >>> space = create_space("fbnet")
        >>> r = memory_of(space, space.from_string(" ".join(["skip"] * 22)))
        >>> r.metrics()["flash_kb"] > 0
        True
    """
    net, shape = space.build_network(arch), space.input_shape
    bits = {"act_bits": act_bits, "weight_bits": weight_bits}
    return network_memory(net, shape, **bits, fold_bn=fold_bn, inplace=inplace, tracer=tracer)
