"""Structural features of a categorical space for the strategies' models: the columns of the
space's own feature set (:meth:`~hwnas.spaces.base.SearchSpace.latency_feature_set`, computed
from the architecture alone) that a one-hot code cannot express.

A linear model over one-hot codes already holds every per-slot cost (FLOPs, parameters, memory
traffic of each slot's choice); what it cannot hold are facts of the whole graph: on NB201 which
edges lie on a path from input to output, how many paths there are, the longest path's number of
convolutions, whether the cell is disconnected. Those columns are kept, the others (in the span
of the one-hot code, to a residual below 1e-6 of their variance over a sample of the space)
dropped, and the kept ones standardised over the same sample. A space without a feature set, or
whose features are all additive over slots, has none.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwnas.spaces.base import CategoricalSpace

SAMPLE = 2000  # architectures the columns are tested and standardised on
ADDITIVE_RESIDUAL = 1e-6  # a column whose unexplained variance share is below this is additive

Columns = Callable[[np.ndarray], np.ndarray]


def structural_columns(space: CategoricalSpace, seed: int = 0) -> tuple[tuple[str, ...], Columns]:
    """Names of the kept columns and a function from integer codes ``(n, slots)`` to their
    standardised values ``(n, k)`` (``k`` may be 0)."""
    sizes = [len(c) for c in space.slots]
    fs = space.latency_feature_set()
    if fs is None:
        return (), _none
    rng = np.random.default_rng(seed)
    codes = np.column_stack([rng.integers(k, size=SAMPLE) for k in sizes])
    M = np.asarray(fs.matrix(codes), dtype=float)
    one_hot = np.zeros((SAMPLE, sum(sizes)))
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for s, off in enumerate(offsets):
        one_hot[np.arange(SAMPLE), off + codes[:, s]] = 1.0
    centred = M - M.mean(axis=0)
    var = (centred**2).mean(axis=0)
    H = one_hot - one_hot.mean(axis=0)
    coef, *_ = np.linalg.lstsq(H, centred, rcond=None)
    resid = ((centred - H @ coef) ** 2).mean(axis=0)
    keep = np.flatnonzero((var > 0) & (resid > ADDITIVE_RESIDUAL * np.maximum(var, 1e-300)))
    names = tuple(fs.names[i] for i in keep)
    mean, std = M[:, keep].mean(axis=0), M[:, keep].std(axis=0)
    matrix = fs.matrix

    def columns(c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, dtype=np.int64).reshape(-1, len(sizes))
        return (np.asarray(matrix(c), dtype=float)[:, keep] - mean) / std

    return names, columns


def _none(codes: np.ndarray) -> np.ndarray:
    return np.zeros((len(codes), 0))
