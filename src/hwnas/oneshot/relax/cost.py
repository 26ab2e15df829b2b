"""Where an additive slot cost's rows come from: the space's FLOPs, a device table, a saved
latency predictor or LUT, read from a config mapping.

The cost model itself (:class:`SlotCost`, its fit :func:`fit_slot_cost` and the slots it sums
over, :class:`CostSlots`) is :mod:`hwnas.oneshot.relax.cost_model`, re-exported here.
:func:`slot_cost_from_spec` draws the rows, fits the model and records how many rows of which
source it read: a search that saw 100 rows of a device table says 100.

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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ConfigError, DataError
from hwnas.oneshot.relax.cost_model import (
    CostSlots,
    SlotCost,
    categorical_slots,
    fit_slot_cost,
)
from hwnas.registry import closest
from hwnas.spaces.base import Arch, SearchSpace

__all__ = [
    "DEFAULT_ROWS",
    "SOURCES",
    "SOURCE_KEYS",
    "CostSlots",
    "SlotCost",
    "categorical_slots",
    "fit_slot_cost",
    "slot_cost_from_spec",
]

SOURCES: tuple[str, ...] = ("flops", "table", "predictor", "lut")
# per source: (required keys, optional keys) besides "source"
SOURCE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "flops": ((), ("rows",)),
    "table": (("device",), ("rows",)),
    "predictor": (("path",), ("device", "rows")),
    "lut": (("path",), ("device", "rows")),
}
DEFAULT_ROWS: dict[str, int] = {"flops": 200, "table": 100, "predictor": 200, "lut": 200}
DRAWS_PER_ROW = 20  # distinct draws give up after this many tries per wanted row


def slot_cost_from_spec(
    space: SearchSpace,
    spec: Mapping[str, Any],
    *,
    rng: np.random.Generator,
    data_dir: str | Path | None = None,
    slots: CostSlots | None = None,
) -> SlotCost:
    """Build a :class:`SlotCost` from a config mapping, reading ``rows`` distinct random archs.

    Keys: ``source`` (``flops``: the space's ``flops_m``, no device rows; ``table``: a tabulated
    ``device`` of :class:`~hwnas.hardware.tabular.TabularDevice`; ``predictor`` / ``lut``: the
    ``path`` of a saved latency predictor folder / LUT JSON, with an optional ``device`` naming the
    metric) and ``rows`` (default 200, 100 for ``table``, or the slots' ``default_rows``:
    400 for mbv3). ``slots`` are the cost slots and draw
    the archs (default: a categorical space's own slots and sampler); archs whose slot choices
    were drawn before are drawn again. Archs missing from a table are skipped and drawn again;
    ``source["rows"]`` counts rows actually read. A table that lists only part of the space
    (FBNet's 5,000 sampled archs) is sampled instead: ``rows`` distinct tabulated archs, and
    ``source["table_archs"]`` says how many it lists.

    Example (config)::

        cost: {source: table, device: raspi4, rows: 100}
    """
    cs = categorical_slots(space) if slots is None else slots
    size = cs.size
    kind, rows, device = _check_spec(spec)
    if "rows" not in spec and cs.default_rows is not None:
        rows = cs.default_rows
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
            return _table_sample(space, cs, dev.metric, tabulated, ms, rows, rng, info)
    else:
        path = Path(str(spec["path"])).expanduser()
        metric, value, info["device"] = _model(space, kind, path, device)
        unit, info["path"] = "ms", str(path)
    archs, values, draws = [], [], set()
    for _ in range(DRAWS_PER_ROW * rows):  # distinct archs; those missing from a table skipped
        arch = cs.sample(rng)
        key = tuple(cs.names(arch))
        if key in draws:
            continue
        draws.add(key)
        try:
            values.append(value(arch))
        except skip:
            continue
        archs.append(arch)
        if len(archs) == rows:
            return fit_slot_cost(
                space, archs, values, metric=metric, unit=unit, source=info, slots=cs
            )
    raise DataError(
        f"relax cost: only {len(archs)} of {rows} rows of {metric} found in {len(draws)} "
        "distinct random archs; ask for fewer rows"
    )


def _table_sample(
    space: SearchSpace,
    slots: CostSlots,
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
    return fit_slot_cost(
        space, archs, ms[picked], metric=metric, unit="ms", source=info, slots=slots
    )


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
