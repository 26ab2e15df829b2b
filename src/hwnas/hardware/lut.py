"""Per-operator latency lookup tables (ProxylessNAS / FBNet style), for any space.

A space-specific *decomposer*, registered under the space's name, lists the operator
configurations a network is made of: ``(key, input shape, module factory)`` per occurrence, where
the key names everything the op's latency depends on (op, channels, stride, feature-map size).
:func:`build_lut` measures each distinct configuration once; :meth:`LatencyLUT.predict` sums the
table over a network's ops and adds a fitted constant for the glue the ops leave out (node sums,
Python dispatch between modules), optionally with a fitted scale.

Example:
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> arch = space.from_string(
    ...     "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    >>> len(decompose(space, arch)), len(op_configs(space))
    (94, 19)
"""

from __future__ import annotations

import inspect
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError, DataError, require_torch
from hwnas.hardware.fingerprint import DeviceFingerprint, device_fingerprint
from hwnas.hardware.measured import (
    DEFAULT_MIN_BLOCK_S,
    DEFAULT_REPEATS,
    DEFAULT_WARMUP,
    Progress,
    check_measure_options,
    measure_latency,
)
from hwnas.registry import Registry
from hwnas.spaces.base import CategoricalSpace

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

LUT_FORMAT = "hwnas-latency-lut"
LUT_VERSION = 1


@dataclass(frozen=True)
class OpSpec:
    """One operator occurrence: its table key, one sample's input shape, and a module factory."""

    key: str
    input_shape: tuple[int, ...]
    build: Callable[[], Any]


Decomposer = Callable[["SearchSpace", "Arch"], list[OpSpec]]
DECOMPOSERS: Registry[list[OpSpec]] = Registry("LUT decomposer")


def register_decomposer(space_name: str) -> Callable[[Decomposer], Decomposer]:
    """Register ``fn(space, arch) -> list[OpSpec]`` as the decomposer of a space."""
    return DECOMPOSERS.register(space_name)


def decompose(space: SearchSpace, arch: Arch) -> list[OpSpec]:
    """Every operator occurrence of ``arch``'s network, in execution order."""
    if space.name not in DECOMPOSERS:
        raise ConfigError(
            f"space {space.name!r} has no LUT decomposer (spaces with one: "
            f"{', '.join(DECOMPOSERS.names())}); register one with "
            "hwnas.hardware.lut.register_decomposer"
        )
    return DECOMPOSERS.get(space.name)(space, arch)


def covering_archs(space: SearchSpace) -> list[Arch]:
    """Architectures that together use every choice of every slot of a categorical space.

    Enough to meet every op configuration when an op's configuration depends only on its slot
    and choice (true of NB201 and FBNet); other spaces pass their own ``archs`` to
    :func:`build_lut`.
    """
    if not isinstance(space, CategoricalSpace):
        raise ConfigError(
            f"space {space.name!r} is not categorical; pass the archs whose ops the LUT must cover"
        )
    width = max(len(choices) for choices in space.slots)
    return [{"ops": [c[k % len(c)] for c in space.slots]} for k in range(width)]


def op_configs(space: SearchSpace, archs: Sequence[Arch] | None = None) -> dict[str, OpSpec]:
    """The distinct op configurations (key -> spec) of ``archs`` (default: the whole space)."""
    out: dict[str, OpSpec] = {}
    for arch in covering_archs(space) if archs is None else archs:
        for spec in decompose(space, arch):
            out.setdefault(spec.key, spec)
    return out


