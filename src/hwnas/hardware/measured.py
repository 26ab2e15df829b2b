"""Measured latency on the local CPU: PyTorch eager or ONNX Runtime, blocked timing, noise.

Each sample is the mean time of a *block* of consecutive runs lasting at least ``min_block_s``
(the idea of ``torch.utils.benchmark``'s ``blocked_autorange``), so that timer resolution and
per-call jitter average out inside a block; the spread between blocks is the noise reported with
the median (IQR and coefficient of variation). Threads are pinned for the measurement and the
previous setting restored; the garbage collector is paused while a block runs.

Two clocks: ``wall`` (``time.perf_counter``, the latency a user sees; the default) and ``cpu``
(``time.thread_time``, the CPU time of the calling thread). With one thread both backends compute
on the calling thread, so on a quiet machine the two agree; on a shared machine the CPU clock
leaves out the time the process waits while others run (on a busy shared 2-core VM, two passes
over 30 NB201 networks agreed far better with it than with the wall clock).

The backends' plumbing (thread pinning, ONNX export and sessions) is in
:mod:`hwnas.hardware.backends`; how well two measurements agree, in :mod:`hwnas.hardware.noise`.

Example:
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> m = measure_arch(space, space.from_string(
    ...     "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"),
    ...     repeats=3, min_block_s=0.002)
    >>> m.q25_ms <= m.median_ms <= m.q75_ms
    True
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError, require_torch
from hwnas.hardware.backends import export_onnx, onnx_session, pinned_threads
from hwnas.hardware.fingerprint import check_backend, check_threads
from hwnas.hardware.reference import MINI_BLOCK_S, measure_interleaved
from hwnas.registry import closest

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each finished measurement."""

