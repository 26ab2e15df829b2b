"""An additive hardware cost over a categorical space, differentiable in the architecture weights.

FBNet and ProxylessNAS put the *expected* hardware cost into the search loss. For a cost that is
a sum over slots, ``constant + sum_i table[i][arch_i]``, and independent per-slot probabilities
``p[i][j]``, it is exact and linear: ``constant + sum_i sum_j p[i][j] * table[i][j]``.
:func:`fit_slot_cost` fits the table by non-negative least squares and records how well an
additive model holds (5-fold CV share within +-10 %, CV Spearman, in-sample R^2);
:func:`slot_cost_from_spec` builds it from a config mapping and records how many rows of which
source it read: a search that saw 100 rows of a device table says 100.

This module imports torch only in :meth:`SlotCost.expected` (though the parent package
``hwnas.oneshot`` currently requires torch on import).

Example:
    >>> import numpy as np
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> cost = slot_cost_from_spec(space, {"source": "flops", "rows": 50},
    ...                            rng=np.random.default_rng(0))
    >>> cost.metric, cost.source["rows"], cost.source["device_rows"]
    ('flops_m', 50, 0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError, DataError
from hwnas.registry import closest
from hwnas.spaces.base import Arch, CategoricalSpace, SearchSpace

if TYPE_CHECKING:
    import torch

SOURCES: tuple[str, ...] = ("flops", "table", "predictor", "lut")
# per source: (required keys, optional keys) besides "source"
SOURCE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "flops": ((), ("rows",)),
    "table": (("device",), ("rows",)),
    "predictor": (("path",), ("device", "rows")),
    "lut": (("path",), ("device", "rows")),
}
DEFAULT_ROWS: dict[str, int] = {"flops": 200, "table": 100, "predictor": 200, "lut": 200}
CV_FOLDS = 5
DRAWS_PER_ROW = 20  # distinct draws give up after this many tries per wanted row


@dataclass
class SlotCost:
    """``cost(arch) = constant + sum_i table[i][choice_i]`` over a categorical space's slots.

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
        """The cost of ``arch`` (a ``{"ops": [...]}`` dict; parse strings with the space)."""
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
) -> SlotCost:
    """Fit an additive cost to ``values`` of ``archs`` by non-negative least squares.

    The one-hot columns of a slot sum to the constant column, so the split between a slot's
    choices and the constant is not unique; the cheapest choice of each slot is moved to 0 and its
    cost into the constant, which changes no prediction. ``source`` is copied and gains ``rows``,
    ``cv_within_10pct`` (5 folds by row index modulo 5), ``cv_spearman`` and ``r2_in_sample``.
    """
    from scipy.optimize import nnls

    cat = _categorical(space)
    if len(archs) != len(values):
        raise ConfigError(f"fit_slot_cost: {len(archs)} archs but {len(values)} values")
    if len(archs) < 2:
        raise ConfigError(f"fit_slot_cost needs at least 2 rows to fit {metric}, got {len(archs)}")
    y = np.asarray(values, dtype=np.float64)
    bad = int(np.sum(~np.isfinite(y) | (y < 0)))
    if bad:
        raise DataError(f"{metric}: {bad} of {len(y)} values are NaN, infinite or negative")
    X = np.column_stack([np.stack([cat.one_hot(a) for a in archs]), np.ones(len(y))])
    coef = nnls(X, y)[0]
    fold = np.arange(len(y)) % CV_FOLDS
    cv = np.empty(len(y))
    for k in range(CV_FOLDS):
        test = fold == k
        if test.any():
            cv[test] = X[test] @ nnls(X[~test], y[~test])[0]
    table, constant, start = [], float(coef[-1]), 0
    for choices in cat.slots:
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
        choices=[list(c) for c in cat.slots],
        source={**dict(source), **figures},
    )


def slot_cost_from_spec(
    space: SearchSpace,
    spec: Mapping[str, Any],
    *,
    rng: np.random.Generator,
    data_dir: str | Path | None = None,
) -> SlotCost:
    """Build a :class:`SlotCost` from a config mapping, reading ``rows`` distinct random archs.

    Keys: ``source`` (``flops``: the space's ``flops_m``, no device rows; ``table``: a tabulated
    ``device`` of :class:`~hwnas.hardware.tabular.TabularDevice`; ``predictor`` / ``lut``: the
    ``path`` of a saved latency predictor folder / LUT JSON, with an optional ``device`` naming the
    metric) and ``rows`` (default 200, 100 for ``table``). Archs missing from a table are skipped
    and drawn again; ``source["rows"]`` counts rows actually read. A table that lists only part of
    the space (FBNet's 5,000 sampled archs) is sampled instead: ``rows`` distinct tabulated archs,
    and ``source["table_archs"]`` says how many it lists.

    Example (config)::

        cost: {source: table, device: raspi4, rows: 100}
    """
    size = _categorical(space).size
    kind, rows, device = _check_spec(spec)
    if rows > size:
        raise ConfigError(f"relax cost: rows {rows} exceeds the {size} archs of {space.name}")
    info: dict[str, Any] = {"kind": kind}
    skip: tuple[type[Exception], ...] = ()
    value: Callable[[Arch], float]
    if kind == "flops":
        if "flops_m" not in space.cheap_metric_names():
            raise ConfigError(f"relax cost: space {space.name!r} has no cheap metric 'flops_m'")
        metric, unit, info["device_rows"] = "flops_m", "MMACs", 0
        value = lambda arch: space.cheap_metrics(arch)["flops_m"]  # noqa: E731
    elif kind == "table":
        from hwnas.evaluation.base import MissingArchError
        from hwnas.hardware.tabular import TabularDevice

        dev = TabularDevice(space, str(device), data_dir=data_dir)
        metric, unit, value, skip = dev.metric, "ms", dev.latency, (MissingArchError,)
        info.update(device=dev.device, path=str(dev.folder))
        tabulated, ms = dev.all()
        if len(tabulated) < size:
            # A sampled table (FBNet: 5,000 of 9^22 archs) is almost never hit by random draws
            # from the space; draw its own rows instead. A complete table (NB201) keeps the
            # draws from the space below, which give the same distribution.
            return _table_sample(space, dev.metric, tabulated, ms, rows, rng, info)
    else:
        path = Path(str(spec["path"])).expanduser()
        metric, value, info["device"] = _model(space, kind, path, device)
        unit, info["path"] = "ms", str(path)
    archs, values, draws = [], [], set()
    for _ in range(DRAWS_PER_ROW * rows):  # distinct archs; those missing from a table skipped
        arch = space.sample(rng)
        text = space.to_string(arch)
        if text in draws:
            continue
        draws.add(text)
        try:
            values.append(value(arch))
        except skip:
            continue
        archs.append(arch)
        if len(archs) == rows:
            return fit_slot_cost(space, archs, values, metric=metric, unit=unit, source=info)
    raise DataError(
        f"relax cost: only {len(archs)} of {rows} rows of {metric} found in {len(draws)} "
        "distinct random archs; ask for fewer rows"
    )