def space_options(space: SearchSpace) -> dict[str, Any]:
    """The keyword options of ``space``'s constructor that it keeps as same-named attributes."""
    params = inspect.signature(type(space).__init__).parameters
    return {
        name: getattr(space, name)
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and hasattr(space, name)
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
    backend: str = "torch",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
    archs: Sequence[Arch] | None = None,
    progress: Progress | None = None,
) -> LatencyLUT:
    """Measure every distinct op configuration of ``space`` once and return the table.

    Args:
        space: a space with a registered decomposer.
        archs: cover the ops of these archs only (default: every op of a categorical space).
        progress: called as ``progress(done, total)`` after each op.
        backend, batch, threads, warmup, repeats, min_block_s, clock: as in
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


# -- decomposers ----------------------------------------------------------------------------------
# Module factories import torch lazily, so decomposing (and predicting) needs no torch.
def _nb201_part(kind: str, c: int, extra: Any = None) -> Any:
    from torch import nn

    from hwnas.spaces import nb201_torch

    if kind == "stem":  # as NB201Network.stem
        return nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    if kind == "edge":
        return nb201_torch._edge_op(extra, c)
    if kind == "reduction":
        return nb201_torch._ResNetReduction(c, 2 * c)
    # head: lastact, pool, flatten, classifier
    return nn.Sequential(
        nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c, extra)
    )


def _fbnet_part(kind: str, *args: Any) -> Any:
    from torch import nn

    from hwnas.hardware.analytic import FBNET_HEAD_CHANNELS
    from hwnas.spaces import fbnet_torch

    if kind == "stem":
        return nn.Sequential(*fbnet_torch._conv_bn(3, args[0], 3))
    if kind == "layer":
        return fbnet_torch._layer(*args)
    c_in, n_cls = args  # head: 1x1 conv + BN + ReLU, pool, flatten, classifier
    return nn.Sequential(
        *fbnet_torch._conv_bn(c_in, FBNET_HEAD_CHANNELS, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(FBNET_HEAD_CHANNELS, n_cls),
    )


def _hw(shape: Sequence[int]) -> str:
    return f"{shape[-2]}x{shape[-1]}"


@register_decomposer("nb201")
def nb201_ops(space: SearchSpace, arch: Arch) -> list[OpSpec]:
    """NB201 (C=16, N=5): stem, 6 edge ops x 5 cells x 3 stages, 2 reductions, head.

    ``none`` edges are listed too: the network computes them (``torch.zeros_like``). The node sums
    and the reductions' residual additions are the same for every cell and fall into the glue.
    """
    from hwnas.spaces.nb201 import NB201Space

    assert isinstance(space, NB201Space)
    ops = space.validate(arch)["ops"]
    c, n, size, n_cls = 16, 5, space.input_size, space.num_classes  # as build_network
    shape: tuple[int, ...] = (3, size, size)
    out = [OpSpec(f"nb201/stem:c3-{c}:{_hw(shape)}", shape, partial(_nb201_part, "stem", c))]
    for stage in range(3):
        if stage > 0:
            shape = (c, size, size)
            key = f"nb201/reduction:c{c}-{2 * c}:{_hw(shape)}"
            out.append(OpSpec(key, shape, partial(_nb201_part, "reduction", c)))
            c, size = 2 * c, size // 2
        shape = (c, size, size)
        edges = [
            OpSpec(f"nb201/edge:{op}:c{c}:{_hw(shape)}", shape, partial(_nb201_part, "edge", c, op))
            for op in ops
        ]
        out += edges * n
    key = f"nb201/head:c{c}:{_hw(shape)}:n{n_cls}"
    out.append(OpSpec(key, shape, partial(_nb201_part, "head", c, n_cls)))
    return out


@register_decomposer("fbnet")
def fbnet_ops(space: SearchSpace, arch: Arch) -> list[OpSpec]:
    """FBNet (HW-NAS-Bench CIFAR network): stem, the 22 layers' blocks, 1x1 head conv + classifier.

    A layer's key is (block, C_in, C_out, stride, input size); residual additions are inside the
    blocks, so only the Python dispatch between modules is left to the glue.
    """
    from hwnas.hardware.analytic import FBNET_HEAD_CHANNELS, FBNET_STEM_CHANNELS, fbnet_layer_plan
    from hwnas.spaces.fbnet import FBNetSpace

    assert isinstance(space, FBNetSpace)
    ops = space.validate(arch)["ops"]
    c, size, n_cls = FBNET_STEM_CHANNELS, space.input_size, space.num_classes
    shape: tuple[int, ...] = (3, size, size)
    out = [OpSpec(f"fbnet/stem:c3-{c}:{_hw(shape)}", shape, partial(_fbnet_part, "stem", c))]
    for op, (c_in, c_out, stride) in zip(ops, fbnet_layer_plan(), strict=True):
        shape = (c_in, size, size)
        key = f"fbnet/layer:{op}:c{c_in}-{c_out}:s{stride}:{_hw(shape)}"
        out.append(OpSpec(key, shape, partial(_fbnet_part, "layer", op, c_in, c_out, stride)))
        size, c = (size - 1) // stride + 1, c_out
    shape = (c, size, size)
    key = f"fbnet/head:c{c}-{FBNET_HEAD_CHANNELS}:{_hw(shape)}:n{n_cls}"
    out.append(OpSpec(key, shape, partial(_fbnet_part, "head", c, n_cls)))
    return out
