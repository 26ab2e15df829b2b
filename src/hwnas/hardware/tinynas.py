"""TinyNAS's first stage: choose the sub-space (width multiplier, resolution) that fits the MCU.

MCUNet (Lin et al., NeurIPS 2020, section 3.1, "automated search space optimization"): for each
width multiplier ``w`` and input resolution ``r`` of a grid, sample random sub-networks of the
space with ``w`` and ``r`` fixed, keep those whose peak SRAM and flash both fit the device, and
look at the FLOPs of the ones that fit. A sub-space whose fitting networks have more FLOPs is
more likely to hold accurate networks, so the chosen cell is the one with the highest mean FLOPs
of fitting networks; the second stage (a NAS run) then searches inside it. A cell where only a
few samples fit has a noisy mean: ``min_share`` (default 0, as published) leaves cells with a
smaller share of fitting networks out of the choice.

Memory comes from the closed form of :mod:`hwnas.hardware.mcu` (int8 activations and weights,
int32 biases, BN folded, residual alive until the add); FLOPs are multiply-accumulates of convs
and linears (:func:`hwnas.spaces.mbv3.plan_params_macs`, the space's ``flops_m``). The space is
``mbv3`` (Once-for-All's MobileNetV3, either preset), sampled as
:meth:`hwnas.spaces.mbv3.MBV3Space.sample` does, with one space per grid cell.

Example:
    >>> result = optimize_space(
    ...     sram_kb=256, flash_kb=1024, widths=[0.3, 0.5], resolutions=[96, 128], samples=50)
    >>> result.chosen is not None and result.chosen == max(
    ...     (c for c in result.cells if c.feasible), key=lambda c: c.mean_flops_m)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np

from hwnas.errors import ConfigError
from hwnas.hardware.mcu import mcu_memory
from hwnas.registry import closest
from hwnas.spaces.mbv3 import PRESETS, MBV3Space, plan_params_macs

# MCUNet's grid was w in 0.2..1.0 and r in 48..224; OFA's MobileNetV3 needs 8 channels at least.
T = TypeVar("T")

DEFAULT_WIDTHS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_RESOLUTIONS: dict[str, tuple[int, ...]] = {
    "full": tuple(range(48, 225, 16)),
    "small": (16, 20, 24, 28, 32),
}


@dataclass(frozen=True)
class GridCell:
    """One (width, resolution) sub-space: how many samples fit, and the FLOPs of those that do.

    The FLOPs figures (millions of MACs) are NaN where nothing fits; ``min_peak_sram_kb`` and
    ``min_flash_kb`` (over all samples) say how far such a cell is from fitting.
    """

    width: float
    resolution: int
    samples: int
    feasible: int
    share: float
    mean_flops_m: float
    median_flops_m: float
    p90_flops_m: float
    min_peak_sram_kb: float
    min_flash_kb: float


@dataclass(frozen=True)
class TinyNASResult:
    """The grid, cell by cell (widths outer, resolutions inner), and the chosen cell (None when
    no sample of any cell fits)."""

    cells: tuple[GridCell, ...]
    chosen: GridCell | None
    preset: str
    sram_kb: float
    flash_kb: float
    samples: int
    seed: int
    min_share: float

    def rows(self) -> list[dict[str, float | int | bool]]:
        """One dict per cell, with ``chosen`` marking the chosen one (the CSV's rows)."""
        return [{**asdict(c), "chosen": c == self.chosen} for c in self.cells]


def _limit(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        raise ConfigError(
            f"tinynas: {name} must be a number > 0 (kB, 1 kB = 1024 B), got {value!r}"
        )
    return float(value)


def _items(name: str, values: object) -> list[object]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ConfigError(f"tinynas: {name} must be a non-empty list, got {values!r}")
    return list(values)


def _distinct(name: str, values: list[T]) -> list[T]:
    if len(set(values)) != len(values):
        raise ConfigError(f"tinynas: {name} must not repeat a value, got {values!r}")
    return values


def _width(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        raise ConfigError(f"tinynas: a width multiplier must be a number > 0, got {value!r}")
    return float(value)


def _resolution(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ConfigError(f"tinynas: a resolution must be a whole number >= 1, got {value!r}")
    return int(value)


def optimize_space(
    *,
    sram_kb: float,
    flash_kb: float,
    preset: str = "full",
    widths: Sequence[float] | None = None,
    resolutions: Sequence[int] | None = None,
    samples: int = 1000,
    seed: int = 0,
    in_channels: int = 3,
    num_classes: int | None = None,
    min_share: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> TinyNASResult:
    """TinyNAS's search-space optimisation over the ``mbv3`` space's widths and resolutions.

    Args:
        sram_kb: the device's SRAM for activations (peak SRAM must be <= it), kB.
        flash_kb: the device's flash for the model (flash must be <= it), kB.
        preset: the ``mbv3`` preset, ``full`` (ImageNet) or ``small``.
        widths: width multipliers of the grid; default :data:`DEFAULT_WIDTHS`.
        resolutions: input resolutions of the grid; default :data:`DEFAULT_RESOLUTIONS`.
        samples: random sub-networks per cell.
        seed: seeds every cell's generator (cell ``i`` uses the ``i``-th child of
            ``SeedSequence(seed)``), so the samples do not depend on the limits.
        in_channels: image channels.
        num_classes: classifier outputs; default the preset's (1000 or 10).
        min_share: a cell is chosen only if at least this share of its samples fit (0..1).
        progress: called with (cells done, cells) after each cell.

    Returns:
        A :class:`TinyNASResult`; ``chosen`` is the cell whose fitting networks have the highest
        mean FLOPs among those with a share >= ``min_share`` (the first in grid order on a
        tie), None when no cell has a fitting sample and that share.

    Raises:
        ConfigError: a limit is not > 0, ``min_share`` is not in 0..1, the preset is unknown, or
            the grid is empty or invalid.
    """
    sram = _limit("sram_kb", sram_kb)
    flash = _limit("flash_kb", flash_kb)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(
            f"tinynas: unknown preset {preset!r}; {closest(str(preset), list(PRESETS))}"
        )
    grid_w = _distinct(
        "widths",
        [_width(w) for w in _items("widths", DEFAULT_WIDTHS if widths is None else widths)],
    )
    default_r = DEFAULT_RESOLUTIONS[preset]
    grid_r = _distinct(
        "resolutions",
        [
            _resolution(r)
            for r in _items("resolutions", default_r if resolutions is None else resolutions)
        ],
    )
    for name, value, low in (("samples", samples, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"tinynas: {name} must be a whole number >= {low}, got {value!r}")
    if (
        isinstance(min_share, bool)
        or not isinstance(min_share, (int, float, np.integer, np.floating))
        or not 0 <= float(min_share) <= 1
    ):
        raise ConfigError(f"tinynas: min_share must be a number in 0..1, got {min_share!r}")
    share_floor = float(min_share)
    cells_wr = [(w, r) for w in grid_w for r in grid_r]
    seeds = np.random.SeedSequence(int(seed)).spawn(len(cells_wr))
    cells = []
    for i, ((w, r), child) in enumerate(zip(cells_wr, seeds)):
        space = MBV3Space(
            preset=preset,
            widths=[w],
            resolutions=[r],
            in_channels=in_channels,
            num_classes=num_classes,
        )
        cells.append(_cell(space, w, r, int(samples), np.random.default_rng(child), sram, flash))
        if progress is not None:
            progress(i + 1, len(cells_wr))
    fitting = [c for c in cells if c.feasible and c.share >= share_floor]
    chosen = max(fitting, key=lambda c: c.mean_flops_m) if fitting else None
    return TinyNASResult(
        cells=tuple(cells),
        chosen=chosen,
        preset=preset,
        sram_kb=sram,
        flash_kb=flash,
        samples=int(samples),
        seed=int(seed),
        min_share=share_floor,
    )


def _cell(
    space: MBV3Space,
    width: float,
    resolution: int,
    samples: int,
    rng: np.random.Generator,
    sram_kb: float,
    flash_kb: float,
) -> GridCell:
    flops, min_sram, min_flash = [], math.inf, math.inf
    for _ in range(samples):
        plan = space.plan(space.sample(rng))
        mem = mcu_memory(plan)
        min_sram, min_flash = min(min_sram, mem.peak_sram_kb), min(min_flash, mem.flash_kb)
        if mem.peak_sram_kb <= sram_kb and mem.flash_kb <= flash_kb:
            flops.append(plan_params_macs(plan)[1] / 1e6)
    values = np.asarray(flops, dtype=float)
    nan = math.nan
    return GridCell(
        width=width,
        resolution=resolution,
        samples=samples,
        feasible=len(flops),
        share=len(flops) / samples,
        mean_flops_m=float(values.mean()) if flops else nan,
        median_flops_m=float(np.median(values)) if flops else nan,
        p90_flops_m=float(np.percentile(values, 90)) if flops else nan,
        min_peak_sram_kb=min_sram,
        min_flash_kb=min_flash,
    )
