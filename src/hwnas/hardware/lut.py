"""Per-operator latency lookup tables (ProxylessNAS / FBNet style), for any space.

The space's decomposer (:mod:`hwnas.hardware.lut_ops`) lists the operator configurations a
network is made of. :func:`build_lut` measures each distinct configuration once;
:meth:`LatencyLUT.predict` sums the table over a network's ops and adds a fitted constant for the
glue the ops leave out (node sums, Python dispatch between modules), optionally with a fitted
scale. Tables are saved as readable JSON.

Example:
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> table = LatencyLUT(space=space, ops={k: 0.01 for k in op_configs(space)}, glue_ms=0.5)
    >>> round(table.predict({"ops": ["nor_conv_3x3"] * 6}), 2)  # 94 ops of 0.01 ms + glue
    1.44
"""

from __future__ import annotations

import inspect
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError, DataError, require_torch
from hwnas.hardware.fingerprint import DeviceFingerprint, device_fingerprint
from hwnas.hardware.lut_ops import decompose, op_configs
from hwnas.hardware.measured import (
    DEFAULT_MIN_BLOCK_S,
    DEFAULT_REPEATS,
    DEFAULT_WARMUP,
    Progress,
    check_measure_options,
    measure_latency,
)

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

LUT_FORMAT = "hwnas-latency-lut"
LUT_VERSION = 1


def space_options(space: SearchSpace) -> dict[str, Any]:
    """The keyword options of ``space``'s constructor that it keeps as same-named attributes."""
    params = inspect.signature(type(space).__init__).parameters
    return {
        name: getattr(space, name)
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and hasattr(space, name)
        # see SearchSpace.added_options
        and not (name in space.added_options and getattr(space, name) == p.default)
    }


