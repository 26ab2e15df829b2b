"""Architecture features for latency prediction (nn-Meter style), one feature set per space.

A feature set turns architectures into a fixed-length float vector: op identity per position,
op counts (overall and per stage), kernel types, per-layer FLOPs and memory traffic (activation +
weight bytes, float32) computed in closed form, graph facts (convs on the input->output paths,
degenerate cells), and the network totals. Everything is vectorised over a batch: the 15,625 NB201
cells take well under a second.

A space gives its feature set itself: it overrides
:meth:`~hwnas.spaces.base.SearchSpace.latency_feature_set` (NB201's is in
:mod:`hwnas.spaces.nb201_features`, FBNet's in :mod:`hwnas.spaces.fbnet_features`). A function
registered in :data:`FEATURE_SETS` under a space's name serves a space that has none of its own.

Conventions: FLOPs are millions of conv/linear MACs (as :mod:`hwnas.spaces.nb201_cost`), memory
traffic is megabytes read + written by each conv / pool / add (4 bytes per value). For NB201 an
edge is *live* when it lies on a path from the cell input to the cell output through non-``none``
edges, and a cell without any such path is *degenerate* (its network computes a constant).

Example:
    >>> from hwnas.spaces import create_space
    >>> space = create_space("nb201")
    >>> x = arch_features(space, space.from_string(
    ...     "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"))
    >>> float(x[feature_names(space).index("degenerate")])
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwnas.errors import ConfigError
from hwnas.registry import Registry, closest
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.spaces.hooks import FeatureSet, spaces_with

FEATURE_SETS: Registry[FeatureSet] = Registry("latency feature set")


def has_feature_set(space: SearchSpace) -> bool:
    """Whether ``space`` has a latency feature set (its own, or one registered by its name)."""
    return space.latency_feature_set() is not None or space.name in FEATURE_SETS


def feature_set(space: SearchSpace) -> FeatureSet:
    """The feature set of ``space`` (a :class:`ConfigError` names the spaces that have one)."""
    own = space.latency_feature_set()
    if own is not None:
        return own
    if space.name not in FEATURE_SETS:
        names = sorted({*spaces_with("latency_feature_set"), *FEATURE_SETS.names()})
        raise ConfigError(
            f"unknown {FEATURE_SETS.kind} {space.name!r}; {closest(space.name, names)}"
        )
    return FEATURE_SETS.get(space.name)(space)


def feature_names(space: SearchSpace) -> list[str]:
    """Names of the features :func:`arch_features` returns for ``space``, in order."""
    return list(feature_set(space).names)


def encode_archs(space: SearchSpace, archs: Sequence[Arch | str]) -> np.ndarray:
    """``(n, slots)`` choice indices; strings are parsed as canonical architecture strings."""
    rows = [space.encode(space.from_string(a) if isinstance(a, str) else a) for a in archs]
    if not rows:
        return np.empty((0, 0), dtype=np.int64)
    return np.vstack(rows).astype(np.int64)


def feature_matrix(space: SearchSpace, archs: Sequence[Arch | str]) -> np.ndarray:
    """Features of many architectures as an ``(n, n_features)`` float64 array."""
    fs = feature_set(space)
    if len(archs) == 0:
        return np.empty((0, len(fs.names)))
    return fs.matrix(encode_archs(space, archs))


def arch_features(space: SearchSpace, arch: Arch | str) -> np.ndarray:
    """Features of one architecture as a float64 vector (see :func:`feature_names`)."""
    return feature_matrix(space, [arch])[0]


def degenerate_mask(space: SearchSpace, archs: Sequence[Arch | str]) -> np.ndarray:
    """True where an architecture computes a constant (NB201: no input->output path)."""
    fs = feature_set(space)
    if "degenerate" not in fs.names or len(archs) == 0:
        return np.zeros(len(archs), dtype=bool)
    return feature_matrix(space, archs)[:, fs.names.index("degenerate")] > 0.5
