"""The two halves of a predictor-guided round: search over predictions, then pick a batch.

:func:`evolve` runs NSGA-II over the space's own operators with *predicted* objectives (cheap:
thousands of candidates per call) and returns every distinct candidate it predicted;
:func:`with_neighbours` adds the unseen neighbours of the evaluated front to those candidates.
:func:`select_batch` picks the candidates whose optimistic predictions add the most hypervolume
to the evaluated front, greedily, so each pick accounts for the ones before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.pareto import hypervolume, non_dominated_mask
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import rank_and_crowding
from hwnas.strategies.mating import Tournament, offspring
from hwnas.trial import Observation

# archs -> (objectives in minimisation form (n, m), total predicted violation (n,))
PredictFn = Callable[[Sequence[Arch]], tuple[np.ndarray, np.ndarray]]


@dataclass
class Candidates:
    """Distinct architectures an inner search predicted, with their predictions."""

    archs: list[Arch]
    keys: list[str]
    F: np.ndarray  # (n, m) predicted objectives, minimisation form
    violation: np.ndarray  # (n,) predicted total violation

    def subset(self, rows: Sequence[int]) -> Candidates:
        """The candidates at ``rows``, in that order."""
        return Candidates(
            archs=[self.archs[i] for i in rows],
            keys=[self.keys[i] for i in rows],
            F=self.F[list(rows)],
            violation=self.violation[list(rows)],
        )


def evolve(
    space: SearchSpace,
    predict: PredictFn,
    start: Sequence[Observation],
    rng: np.random.Generator,
    *,
    population_size: int,
    generations: int,
    crossover_prob: float = 0.9,
) -> Candidates:
    """NSGA-II over predicted objectives, started from ``start`` (evaluated or sampled).

    Members of ``start`` keep the values they carry (measured ones, for evaluated
    architectures); every other architecture is predicted once. Offspring repeat no member of
    the current population. Returns all distinct architectures predicted along the way.
    """
    key = space.to_string
    archs: list[Arch] = []
    keys: list[str] = []
    Fs: list[np.ndarray] = []
    Vs: list[np.ndarray] = []
    cache: dict[str, Observation] = {o.arch_str: o for o in start}

    def predicted(batch: dict[str, Arch]) -> list[Observation]:
        """Observations of ``batch``: from the cache, the rest predicted in one call."""
        new = [(k, a) for k, a in batch.items() if k not in cache]
        if new:
            F, v = predict([a for _, a in new])
            for (k, a), f, g in zip(new, F, v):
                archs.append(a)
                keys.append(k)
                cache[k] = Observation(
                    arch=a, arch_str=k, objectives=f, violation=float(g), metrics={}
                )
            Fs.append(F)
            Vs.append(v)
        return [cache[k] for k in batch]

    pop = list(start)
    for _ in range(10):  # top up with random architectures
        if len(pop) >= population_size:
            break
        in_pop = {o.arch_str for o in pop}
        fill = {key(a): a for a in (space.sample(rng) for _ in range(population_size - len(pop)))}
        pop += predicted({k: a for k, a in fill.items() if k not in in_pop})
    rank, crowd = rank_and_crowding(pop)
    if len(pop) > population_size:
        order = np.lexsort((-crowd, rank))[:population_size]
        pop = [pop[i] for i in order]
        rank, crowd = rank[order], crowd[order]

    for _ in range(generations):
        # Children repeat no member of the population and no other child; a generation
        # breeds at most 3 * population_size times.
        bred = offspring(
            space,
            rng,
            Tournament(pop, rng, rank, crowd).pair_drawn_together,
            population_size,
            {o.arch_str for o in pop},
            crossover_prob=crossover_prob,
            tries_per_child=3 * population_size,
            total_tries=3 * population_size,
        )
        merged = pop + predicted({key(a): a for a in bred})
        rank, crowd = rank_and_crowding(merged)
        order = np.lexsort((-crowd, rank))[:population_size]
        pop = [merged[i] for i in order]
        rank, crowd = rank[order], crowd[order]

    m = start[0].objectives.shape[0] if start else (Fs[0].shape[1] if Fs else 1)
    F = np.vstack(Fs) if Fs else np.empty((0, m))
    v = np.concatenate(Vs) if Vs else np.empty(0)
    return Candidates(archs=archs, keys=keys, F=F, violation=v)


def with_neighbours(
    space: SearchSpace,
    found: Candidates,
    front: Sequence[Observation],
    seen: set[str],
    predict: PredictFn,
) -> Candidates:
    """``found`` plus the neighbours of the ``front`` members (local-search moves) that are
    neither in ``found`` nor in ``seen``, predicted in one call; ``found`` alone when the space
    has no neighbourhood."""
    known = set(found.keys) | seen
    extra: dict[str, Arch] = {}
    for o in front:
        try:
            near = space.neighbours(o.arch)
        except NotImplementedError:
            return found
        for a in near:
            k = space.to_string(a)
            if k not in known:
                extra.setdefault(k, a)
    if not extra:
        return found
    archs = list(extra.values())
    F, v = predict(archs)
    return Candidates(
        archs=found.archs + archs,
        keys=found.keys + list(extra),
        F=np.vstack([found.F, F]) if len(found.F) else F,
        violation=np.concatenate([found.violation, v]),
    )


# -- hypervolume improvement ----------------------------------------------------------------------
def hvi_2d(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exact hypervolume each row of ``points`` would add to a 2-objective ``front``."""
    P = np.minimum(np.asarray(points, dtype=float), ref)
    box = (ref[0] - P[:, 0]) * (ref[1] - P[:, 1])
    Q = np.asarray(front, dtype=float)
    if len(Q) == 0:
        return box
    Q = Q[non_dominated_mask(Q)]
    Q = Q[np.lexsort((Q[:, 1], Q[:, 0]))]  # x ascending, y descending: a staircase
    # The front clipped into each point's box is still a staircase; its area is what the point
    # would have covered anyway.
    X = np.minimum(np.maximum(Q[None, :, 0], P[:, None, 0]), ref[0])
    Y = np.minimum(np.maximum(Q[None, :, 1], P[:, None, 1]), ref[1])
    widths = np.diff(np.concatenate([X, np.full((len(P), 1), ref[0])], axis=1), axis=1)
    covered = np.sum(widths * (ref[1] - Y), axis=1)
    return np.maximum(box - covered, 0.0)


