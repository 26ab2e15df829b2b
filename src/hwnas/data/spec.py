"""The dataset spec: a plain dict checked into a frozen :class:`DataSpec`, with one-line errors.

Keys (every other key is a :class:`ConfigError` naming it and the allowed keys):

    name            digits | mnist | npz | folder (required)
    path            the .npz file or the image folder (required for npz and folder, else refused)
    valid_fraction  share of each class held out for validation, in [0, 1); default 0.1
    test_fraction   share of each class held out for testing, in [0, 1); default 0.2
    seed            integer >= 0 for the splits and ``limit``; default 0
    normalize       per-channel mean/std from the train split; default true
    augment         false (default), true, or {crop_padding: int >= 0, flip: bool}
    image_size      optional int >= 1: resize every image to image_size x image_size
    limit           optional int >= 1: keep that many images, picked by a seeded shuffle
    channels        folder only: 1 (grey, Pillow mode 'L') or 3 ('RGB')
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hwnas.errors import ConfigError
from hwnas.registry import closest

SPEC_KEYS = (
    "name",
    "path",
    "valid_fraction",
    "test_fraction",
    "seed",
    "normalize",
    "augment",
    "image_size",
    "limit",
    "channels",
)
AUGMENT_KEYS = ("crop_padding", "flip")


@dataclass(frozen=True)
class AugmentSpec:
    """Augmentation as asked for; ``crop_padding=None`` means "choose from the input size"."""

    crop_padding: int | None = None
    flip: bool = False


@dataclass(frozen=True)
class DataSpec:
    """A checked dataset spec (see the module docstring for the keys)."""

    name: str
    path: Path | None = None
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
    normalize: bool = True
    augment: AugmentSpec | None = None
    image_size: int | None = None
    limit: int | None = None
    channels: int | None = None


def _as_float(value: object) -> float | None:
    """``value`` as a float if it is a real number (not a bool), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def _as_int(value: object) -> int | None:
    """``value`` as an int if it is a whole number type (not a bool), else None."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return None


def _fraction(spec: Mapping[str, object], key: str, default: float) -> float:
    value = spec.get(key, default)
    number = _as_float(value)
    if number is None or not 0 <= number < 1:
        raise ConfigError(
            f"dataset spec: {key} must be a number in [0, 1), got {value!r}; use e.g. {default}"
        )
    return number


def _positive_int(spec: Mapping[str, object], key: str, example: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    number = _as_int(value)
    if number is None or number < 1:
        raise ConfigError(
            f"dataset spec: {key} must be a whole number >= 1, got {value!r}; use e.g. {example}"
        )
    return number


def _augment(value: object) -> AugmentSpec | None:
    if value is None or value is False:
        return None
    if value is True:
        return AugmentSpec()
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"dataset spec: augment must be true, false or a mapping with keys crop_padding and "
            f"flip, got {value!r}; use e.g. augment: {{crop_padding: 4, flip: true}}"
        )
    for key in value:
        if key not in AUGMENT_KEYS:
            raise ConfigError(
                f"dataset spec: augment has unknown key {key!r}; "
                f"{closest(str(key), AUGMENT_KEYS)} (allowed: {', '.join(AUGMENT_KEYS)})"
            )
    raw_padding = value.get("crop_padding")
    padding = _as_int(raw_padding)
    if raw_padding is not None and (padding is None or padding < 0):
        raise ConfigError(
            f"dataset spec: augment.crop_padding must be a whole number >= 0, got {raw_padding!r}; "
            "use e.g. 4 (0 turns cropping off)"
        )
    flip = value.get("flip", False)
    if not isinstance(flip, bool):
        raise ConfigError(f"dataset spec: augment.flip must be true or false, got {flip!r}")
    return AugmentSpec(padding, flip)


def parse_spec(spec: object) -> DataSpec:
    """Check a dataset spec mapping; raise :class:`ConfigError` with one line on a problem.

    Example:
        >>> parse_spec({"name": "digits", "seed": 3}).test_fraction
        0.2
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"dataset spec must be a mapping such as {{'name': 'digits'}}, got {spec!r}"
        )
    for key in spec:
        if key not in SPEC_KEYS:
            raise ConfigError(
                f"dataset spec has unknown key {key!r}; {closest(str(key), SPEC_KEYS)} "
                f"(allowed keys: {', '.join(SPEC_KEYS)})"
            )
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"dataset spec needs a 'name' (a string), got {name!r}; e.g. {{'name': 'digits'}}"
        )
    path = spec.get("path")
    if path is not None and not isinstance(path, (str, Path)):
        raise ConfigError(f"dataset spec: path must be a string, got {path!r}")
    valid = _fraction(spec, "valid_fraction", 0.1)
    test = _fraction(spec, "test_fraction", 0.2)
    if valid + test >= 1:
        raise ConfigError(
            f"dataset spec: valid_fraction + test_fraction must be below 1, got {valid} + {test}"
            f" = {valid + test:g}; lower one of them so images are left to train on"
        )
    raw_seed = spec.get("seed", 0)
    seed = _as_int(raw_seed)
    if seed is None or seed < 0:
        raise ConfigError(f"dataset spec: seed must be a whole number >= 0, got {raw_seed!r}")
    normalize = spec.get("normalize", True)
    if not isinstance(normalize, bool):
        raise ConfigError(f"dataset spec: normalize must be true or false, got {normalize!r}")
    raw_channels = spec.get("channels")
    channels = _as_int(raw_channels)
    if raw_channels is not None and channels not in (1, 3):
        raise ConfigError(
            f"dataset spec: channels must be 1 (grey) or 3 (RGB), got {raw_channels!r}"
        )
    return DataSpec(
        name=name,
        path=None if path is None else Path(path).expanduser(),
        valid_fraction=valid,
        test_fraction=test,
        seed=seed,
        normalize=normalize,
        augment=_augment(spec.get("augment", False)),
        image_size=_positive_int(spec, "image_size", 32),
        limit=_positive_int(spec, "limit", 500),
        channels=channels,
    )
