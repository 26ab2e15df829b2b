"""The settings of one training run, checked when they are made.

Defaults follow the mobile-network recipes that weight-sharing NAS builds on:

* SGD with Nesterov momentum 0.9 (MobileNetV2, Sandler et al., CVPR 2018; Once-for-All, Cai et
  al., ICLR 2020).
* ``weight_decay`` 4e-5, the MobileNetV2 value (its section 6.1); Once-for-All uses 3e-5. Weight
  decay applies only to parameters with two or more dimensions (conv and linear weights):
  biases and normalisation scales and shifts are not decayed, as Once-for-All's
  ``no_decay_keys='bn#bias'`` and "bag of tricks" (He et al., CVPR 2019) do.
* ``label_smoothing`` 0.1 (Szegedy et al., CVPR 2016; Once-for-All).
* ``lr`` 0.05 at ``batch_size`` 128 suits SGD; it is a single default, so set ``lr`` (about
  1e-3) when you choose ``optimizer="adamw"``, which ignores ``momentum`` and ``nesterov``.
* A per-step cosine schedule to 0 after an optional linear warm-up (see
  :func:`hwnas.training.learning_rate`).

Example:
    >>> cfg = TrainConfig.from_dict({"epochs": 5, "lr": 0.1})
    >>> cfg.epochs, cfg.lr, cfg.optimizer, cfg.schedule
    (5, 0.1, 'sgd', 'cosine')
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from hwnas.errors import ConfigError
from hwnas.registry import closest

OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("cosine", "constant")
# Fields that cannot change the trained weights; a checkpoint may be resumed with other values.
NOT_FINGERPRINTED: tuple[str, ...] = ("eval_batch_size",)
_MAX_SEED = 2**63


@dataclass(frozen=True)
class TrainConfig:
    """How to train one network.

    Attributes:
        epochs: Passes over the training data (at least 1).
        batch_size: Training samples per step; the last batch of an epoch may be smaller.
        optimizer: ``"sgd"`` or ``"adamw"``.
        lr: Peak learning rate, reached at the end of the warm-up.
        momentum: SGD momentum in [0, 1); ignored by AdamW.
        nesterov: Nesterov momentum for SGD (needs ``momentum > 0``); ignored by AdamW.
        weight_decay: Decay of conv and linear weights; biases and norm parameters get none.
        label_smoothing: Label smoothing of the training loss, in [0, 1).
        warmup_epochs: Epochs of linear warm-up, from ``lr / warm-up steps`` at the first step to
            ``lr``; fewer than ``epochs``.
        schedule: ``"cosine"`` (per step, from ``lr`` to 0 after the warm-up) or ``"constant"``.
        grad_clip: Largest total gradient norm, or None for no clipping.
        seed: Seeds the shuffling, the augmentation and the model's own randomness (dropout).
        eval_batch_size: Samples per batch when evaluating; does not change the weights.
    """

    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_epochs: int = 0
    schedule: str = "cosine"
    grad_clip: float | None = None
    seed: int = 0
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, low=1)
        _check_int("batch_size", self.batch_size, low=1)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_float(self, "lr", low=0.0, low_open=True)
        _check_float(self, "momentum", low=0.0, high=1.0)
        if not isinstance(self.nesterov, bool):
            raise ConfigError(
                f"train config: nesterov must be true or false, got {_shown(self.nesterov)}"
            )
        _check_float(self, "weight_decay", low=0.0)
        _check_float(self, "label_smoothing", low=0.0, high=1.0)
        _check_int("warmup_epochs", self.warmup_epochs, low=0)
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                f"train config: warmup_epochs must be less than epochs, got warmup_epochs="
                f"{self.warmup_epochs} with epochs={self.epochs}; lower warmup_epochs"
            )
        _check_choice("schedule", self.schedule, SCHEDULES)
        if self.grad_clip is not None:
            _check_float(self, "grad_clip", low=0.0, low_open=True, what="a number > 0 or null")
        _check_int("seed", self.seed, low=0, high=_MAX_SEED - 1)
        _check_int("eval_batch_size", self.eval_batch_size, low=1)
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ConfigError(
                "train config: nesterov needs momentum > 0, got momentum=0; "
                "set momentum (e.g. 0.9) or nesterov false"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """A config from a mapping (a parsed YAML or JSON section).

        Unknown keys, a missing ``epochs``, wrong types and out-of-range values raise
        :class:`~hwnas.errors.ConfigError` with one line naming the key and the fix.

        Example:
            >>> TrainConfig.from_dict({"epochs": 2, "optimizer": "adamw", "lr": 1e-3}).lr
            0.001
        """
        if not isinstance(d, Mapping):
            raise ConfigError(
                f"train config must be a mapping of keys to values, got {type(d).__name__}"
            )
        allowed = [f.name for f in fields(cls)]
        for key in d:
            if key not in allowed:
                raise ConfigError(
                    f"train config has no key {key!r}; {closest(str(key), allowed)} "
                    f"(allowed: {', '.join(allowed)})"
                )
        if "epochs" not in d:
            raise ConfigError("train config needs the key 'epochs' (an integer >= 1); add it")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON values; ``TrainConfig.from_dict(c.to_dict()) == c``."""
        return asdict(self)

    def fingerprint(self) -> str:
        """A short hash of every field that can change the trained weights (all but
        ``eval_batch_size``); a checkpoint only resumes under the same fingerprint."""
        return _hash(self.weight_fields())

    def weight_fields(self) -> dict[str, Any]:
        """The fields that :meth:`fingerprint` covers, as a dict."""
        return {k: v for k, v in self.to_dict().items() if k not in NOT_FINGERPRINTED}


def _hash(values: Mapping[str, Any]) -> str:
    text = json.dumps(dict(values), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        wanted = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        raise ConfigError(f"train config: {name} must be {wanted}, got {_shown(value)}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"train config: unknown {name} {_shown(value)}; {closest(str(value), choices)}"
        )


def _check_float(
    config: TrainConfig,
    name: str,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    what: str | None = None,
) -> None:
    """Check ``config.<name>`` is a finite number in range, and store it as a float (so 1 and
    1.0 give the same fingerprint)."""
    value = getattr(config, name)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = number and math.isfinite(value) and (value > low if low_open else value >= low)
    if ok and high is not None:
        ok = value < high
    if not ok:
        if what is None:
            lower = f"> {low:g}" if low_open else f">= {low:g}"
            what = f"a number {lower}" if high is None else f"a number in [{low:g}, {high:g})"
        raise ConfigError(f"train config: {name} must be {what}, got {_shown(value)}")
    object.__setattr__(config, name, float(value))