DEFAULT_WARMUP = 5
DEFAULT_REPEATS = 15
DEFAULT_MIN_BLOCK_S = 0.02
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
TIMINGS = ("blocks", "interleaved", "round-robin")
SET_TIMINGS = ("round-robin",)  # time a set of networks together (calibration, noise floor)
BUSY_CPU_SHARE = 0.8  # below this, a one-thread wall-clock measurement waited for other processes
_busy_warned = False
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Measurement:
    """Latency of one network: statistics over per-run means of timed blocks, in milliseconds.

    ``cv`` is the coefficient of variation (std / mean) of the block samples: the noise of this
    measurement. ``min_ms`` is the fastest block, the estimate least touched by interference.
    ``runs_per_block`` is how many forward passes each sample averages. ``cpu_share`` is the
    measuring thread's CPU time over wall time: near 1 with one thread on a quiet machine, lower
    when the machine was busy (the wall-clock numbers are then unreliable).
    """

    median_ms: float
    iqr_ms: float
    q25_ms: float
    q75_ms: float
    cv: float
    n_samples: int
    runs_per_block: int
    backend: str
    batch: int
    threads: int
    min_ms: float = math.nan
    clock: str = "wall"
    cpu_share: float = math.nan
    timing: str = "blocks"
    raw_median_ms: float = math.nan  # interleaved timing: the network's own median, not rescaled
    reference_ms: float = math.nan  # interleaved timing: the stored reference latency used
    # round-robin eager timing: the network's share of dispatch overhead, the weight of the
    # overhead reference in its scale (hwnas.hardware.roundrobin)
    overhead_share: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_measure_options(
    *,
    batch: int,
    warmup: int,
    repeats: int,
    min_block_s: float,
    clock: str = "wall",
    threads: int = 1,
    timing: str = "blocks",
    sets: bool = False,
) -> None:
    """Raise :class:`ConfigError` naming the first invalid timing option (``sets``: the caller
    times a set of networks, so the set timings are allowed)."""
    if timing not in TIMINGS:
        raise ConfigError(f"unknown timing {timing!r}; {closest(str(timing), list(TIMINGS))}")
    if timing in SET_TIMINGS and not sets:
        raise ConfigError(
            f"timing {timing!r} times a set of networks together (hw calibrate, hw noise); "
            "for one network use 'interleaved' or 'blocks'"
        )
    if timing != "blocks" and clock != "wall":
        raise ConfigError(f"timing {timing!r} uses the wall clock; drop clock 'cpu'")
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r}; {closest(str(clock), list(CLOCKS))}")
    if clock == "cpu" and threads != 1:
        raise ConfigError(
            f"clock 'cpu' times the calling thread only, so it needs threads=1 (got {threads}); "
            "use clock 'wall' for several threads"
        )
    for name, value, low in (("batch", batch, 1), ("warmup", warmup, 0), ("repeats", repeats, 3)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if not isinstance(min_block_s, (int, float)) or not 0.0 < float(min_block_s) <= 10.0:
        raise ConfigError(
            f"min_block_s must be a number of seconds in (0, 10], got {min_block_s!r}"
        )


def block_samples(
    fn: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    min_block_s: float,
    clock: str = "wall",
) -> tuple[np.ndarray, int, float]:
    """Time ``repeats`` blocks of ``fn`` calls.

    The block length is found by doubling the number of runs until a block lasts ``min_block_s``
    on ``clock`` (these calibration blocks double as extra warm-up).

    Returns:
        Per-run seconds of each block on ``clock``, the runs per block, and the calling thread's
        CPU share: its CPU time over the wall time of all blocks (about 1 for a single-threaded
        run on an idle machine; lower when it waited for other processes).
    """
    wall, cpu = CLOCKS["wall"], CLOCKS["cpu"]

    def timed(number: int) -> tuple[float, float]:
        w0, c0 = wall(), cpu()
        for _ in range(number):
            fn()
        return wall() - w0, cpu() - c0

    pick = 0 if clock == "wall" else 1
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number = 1
        while True:
            elapsed = timed(number)[pick]
            if elapsed >= min_block_s or number >= 1 << 20:
                break
            # Aim a little past the target so that one more block usually suffices.
            guess = math.ceil(number * 1.2 * min_block_s / max(elapsed, 1e-9))
            number = min(max(2 * number, guess), 1 << 20)
        times = np.array([timed(number) for _ in range(repeats)])
    finally:
        if gc_was_enabled:
            gc.enable()
    share = float(times[:, 1].sum() / times[:, 0].sum()) if times[:, 0].sum() > 0 else math.nan
    return times[:, pick] / number, number, share


def summarize(
    samples_s: np.ndarray,
    *,
    runs_per_block: int,
    backend: str,
    batch: int,
    threads: int,
    clock: str = "wall",
    cpu_share: float = math.nan,
) -> Measurement:
    """Median, quartiles and CV of per-run block samples (seconds) as a :class:`Measurement`."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    q25, median, q75 = (float(v) for v in np.percentile(ms, [25, 50, 75]))
    mean = float(ms.mean())
    return Measurement(
        median_ms=median,
        iqr_ms=q75 - q25,
        q25_ms=q25,
        q75_ms=q75,
        cv=float(ms.std() / mean) if mean > 0 else 0.0,
        n_samples=len(ms),
        runs_per_block=runs_per_block,
        backend=backend,
        batch=batch,
        threads=threads,
        min_ms=float(ms.min()),
        clock=clock,
        cpu_share=cpu_share,
    )


def measure_latency(
    module: Any,
    input_shape: Sequence[int],
    *,
    backend: str = "onnxruntime",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
    timing: str = "blocks",
) -> Measurement:
    """Inference latency of a ``torch.nn.Module`` on this CPU.

    Args:
        module: the network; it is switched to eval mode.
        input_shape: one sample's shape without the batch dimension, e.g. ``(3, 32, 32)``.
        backend: ``"onnxruntime"`` (the default, what deploys: exported in memory, opset 17,
            all graph optimisations) or ``"torch"`` (eager, ``torch.inference_mode``).
        batch: batch size of the timed forward pass.
        threads: intra-op threads (pinned for the measurement, then restored).
        warmup: untimed runs before the calibration of the block length.
        repeats: number of timed blocks (samples), at least 3.
        min_block_s: the shortest block; each sample averages as many runs as fill it.
        clock: ``"wall"`` (elapsed time) or ``"cpu"`` (CPU time of the calling thread; needs
            ``threads=1``; immune to time spent waiting for other processes).
        timing: ``"blocks"`` (``repeats`` blocks of at least ``min_block_s``) or
            ``"interleaved"`` (short blocks alternating with a fixed reference network; the
            median ratio times this machine's stored reference latency: repeatable across
            processes on a machine whose speed drifts, see :mod:`hwnas.hardware.reference`).

    Returns:
        A :class:`Measurement` in milliseconds per forward pass of the whole batch.

    Raises:
        ConfigError: an invalid option.
        MissingExtraError: torch (or onnxruntime for that backend) is not installed.

    Example:
        >>> import torch
        >>> m = measure_latency(torch.nn.Conv2d(3, 8, 3), (3, 16, 16), repeats=3,
        ...                     min_block_s=0.001)
        >>> m.median_ms > 0
        True
    """
    check_backend(backend)
    check_threads(threads)
    check_measure_options(
        batch=batch,
        warmup=warmup,
        repeats=repeats,
        min_block_s=min_block_s,
        clock=clock,
        threads=threads,
        timing=timing,
    )
    require_torch("measuring latency")
    import torch

    module.eval()
    with pinned_threads(threads):
        run = _runner(module, input_shape, backend=backend, batch=batch, threads=threads)
        with torch.inference_mode():
            if timing == "interleaved":
                return measure_interleaved(
                    run,
                    backend=backend,
                    batch=batch,
                    threads=threads,
                    warmup=warmup,
                    pairs=max(repeats, math.ceil(repeats * min_block_s / MINI_BLOCK_S)),
                )
            samples, number, share = block_samples(
                run, warmup=warmup, repeats=repeats, min_block_s=min_block_s, clock=clock
            )
    _warn_if_busy(share, clock=clock, threads=threads)
    return summarize(
        samples,
        runs_per_block=number,
        backend=backend,
        batch=batch,
        threads=threads,
        clock=clock,
        cpu_share=share,
    )


def _runner(
    module: Any, input_shape: Sequence[int], *, backend: str, batch: int, threads: int
) -> Callable[[], object]:
    """One forward pass of ``module`` on a fixed random batch: eager (the module in eval mode,
    under ``torch.inference_mode``, whoever calls it) or in ONNX Runtime."""
    import torch

    if backend == "torch":
        gen = torch.Generator().manual_seed(0)  # leave the global RNG alone
        x = torch.randn(batch, *input_shape, generator=gen)
        module.eval()  # what deploys: BatchNorm on its running statistics, no autograd graph
        return partial(_inference, module, x)
    session = onnx_session(export_onnx(module, input_shape, batch=batch), threads=threads)
    x_np = np.random.default_rng(0).standard_normal((batch, *input_shape), dtype=np.float32)
    # An op whose output ignores the input values (zeros_like) exports without an input.
    return partial(session.run, None, {i.name: x_np for i in session.get_inputs()})


def _inference(module: Any, x: Any) -> object:
    import torch

    with torch.inference_mode():
        return module(x)


def _warn_if_busy(share: float, *, clock: str, threads: int) -> None:
    global _busy_warned
    if clock == "wall" and threads == 1 and share < BUSY_CPU_SHARE and not _busy_warned:
        _busy_warned = True  # once per process: every later measurement would say the same
        log.warning(
            "the machine is busy: the measuring thread ran only %.0f%% of the wall time, so "
            "wall-clock latencies are noisy; measure on a quiet machine or with clock='cpu'",
            100 * share,
        )


def measure_arch(
    space: SearchSpace,
    arch: Arch,
    *,
    backend: str = "onnxruntime",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
    timing: str = "blocks",
) -> Measurement:
    """Build ``space.build_network(arch)`` and measure it on inputs of the arch's shape
    (:func:`~hwnas.hardware.kernels.arch_input_shape`).

    Options as in :func:`measure_latency`.
    """
    require_torch("measuring latency")
    import torch

    with torch.random.fork_rng(devices=[]):  # weight init must not move the global RNG
        net = space.build_network(arch)
    from hwnas.hardware.kernels import arch_input_shape

    return measure_latency(
        net,
        arch_input_shape(space, arch),
        backend=backend,
        batch=batch,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        min_block_s=min_block_s,
        clock=clock,
        timing=timing,
    )
