"""Seeded, stratified train/valid/test splits and the seeded ``limit`` subset.

Splits are made per class: the class's images (in loaded order) are permuted by a generator
seeded from ``seed``; the first ``round(n * test_fraction)`` go to test, the next
``round(n * valid_fraction)`` to valid and the rest to train (rounding half up). A class too
small for that still keeps at least one train image: its larger held-out share shrinks first
(valid on a tie). Each split's indices are sorted, so the same seed, fractions and images always
give identical index arrays, on any machine.
"""

from __future__ import annotations

import math

import numpy as np

from hwnas.errors import ConfigError

SPLITS = ("train", "valid", "test")
_LIMIT_STREAM = 1  # separate streams, so a limit does not shift the split permutation
_SPLIT_STREAM = 2


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5 + 1e-9)


def limit_indices(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Positions of the images ``limit`` keeps: the first ``limit`` of a seeded shuffle, sorted.

    All ``n`` positions when ``limit`` is None or not below ``n``.
    """
    if limit is None or limit >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng((seed, _LIMIT_STREAM))
    return np.sort(rng.permutation(n)[:limit]).astype(np.int64)


def _shares(n: int, valid_fraction: float, test_fraction: float) -> tuple[int, int]:
    """How many of a class's ``n`` images go to (valid, test), leaving train at least one."""
    valid = _round_half_up(n * valid_fraction)
    test = _round_half_up(n * test_fraction)
    while n > 0 and valid + test > n - 1:
        if valid >= test and valid > 0:
            valid -= 1
        else:
            test -= 1
    return valid, test


def _empty_split(split: str, fraction: float, largest: int) -> ConfigError:
    key = f"{split}_fraction"
    if largest < 2:
        why = "every class has a single image, which goes to the train split"
        return ConfigError(
            f"{key} {fraction} gives no {split} image: {why}; add images or set {key} to 0"
        )
    need = 0.5 / largest
    if fraction >= need:  # the share was given up to keep a train image
        return ConfigError(
            f"{key} {fraction} gives no {split} image: the largest class has {largest} images "
            f"and each class keeps at least one for training; lower the other fraction or add "
            "images"
        )
    return ConfigError(
        f"{key} {fraction} gives no {split} image: the largest class has {largest} images, too "
        f"few for one {split} image at that fraction; raise {key} to at least {need:.3g} or set "
        "it to 0 to skip that split"
    )


def stratified_split(
    y: np.ndarray, num_classes: int, *, valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Sorted int64 index arrays ``{"train", "valid", "test"}`` into ``y``, stratified by class.

    A split with a positive fraction that receives no image is a :class:`ConfigError`.

    Example:
        >>> y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        >>> parts = stratified_split(y, 2, valid_fraction=0.2, test_fraction=0.2, seed=0)
        >>> [len(parts[s]) for s in SPLITS]
        [6, 2, 2]
    """
    rng = np.random.default_rng((seed, _SPLIT_STREAM))
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    largest = 0
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        largest = max(largest, members.size)
        order = members[rng.permutation(members.size)]
        valid, test = _shares(members.size, valid_fraction, test_fraction)
        parts["test"].append(order[:test])
        parts["valid"].append(order[test : test + valid])
        parts["train"].append(order[test + valid :])
    out = {s: np.sort(np.concatenate(parts[s])).astype(np.int64) for s in SPLITS}
    for split, fraction in (("valid", valid_fraction), ("test", test_fraction)):
        if fraction > 0 and out[split].size == 0:
            raise _empty_split(split, fraction, largest)
    return out
