"""Operator decompositions for per-op latency tables: which op configurations a network runs.

A space-specific *decomposer* lists the operator configurations a network is made of:
``(key, input shape, module factory)`` per occurrence, where the key names everything the op's
latency depends on (op, channels, stride, feature-map size). A space gives its own by overriding
:meth:`~hwnas.spaces.base.SearchSpace.lut_decomposer` (NB201's is in :mod:`hwnas.spaces.nb201_lut`,
FBNet's in :mod:`hwnas.spaces.fbnet_lut`); a function registered with :func:`register_decomposer`
under a space's name serves a space that has none of its own. :mod:`hwnas.hardware.lut` measures
each distinct configuration once and sums the table.

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
from typing import TYPE_CHECKING

from hwnas.errors import ConfigError
from hwnas.registry import Registry
from hwnas.spaces.base import CategoricalSpace
from hwnas.spaces.hooks import OpSpec, spaces_with

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

Decomposer = Callable[["SearchSpace", "Arch"], list[OpSpec]]
DECOMPOSERS: Registry[list[OpSpec]] = Registry("LUT decomposer")


def register_decomposer(space_name: str) -> Callable[[Decomposer], Decomposer]:
    """Register ``fn(space, arch) -> list[OpSpec]`` as the decomposer of a space."""
    return DECOMPOSERS.register(space_name)


def has_decomposer(space: SearchSpace) -> bool:
    """Whether ``space`` has a decomposer (its own, or one registered under its name)."""
    return space.lut_decomposer() is not None or space.name in DECOMPOSERS


def decompose(space: SearchSpace, arch: Arch) -> list[OpSpec]:
    """Every operator occurrence of ``arch``'s network, in execution order."""
    own = space.lut_decomposer()
    if own is not None:
        return own(arch)
    if space.name not in DECOMPOSERS:
        names = sorted({*spaces_with("lut_decomposer"), *DECOMPOSERS.names()})
        raise ConfigError(
            f"space {space.name!r} has no LUT decomposer (spaces with one: "
            f"{', '.join(names)}); register one with "
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
