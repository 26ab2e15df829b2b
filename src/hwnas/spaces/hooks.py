"""What a space tells the hardware models about its networks: the types its hooks return.

A space describes itself to :mod:`hwnas.hardware` through three methods of
:class:`~hwnas.spaces.base.SearchSpace`, each returning None when the space has no such
description:

- :meth:`~hwnas.spaces.base.SearchSpace.latency_feature_set`: a :class:`FeatureSet`, the named
  features latency predictors read (:mod:`hwnas.hardware.features`);
- :meth:`~hwnas.spaces.base.SearchSpace.lut_decomposer`: a function from an architecture to its
  network's operator occurrences, :class:`OpSpec` s, for per-op latency tables
  (:mod:`hwnas.hardware.lut_ops`, :mod:`hwnas.hardware.lut`);
- :meth:`~hwnas.spaces.base.SearchSpace.mcu_network`: a function from an architecture to its
  :class:`BlockNetwork`, what the closed-form MCU memory model reads (:mod:`hwnas.hardware.mcu`).

A new space overrides the hooks it can answer, in its own modules; nothing in
:mod:`hwnas.hardware` names it. This module imports nothing from :mod:`hwnas.hardware`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hwnas.spaces.mbv3_plan import BlockPlan

# Conventions of the feature sets: memory traffic counts 4 bytes per value (float32) and is given
# in megabytes, FLOPs in millions of MACs.
BYTES = 4
MB = 1e6


@dataclass(frozen=True)
class FeatureSet:
    """Named features of one space: ``matrix(codes)`` maps an ``(n, slots)`` array of choice
    indices (``space.encode``) to an ``(n, len(names))`` float array."""

    space_name: str
    names: tuple[str, ...]
    matrix: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class OpSpec:
    """One operator occurrence: its table key, one sample's input shape, and a module factory."""

    key: str
    input_shape: tuple[int, ...]
    build: Callable[[], Any]


def hw_key(shape: Sequence[int]) -> str:
    """The feature-map size part of an op key: ``"{height}x{width}"`` of a (C, H, W) shape."""
    return f"{shape[-2]}x{shape[-1]}"


@dataclass(frozen=True)
class BlockNetwork:
    """What the closed form reads: a stem, inverted-residual blocks, a head.

    ``stem``: 3x3 conv (stride ``stem_stride``) + BN. ``blocks``: (name, plan) pairs in order; a
    block is an optional 1x1 expand conv + BN (absent when its expansion is 1), a depthwise conv +
    BN, optional squeeze-excite (1x1 convs with bias on the pooled map), a 1x1 projection + BN,
    and the identity shortcut when :attr:`BlockPlan.residual`. Head: a 1x1 conv + BN to
    ``final_expand`` channels, global pooling, an optional 1x1 conv to ``feature_mix`` channels
    on the pooled vector (no BN, no bias, as OFA's MobileNetV3; 0 = none), a linear classifier
    with bias.
    """

    in_channels: int
    resolution: int
    stem_channels: int
    stem_stride: int
    blocks: tuple[tuple[str, BlockPlan], ...]
    final_expand: int
    feature_mix: int
    num_classes: int


def spaces_with(hook: str) -> list[str]:
    """Names of the registered spaces whose class overrides the hook method ``hook``, sorted."""
    from hwnas.spaces import SPACES
    from hwnas.spaces.base import SearchSpace

    default = getattr(SearchSpace, hook)
    return [n for n in SPACES.names() if getattr(SPACES.get(n), hook, default) is not default]
