"""The memory evaluator: peak SRAM and flash of an architecture, computed from its network.

The numbers come from :mod:`hwnas.hardware.memory` (MCUNet-style sequential schedule, input
included, BN folded, int8 by default). On a space that describes its networks to the closed form
of :mod:`hwnas.hardware.mcu` (:meth:`~hwnas.spaces.base.SearchSpace.mcu_network`: ``mbv3``) they
come from that closed form instead, at the architecture's own resolution and without PyTorch; with
the residual kept until the add and biases at ``weight_bits`` it gives the traced model's figures
exactly, in microseconds. They are computed from the architecture alone, so the evaluator is
cheap (``expensive = False``: it never counts against the budget) and results are not cached
across studies (recomputing costs a fraction of a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwnas.errors import ConfigError, require_torch
from hwnas.evaluation.base import Evaluator, EvaluatorContext

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch


class MemoryModel(Evaluator):
    """``peak_sram_kb`` and ``flash_kb`` of the space's PyTorch network (kB = 1024 bytes); on a
    space with an :meth:`~hwnas.spaces.base.SearchSpace.mcu_network` (``mbv3``), of the
    architecture's block network at its own resolution (:mod:`hwnas.hardware.mcu`).

    Args:
        act_bits: bits per activation value (8: int8 MCU deployment).
        weight_bits: bits per stored parameter.
        fold_bn: fold BatchNorm into the preceding conv before counting flash.
        context: the space (one with an ``mcu_network``, or with a PyTorch builder) and folders.

    Example (config)::

        evaluators:
          - nb201: {dataset: cifar10}
          - memory: {act_bits: 8, weight_bits: 8}
        constraints:
          - {metric: peak_sram_kb, le: 64}
    """

    expensive = False
    cacheable = False

    def __init__(
        self,
        *,
        act_bits: int = 8,
        weight_bits: int = 8,
        fold_bn: bool = True,
        context: EvaluatorContext,
    ) -> None:
        for name, value in (("act_bits", act_bits), ("weight_bits", weight_bits)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
                raise ConfigError(f"memory: {name} must be an integer in 1..32, got {value!r}")
        if not isinstance(fold_bn, bool):
            raise ConfigError(f"memory: fold_bn must be true or false, got {fold_bn!r}")
        space = context.space
        # A space that gives its block network needs no PyTorch network to trace.
        self._closed_form = space.mcu_network() is not None
        if not self._closed_form:
            require_torch("the memory evaluator")
            try:
                space.input_shape  # noqa: B018 - probes for a PyTorch builder
            except NotImplementedError:
                raise ConfigError(
                    f"evaluator 'memory' needs a space with a PyTorch builder; "
                    f"space {space.name!r} has none"
                ) from None
        self.space = space
        self.act_bits = act_bits
        self.weight_bits = weight_bits
        self.fold_bn = fold_bn

    def metrics(self) -> tuple[str, ...]:
        return ("peak_sram_kb", "flash_kb")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        if self._closed_form:
            from hwnas.hardware.mcu import mcu_memory

            network = self.space.mcu_network()
            assert network is not None
            return mcu_memory(
                network(arch),
                act_bits=self.act_bits,
                weight_bits=self.weight_bits,
                bias_bits=self.weight_bits,  # as the traced model counts biases
                fold_bn=self.fold_bn,
            ).metrics()
        from hwnas.hardware.memory import memory_of

        report = memory_of(
            self.space,
            arch,
            act_bits=self.act_bits,
            weight_bits=self.weight_bits,
            fold_bn=self.fold_bn,
        )
        return report.metrics()

    def key(self) -> str:
        fold = "fold" if self.fold_bn else "nofold"
        return f"memory:a{self.act_bits}w{self.weight_bits}:{fold}"