def _table_sample(
    space: SearchSpace,
    metric: str,
    tabulated: Sequence[str],
    ms: np.ndarray,
    rows: int,
    rng: np.random.Generator,
    info: dict[str, Any],
) -> SlotCost:
    """Fit on ``rows`` distinct rows of a table that lists only some of the space's archs."""
    if rows > len(tabulated):
        raise ConfigError(
            f"relax cost: rows {rows} exceeds the {len(tabulated)} archs of the {space.name} "
            f"table of {metric}; ask for at most {len(tabulated)}"
        )
    picked = rng.choice(len(tabulated), size=rows, replace=False)
    archs = [space.from_string(tabulated[i]) for i in picked]
    info["table_archs"] = len(tabulated)
    return fit_slot_cost(space, archs, ms[picked], metric=metric, unit="ms", source=info)


def _model(
    space: SearchSpace, kind: str, path: Path, device: str | None
) -> tuple[str, Callable[[Arch], float], str]:
    """The metric, a per-arch value and the device of a saved predictor or LUT."""
    from hwnas.hardware.predictor_io import space_options

    if kind == "predictor":
        from hwnas.hardware.predictor import LatencyPredictor

        model: Any = LatencyPredictor.load(path)
        named = model.device

        def value(arch: Arch) -> float:
            return float(model.predict([arch])[0])

    else:
        from hwnas.hardware.fingerprint import local_target
        from hwnas.hardware.lut import LatencyLUT

        model = LatencyLUT.from_json(path)
        fp, value = model.fingerprint, model.predict
        named = None if fp is None else local_target(fp.backend, model.batch, fp.threads)
    saved = model.space
    if saved.name != space.name or space_options(saved) != space_options(space):
        raise ConfigError(
            f"relax cost: the {kind} in {path} was made for {saved.name} with options "
            f"{space_options(saved)}, not {space.name} with {space_options(space)}; rebuild it"
        )
    target = device if device is not None else named
    if not target:
        raise ConfigError(f"relax cost: the {kind} in {path} names no device; set 'device'")
    return f"latency_ms@{target}", value, target


def _categorical(space: SearchSpace) -> CategoricalSpace:
    if not isinstance(space, CategoricalSpace):
        raise ConfigError(
            f"relax cost: space {space.name!r} is not categorical; an additive per-slot cost "
            "needs fixed slots of choices (e.g. nb201, fbnet, categorical)"
        )
    return space


def _check_spec(spec: Mapping[str, Any]) -> tuple[str, int, str | None]:
    if not isinstance(spec, Mapping) or "source" not in spec:
        raise ConfigError(f"relax cost needs a mapping with 'source', one of {', '.join(SOURCES)}")
    kind = spec["source"]
    if kind not in SOURCES:
        raise ConfigError(
            f"relax cost: unknown source {kind!r}; {closest(str(kind), SOURCES)} "
            f"(allowed: {', '.join(SOURCES)})"
        )
    required, optional = SOURCE_KEYS[kind]
    allowed = ("source", *required, *optional)
    for key in spec:
        if key not in allowed:
            raise ConfigError(
                f"relax cost source {kind!r} has no key {key!r}; {closest(str(key), allowed)} "
                f"(allowed: {', '.join(allowed)})"
            )
    for key in required:
        if key not in spec:
            raise ConfigError(f"relax cost source {kind!r} needs the key {key!r}; add it")
    rows = spec.get("rows", DEFAULT_ROWS[kind])
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 2:
        raise ConfigError(f"relax cost: 'rows' must be a whole number >= 2, got {rows!r}")
    device = spec.get("device")
    if device is not None and (not isinstance(device, str) or not device.strip() or "@" in device):
        raise ConfigError(
            f"relax cost: 'device' must be a plain name like 'raspi4', got {device!r}"
        )
    return kind, rows, device


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None  # undefined for a constant column
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
