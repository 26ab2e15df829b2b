"""Architectures derived from architecture weights: the argmax and the next most probable.

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
from collections.abc import Sequence

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
