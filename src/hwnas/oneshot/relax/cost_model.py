"""An additive hardware cost over slots of choices, differentiable in the architecture weights.

FBNet and ProxylessNAS put the *expected* hardware cost into the search loss. For a cost that is
a sum over slots, ``constant + sum_i table[i][arch_i]``, and independent per-slot probabilities
``p[i][j]``, it is exact and linear: ``constant + sum_i sum_j p[i][j] * table[i][j]``.
:func:`fit_slot_cost` fits the table by non-negative least squares and records how well an
additive model holds (5-fold CV share within +-10 %, CV Spearman, in-sample R^2).

The slots a cost sums over are a :class:`CostSlots`: for a categorical space (nb201, fbnet,
categorical) its own slots and an architecture's ``ops`` (:func:`categorical_slots`); a
relaxation whose architectures are not a list of ops gives its own (mbv3: one slot per block,
with ``off`` a choice of the blocks a stage's depth can drop, see
:mod:`hwnas.oneshot.relax.mbv3_relax`). Where the fitting rows come from is
:mod:`hwnas.oneshot.relax.cost`.

This module imports torch only in :meth:`SlotCost.expected`.

Example:
    >>> cost = SlotCost(metric="flops_m", unit="MMACs", constant=1.0,
    ...                 table=[[0.0, 2.0]], choices=[["a", "b"]])
    >>> cost.predict_ops(["b"])
    3.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError, DataError
from hwnas.registry import closest
from hwnas.spaces.base import Arch, CategoricalSpace, SearchSpace

if TYPE_CHECKING:
    import torch

CV_FOLDS = 5


@dataclass(frozen=True)
class CostSlots:
    """The slots an additive cost sums over, and how an architecture fills them.

    Attributes:
        space: the space's name (for messages).
        choices: per slot, the choice names (the columns of a fitted table).
        names: ``arch -> one choice name per slot``.
        sample: ``rng -> arch``: draws the architectures a fit is taken over.
        size: how many distinct choice tuples ``sample`` can draw (caps the rows asked for).
        default_rows: rows a fit reads when the spec gives none, where the source's default
            is too few for this many coefficients (None: the source's default).
    """

    space: str
    choices: tuple[tuple[str, ...], ...]
    names: Callable[[Arch], Sequence[str]]
    sample: Callable[[np.random.Generator], Arch]
    size: int
    default_rows: int | None = None

    def one_hot(self, arch: Arch) -> np.ndarray:
        """The one-hot columns of ``arch``'s choices, concatenated over slots."""
        names = list(self.names(arch))
        if len(names) != len(self.choices):
            raise ConfigError(
                f"{self.space}: expected {len(self.choices)} cost slots, got {len(names)}"
            )
        parts = []
        for i, (name, allowed) in enumerate(zip(names, self.choices)):
            if name not in allowed:
                raise ConfigError(
                    f"{self.space}: unknown choice {name!r} in cost slot {i}; "
                    f"{closest(name, allowed)}"
                )
            parts.append(np.eye(len(allowed))[allowed.index(name)])
        return np.concatenate(parts)


def categorical_slots(space: SearchSpace) -> CostSlots:
    """A categorical space's own slots: an architecture's ``ops`` fill them."""
    if not isinstance(space, CategoricalSpace):
        raise ConfigError(
            f"relax cost: space {space.name!r} is not categorical; an additive per-slot cost "
            "needs fixed slots of choices (e.g. nb201, fbnet, categorical), or pass slots= "
            "from the space's relaxation (hwnas.oneshot.relax.spaces)"
        )
    return CostSlots(
        space=space.name,
        choices=tuple(tuple(c) for c in space.slots),
        names=lambda arch: space.validate(arch)["ops"],
        sample=space.sample,
        size=space.size,
    )


@dataclass
class SlotCost:
    """``cost(arch) = constant + sum_i table[i][choice_i]`` over a space's cost slots.

    Attributes:
        metric: the metric it models, e.g. ``"latency_ms@raspi4"`` or ``"flops_m"``.
        unit: its unit (``"ms"``, ``"MMACs"``).
        constant: the part no slot choice changes (the cheapest architecture's cost).
        table: per slot, the cost of each choice (non-negative; the cheapest choice of a fitted
            slot costs 0).
        choices: per slot, the choice names in the space's order (the columns of ``table``).
        source: where the rows came from (``kind``, device or path, ``rows`` read) and the fit's
            figures (``cv_within_10pct``, ``cv_spearman``, ``r2_in_sample``).
    """

    metric: str
    unit: str
    constant: float
    table: list[list[float]]
    choices: list[list[str]]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if [len(r) for r in self.table] != [len(c) for c in self.choices]:
            raise ConfigError(
                f"{self.metric}: table shape {[len(r) for r in self.table]} does not match the "
                f"choices per slot {[len(c) for c in self.choices]}"
            )
        values = [self.constant, *(v for row in self.table for v in row)]
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ConfigError(f"{self.metric}: constant and table must be finite and >= 0")

    def predict(self, arch: Arch) -> float:
        """The cost of ``arch`` (a ``{"ops": [...]}`` dict; parse strings with the space). For
        other spaces, ``predict_ops(slots.names(arch))`` with the :class:`CostSlots` it was
        fitted on."""
        return self.predict_ops(arch["ops"])

    def predict_ops(self, ops: Sequence[str]) -> float:
        """The cost of the architecture choosing ``ops[i]`` in slot ``i``."""
        if len(ops) != len(self.choices):
            raise ConfigError(f"{self.metric}: expected {len(self.choices)} ops, got {len(ops)}")
        total = self.constant
        for i, (op, names) in enumerate(zip(ops, self.choices)):
            if op not in names:
                raise ConfigError(
                    f"{self.metric}: unknown op {op!r} at position {i}; {closest(op, names)}"
                )
            total += self.table[i][names.index(op)]
        return total

    def expected(self, probs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Expected cost (a scalar tensor, differentiable in ``probs``) under independent slots.

        ``probs``: one 1-D tensor per slot (one entry per choice), or a 2-D tensor (slots x
        choices) when every slot has as many choices.
        """
        import torch

        n = len(self.choices)
        if isinstance(probs, torch.Tensor):
            if probs.dim() != 2:
                raise ConfigError(f"{self.metric}: probs must be 2-D, got {probs.dim()}-D")
            probs = list(probs.unbind(0))
        if len(probs) != n:
            raise ConfigError(f"{self.metric}: expected {n} probability vectors, got {len(probs)}")
        terms = []
        for i, (p, costs) in enumerate(zip(probs, self.table)):
            if tuple(p.shape) != (len(costs),):
                raise ConfigError(
                    f"{self.metric}: probs of slot {i} have shape {tuple(p.shape)}, "
                    f"expected ({len(costs)},)"
                )
            terms.append((p * torch.tensor(costs, dtype=p.dtype, device=p.device)).sum())
        return torch.stack(terms).sum() + self.constant

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (read back with :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlotCost:
        """The inverse of :meth:`to_dict`; :class:`DataError` naming what is wrong."""
        if not isinstance(data, Mapping) or set(data) != {f.name for f in fields(cls)}:
            keys = ", ".join(f.name for f in fields(cls))
            raise DataError(f"a slot cost is a mapping with exactly the keys {keys}; save it again")
        try:
            return cls(
                metric=str(data["metric"]),
                unit=str(data["unit"]),
                constant=float(data["constant"]),
                table=[[float(v) for v in row] for row in data["table"]],
                choices=[[str(c) for c in row] for row in data["choices"]],
                source=dict(data["source"]),
            )
        except (TypeError, ValueError, ConfigError) as exc:
            raise DataError(f"malformed slot cost: {exc}") from None


def fit_slot_cost(
    space: SearchSpace,
    archs: Sequence[Arch],
    values: Sequence[float] | np.ndarray,
    *,
    metric: str,
    unit: str,
    source: Mapping[str, Any],
    slots: CostSlots | None = None,
) -> SlotCost:
    """Fit an additive cost to ``values`` of ``archs`` by non-negative least squares.

    ``slots`` are the cost slots (default: the categorical space's own, see
    :func:`categorical_slots`). The one-hot columns of a slot sum to the constant column, so the
    split between a slot's choices and the constant is not unique; the cheapest choice of each
    slot is moved to 0 and its cost into the constant, which changes no prediction. ``source``
    is copied and gains ``rows``, ``cv_within_10pct`` (5 folds by row index modulo 5),
    ``cv_spearman`` and ``r2_in_sample``.
    """
    from scipy.optimize import nnls

    cs = categorical_slots(space) if slots is None else slots
    if len(archs) != len(values):
        raise ConfigError(f"fit_slot_cost: {len(archs)} archs but {len(values)} values")
    if len(archs) < 2:
        raise ConfigError(f"fit_slot_cost needs at least 2 rows to fit {metric}, got {len(archs)}")
    y = np.asarray(values, dtype=np.float64)
    bad = int(np.sum(~np.isfinite(y) | (y < 0)))
    if bad:
        raise DataError(f"{metric}: {bad} of {len(y)} values are NaN, infinite or negative")
    X = np.column_stack([np.stack([cs.one_hot(a) for a in archs]), np.ones(len(y))])
    coef = nnls(X, y)[0]
    fold = np.arange(len(y)) % CV_FOLDS
    cv = np.empty(len(y))
    for k in range(CV_FOLDS):
        test = fold == k
        if test.any():
            cv[test] = X[test] @ nnls(X[~test], y[~test])[0]
    table, constant, start = [], float(coef[-1]), 0
    for choices in cs.choices:
        row = coef[start : start + len(choices)]
        start += len(choices)
        constant += float(row.min())
        table.append([float(v - row.min()) for v in row])
    ss_tot, ss_res = float(np.sum((y - y.mean()) ** 2)), float(np.sum((y - X @ coef) ** 2))
    figures = {
        "rows": len(y),
        "cv_within_10pct": float(np.mean(np.abs(cv - y) <= 0.1 * np.abs(y))),
        "cv_spearman": _spearman(y, cv),
        "r2_in_sample": 1.0 - ss_res / ss_tot if ss_tot > 0 else None,
    }
    return SlotCost(
        metric=metric,
        unit=unit,
        constant=constant,
        table=table,
        choices=[list(c) for c in cs.choices],
        source={**dict(source), **figures},
    )


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None  # undefined for a constant column
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
