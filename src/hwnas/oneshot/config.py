"""The settings of one supernet training run, checked when they are made.

Keys of the mapping :meth:`SupernetConfig.from_dict` reads (every other key is refused with the
closest allowed one)::

    train               the training loop's settings (hwnas.training.TrainConfig keys); required
    schedule            "sandwich" (default: BigNAS, every dimension elastic from the start) or
                        "progressive" (Once-for-All's progressive shrinking)
    phase_epochs        progressive only: epochs of each phase, in OFA's order
                        {largest, kernel, depth, expand}; a phase left out or given 0 is skipped.
                        train.epochs may be left out; given, it must equal their sum
    num_random          random sub-networks per batch besides the largest and smallest; default 2
    distill             "kl" (default) or "soft_ce": the in-place distillation loss
    calibration_images  training images for BatchNorm recalibration before scoring; default 2000
    zero_init_residual  start each residual block's last BatchNorm scale at 0 (BigNAS); default true

Example:
    >>> cfg = SupernetConfig.from_dict({"train": {"epochs": 2}})
    >>> cfg.schedule, cfg.num_random, cfg.train.epochs
    ('sandwich', 2, 2)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hwnas.errors import ConfigError
from hwnas.oneshot.calibrate import CALIBRATION_IMAGES
from hwnas.oneshot.sandwich import DISTILL, PHASES
from hwnas.registry import closest
from hwnas.training import TrainConfig

SCHEDULES: tuple[str, ...] = ("sandwich", "progressive")
KEYS: tuple[str, ...] = (
    "train",
    "schedule",
    "phase_epochs",
    "num_random",
    "distill",
    "calibration_images",
    "zero_init_residual",
)


@dataclass(frozen=True)
class SupernetConfig:
    """How to train a supernet (see the module docstring for the keys)."""

    train: TrainConfig
    schedule: str = "sandwich"
    phase_epochs: dict[str, int] = field(default_factory=dict)
    num_random: int = 2
    distill: str = "kl"
    calibration_images: int = CALIBRATION_IMAGES
    zero_init_residual: bool = True

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SupernetConfig:
        """A config from a mapping; one-line :class:`ConfigError` naming the key on a problem."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"supernet config must be a mapping, got {type(d).__name__}")
        for key in d:
            if key not in KEYS:
                raise ConfigError(
                    f"supernet config has no key {key!r}; {closest(str(key), KEYS)} "
                    f"(allowed: {', '.join(KEYS)})"
                )
        if "train" not in d or not isinstance(d["train"], Mapping):
            raise ConfigError(
                "supernet config needs 'train', a mapping of training settings "
                "(e.g. {'epochs': 2}); add it"
            )
        schedule = d.get("schedule", "sandwich")
        if schedule not in SCHEDULES:
            raise ConfigError(
                f"supernet config: unknown schedule {schedule!r}; "
                f"{closest(str(schedule), SCHEDULES)}"
            )
        train = dict(d["train"])
        phases: dict[str, int] = {}
        if schedule == "progressive":
            phases = _phases(d.get("phase_epochs"))
            total = sum(phases.values())
            if "epochs" not in train:
                train["epochs"] = total
            elif train["epochs"] != total:
                raise ConfigError(
                    f"supernet config: train.epochs {train['epochs']!r} differs from the sum of "
                    f"phase_epochs ({total}); leave train.epochs out or make them agree"
                )
        elif "phase_epochs" in d:
            raise ConfigError(
                "supernet config: phase_epochs is for schedule 'progressive'; remove it or set "
                "schedule: progressive"
            )
        values = {k: v for k, v in d.items() if k not in ("train", "phase_epochs")}
        return cls(train=TrainConfig.from_dict(train), phase_epochs=phases, **values)

    def __post_init__(self) -> None:
        if not isinstance(self.train, TrainConfig):
            raise ConfigError(
                f"supernet config: train must be a TrainConfig, got {type(self.train).__name__}"
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"supernet config: unknown schedule {self.schedule!r}; "
                f"{closest(str(self.schedule), SCHEDULES)}"
            )
        if self.distill not in DISTILL:
            raise ConfigError(
                f"supernet config: unknown distill {self.distill!r}; "
                f"{closest(str(self.distill), DISTILL)}"
            )
        for name in ("num_random", "calibration_images"):
            value, low = getattr(self, name), 0 if name == "num_random" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"supernet config: {name} must be an integer >= {low}, got {value!r}"
                )
        if not isinstance(self.zero_init_residual, bool):
            raise ConfigError(
                f"supernet config: zero_init_residual must be true or false, got "
                f"{self.zero_init_residual!r}"
            )
        for phase, epochs in self.phase_epochs.items():
            if epochs and self.train.warmup_epochs >= epochs:
                raise ConfigError(
                    f"supernet config: train.warmup_epochs {self.train.warmup_epochs} must be "
                    f"less than every phase's epochs ({phase}: {epochs}); lower warmup_epochs"
                )

    def phases(self) -> list[tuple[str, TrainConfig]]:
        """The training runs, in order: ``("all", train)`` for the sandwich schedule, else each
        phase with its epochs (phases of 0 epochs left out)."""
        if self.schedule == "sandwich":
            return [("all", self.train)]
        return [
            (p, dataclasses.replace(self.train, epochs=self.phase_epochs[p]))
            for p in PHASES
            if self.phase_epochs.get(p, 0) > 0
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; ``from_dict(c.to_dict()) == c``."""
        out: dict[str, Any] = {
            "train": self.train.to_dict(),
            "schedule": self.schedule,
            "num_random": self.num_random,
            "distill": self.distill,
            "calibration_images": self.calibration_images,
            "zero_init_residual": self.zero_init_residual,
        }
        if self.schedule == "progressive":
            out["phase_epochs"] = dict(self.phase_epochs)
        return out


def _phases(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(
            "supernet config: schedule 'progressive' needs phase_epochs, e.g. "
            "{largest: 2, kernel: 2, depth: 2, expand: 2}"
        )
    out = {}
    for key, epochs in value.items():
        if key not in PHASES:
            raise ConfigError(
                f"supernet config: phase_epochs has unknown phase {key!r}; "
                f"{closest(str(key), PHASES)} (phases: {', '.join(PHASES)})"
            )
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ConfigError(
                f"supernet config: phase_epochs.{key} must be an integer >= 0, got {epochs!r}"
            )
        out[key] = epochs
    if sum(out.values()) == 0:
        raise ConfigError("supernet config: phase_epochs are all 0; give some phase epochs")
    return {p: out.get(p, 0) for p in PHASES}
