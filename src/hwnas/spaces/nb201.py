"""NAS-Bench-201 cell space: 6 edges of a 4-node cell, 5 operations each (15,625 cells).

Canonical string (Dong & Yang, ICLR 2020): ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` where the
group k lists the edges into node k+1 and ``~j`` names the source node. ``ops`` in the
architecture dict follow the string's order: edges (0->1), (0->2), (1->2), (0->3), (1->3), (2->3).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from hwnas.errors import ConfigError, require_torch
from hwnas.registry import closest
from hwnas.spaces.base import Arch, CategoricalSpace, whole_number
from hwnas.spaces.nb201_cost import NB201_OPS, nb201_params_flops

if TYPE_CHECKING:
    from hwnas.spaces.hooks import FeatureSet, OpSpec

_NB201_FORMAT = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|"
# (target node, source node) of each position in ``ops``.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class NB201Space(CategoricalSpace):
    """The NAS-Bench-201 topology search space.

    Args:
        num_classes: classifier outputs, used by the cheap metrics (10, 100 or 120).
        input_size: input resolution, used by the cheap metrics (32, or 16 for ImageNet16-120).
        in_channels: input image channels of the built network (3 in the benchmark).
        channels: channels of the built network's first stage (C; 16 in the benchmark).
        cells: cells per stage of the built network (N; 5 in the benchmark). The three shape
            the network that :meth:`build_network` gives and the cheap metrics count, e.g. a
            small network for training on a user's grey images; benchmark tables are keyed by
            the cell alone and do not depend on them.

    Example:
        >>> space = NB201Space()
        >>> arch = space.from_string(
        ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        ...     "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
        >>> space.to_string(arch).count("~")
        6
    """

    name = "nb201"
    slots = (NB201_OPS,) * 6
    added_options = ("in_channels", "channels", "cells")

    def __init__(
        self,
        *,
        num_classes: int = 10,
        input_size: int = 32,
        in_channels: int = 3,
        channels: int = 16,
        cells: int = 5,
    ) -> None:
        self.num_classes = whole_number("nb201", "num_classes", num_classes)
        self.input_size = whole_number("nb201", "input_size", input_size, minimum=4)
        self.in_channels = whole_number("nb201", "in_channels", in_channels)
        self.channels = whole_number("nb201", "channels", channels)
        self.cells = whole_number("nb201", "cells", cells)
        if self.input_size % 4:
            raise ConfigError(f"nb201: input_size must be a multiple of 4, got {input_size}")

    def to_string(self, arch: Arch) -> str:
        return _NB201_FORMAT.format(*self._ops(arch))

    def from_string(self, text: str) -> Arch:
        s = str(text).strip()
        groups = s.split("+")
        if len(groups) != 3:
            raise ConfigError(
                f"nb201: {text!r} is not an NB201 string; expected three '+'-joined groups like "
                "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
            )
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")):
                raise ConfigError(f"nb201: group {group!r} in {text!r} must start and end with '|'")
            edges = group[1:-1].split("|")
            if len(edges) != node:
                raise ConfigError(
                    f"nb201: group {node} of {text!r} needs {node} edge(s), got {len(edges)}"
                )
            for j, edge in enumerate(edges):
                op, sep, src = edge.partition("~")
                if not sep or src != str(j):
                    raise ConfigError(f"nb201: edge {edge!r} in {text!r} must read 'op~{j}'")
                if op not in NB201_OPS:
                    raise ConfigError(
                        f"nb201: unknown op {op!r} in {text!r}; {closest(op, NB201_OPS)}"
                    )
                ops.append(op)
        return {"ops": ops}

    def cheap_metrics(self, arch: Arch) -> dict[str, float]:
        params_m, flops_m = nb201_params_flops(
            self._ops(arch),
            num_classes=self.num_classes,
            input_size=self.input_size,
            C=self.channels,
            N=self.cells,
            in_channels=self.in_channels,
        )
        return {"params_m": params_m, "flops_m": flops_m}

    def cheap_metric_names(self) -> tuple[str, ...]:
        return ("params_m", "flops_m")

    def latency_feature_set(self) -> FeatureSet:
        """Latency features (:mod:`hwnas.spaces.nb201_features`)."""
        from hwnas.spaces.nb201_features import nb201_feature_set

        return nb201_feature_set(self)

    def lut_decomposer(self) -> Callable[[Arch], list[OpSpec]]:
        """Operator occurrences for per-op latency tables (:mod:`hwnas.spaces.nb201_lut`)."""
        from hwnas.spaces.nb201_lut import nb201_ops

        return partial(nb201_ops, self)

    def build_network(self, arch: Arch) -> Any:
        """The NB201 network of ``arch`` (``channels``, ``cells``) as a ``torch.nn.Module``."""
        require_torch("building NB201 networks")
        from hwnas.spaces.nb201_torch import build_nb201_network

        return build_nb201_network(
            self._ops(arch),
            num_classes=self.num_classes,
            C=self.channels,
            N=self.cells,
            in_channels=self.in_channels,
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.input_size, self.input_size)
