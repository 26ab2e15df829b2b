"""FBNet block space: 22 searchable layers, 9 candidate blocks each (Wu et al., CVPR 2019).

Blocks are inverted-residual units named ``k{kernel}_e{expansion}`` (``_g2``: grouped 1x1 convs)
or ``skip``. The canonical string is the 22 block names joined by single spaces, the form used by
the HW-NAS-Bench / HELP latency tables, so those tables plug in with the ``table`` evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from hwnas.errors import ConfigError, require_torch
from hwnas.registry import closest
from hwnas.spaces.base import Arch, CategoricalSpace, whole_number
from hwnas.spaces.fbnet_cost import FBNET_BLOCKS, FBNET_LAYERS, fbnet_params_flops

if TYPE_CHECKING:
    from hwnas.spaces.hooks import FeatureSet, OpSpec


class FBNetSpace(CategoricalSpace):
    """The FBNet layer-wise block space (9^22 architectures).

    Args:
        num_classes: classifier outputs, used by the cheap metrics.
        input_size: input resolution, used by the cheap metrics.

    Example:
        >>> space = FBNetSpace()
        >>> len(space.from_string(" ".join(["k3_e6"] * 22))["ops"])
        22
    """

    name = "fbnet"
    slots = (FBNET_BLOCKS,) * FBNET_LAYERS

    def __init__(self, *, num_classes: int = 100, input_size: int = 32) -> None:
        self.num_classes = whole_number("fbnet", "num_classes", num_classes)
        self.input_size = whole_number("fbnet", "input_size", input_size)

    def to_string(self, arch: Arch) -> str:
        return " ".join(self._ops(arch))

    def from_string(self, text: str) -> Arch:
        ops = str(text).split()
        if len(ops) != FBNET_LAYERS:
            raise ConfigError(
                f"fbnet: expected {FBNET_LAYERS} space-separated blocks, got {len(ops)} in {text!r}"
            )
        for i, op in enumerate(ops):
            if op not in FBNET_BLOCKS:
                raise ConfigError(
                    f"fbnet: unknown block {op!r} at layer {i}; {closest(op, FBNET_BLOCKS)}"
                )
        return {"ops": ops}

    def cheap_metrics(self, arch: Arch) -> dict[str, float]:
        params_m, flops_m = fbnet_params_flops(
            self._ops(arch), num_classes=self.num_classes, input_size=self.input_size
        )
        return {"params_m": params_m, "flops_m": flops_m}

    def cheap_metric_names(self) -> tuple[str, ...]:
        return ("params_m", "flops_m")

    def latency_feature_set(self) -> FeatureSet:
        """Latency features (:mod:`hwnas.spaces.fbnet_features`)."""
        from hwnas.spaces.fbnet_features import fbnet_feature_set

        return fbnet_feature_set(self)

    def lut_decomposer(self) -> Callable[[Arch], list[OpSpec]]:
        """Operator occurrences for per-op latency tables (:mod:`hwnas.spaces.fbnet_lut`)."""
        from hwnas.spaces.fbnet_lut import fbnet_ops

        return partial(fbnet_ops, self)

    def build_network(self, arch: Arch) -> Any:
        """The FBNet network of ``arch`` as a ``torch.nn.Module``."""
        require_torch("building FBNet networks")
        from hwnas.spaces.fbnet_torch import build_fbnet_network

        return build_fbnet_network(
            self._ops(arch), num_classes=self.num_classes, input_size=self.input_size
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (3, self.input_size, self.input_size)
