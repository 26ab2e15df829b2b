"""Traces a network into the operator schedule that :mod:`hwnas.hardware.memory` sizes.

:func:`trace_network` runs the network once and records, per operator in execution order, the
activation buffers (storages) it reads and allocates: with ``torch.fx`` (``symbolic_trace`` +
``ShapeProp``) where it can, else with a ``TorchFunctionMode`` that records each torch function
call while forward hooks name the module it runs in. An output sharing storage with an input is an
alias and allocates nothing; parameters and module buffers are weights (flash, not SRAM); metadata
reads (``x.shape``) are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn
from torch.fx import symbolic_trace
from torch.fx.passes.shape_prop import ShapeProp
from torch.overrides import TorchFunctionMode

if TYPE_CHECKING:
    from torch.fx import Node

log = logging.getLogger(__name__)

Tracer = Literal["auto", "fx", "hooks"]

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


@dataclass
class _Step:
    name: str
    op: str
    module: str | None
    elementwise: bool
    reads: list[int]
    allocs: list[int]


class Recorder:
    """Collects operators and the activation buffers (storages) they read and allocate."""

    def __init__(self, weights: set[int]) -> None:
        self.steps: list[_Step] = []
        self.elems: list[int] = []  # elements of each buffer
        self.producer: list[int] = []  # step that allocated each buffer
        self._weights = weights  # storages of parameters and module buffers
        self._by_ptr: dict[int, int] = {}
        self._keep: list[torch.Tensor] = []  # keeps storages alive so addresses stay unique

    def add_weights(self, value: Any) -> None:
        self._weights.update(storage_ptr(t) for t in _tensors(value))

    def record(self, name: str, op: str, module: str | None, ew: bool, ins: Any, out: Any) -> None:
        """One operator; ``ew``: element-wise (may run in place)."""
        outs = _tensors(out)
        if not outs and op in _METADATA_OPS:
            return
        reads: list[int] = []
        for t in _tensors(ins):
            b = self._by_ptr.get(storage_ptr(t))
            if b is not None and b not in reads:
                reads.append(b)
        allocs: list[int] = []
        aliases = False
        for t in outs:
            ptr = storage_ptr(t)
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


def storage_ptr(t: torch.Tensor) -> int:
    """The address of ``t``'s storage: tensors that share it are one buffer."""
    return int(t.untyped_storage().data_ptr())


def _fx_trace(net: nn.Module, x: torch.Tensor, rec: Recorder) -> None:
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
    def __init__(self, rec: Recorder, stack: list[str]) -> None:
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


def _hooks_trace(net: nn.Module, x: torch.Tensor, rec: Recorder) -> None:
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


def trace_network(
    net: nn.Module, x: torch.Tensor, weights: set[int], tracer: Tracer
) -> tuple[Recorder, str]:
    """Record ``net`` running on ``x``; returns the recorder and the tracer used (fx or hooks).

    ``weights`` are the storages of parameters and module buffers; ``tracer="auto"`` tries fx
    and falls back to the hooks trace.
    """
    if tracer != "hooks":
        rec = Recorder(weights)
        try:
            _fx_trace(net, x, rec)
            return rec, "fx"
        except Exception as exc:
            if tracer == "fx":
                raise
            log.debug("fx could not trace %s (%s); using the hooks trace", type(net).__name__, exc)
    rec = Recorder(weights)
    _hooks_trace(net, x, rec)
    return rec, "hooks"
