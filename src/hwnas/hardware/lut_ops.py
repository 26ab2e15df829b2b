"""Operator decompositions for per-op latency tables: which op configurations a network runs.

A space-specific *decomposer*, registered under the space's name with
:func:`register_decomposer`, lists the operator configurations a network is made of:
``(key, input shape, module factory)`` per occurrence, where the key names everything the op's
latency depends on (op, channels, stride, feature-map size). NB201 and FBNet have one each;
:mod:`hwnas.hardware.lut` measures each distinct configuration once and sums the table.

Example:
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> arch = space.from_string(
    ...     "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    >>> len(decompose(space, arch)), len(op_configs(space))
    (94, 19)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from hwnas.errors import ConfigError
from hwnas.registry import Registry
from hwnas.spaces.base import CategoricalSpace

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace


@dataclass(frozen=True)
class OpSpec:
    """One operator occurrence: its table key, one sample's input shape, and a module factory."""

    key: str
    input_shape: tuple[int, ...]
    build: Callable[[], Any]


Decomposer = Callable[["SearchSpace", "Arch"], list[OpSpec]]
DECOMPOSERS: Registry[list[OpSpec]] = Registry("LUT decomposer")


def register_decomposer(space_name: str) -> Callable[[Decomposer], Decomposer]:
    """Register ``fn(space, arch) -> list[OpSpec]`` as the decomposer of a space."""
    return DECOMPOSERS.register(space_name)


def decompose(space: SearchSpace, arch: Arch) -> list[OpSpec]:
    """Every operator occurrence of ``arch``'s network, in execution order."""
    if space.name not in DECOMPOSERS:
        raise ConfigError(
            f"space {space.name!r} has no LUT decomposer (spaces with one: "
            f"{', '.join(DECOMPOSERS.names())}); register one with "
            "hwnas.hardware.lut_ops.register_decomposer"
        )
    return DECOMPOSERS.get(space.name)(space, arch)


def covering_archs(space: SearchSpace) -> list[Arch]:
    """Architectures that together use every choice of every slot of a categorical space.

    Enough to meet every op configuration when an op's configuration depends only on its slot
    and choice (true of NB201 and FBNet); other spaces pass their own ``archs`` to
    :func:`hwnas.hardware.lut.build_lut`.
    """
    if not isinstance(space, CategoricalSpace):
        raise ConfigError(
            f"space {space.name!r} is not categorical; pass the archs whose ops the LUT must cover"
        )
    width = max(len(choices) for choices in space.slots)
    return [{"ops": [c[k % len(c)] for c in space.slots]} for k in range(width)]


def op_configs(space: SearchSpace, archs: Sequence[Arch] | None = None) -> dict[str, OpSpec]:
    """The distinct op configurations (key -> spec) of ``archs`` (default: the whole space)."""
    out: dict[str, OpSpec] = {}
    for arch in covering_archs(space) if archs is None else archs:
        for spec in decompose(space, arch):
            out.setdefault(spec.key, spec)
    return out


# -- decomposers ----------------------------------------------------------------------------------
# Module factories import torch lazily, so decomposing (and predicting) needs no torch.
def _nb201_part(kind: str, c: int, extra: Any = None) -> Any:
    from torch import nn

    from hwnas.spaces import nb201_torch

    if kind == "stem":  # as NB201Network.stem
        return nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    if kind == "edge":
        return nb201_torch._edge_op(extra, c)
    if kind == "reduction":
        return nb201_torch._ResNetReduction(c, 2 * c)
    # head: lastact, pool, flatten, classifier
    return nn.Sequential(
        nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c, extra)
    )


def _fbnet_part(kind: str, *args: Any) -> Any:
    from torch import nn

    from hwnas.spaces import fbnet_torch
    from hwnas.spaces.fbnet_cost import FBNET_HEAD_CHANNELS

    if kind == "stem":
        return nn.Sequential(*fbnet_torch._conv_bn(3, args[0], 3))
    if kind == "layer":
        return fbnet_torch.fbnet_block(*args)
    c_in, n_cls = args  # head: 1x1 conv + BN + ReLU, pool, flatten, classifier
    return nn.Sequential(
        *fbnet_torch._conv_bn(c_in, FBNET_HEAD_CHANNELS, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(FBNET_HEAD_CHANNELS, n_cls),
    )


def _hw(shape: Sequence[int]) -> str:
    return f"{shape[-2]}x{shape[-1]}"


@register_decomposer("nb201")
def nb201_ops(space: SearchSpace, arch: Arch) -> list[OpSpec]:
    """NB201 (C=16, N=5): stem, 6 edge ops x 5 cells x 3 stages, 2 reductions, head.

    ``none`` edges are listed too: the network computes them (``torch.zeros_like``). The node sums
    and the reductions' residual additions are the same for every cell and fall into the glue.
    """
    from hwnas.spaces.nb201 import NB201Space

    assert isinstance(space, NB201Space)
    ops = space.validate(arch)["ops"]
    c, n, size, n_cls = 16, 5, space.input_size, space.num_classes  # as build_network
    shape: tuple[int, ...] = (3, size, size)
    out = [OpSpec(f"nb201/stem:c3-{c}:{_hw(shape)}", shape, partial(_nb201_part, "stem", c))]
    for stage in range(3):
        if stage > 0:
            shape = (c, size, size)
            key = f"nb201/reduction:c{c}-{2 * c}:{_hw(shape)}"
            out.append(OpSpec(key, shape, partial(_nb201_part, "reduction", c)))
            c, size = 2 * c, size // 2
        shape = (c, size, size)
        edges = [
            OpSpec(f"nb201/edge:{op}:c{c}:{_hw(shape)}", shape, partial(_nb201_part, "edge", c, op))
            for op in ops
        ]
        out += edges * n
    key = f"nb201/head:c{c}:{_hw(shape)}:n{n_cls}"
    out.append(OpSpec(key, shape, partial(_nb201_part, "head", c, n_cls)))
    return out


@register_decomposer("fbnet")
def fbnet_ops(space: SearchSpace, arch: Arch) -> list[OpSpec]:
    """FBNet (HW-NAS-Bench CIFAR network): stem, the 22 layers' blocks, 1x1 head conv + classifier.

    A layer's key is (block, C_in, C_out, stride, input size); residual additions are inside the
    blocks, so only the Python dispatch between modules is left to the glue.
    """
    from hwnas.spaces.fbnet import FBNetSpace
    from hwnas.spaces.fbnet_cost import FBNET_HEAD_CHANNELS, FBNET_STEM_CHANNELS, fbnet_layer_plan

    assert isinstance(space, FBNetSpace)
    ops = space.validate(arch)["ops"]
    c, size, n_cls = FBNET_STEM_CHANNELS, space.input_size, space.num_classes
    shape: tuple[int, ...] = (3, size, size)
    out = [OpSpec(f"fbnet/stem:c3-{c}:{_hw(shape)}", shape, partial(_fbnet_part, "stem", c))]
    for op, (c_in, c_out, stride) in zip(ops, fbnet_layer_plan(), strict=True):
        shape = (c_in, size, size)
        key = f"fbnet/layer:{op}:c{c_in}-{c_out}:s{stride}:{_hw(shape)}"
        out.append(OpSpec(key, shape, partial(_fbnet_part, "layer", op, c_in, c_out, stride)))
        size, c = (size - 1) // stride + 1, c_out
    shape = (c, size, size)
    key = f"fbnet/head:c{c}-{FBNET_HEAD_CHANNELS}:{_hw(shape)}:n{n_cls}"
    out.append(OpSpec(key, shape, partial(_fbnet_part, "head", c, n_cls)))
    return out
