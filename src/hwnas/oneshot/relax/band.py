"""Landing derived architectures in a target's cost band, before and after a measurement.

A search with a ``target`` moves each derived architecture into the band
``[(1 - target_tolerance) * target, target]`` of its fitted cost (:func:`into_target_band`). The
fitted cost is an additive model of a sample of the device's rows, so a single architecture's
true cost can miss it by tens of per cent (on NB201's Raspberry Pi 4 table, fitted on 100 rows:
-24 % to +16 %). Once the architecture is measured, :func:`repair` moves it again, from where
it stands, into the band rescaled by the model's error at that architecture
(``measured / fitted``): the measurement tells how far off the model is locally, and the same
least-log-probability moves (:func:`hwnas.oneshot.relax.derive.into_band`) correct for it. A
second repair uses the two measurements it has (a secant through them). The gradient
strategies do this with the metrics the study tells them (``target_repairs`` per derived
architecture).

Example:
    >>> import numpy as np
    >>> from hwnas.oneshot.relax.methods import method_settings
    >>> from hwnas.oneshot.relax.cost_model import SlotCost
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> ops = list(space.slots[0])
    >>> cost = SlotCost("latency_ms@dev", "ms", 1.0, [[0.0, 1.0, 2.0, 4.0, 1.0]] * 6, [ops] * 6)
    >>> s = method_settings("darts", {"cost": {"source": "flops"}, "target": 10.0})
    >>> probs = [np.full(5, 0.2)] * 6
    >>> pick = (3, 3, 1, 0, 0, 0)  # fitted 10 ms, in the band [9, 10]
    >>> moved = repair(space, s, cost, probs, pick, measured=12.0)  # 20 % over: moved down
    >>> moved, fitted_cost(space, s, cost, moved)  # 8 ms fitted, 9.6 ms at the model's error
    ((2, 3, 1, 0, 0, 0), 8.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hwnas.oneshot.relax.cost_model import SlotCost
from hwnas.oneshot.relax.derive import into_band
from hwnas.oneshot.relax.methods import MethodSettings
from hwnas.oneshot.relax.spaces import relaxation
from hwnas.spaces.base import SearchSpace


def band(s: MethodSettings) -> tuple[float, float]:
    """The target's band ``[(1 - target_tolerance) * target, target]`` (in the cost's unit)."""
    if s.target is None:
        raise ValueError("band() needs settings with a target")
    return (1 - s.target_tolerance) * s.target, s.target


def fitted_cost(
    space: SearchSpace, s: MethodSettings, cost: SlotCost, pick: Sequence[int]
) -> float:
    """The fitted cost of the choices ``pick`` (one index per relaxed slot)."""
    relax = relaxation(space, s)
    arch = relax.to_arch(space, s, pick)
    return float(cost.predict_ops(relax.cost_slots(space, s).names(arch)))


def into_target_band(
    space: SearchSpace,
    s: MethodSettings,
    cost: SlotCost,
    probs: Sequence[np.ndarray],
    picks: list[tuple[int, ...]],
) -> tuple[float, list[tuple[int, ...]]]:
    """The argmax's fitted cost, and ``picks`` moved into the target's band of the fitted cost:
    the first ``top_k`` distinct networks the moves reach (distinct alternatives can meet, so
    more are moved than kept)."""
    relax = relaxation(space, s)
    low, high = band(s)
    moved: dict[str, tuple[int, ...]] = {}  # distinct networks, best first
    for t in picks:
        pick = into_band(probs, t, lambda c: fitted_cost(space, s, cost, c), low, high)
        moved.setdefault(space.to_string(relax.to_arch(space, s, pick)), pick)
    return fitted_cost(space, s, cost, picks[0]), list(moved.values())[: s.top_k]


def repair(
    space: SearchSpace,
    s: MethodSettings,
    cost: SlotCost,
    probs: Sequence[np.ndarray],
    pick: Sequence[int],
    measured: float,
    previous: tuple[float, float] | None = None,
) -> tuple[int, ...] | None:
    """``pick`` moved into the target's band once its cost was measured, by the moves of
    :func:`~hwnas.oneshot.relax.derive.into_band` on the fitted cost, into the band as the
    measurements map it onto the fitted cost: divided by ``measured / fitted`` (the model's
    error at ``pick``) or, given the ``(fitted, measured)`` of the architecture this one was
    repaired from, along the line through both (a secant: the model's error changes between
    architectures, most where ``none`` edges cut the cell). None when the measurement is in the
    band already, is not a positive finite number, or no move changes the choices."""
    low, high = band(s)
    if not (math.isfinite(measured) and measured > 0) or low <= measured <= high:
        return None
    now = fitted_cost(space, s, cost, pick)
    if now <= 0:
        return None
    lo, hi = low * now / measured, high * now / measured
    if previous is not None:
        slope = (measured - previous[1]) / (now - previous[0]) if now != previous[0] else 0.0
        if math.isfinite(slope) and slope > 0:
            lo, hi = now + (low - measured) / slope, now + (high - measured) / slope
    moved = into_band(probs, pick, lambda c: fitted_cost(space, s, cost, c), lo, hi)
    return None if moved == tuple(int(c) for c in pick) else moved


def choose(measured: Sequence[tuple[str, float]], low: float, high: float) -> str:
    """Of the architectures a derived one led to (``(arch, measured cost)``, in the order
    measured), the one to keep: the last one in the band ``[low, high]``; else the costliest
    one under it; else the cheapest one over it. Cost alone decides: what lies under the
    target meets it, and under that, more cost buys more network."""
    if not measured:
        raise ValueError("choose() needs at least one measured architecture")
    inside = [a for a, c in measured if low <= c <= high]
    if inside:
        return inside[-1]
    under = [(c, a) for a, c in measured if c < low]
    if under:
        return max(under, key=lambda item: item[0])[1]
    return min(((c, a) for a, c in measured), key=lambda item: item[0])[1]


def trajectory_probs(trajectory: Sequence[Sequence[Sequence[float]]]) -> list[np.ndarray]:
    """The final architecture probabilities per slot of a stored trajectory."""
    return [np.asarray(p, dtype=float) for p in trajectory[-1]]
