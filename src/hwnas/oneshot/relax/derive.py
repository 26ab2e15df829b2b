"""Architectures derived from architecture weights: the argmax and the next most probable
(:func:`top_k`), and an architecture moved into a cost band (:func:`into_band`).

Slots are independent under the relaxed distribution, so an architecture's probability is the
product of its choices' probabilities, and the ``k`` most probable ones come out of a beam search
of width ``k`` over the slots exactly: a prefix outside the best ``k`` prefixes can never complete
to one of the best ``k`` architectures, since ``k`` better prefixes share any completion.

Example:
    >>> import numpy as np
    >>> top_k([np.array([0.7, 0.3]), np.array([0.4, 0.6])], 3)
    [(0, 1), (0, 0), (1, 1)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def top_k(probs: Sequence[np.ndarray], k: int) -> list[tuple[int, ...]]:
    """The ``k`` most probable choice tuples, most probable first (ties: lower indices first)."""
    beam: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
    for p in probs:
        logp = [math.log(max(float(v), 1e-300)) for v in p]
        grown = [(score + logp[j], (*prefix, j)) for score, prefix in beam for j in range(len(p))]
        grown.sort(key=lambda item: (-item[0], item[1]))
        beam = grown[:k]
    return [prefix for _, prefix in beam]


def into_band(
    probs: Sequence[np.ndarray],
    start: Sequence[int],
    cost: Callable[[tuple[int, ...]], float],
    low: float,
    high: float,
) -> tuple[int, ...]:
    """``start`` moved into the cost band ``[low, high]`` by the one-slot changes that lose the
    least log-probability per unit of cost.

    While the choices cost more than ``high``, the change that lowers the cost at the least loss
    of log-probability per unit saved is made; then, while they cost less than ``low``, the
    change that raises the cost without passing ``high`` at the least loss per unit gained
    (ties: the lower slot, then the lower choice). A change that leaves the cost unchanged is
    never made. A band no change sequence reaches gives the closest choices found.
    """
    p = [np.asarray(row, dtype=float) for row in probs]
    codes = tuple(int(c) for c in start)

    def logp(slot: int, choice: int) -> float:
        return math.log(max(float(p[slot][choice]), 1e-300))

    def best_move(now: float, shrink: bool) -> tuple[tuple[int, ...], float] | None:
        best: tuple[float, tuple[int, ...], float] | None = None
        for slot, row in enumerate(p):
            for choice in range(len(row)):
                if choice == codes[slot]:
                    continue
                moved = (*codes[:slot], choice, *codes[slot + 1 :])
                c = cost(moved)
                change = now - c if shrink else c - now
                if change <= 1e-12 or (not shrink and c > high):
                    continue
                loss = (logp(slot, codes[slot]) - logp(slot, choice)) / change
                if best is None or loss < best[0]:
                    best = (loss, moved, c)
        return None if best is None else (best[1], best[2])

    now = cost(codes)
    for shrink in (True, False):
        while (now > high) if shrink else (now < low):
            move = best_move(now, shrink)
            if move is None:
                break
            codes, now = move
    return codes