def hvi(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume each row of ``points`` would add to ``front`` (any number of objectives)."""
    points = np.asarray(points, dtype=float)
    m = points.shape[1]
    if m == 1:
        best = front[:, 0].min() if len(front) else ref[0]
        return np.maximum(np.minimum(best, ref[0]) - points[:, 0], 0.0)
    if m == 2:
        return hvi_2d(front, points, ref)
    base = hypervolume(front, ref) if len(front) else 0.0
    return np.array([hypervolume(np.vstack([front, p[None]]), ref) - base for p in points])


def domination_gap(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """How far (additively, in every objective at once) each point is from being non-dominated
    by ``front``: 0 for points no front member dominates."""
    if len(front) == 0:
        return np.zeros(len(points))
    D = np.asarray(points, dtype=float)[:, None, :] - np.asarray(front, dtype=float)[None, :, :]
    return np.maximum(D.min(axis=2).max(axis=1), 0.0)


def select_batch(front: np.ndarray, optimistic: np.ndarray, k: int, ref: np.ndarray) -> list[int]:
    """Greedy batch of ``k`` rows of ``optimistic`` maximising the hypervolume they add.

    Each pick joins the front before the next is scored (hypervolume improvement is
    submodular, so stale scores are upper bounds and are refreshed lazily). When no candidate
    adds volume any more, the rest are taken by smallest :func:`domination_gap`.
    """
    n = len(optimistic)
    k = min(k, n)
    chosen: list[int] = []
    current = np.asarray(front, dtype=float).reshape(-1, optimistic.shape[1])
    scores = hvi(current, optimistic, ref)
    fresh = np.ones(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    vectorised = optimistic.shape[1] <= 2  # exact and cheap for all candidates at once
    while len(chosen) < k:
        masked = np.where(alive, scores, -np.inf)
        i = int(np.argmax(masked))
        if masked[i] <= 0.0:
            break
        if not fresh[i]:
            scores[i] = hvi(current, optimistic[i : i + 1], ref)[0]
            fresh[i] = True
            continue
        chosen.append(i)
        alive[i] = False
        current = np.vstack([current, optimistic[i : i + 1]])
        if vectorised:
            scores[alive] = hvi(current, optimistic[alive], ref)
        else:
            fresh[:] = False
    if len(chosen) < k:
        rest = np.flatnonzero(alive)
        gap = domination_gap(current, optimistic[rest])
        chosen += [int(rest[j]) for j in np.argsort(gap, kind="stable")[: k - len(chosen)]]
    return chosen


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement below ``best`` (minimisation); the plain improvement where std = 0."""
    from scipy.stats import norm

    if not math.isfinite(best):
        return -mean
    gain = best - mean
    safe = np.where(std > 0, std, 1.0)
    z = gain / safe
    ei = gain * norm.cdf(z) + safe * norm.pdf(z)
    return np.where(std > 0, ei, np.maximum(gain, 0.0))