class LatencyLUT:
    """A per-op latency table for one space and device: ``predict = scale * sum(ops) + glue``.

    Args:
        space: the space whose decomposer maps architectures to op keys.
        ops: milliseconds per op key.
        fingerprint: the device (and backend, threads) the table was measured on.
        batch: the batch size of the measurements.
        clock: the clock of the measurements (``wall`` or ``cpu``).
        glue_ms: the constant added to every prediction (see :meth:`fit_glue`).
        scale: the factor applied to the op sum.
        op_stats: optional per-op noise figures (``iqr_ms``, ``cv``, ``n_samples``) for the JSON.
    """

    def __init__(
        self,
        *,
        space: SearchSpace,
        ops: Mapping[str, float],
        fingerprint: DeviceFingerprint | None = None,
        batch: int = 1,
        clock: str = "wall",
        glue_ms: float = 0.0,
        scale: float = 1.0,
        op_stats: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.space = space
        self.ops = {str(k): float(v) for k, v in ops.items()}
        self.fingerprint = fingerprint
        self.batch = int(batch)
        self.clock = str(clock)
        self.glue_ms = float(glue_ms)
        self.scale = float(scale)
        self.op_stats = {k: dict(v) for k, v in (op_stats or {}).items()}

    def op_counts(self, arch: Arch) -> Counter[str]:
        """How often each op key occurs in ``arch``'s network."""
        return Counter(spec.key for spec in decompose(self.space, arch))

    def op_sum(self, arch: Arch) -> float:
        """Sum of the table over ``arch``'s ops (milliseconds, before scale and glue)."""
        total = 0.0
        for key, count in self.op_counts(arch).items():
            try:
                total += count * self.ops[key]
            except KeyError:
                raise DataError(
                    f"the latency LUT has no entry for op {key!r} of "
                    f"{self.space.to_string(arch)!r}; it was built for other space options "
                    "or other archs; rebuild it with build_lut"
                ) from None
        return total

    def predict(self, arch: Arch) -> float:
        """Predicted latency of ``arch`` in milliseconds."""
        return self.scale * self.op_sum(arch) + self.glue_ms

    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([self.predict(a) for a in archs], dtype=np.float64)

    def fit_glue(
        self, archs: Sequence[Arch], measured_ms: Sequence[float], *, scale: bool = False
    ) -> tuple[float, float]:
        """Fit the glue constant (and, with ``scale=True``, the scale) by least squares.

        Args:
            archs: architectures with whole-network measurements.
            measured_ms: their measured latencies (same batch, device and backend).
            scale: also fit a factor on the op sum (needs two or more archs).

        Returns:
            ``(glue_ms, scale)``, also stored on the table.
        """
        y = np.asarray(measured_ms, dtype=np.float64)
        if len(archs) != len(y) or len(y) == 0:
            raise ConfigError(
                f"fit_glue needs as many measurements as archs (at least one), "
                f"got {len(y)} for {len(archs)}"
            )
        if not np.all(np.isfinite(y)):
            raise ConfigError("fit_glue: measured_ms holds a NaN or infinite value")
        x = np.array([self.op_sum(a) for a in archs])
        if scale:
            if len(y) < 2 or np.ptp(x) == 0:
                raise ConfigError(
                    "fit_glue(scale=True) needs archs with at least 2 different op sums"
                )
            design = np.column_stack([x, np.ones_like(x)])
            (factor, glue), *_ = np.linalg.lstsq(design, y, rcond=None)
            self.scale, self.glue_ms = float(factor), float(glue)
        else:
            self.scale, self.glue_ms = 1.0, float(np.mean(y - x))
        return self.glue_ms, self.scale

    # -- persistence ------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "format": LUT_FORMAT,
            "version": LUT_VERSION,
            "space": self.space.name,
            "space_options": space_options(self.space),
            "fingerprint": None if self.fingerprint is None else self.fingerprint.as_dict(),
            "batch": self.batch,
            "clock": self.clock,
            "glue_ms": self.glue_ms,
            "scale": self.scale,
            "ops": dict(sorted(self.ops.items())),
            "op_stats": dict(sorted(self.op_stats.items())),
        }

    def to_json(self, path: str | Path) -> None:
        """Write the table as JSON (readable; floats round-trip exactly)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.as_dict(), indent=1) + "\n")

    @classmethod
    def from_json(cls, path: str | Path, *, space: SearchSpace | None = None) -> LatencyLUT:
        """Read a table written by :meth:`to_json`.

        Args:
            path: the JSON file.
            space: the space to decompose with (default: the stored space name and options).
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read latency LUT {p}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != LUT_FORMAT:
            raise DataError(f"{p} is not an hwnas latency LUT (no 'format': {LUT_FORMAT!r})")
        if data.get("version") != LUT_VERSION:
            raise DataError(f"{p}: LUT version {data.get('version')!r}, expected {LUT_VERSION}")
        if space is None:
            from hwnas.spaces import create_space

            options = data.get("space_options", {})
            if not isinstance(options, dict):
                raise DataError(f"{p}: malformed latency LUT ('space_options' is not a mapping)")
            space = create_space(str(data.get("space")), **options)
        elif space.name != data.get("space"):
            raise ConfigError(f"{p} is a LUT for space {data.get('space')!r}, not {space.name!r}")
        try:
            fp = data.get("fingerprint")
            return cls(
                space=space,
                ops=data["ops"],
                fingerprint=None if fp is None else DeviceFingerprint.from_dict(fp),
                batch=data["batch"],
                clock=data["clock"],
                glue_ms=data["glue_ms"],
                scale=data["scale"],
                op_stats=data.get("op_stats"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{p}: malformed latency LUT ({type(exc).__name__}: {exc})") from None


def build_lut(
    space: SearchSpace,
    *,
    backend: str = "onnxruntime",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
    timing: str = "blocks",
    archs: Sequence[Arch] | None = None,
    progress: Progress | None = None,
) -> LatencyLUT:
    """Measure every distinct op configuration of ``space`` once and return the table.

    Args:
        space: a space with a registered decomposer.
        archs: cover the ops of these archs only (default: every op of a categorical space).
        progress: called as ``progress(done, total)`` after each op.
        backend, batch, threads, warmup, repeats, min_block_s, clock, timing: as in
            :func:`hwnas.hardware.measured.measure_latency`.

    Returns:
        A :class:`LatencyLUT` with glue 0 and scale 1; fit them with :meth:`LatencyLUT.fit_glue`.

    Example:
        >>> from hwnas.spaces import NB201Space
        >>> lut = build_lut(NB201Space(), repeats=3, min_block_s=0.001)  # doctest: +SKIP
    """
    require_torch("building latency LUTs")
    import torch

    fingerprint = device_fingerprint(backend=backend, threads=threads)
    check_measure_options(
        batch=batch,
        warmup=warmup,
        repeats=repeats,
        min_block_s=min_block_s,
        clock=clock,
        threads=threads,
        timing=timing,
    )
    configs = op_configs(space, archs)
    ops: dict[str, float] = {}
    stats: dict[str, dict[str, float]] = {}
    for i, (key, spec) in enumerate(configs.items(), start=1):
        with torch.random.fork_rng(devices=[]):  # weight init must not move the global RNG
            module = spec.build()
        m = measure_latency(
            module,
            spec.input_shape,
            backend=backend,
            batch=batch,
            threads=threads,
            warmup=warmup,
            repeats=repeats,
            min_block_s=min_block_s,
            clock=clock,
            timing=timing,
        )
        if not math.isfinite(m.median_ms):
            raise DataError(f"measuring op {key!r} gave {m.median_ms} ms")
        ops[key] = m.median_ms
        stats[key] = {"iqr_ms": m.iqr_ms, "cv": m.cv, "n_samples": float(m.n_samples)}
        if progress is not None:
            progress(i, len(configs))
    return LatencyLUT(
        space=space, ops=ops, fingerprint=fingerprint, batch=batch, clock=clock, op_stats=stats
    )
