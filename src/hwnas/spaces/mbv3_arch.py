"""The architecture dicts of the ``mbv3`` space as plain functions: their checks, variation
operators and vector encodings. :class:`~hwnas.spaces.mbv3.MBV3Space` holds the options (the
offered ``resolutions`` and ``widths``) and the string format, and delegates here.

:func:`validate` returns the normalised dict (0 for the kernels and expansions of inactive
blocks) that every other function here takes; the operators return dicts for the space to
validate again.

A *gene* is one choice that can change: a stage's depth, an active block's kernel or expansion,
and the resolution or width where the space offers more than one. Inactive blocks (beyond their
stage's depth) carry no genes; a depth change activates or drops them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.spaces.base import Arch
from hwnas.spaces.mbv3_plan import (
    MBV3_BLOCKS,
    MBV3_DEPTHS,
    MBV3_EXPANSIONS,
    MBV3_KERNELS,
    MBV3_MAX_DEPTH,
    MBV3_STAGES,
    VECTOR_LENGTH,
)

Resolutions = tuple[int, ...]
Widths = tuple[float, ...]
_NUMBER = (int, float, np.integer, np.floating)


# -- checks -------------------------------------------------------------------------------------
def choices_text(values: Sequence[int]) -> str:
    """``values`` for a message: ``3, 5, 7``; long evenly spaced runs as ``128, 132, ..., 224``."""
    steps = {b - a for a, b in itertools.pairwise(values)}
    if len(values) > 6 and len(steps) == 1:
        return f"{values[0]}, {values[1]}, ..., {values[-1]}"
    return ", ".join(str(v) for v in values)


def check_resolution(r: int, resolutions: Resolutions) -> int:
    if r not in resolutions:
        raise ConfigError(
            f"mbv3: resolution {r} is not offered; choose from {choices_text(resolutions)}"
        )
    return r


def check_width(w: object, widths: Widths) -> float:
    if isinstance(w, bool) or not isinstance(w, _NUMBER) or float(w) not in widths:
        raise ConfigError(
            f"mbv3: width {w!r} is not offered; choose from {', '.join(map(repr, widths))}"
        )
    return float(w)


def _int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"mbv3: entries of {key!r} must be ints, got {value!r}")
    return int(value)


def validate(arch: Arch, *, resolutions: Resolutions, widths: Widths) -> Arch:
    """The normalised copy of ``arch`` (inactive blocks' ``ks`` and ``e`` set to 0); a
    :class:`ConfigError` naming the first entry that is not allowed."""
    if not isinstance(arch, dict) or set(arch) != {"ks", "e", "d", "r", "w"}:
        got = sorted(arch) if isinstance(arch, dict) else type(arch).__name__
        raise ConfigError(f"mbv3: an architecture is a dict with keys ks, e, d, r, w; got {got}")
    lists = {}
    for key, n in (("ks", MBV3_BLOCKS), ("e", MBV3_BLOCKS), ("d", MBV3_STAGES)):
        value = arch[key]
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != n:
            raise ConfigError(f"mbv3: {key!r} must be a list of {n} ints, got {value!r}")
        lists[key] = [_int(key, v) for v in value]
    depths = lists["d"]
    for s, d in enumerate(depths):
        if d not in MBV3_DEPTHS:
            raise ConfigError(
                f"mbv3: depth {d} of stage {s + 1} is not allowed; choose from "
                f"{choices_text(MBV3_DEPTHS)}"
            )
    ks, es = [0] * MBV3_BLOCKS, [0] * MBV3_BLOCKS
    for i in range(MBV3_BLOCKS):
        s, j = divmod(i, MBV3_MAX_DEPTH)
        active = j < depths[s]
        for key, allowed, out in (("ks", MBV3_KERNELS, ks), ("e", MBV3_EXPANSIONS, es)):
            v = lists[key][i]
            if v in allowed:
                out[i] = v if active else 0
            elif v != 0 or active:
                what = "kernel" if key == "ks" else "expansion"
                inactive = "" if active else "0 (the block is inactive) or "
                raise ConfigError(
                    f"mbv3: {what} {v} of stage {s + 1} block {j + 1} ({key}[{i}]) is not "
                    f"allowed; choose from {inactive}{choices_text(allowed)}"
                )
    return {
        "ks": ks,
        "e": es,
        "d": depths,
        "r": check_resolution(_int("r", arch["r"]), resolutions),
        "w": check_width(arch["w"], widths),
    }


# -- operators ----------------------------------------------------------------------------------
def _copy(arch: Arch, **changes: Any) -> Arch:
    out = {
        "ks": list(arch["ks"]),
        "e": list(arch["e"]),
        "d": list(arch["d"]),
        "r": arch["r"],
        "w": arch["w"],
    }
    out.update(changes)
    return out


def sample(rng: np.random.Generator, *, resolutions: Resolutions, widths: Widths) -> Arch:
    """Every depth, kernel and expansion (inactive blocks' too), the resolution and the width
    drawn uniformly and independently."""
    ks = [MBV3_KERNELS[int(i)] for i in rng.integers(len(MBV3_KERNELS), size=MBV3_BLOCKS)]
    es = [MBV3_EXPANSIONS[int(i)] for i in rng.integers(len(MBV3_EXPANSIONS), size=MBV3_BLOCKS)]
    ds = [MBV3_DEPTHS[int(i)] for i in rng.integers(len(MBV3_DEPTHS), size=MBV3_STAGES)]
    r = resolutions[int(rng.integers(len(resolutions)))]
    w = widths[int(rng.integers(len(widths)))]
    return {"ks": ks, "e": es, "d": ds, "r": r, "w": w}


def genes(arch: Arch, *, resolutions: Resolutions, widths: Widths) -> list[tuple[str, int]]:
    """The genes of ``arch`` as ``(key, index)`` pairs, stage by stage (its depth, then its
    active blocks' kernel and expansion), then ``("r", 0)`` and ``("w", 0)`` where offered."""
    out: list[tuple[str, int]] = []
    for s, d in enumerate(arch["d"]):
        out.append(("d", s))
        for j in range(d):
            i = s * MBV3_MAX_DEPTH + j
            out += [("ks", i), ("e", i)]
    if len(resolutions) > 1:
        out.append(("r", 0))
    if len(widths) > 1:
        out.append(("w", 0))
    return out


def mutate(
    arch: Arch, rng: np.random.Generator, *, resolutions: Resolutions, widths: Widths
) -> Arch:
    """Change each gene with probability 1 / (number of genes), at least one; a changed value is
    drawn uniformly from the others. Blocks a deeper stage activates get uniform kernels and
    expansions; blocks a shallower one drops become inactive (0 once validated)."""
    gene_list = genes(arch, resolutions=resolutions, widths=widths)
    picked = np.flatnonzero(rng.random(len(gene_list)) < 1.0 / len(gene_list))
    if picked.size == 0:
        picked = np.array([int(rng.integers(len(gene_list)))])
    child = _copy(arch)
    options: dict[str, tuple[Any, ...]] = {
        "ks": MBV3_KERNELS,
        "e": MBV3_EXPANSIONS,
        "d": MBV3_DEPTHS,
        "r": resolutions,
        "w": widths,
    }
    for g in picked:
        key, i = gene_list[int(g)]
        if key in ("r", "w"):
            others = [v for v in options[key] if v != child[key]]
            child[key] = others[int(rng.integers(len(others)))]
            continue
        others = [v for v in options[key] if v != child[key][i]]
        child[key][i] = others[int(rng.integers(len(others)))]
    for s, (old, new) in enumerate(zip(arch["d"], child["d"])):
        for j in range(old, new):
            i = s * MBV3_MAX_DEPTH + j
            child["ks"][i] = MBV3_KERNELS[int(rng.integers(len(MBV3_KERNELS)))]
            child["e"][i] = MBV3_EXPANSIONS[int(rng.integers(len(MBV3_EXPANSIONS)))]
    return child


def crossover(a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
    """Uniform crossover: each stage's depth, each block's kernel and expansion, the resolution
    and the width from either parent with probability 1/2; a block active in only one parent
    takes that parent's values. Every entry of the child's encoding is therefore one of the
    parents' entries at that position (a block the child drops is inactive, 0, in the parent
    whose depth it took)."""
    flip = rng.random(2 * MBV3_BLOCKS + MBV3_STAGES + 2) < 0.5
    depths = [x if t else y for x, y, t in zip(a["d"], b["d"], flip[:MBV3_STAGES])]
    ks, es = [0] * MBV3_BLOCKS, [0] * MBV3_BLOCKS
    for i in range(MBV3_BLOCKS):
        s, j = divmod(i, MBV3_MAX_DEPTH)
        if j >= depths[s]:
            continue
        for key, out, t in (
            ("ks", ks, flip[MBV3_STAGES + i]),
            ("e", es, flip[MBV3_STAGES + MBV3_BLOCKS + i]),
        ):
            x, y = a[key][i], b[key][i]
            out[i] = (x if t else y) if x and y else (x or y)
    r = a["r"] if flip[-2] else b["r"]
    w = a["w"] if flip[-1] else b["w"]
    return {"ks": ks, "e": es, "d": depths, "r": r, "w": w}


def neighbours(arch: Arch, *, resolutions: Resolutions, widths: Widths) -> list[Arch]:
    """Every architecture one gene away, stage by stage (its other depths, then its active
    blocks' other kernels and expansions), then the other resolutions and widths. A deeper
    stage repeats its last active block's kernel and expansion in the blocks it adds."""
    out: list[Arch] = []
    for s, d in enumerate(arch["d"]):
        base = s * MBV3_MAX_DEPTH
        for new_d in MBV3_DEPTHS:
            if new_d == d:
                continue
            ks, es, depths = list(arch["ks"]), list(arch["e"]), list(arch["d"])
            depths[s] = new_d
            for j in range(min(d, new_d), MBV3_MAX_DEPTH):
                active = j < new_d
                ks[base + j] = arch["ks"][base + d - 1] if active else 0
                es[base + j] = arch["e"][base + d - 1] if active else 0
            out.append(_copy(arch, ks=ks, e=es, d=depths))
        for i in range(base, base + d):
            for key, allowed in (("ks", MBV3_KERNELS), ("e", MBV3_EXPANSIONS)):
                for v in allowed:
                    if v != arch[key][i]:
                        values = list(arch[key])
                        values[i] = v
                        out.append(_copy(arch, **{key: values}))
    out += [_copy(arch, r=r) for r in resolutions if r != arch["r"]]
    out += [_copy(arch, w=w) for w in widths if w != arch["w"]]
    return out


# -- encodings ----------------------------------------------------------------------------------
def encode(arch: Arch, *, widths: Widths) -> np.ndarray:
    """The 47 integers of the module docstring of :mod:`hwnas.spaces.mbv3`."""
    w_index = widths.index(arch["w"])
    return np.array([*arch["ks"], *arch["e"], *arch["d"], arch["r"], w_index], dtype=np.int64)


def decode(vector: np.ndarray | Sequence[int], *, widths: Widths) -> Arch:
    """The dict a vector spells (not yet validated): a :class:`ConfigError` for a wrong length,
    a fraction or a width index out of range."""
    values = list(np.asarray(vector).ravel())
    if len(values) != VECTOR_LENGTH:
        raise ConfigError(f"mbv3: a vector needs {VECTOR_LENGTH} entries, got {len(values)}")
    for n, v in enumerate(values):
        if not float(v).is_integer():
            raise ConfigError(f"mbv3: entry {n} must be a whole number, got {v!r}")
    ints = [int(v) for v in values]
    w_index = ints[-1]
    if not 0 <= w_index < len(widths):
        raise ConfigError(
            f"mbv3: entry {VECTOR_LENGTH - 1} (width index) must lie in "
            f"0..{len(widths) - 1}, got {w_index}"
        )
    d0, r_at = 2 * MBV3_BLOCKS, 2 * MBV3_BLOCKS + MBV3_STAGES
    return {
        "ks": ints[:MBV3_BLOCKS],
        "e": ints[MBV3_BLOCKS:d0],
        "d": ints[d0:r_at],
        "r": ints[r_at],
        "w": widths[w_index],
    }


def one_hot(arch: Arch, *, resolutions: Resolutions, widths: Widths) -> np.ndarray:
    """Per block 4 kernel and 4 expansion columns (inactive first), per stage 3 depth columns,
    then one column per resolution and per width."""
    parts = [np.eye(1 + len(MBV3_KERNELS))[(0, *MBV3_KERNELS).index(k)] for k in arch["ks"]]
    parts += [np.eye(1 + len(MBV3_EXPANSIONS))[(0, *MBV3_EXPANSIONS).index(e)] for e in arch["e"]]
    parts += [np.eye(len(MBV3_DEPTHS))[MBV3_DEPTHS.index(d)] for d in arch["d"]]
    parts.append(np.eye(len(resolutions))[resolutions.index(arch["r"])])
    parts.append(np.eye(len(widths))[widths.index(arch["w"])])
    return np.concatenate(parts)


def active_mask(arch: Arch) -> np.ndarray:
    """Which entries of :func:`encode` are live choices: the kernels and expansions of active
    blocks, every depth, the resolution and the width."""
    depths = arch["d"]
    blocks = [i % MBV3_MAX_DEPTH < depths[i // MBV3_MAX_DEPTH] for i in range(MBV3_BLOCKS)]
    return np.array([*blocks, *blocks] + [True] * (MBV3_STAGES + 2), dtype=bool)
