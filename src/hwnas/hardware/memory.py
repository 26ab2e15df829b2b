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
runs it (a deployment compiler would drop it).

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

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn
from torch.fx import symbolic_trace
from torch.fx.passes.shape_prop import ShapeProp
from torch.overrides import TorchFunctionMode

from hwnas.errors import ConfigError

if TYPE_CHECKING:
    from torch.fx import Node

    from hwnas.spaces.base import Arch, SearchSpace

log = logging.getLogger(__name__)

Tracer = Literal["auto", "fx", "hooks"]
KB = 1024

# Calls that only read a tensor's metadata; they neither allocate nor keep the tensor alive.
_METADATA_OPS = frozenset(
    {"size", "dim", "ndimension", "numel", "nelement", "getattr", "__get__", "__len__", "stride"}
    | {"is_contiguous", "element_size", "data_ptr", "get_device", "is_floating_point", "type"}
)
# Element-wise ops that may write into a dying input (``inplace=True``).
_ELEMENTWISE_OPS = frozenset(
    {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "sigmoid"}
    | {"silu", "gelu", "tanh", "leaky_relu", "elu", "selu", "celu", "mish", "batch_norm"}
    | {"dropout", "neg", "clamp", "clip", "abs", "exp", "add", "add_", "sub", "mul", "div"}
    | {"__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__mul__", "__rmul__"}
    | {"__imul__", "__truediv__"}
)
_ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    *(nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid),
    *(nn.SiLU, nn.GELU, nn.Tanh, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.PReLU, nn.Dropout),
    nn.modules.batchnorm._BatchNorm,
)
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


@dataclass
class _Step:
    name: str
    op: str
    module: str | None
    elementwise: bool
    reads: list[int]
    allocs: list[int]


class _Recorder:
    """Collects operators and the activation buffers (storages) they read and allocate."""

    def __init__(self, weights: set[int]) -> None:
        self.steps: list[_Step] = []
        self.elems: list[int] = []  # elements of each buffer
        self.producer: list[int] = []  # step that allocated each buffer
        self._weights = weights  # storages of parameters and module buffers
        self._by_ptr: dict[int, int] = {}
        self._keep: list[torch.Tensor] = []  # keeps storages alive so addresses stay unique

    def add_weights(self, value: Any) -> None:
        self._weights.update(_ptr(t) for t in _tensors(value))

    def record(self, name: str, op: str, module: str | None, ew: bool, ins: Any, out: Any) -> None:
        """One operator; ``ew``: element-wise (may run in place)."""
        outs = _tensors(out)
        if not outs and op in _METADATA_OPS:
            return
        reads: list[int] = []
        for t in _tensors(ins):
            b = self._by_ptr.get(_ptr(t))
            if b is not None and b not in reads:
                reads.append(b)
        allocs: list[int] = []
        aliases = False
        for t in outs:
            ptr = _ptr(t)
            if ptr in self._by_ptr:
                aliases = True
            elif ptr and ptr not in self._weights:
                self._by_ptr[ptr] = len(self.elems)
                allocs.append(len(self.elems))
                self.elems.append(t.untyped_storage().nbytes() // t.element_size())
                self.producer.append(len(self.steps))
                self._keep.append(t)
        if reads or allocs or aliases:
            self.steps.append(_Step(name, op, module, ew, reads, allocs))


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors inside nested lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _ptr(t: torch.Tensor) -> int:
    return int(t.untyped_storage().data_ptr())


def _fx_trace(net: nn.Module, x: torch.Tensor, rec: _Recorder) -> None:
    gm = symbolic_trace(net)
    modules = dict(gm.named_modules())

    class _Prop(ShapeProp):
        def run_node(self, n: Node) -> Any:
            inputs = [self.env[a] for a in n.all_input_nodes]
            result = super().run_node(n)
            if n.op == "get_attr":  # parameters and constants live in flash, not SRAM
                rec.add_weights(result)
                return result
            if n.op == "call_module":
                mod = modules[str(n.target)]
                op, module = type(mod).__name__, str(n.target)
                elementwise = isinstance(mod, _ELEMENTWISE_MODULES)
            else:
                op = n.target if isinstance(n.target, str) else _name(n.target)
                op, module = ("input" if n.op == "placeholder" else op), None
                elementwise = n.op in ("call_function", "call_method") and op in _ELEMENTWISE_OPS
            rec.record(n.name, op, module, elementwise, inputs, result)
            return result

    prop = _Prop(gm)
    prop.garbage_collect_values = False  # keep every value: storage addresses must stay unique
    prop.propagate(x)


def _name(target: Any) -> str:
    return str(getattr(target, "__name__", target))


class _FunctionTrace(TorchFunctionMode):
    def __init__(self, rec: _Recorder, stack: list[str]) -> None:
        super().__init__()
        self.rec, self.stack = rec, stack

    def __torch_function__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        op = _name(func)
        module = self.stack[-1] if self.stack else None
        name = f"{module or 'forward'}:{op}#{len(self.rec.steps)}"  # index in the timeline
        self.rec.record(name, op, module, op in _ELEMENTWISE_OPS, (args, kwargs), out)
        return out


class _Where:
    """Names of the modules running now, innermost last (kept by forward hooks)."""

    def __init__(self) -> None:
        self.stack: list[str] = []

    def enter(self, qualname: str) -> Any:
        return lambda *_: self.stack.append(qualname)  # returns None: the input is kept

    def leave(self, *_: Any) -> None:  # returns None: the output is kept
        self.stack.pop()


def _hooks_trace(net: nn.Module, x: torch.Tensor, rec: _Recorder) -> None:
    where, handles = _Where(), []
    for qualname, mod in net.named_modules():
        if qualname:
            handles.append(mod.register_forward_pre_hook(where.enter(qualname)))
            handles.append(mod.register_forward_hook(where.leave))
    rec.record("x", "input", None, False, (), x)
    try:
        with _FunctionTrace(rec, where.stack):
            out = net(x)
    finally:
        for h in handles:
            h.remove()
    rec.record("output", "output", None, False, out, None)


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
    weights = {_ptr(t) for t in (*net.parameters(), *net.buffers())}
    dtype = next((p.dtype for p in net.parameters() if p.is_floating_point()), torch.float32)
    x = torch.zeros((1, *shape), dtype=dtype)
    flags = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        with torch.no_grad():
            rec, used = _trace(net, x, weights, tracer)
    finally:
        for m, training in flags:
            m.training = training
    return _report(net, rec, used, act_bits, weight_bits, fold_bn, inplace)


def _trace(
    net: nn.Module, x: torch.Tensor, weights: set[int], tracer: Tracer
) -> tuple[_Recorder, str]:
    if tracer != "hooks":
        rec = _Recorder(weights)
        try:
            _fx_trace(net, x, rec)
            return rec, "fx"
        except Exception as exc:
            if tracer == "fx":
                raise
            log.debug("fx could not trace %s (%s); using the hooks trace", type(net).__name__, exc)
    rec = _Recorder(weights)
    _hooks_trace(net, x, rec)
    return rec, "hooks"


def _report(
    net: nn.Module,
    rec: _Recorder,
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
    net: nn.Module, rec: _Recorder, readers: list[int], weight_bits: int, fold_bn: bool
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
