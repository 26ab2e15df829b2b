"""The ``measured`` evaluator: latency of each architecture's network on this machine's CPU.

Results are cacheable across studies: the key names the device fingerprint (CPU, cores, library
versions), the backend, the batch size and the thread count, so a study sharing an evaluation
cache never measures the same network under the same conditions twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwnas.errors import ConfigError, require_torch
from hwnas.evaluation.base import Evaluator, EvaluatorContext
from hwnas.hardware import measured
from hwnas.hardware.fingerprint import (
    check_backend,
    device_fingerprint,
    local_target,
    resolve_threads,
)

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch


class MeasuredLatency(Evaluator):
    """Measure ``latency_ms@<target>`` (median), its IQR and its CV on the local CPU.

    What deploys is measured by default: the network exported to ONNX and run by ONNX Runtime
    (``latency_ms@local``). PyTorch eager is available under its own name
    (``latency_ms@local-torch``): most of an eager figure is framework overhead, and eager and
    ONNX Runtime latencies rank networks differently (``docs/BENCHMARKS.md``). Other batch sizes
    and thread counts get their own names too (``latency_ms@local-b8-t2``), so one study can
    carry several: add one ``measured`` entry per setting.

    Args:
        backend: ``onnxruntime`` (default) or ``torch`` (eager PyTorch).
        batch: batch size of the timed forward pass.
        threads: intra-op threads, pinned while measuring; ``all`` for every core.
        device: the target in the metric names (default from backend, batch and threads, see
            :func:`hwnas.hardware.fingerprint.local_target`).
        warmup: untimed runs before timing.
        repeats: timed blocks per measurement (at least 3).
        min_block_s: the shortest timed block in seconds.
        clock: ``wall`` (elapsed time) or ``cpu`` (CPU time of the measuring thread, for
            ``threads: 1`` on a shared machine: it leaves out time spent waiting for others).
        timing: ``blocks`` or ``interleaved`` (alternating with a fixed reference network,
            against a machine whose speed drifts: :mod:`hwnas.hardware.reference`).
        context: the space and folders (given by the study builder).

    Example (config)::

        evaluators:
          - measured: {}                              # latency_ms@local
          - measured: {batch: 8, threads: all}        # latency_ms@local-b8-t2 on 2 cores
        objectives:
          - {metric: latency_ms@local, direction: minimize}
    """

    expensive = True
    cacheable = True
    shares_machine_badly = True  # two measurements at once on one CPU slow each other down

    def __init__(
        self,
        *,
        backend: str = "onnxruntime",
        batch: int = 1,
        threads: int | str = 1,
        device: str | None = None,
        warmup: int = measured.DEFAULT_WARMUP,
        repeats: int = measured.DEFAULT_REPEATS,
        min_block_s: float = measured.DEFAULT_MIN_BLOCK_S,
        clock: str = "wall",
        timing: str = "blocks",
        context: EvaluatorContext,
    ) -> None:
        try:
            check_backend(backend)
            threads = resolve_threads(threads)
            measured.check_measure_options(
                batch=batch,
                warmup=warmup,
                repeats=repeats,
                min_block_s=min_block_s,
                clock=clock,
                threads=threads,
                timing=timing,
            )
        except ConfigError as exc:
            raise ConfigError(f"measured: {exc}") from None
        if device is None:
            device = local_target(backend, batch, threads)
        if not isinstance(device, str) or not device or any(ch in device for ch in " @:\t\n"):
            raise ConfigError(
                f"measured: device must be a non-empty name without spaces, '@' or ':', "
                f"got {device!r}"
            )
        require_torch("the 'measured' evaluator")
        self.space = context.space
        try:
            self.input_shape = tuple(self.space.input_shape)
        except NotImplementedError:
            raise ConfigError(
                f"measured: space {self.space.name!r} cannot build PyTorch networks, "
                "so there is nothing to measure"
            ) from None
        self.backend = backend
        self.batch = batch
        self.threads = threads
        self.device = device
        self.warmup = warmup
        self.repeats = repeats
        self.min_block_s = float(min_block_s)
        self.clock = clock
        self.timing = timing
        self.fingerprint = device_fingerprint(backend=backend, threads=threads)

    def metrics(self) -> tuple[str, ...]:
        d = self.device
        return (f"latency_ms@{d}", f"latency_iqr_ms@{d}", f"latency_cv@{d}")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        m = measured.measure_arch(
            self.space,
            arch,
            backend=self.backend,
            batch=self.batch,
            threads=self.threads,
            warmup=self.warmup,
            repeats=self.repeats,
            min_block_s=self.min_block_s,
            clock=self.clock,
            timing=self.timing,
        )
        return dict(zip(self.metrics(), (m.median_ms, m.iqr_ms, m.cv)))

    def describe(self) -> str:
        backend = "ONNX Runtime" if self.backend == "onnxruntime" else "PyTorch eager"
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return (
            f"latency_ms@{self.device}: {backend} on this CPU, batch {self.batch}, {threads}, "
            f"{self.clock} clock, ms per forward pass ("
            + (
                f"median of {self.repeats} timed blocks"
                if self.timing == "blocks"
                else "timed against a reference network"
            )
            + "; IQR and CV beside it)"
        )

    def key(self) -> str:
        # CPU time is another quantity than elapsed time; the device label is part of the key
        # because the cache stores metric names with it.
        # The space and its options (classes, input size) change the network an arch string
        # names, so they are part of the key too.
        from hwnas.hardware.lut import space_options

        clock = "" if self.clock == "wall" else f":{self.clock}"
        if self.timing != "blocks":
            clock += f":{self.timing}"
        opts = ",".join(f"{k}={v}" for k, v in sorted(space_options(self.space).items()))
        return (
            f"measured:{self.fingerprint.key()}:{self.backend}:b{self.batch}:t{self.threads}"
            f"{clock}@{self.device}:{self.space.name}({opts})"
        )
