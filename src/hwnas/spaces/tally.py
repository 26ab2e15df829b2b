"""Running parameter and MAC totals of a network walked layer by layer (pure Python, no torch),
and the argument checks the per-space counters share (:mod:`hwnas.spaces.nb201_cost`,
:mod:`hwnas.spaces.fbnet_cost`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwnas.errors import ConfigError
from hwnas.registry import closest


@dataclass
class Tally:
    """Running totals over square feature maps; ``size`` is the side length."""

    params: int = 0
    macs: int = 0
    # torchstat's extra per-element counts (BN, ReLU, pooling); not part of ``macs``.
    elementwise: int = 0

    def conv(
        self, c_in: int, c_out: int, kernel: int, size: int, *, stride: int = 1, groups: int = 1
    ) -> int:
        """A bias-free conv padded by ``kernel // 2``; returns the output side length."""
        out = (size + 2 * (kernel // 2) - kernel) // stride + 1
        weights = c_out * (c_in // groups) * kernel * kernel
        self.params += weights
        self.macs += weights * out * out
        return out

    def bn(self, channels: int, size: int) -> None:
        self.params += 2 * channels
        self.elementwise += 2 * channels * size * size

    def relu(self, channels: int, size: int) -> None:
        self.elementwise += channels * size * size

    def pool(self, channels: int, out_size: int, kernel: int) -> None:
        self.elementwise += channels * out_size * out_size * kernel * kernel

    def global_pool(self, channels: int, size: int) -> None:
        # torchstat's adaptive-pool count spans one extra row and column per output cell.
        self.elementwise += channels * (size + 1) * (size + 1)

    def linear(self, n_in: int, n_out: int) -> None:
        self.params += n_in * n_out + n_out
        self.macs += n_in * n_out


def check_ops(ops: Sequence[str], allowed: Sequence[str], count: int, space: str) -> list[str]:
    if isinstance(ops, str) or not isinstance(ops, Sequence) or len(ops) != count:
        raise ConfigError(f"{space}: expected a list of {count} op names, got {ops!r}")
    for i, op in enumerate(ops):
        if op not in allowed:
            raise ConfigError(
                f"{space}: unknown op {op!r} at position {i}; {closest(str(op), tuple(allowed))}"
            )
    return list(ops)


def check_positive(space: str, **values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"{space}: {name} must be >= 1, got {value}")
