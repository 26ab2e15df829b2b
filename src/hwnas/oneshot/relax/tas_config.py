"""Settings of a TAS search and of the distillation after it (:class:`TASConfig`), with one-line
errors for bad values. The search itself is :mod:`hwnas.oneshot.relax.tas`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from hwnas.errors import ConfigError
from hwnas.registry import closest

DERIVE = ("target", "argmax")
_INTS = {"epochs": 1, "batch_size": 1, "top_k": 0, "kd_epochs": 1, "seed": 0}
# name: (low, high, low open, high open); None for no bound
_FLOATS: dict[str, tuple[float, float | None, bool, bool]] = {
    "lr": (0.0, None, True, False),
    "weight_decay": (0.0, None, False, False),
    "arch_lr": (0.0, None, True, False),
    "arch_weight_decay": (0.0, None, False, False),
    "target_flops_ratio": (0.0, 1.0, True, False),
    "flops_weight": (0.0, None, False, False),
    "tolerance": (0.0, 1.0, False, True),
    "tau_max": (0.0, None, True, False),
    "tau_min": (0.0, None, True, False),
    "kd_alpha": (0.0, 1.0, False, False),
    "kd_temperature": (0.0, None, True, False),
}


@dataclass(frozen=True)
class TASConfig:
    """Settings of a TAS search and of the distillation after it (defaults: the paper's, with
    fewer epochs than its 300 of search and 300 of distillation).

    Attributes:
        epochs: search epochs.
        batch_size: samples per step (search and distillation; TAS: 256).
        lr: peak SGD learning rate of the weights (search and distillation).
        weight_decay: SGD weight decay of conv and linear weights.
        arch_lr: Adam learning rate of the architecture logits.
        arch_weight_decay: Adam weight decay of the architecture logits.
        target_flops_ratio: target FLOPs as a fraction of the unpruned network's, in (0, 1].
        flops_weight: weight of the FLOPs loss.
        tolerance: half-width of the band around the target where the FLOPs loss is 0.
        tau_max, tau_min: Gumbel-softmax temperature at the first and the last epoch.
        top_k: alternatives to the derived architecture returned: the argmax (when it is not
            the derived one) and then the next networks by joint probability.
        derive: how the pruned network is read off the distributions: ``"target"`` (default)
            the argmax moved into the FLOPs band by the least-probable-loss changes
            (:func:`~hwnas.oneshot.relax.tas_archs.derive_at_flops`; hwnas's, so that the
            pruned network meets its target after a short search), or ``"argmax"`` (the
            paper's code: each slot's most probable choice, whatever its FLOPs).
        kd_alpha: weight of the distillation term (``1 - kd_alpha`` on the cross-entropy).
        kd_temperature: softmax temperature of the distillation term.
        kd_epochs: distillation epochs.
        seed: seeds the weights, the logits, the Gumbel draws and the batch order.
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 0.1
    weight_decay: float = 5e-4
    arch_lr: float = 1e-3
    arch_weight_decay: float = 1e-3
    target_flops_ratio: float = 0.5
    flops_weight: float = 2.0
    tolerance: float = 0.05
    tau_max: float = 5.0
    tau_min: float = 0.1
    top_k: int = 3
    derive: str = "target"
    kd_alpha: float = 0.9
    kd_temperature: float = 4.0
    kd_epochs: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        value: Any
        for name, least in _INTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(
                    f"tas config: {name} must be an integer >= {least}, got {value!r}"
                )
        for name, (low, high, low_open, high_open) in _FLOATS.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = number and math.isfinite(value) and (value > low if low_open else value >= low)
            if ok and high is not None:
                ok = value < high if high_open else value <= high
            if not ok:
                lo = f"{'(' if low_open else '['}{low:g}"
                hi = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
                raise ConfigError(
                    f"tas config: {name} must be a number in {lo}, {hi}, got {value!r}"
                )
            object.__setattr__(self, name, float(value))
        if self.derive not in DERIVE:
            raise ConfigError(
                f"tas config: derive must be one of {', '.join(DERIVE)}, got {self.derive!r}"
            )
        if self.tau_min > self.tau_max:
            raise ConfigError(
                f"tas config: tau_min must be <= tau_max, got tau_min={self.tau_min:g} and "
                f"tau_max={self.tau_max:g}"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TASConfig:
        """A config from a mapping; unknown keys and bad values raise a one-line ConfigError.

        Example:
            >>> TASConfig.from_dict({"epochs": 5, "target_flops_ratio": 0.3}).target_flops_ratio
            0.3
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"tas config must be a mapping, got {type(d).__name__}")
        allowed = [f.name for f in fields(cls)]
        for key in d:
            if key not in allowed:
                raise ConfigError(f"tas config has no key {key!r}; {closest(str(key), allowed)}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
