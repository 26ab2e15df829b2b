"""The differentiable search methods hwnas carries, each with its paper's settings, and the options
a config may change.

A method is a relaxation *mode* (how the architecture weights mix a slot's choices) plus training
settings. Defaults, from the papers and their released code (NB201 settings from Dong & Yang,
ICLR 2020, section 5 and its code; see ``shared/REFERENCES.md``):

* ``darts`` (Liu, Simonyan & Yang, ICLR 2019): softmax mixture; weights SGD lr 0.025 cosine to
  0.001, momentum 0.9, weight decay 5e-4 (NB201's setting; DARTS used 3e-4), gradient clip 5;
  architecture Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3; 50 epochs, batch 64; half of
  the training data trains the weights, the other half the architecture. ``order: 2`` is the
  unrolled second-order step with the finite-difference Hessian product (eps = 0.01 / ||g||).
* ``pc_darts`` (Xu et al., ICLR 2020): partial channels K = 4 with channel shuffle, edge
  normalisation, architecture frozen for the first 15 epochs, architecture lr 6e-4; its released
  search code's batch 256, weights' lr 0.1 (cosine to 0.001) and weight decay 3e-4 (the
  memory that partial channels save buys the larger batch; hwnas used DARTS's 64 / 0.025 / 5e-4
  before 2026-12-02).
* ``sharpdarts`` (Hundt, Jain & Hager, 2019): cosine power annealing of the weights' lr
  (power 2, the released code's default; the paper reports 10) and max-W weighting
  ``1 - max(w) + w``.
* ``rarts`` (Xin et al., 2021): a relaxed single-level objective, two networks ``w`` (training
  half) and ``y`` (architecture half) sharing the architecture weights, coupled by
  ``coupling / 2 * ||w - y||^2`` and updated in turn (Gauss-Seidel), first order. The paper's
  ``coupling`` and validation weight were not found in a stored source: 1e-2 and 1.0 are ours.
* ``gdas`` (Dong & Yang, CVPR 2019): one choice per slot sampled by Gumbel top-1 (straight-through),
  temperature linear from 10 to 0.1. Only the sampled choice is computed; ``gradient: all`` (the
  default, as in the released NB201 code's ``forward_gdas``) adds every other choice's weight,
  whose value is 0, to the slot's output, so that all of a slot's architecture weights get a
  gradient; ``gradient: sampled`` back-propagates through the sampled choice's weight alone (the
  code's ``forward_gdas_v1`` variant, and hwnas's only form before 2026-12-02).
* ``fbnet`` (Wu et al., CVPR 2019): Gumbel-softmax mixture, temperature 5.0 * exp(-0.045 epoch),
  loss ``CE * a * log(LAT) ^ b`` with a = 0.2, b = 0.6, 80/20 split, weights alone for the first
  10 epochs (of 90); architecture Adam lr 1e-2 [UNVERIFIED: from memory of the paper].
* ``proxyless`` (Cai, Zhu & Han, ICLR 2019): binarized paths (one sampled choice per slot for the
  weights, two for the architecture gradient), expected latency ``sum p_i F(op_i)``, loss
  ``mul#log`` (``CE * 0.2 * (log E[LAT] / log ref) ^ 0.3``) or ``add#linear``
  (``CE + 0.1 * (E[LAT] - ref) / ref``); architecture Adam lr 1e-3, betas (0, 0.999).

``latency_weight`` is the strength of each method's hardware term: ``lambda`` of
``CE + lambda * E[cost] / ref`` for darts, pc_darts, sharpdarts, rarts and gdas; ``b`` for fbnet;
``beta`` (``mul#log``) or ``lambda`` (``add#linear``) for proxyless. ``latency_weights`` sweeps it:
one search per value; the derived architectures of all of them are evaluated together.
``target`` (in the cost's unit) makes ``ref`` the target and adds
``target_weight * relu(C / target - 1)`` to the loss, where ``C`` is the expected cost under the
architecture probabilities (``target_cost: expected``, the default) or the cost of their argmax
(``target_cost: argmax``; straight-through: its value is the argmax's cost, its gradient the
expected cost's). The expected cost stays near the uniform mix's while the argmax moves, so the
hinge on it may never fire; on the argmax it fires exactly when the network that will be derived
is over the target. With a target, each derived
architecture is then moved into the band ``[(1 - target_tolerance) * target, target]`` of the
fitted cost by the one-slot changes that lose the least log-probability per unit of cost
(``derive: target``, the default with a target; :func:`~hwnas.oneshot.relax.derive.into_band`):
the argmax alone tends to overshoot, since the cheapest choices (``none``, skips) gain mass on
every slot at once. The first ``top_k`` distinct networks the moves reach are kept (fewer when
they meet). ``derive: argmax`` keeps the papers' argmax. Once the study has measured a moved
architecture's cost metric (e.g. ``latency_ms@raspi4`` as an objective or constraint) and it lies
outside the band, the strategy moves it again into the band rescaled by the cost model's error
there (``measured / fitted``) and proposes the result next, up to ``target_repairs`` times per
derived architecture (default 2; 0 turns it off; :func:`hwnas.oneshot.relax.band.repair`).

``compute_device`` is where the search trains: ``cpu`` (the default), ``cuda``, ``cuda:N``
or ``auto`` (a CUDA GPU when PyTorch sees one; :mod:`hwnas.compute`). The search network and
the batches go there; the architecture weights, their sampling and the cost model stay on the
CPU (they are a few hundred numbers). On the CPU a seed repeats its search exactly at one
thread count; on a GPU, cuDNN's kernels may not.

``channels`` and ``cells`` size NB201's search network (FBNet's and mbv3's macros are fixed).
``resolution`` and ``width`` apply to the ``mbv3`` space alone: the input resolution and width
multiplier the search holds fixed (default: the space's largest resolution, and width 1.0, or
the offered width nearest it); other spaces refuse them.

Example:
    >>> s = method_settings("pc_darts", {"epochs": 4, "warmup_epochs": 1})
    >>> s.mode, s.partial_k, s.arch_lr, s.warmup_epochs
    ('partial', 4, 0.0006, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hwnas.compute import check_compute_device
from hwnas.errors import ConfigError
from hwnas.registry import closest

MODES: tuple[str, ...] = ("softmax", "partial", "gumbel_hard", "gumbel_soft", "binary")
PROXYLESS_FORMS: tuple[str, ...] = ("mul#log", "add#linear")
DERIVES: tuple[str, ...] = ("target", "argmax")
GRADIENTS: tuple[str, ...] = ("all", "sampled")
TARGET_COSTS: tuple[str, ...] = ("expected", "argmax")


@dataclass(frozen=True)
class MethodSettings:
    """Everything one gradient search needs besides the data, the space and the cost model."""

    method: str
    mode: str
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    warmup_epochs: int = 0
    arch_fraction: float = 0.5
    channels: int = 16
    cells: int = 5
    top_k: int = 3
    order: int = 1
    partial_k: int = 4
    lr_power: float = 1.0
    max_w: bool = False
    tau_max: float = 10.0
    tau_min: float = 0.1
    tau_decay: float = 0.0
    gradient: str | None = None  # gdas: "all" or "sampled"; None for the other methods
    coupling: float = 1e-2
    valid_weight: float = 1.0
    form: str = "mul#log"
    a: float = 0.2
    latency_weight: float | None = None
    latency_weights: tuple[float, ...] = ()
    target: float | None = None
    target_weight: float = 1.0
    target_tolerance: float = 0.1
    target_cost: str | None = None  # None: expected
    target_repairs: int = 2
    derive: str | None = None
    cost: dict[str, Any] | None = None
    resolution: int | None = None
    width: float | None = None
    compute_device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def weights_to_sweep(self) -> tuple[float, ...]:
        """The latency weights of the runs: the sweep, or the one weight (0 without a cost)."""
        if self.latency_weights:
            return self.latency_weights
        if self.latency_weight is not None:
            return (self.latency_weight,)
        return (_default_weight(self),)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["arch_betas"] = list(self.arch_betas)
        out["latency_weights"] = list(self.latency_weights)
        out.pop("extra")
        return out


def _default_weight(s: MethodSettings) -> float:
    if s.cost is None:
        return 0.0
    if s.method == "fbnet":
        return 0.6  # FBNet's b
    if s.method == "proxyless":
        return 0.3 if s.form == "mul#log" else 0.1  # ProxylessNAS's beta / lambda
    return 0.1


# Per method: its mode and the defaults that differ from MethodSettings' (DARTS on NB201).
_METHODS: dict[str, dict[str, Any]] = {
    "darts": {"mode": "softmax"},
    "pc_darts": {
        "mode": "partial",
        "arch_lr": 6e-4,
        "warmup_epochs": 15,
        "batch_size": 256,
        "lr": 0.1,
        "weight_decay": 3e-4,
    },
    "sharpdarts": {"mode": "softmax", "lr_power": 2.0, "max_w": True},
    "rarts": {"mode": "softmax"},
    "gdas": {"mode": "gumbel_hard", "tau_max": 10.0, "tau_min": 0.1, "gradient": "all"},
    "fbnet": {
        "mode": "gumbel_soft",
        "epochs": 90,
        "lr": 0.1,
        "weight_decay": 1e-4,
        "arch_lr": 1e-2,
        "arch_weight_decay": 5e-4,
        "arch_betas": (0.9, 0.999),
        "warmup_epochs": 10,
        "arch_fraction": 0.2,
        "tau_max": 5.0,
        "tau_decay": 0.045,
    },
    "proxyless": {
        "mode": "binary",
        "arch_lr": 1e-3,
        "arch_betas": (0.0, 0.999),
        "arch_weight_decay": 0.0,
    },
}
METHODS: tuple[str, ...] = tuple(_METHODS)

_COMMON = (
    "epochs",
    "batch_size",
    "lr",
    "lr_min",
    "momentum",
    "weight_decay",
    "grad_clip",
    "arch_lr",
    "arch_betas",
    "arch_weight_decay",
    "warmup_epochs",
    "arch_fraction",
    "channels",
    "cells",
    "top_k",
    "latency_weight",
    "latency_weights",
    "target",
    "target_weight",
    "target_tolerance",
    "target_cost",
    "target_repairs",
    "derive",
    "cost",
    "resolution",
    "width",
    "compute_device",
)
_OWN: dict[str, tuple[str, ...]] = {
    "darts": ("order",),
    "pc_darts": ("partial_k",),
    "sharpdarts": ("lr_power", "max_w"),
    "rarts": ("coupling", "valid_weight"),
    "gdas": ("tau_max", "tau_min", "gradient"),
    "fbnet": ("tau_max", "tau_decay", "a"),
    "proxyless": ("form", "a"),
}


def method_keys(method: str) -> tuple[str, ...]:
    """The option names ``method`` accepts."""
    return _COMMON + _OWN[method]


def method_settings(method: str, options: Mapping[str, Any]) -> MethodSettings:
    """The settings of ``method`` with ``options`` applied, every value checked (one line each)."""
    if method not in _METHODS:
        raise ConfigError(f"unknown gradient method {method!r}; {closest(method, METHODS)}")
    allowed = method_keys(method)
    for key in options:
        if key not in allowed:
            raise ConfigError(f"{method}: unknown option {key!r}; {closest(str(key), allowed)}")
    values: dict[str, Any] = {**_METHODS[method], **options}
    for key in ("arch_betas", "latency_weights"):
        if key in options and not isinstance(options[key], (list, tuple)):
            raise ConfigError(f"{method}: {key} must be a list, got {options[key]!r}")
        if key in values:
            values[key] = tuple(values[key])
    if values.get("cost") is not None:
        if not isinstance(values["cost"], Mapping):
            raise ConfigError(
                f"{method}: cost must be a mapping like {{source: flops}}, got {values['cost']!r}"
            )
        values["cost"] = dict(values["cost"])
    for key, kind in (
        ("max_w", bool),
        ("form", str),
        ("derive", str),
        ("target_cost", str),
        ("gradient", str),
    ):
        if key in options and not isinstance(options[key], kind):
            raise ConfigError(f"{method}: {key} must be a {kind.__name__}, got {options[key]!r}")
    s = MethodSettings(method=method, **values)
    _check(s)
    return s


def _whole(s: MethodSettings, name: str, low: int) -> None:
    v = getattr(s, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{s.method}: {name} must be a whole number >= {low}, got {v!r}")


def _number(
    s: MethodSettings, name: str, low: float, high: float | None = None, *, open_low: bool = False
) -> None:
    v = getattr(s, name)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if ok:
        ok = (v > low if open_low else v >= low) and (high is None or v <= high)
    if not ok:
        bound = f"> {low}" if open_low else f">= {low}"
        if high is not None:
            bound += f" and <= {high}"
        raise ConfigError(f"{s.method}: {name} must be a number {bound}, got {v!r}")


def _check(s: MethodSettings) -> None:
    for name in ("epochs", "batch_size", "channels", "cells", "top_k"):
        _whole(s, name, 1)
    _whole(s, "warmup_epochs", 0)
    if s.warmup_epochs >= s.epochs:
        raise ConfigError(
            f"{s.method}: warmup_epochs ({s.warmup_epochs}) must be fewer than epochs "
            f"({s.epochs}); the architecture is trained after the warm-up"
        )
    for name in ("lr", "arch_lr"):
        _number(s, name, 0.0, open_low=True)
    for name in ("lr_min", "weight_decay", "arch_weight_decay", "grad_clip", "coupling", "a"):
        _number(s, name, 0.0)
    _number(s, "momentum", 0.0, 0.999)
    _number(s, "arch_fraction", 0.05, 0.95)
    _number(s, "valid_weight", 0.0, open_low=True)
    _number(s, "lr_power", 1.0)
    _number(s, "target_weight", 0.0)
    if s.lr_min > s.lr:
        raise ConfigError(f"{s.method}: lr_min ({s.lr_min}) must not exceed lr ({s.lr})")
    if len(s.arch_betas) != 2 or not all(0.0 <= b < 1.0 for b in s.arch_betas):
        raise ConfigError(
            f"{s.method}: arch_betas must be two numbers in [0, 1), got {s.arch_betas!r}"
        )
    if s.order not in (1, 2):
        raise ConfigError(
            f"{s.method}: order must be 1 (first order) or 2 (unrolled), got {s.order!r}"
        )
    _whole(s, "partial_k", 1)
    if s.channels % s.partial_k:
        raise ConfigError(
            f"{s.method}: channels ({s.channels}) must be a multiple of partial_k ({s.partial_k})"
        )
    _number(s, "tau_min", 0.0, open_low=True)
    _number(s, "tau_max", s.tau_min)
    _number(s, "tau_decay", 0.0)
    if s.form not in PROXYLESS_FORMS:
        raise ConfigError(
            f"{s.method}: form must be one of {', '.join(PROXYLESS_FORMS)}, got {s.form!r}"
        )
    weights = list(s.latency_weights) + ([] if s.latency_weight is None else [s.latency_weight])
    if s.latency_weights and s.latency_weight is not None:
        raise ConfigError(f"{s.method}: give latency_weight or latency_weights, not both")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise ConfigError(f"{s.method}: latency weights must be numbers >= 0, got {w!r}")
    if len(set(s.latency_weights)) != len(s.latency_weights):
        raise ConfigError(f"{s.method}: latency_weights repeats a value: {list(s.latency_weights)}")
    if s.cost is None:
        if any(w > 0 for w in weights) or s.target is not None:
            raise ConfigError(
                f"{s.method}: a latency weight or target needs a cost model; add e.g. "
                "cost: {source: table, device: raspi4, rows: 100} to the strategy's options"
            )
        if s.method in ("fbnet", "proxyless"):
            raise ConfigError(
                f"{s.method}: its loss is latency-aware and needs a cost model; add e.g. "
                "cost: {source: flops} or cost: {source: table, device: raspi4}"
            )
    if s.target is not None:
        _number(s, "target", 0.0, open_low=True)
    _number(s, "target_tolerance", 0.0, 0.9)
    _whole(s, "target_repairs", 0)
    for name, allowed in (
        ("derive", DERIVES),
        ("gradient", GRADIENTS),
        ("target_cost", TARGET_COSTS),
    ):
        value = getattr(s, name)
        if value is not None and value not in allowed:
            raise ConfigError(
                f"{s.method}: {name} must be one of {', '.join(allowed)}, got {value!r}"
            )
    if s.target_cost is not None and s.target is None:
        raise ConfigError(f"{s.method}: target_cost needs a target (in the cost's unit)")
    if s.derive == "target" and s.target is None:
        raise ConfigError(
            f"{s.method}: derive: target needs a target (in the cost's unit, e.g. target: 15)"
        )
    check_compute_device(s.compute_device, s.method)
    if s.resolution is not None:
        _whole(s, "resolution", 1)
    if s.width is not None:
        _number(s, "width", 0.0, open_low=True)
