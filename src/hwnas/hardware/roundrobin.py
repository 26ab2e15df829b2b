"""Round-robin timing of a set of networks: every network sees the same machine.

Timing networks one after another gives each its own stretch of machine time; on a shared virtual
machine whose speed drifts and stalls, a network timed during a slow stretch is slower, and a
predictor trained on such labels learns the stretch, not the network
(``benchmarks/results/kernel_features.md``: one NB201 network read 0.78 ms in a calibration and
0.57 ms when timed beside its peers). :func:`measure_set` builds every network of a chunk (up to
:data:`CHUNK` at a time) and the fixed reference network of :mod:`hwnas.hardware.reference`, then
times them in ``rounds`` rounds; in each round every network runs one short mini-block, in a
fresh random order. Then:

1. each round's *speed* is the median, over the networks, of the network's time in that round
   over its median time: a stall or a drift moves every network of the round alike, and dividing
   by the round's speed removes it;
2. a network's latency is the median over rounds of its speed-corrected times;
3. with ``copies`` > 1 (the default for PyTorch eager) each network is built and timed that many
   times and the copies' samples are pooled, so the memory layout one build happens to get does
   not decide its latency;
4. the set is put on this machine's scale through the reference network (5 copies): latency /
   reference latency of this chunk x the stored reference latency (measured once per machine and
   settings, :func:`~hwnas.hardware.reference.machine_reference_ms`), so chunks, passes and
   processes share one scale;
5. PyTorch eager networks are partly compute and partly per-call dispatch overhead, and the
   machine's speed for the two can move differently (an NB201 cell of skips: 2.7 ms eager,
   0.006 ms in ONNX Runtime). So eager chunks are also timed beside an overhead-bound reference
   (:func:`~hwnas.hardware.reference.overhead_module`, 5 copies), and each network's scale is
   ``compute_scale ** (1 - f) * overhead_scale ** f``, ``f`` its share of overhead: its torch
   function calls per forward pass times the overhead reference's time per call, over its own
   time (at most 1). Chosen on ``benchmarks/results/eager_reference_pilot*.md``: on 60 NB201 and
   60 FBNet networks in four repeats, and on 120 held-out ones, it agreed across processes at
   least as well as the compute reference alone in every comparison on the same timings.

A single network (a search's ``measured`` evaluator) is timed with ``blocks`` or ``interleaved``;
this is for sets: calibration, the noise floor.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import require_torch

if TYPE_CHECKING:
    from hwnas.hardware.measured import Measurement
    from hwnas.spaces.base import Arch, SearchSpace

CHUNK = 64  # networks built and timed together (memory: each holds its weights and arena)
DEFAULT_ROUNDS = 25
# Copies of each network built and timed (samples pooled). A network's speed depends on where its
# tensors land in memory, which differs between processes; in PyTorch eager that is the largest
# term of a second process's disagreement (docs/BENCHMARKS.md section 8.2), and averaging over
# a few separately built copies removes it. ONNX Runtime agrees across processes with one copy.
DEFAULT_COPIES = {"torch": 3, "onnxruntime": 1}
# Backends whose chunks are scaled by the compute and the overhead reference (point 5 above).
MIXED_SCALE = frozenset({"torch"})
# Copies of the reference network: its median sets the scale of a whole chunk, so its own layout
# luck must not move every network of the chunk.
REFERENCE_COPIES = 5
ROUND_MINI_BLOCK_S = 0.005


def measure_set(
    space: SearchSpace,
    archs: Sequence[Arch],
    *,
    backend: str = "onnxruntime",
    batch: int = 1,
    threads: int = 1,
    warmup: int = 5,
    rounds: int | None = None,
    mini_block_s: float | None = None,
    copies: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[Measurement]:
    """Round-robin latencies of ``archs`` (see the module docstring), in their order.

    ``rounds`` (default :data:`DEFAULT_ROUNDS`) and ``mini_block_s`` (default
    :data:`ROUND_MINI_BLOCK_S`) set the timing; ``copies`` (default :data:`DEFAULT_COPIES` of the
    backend) builds each network, and the reference, that many times and pools their samples;
    ``progress(done)`` is called after each chunk.
    """
    rounds = DEFAULT_ROUNDS if rounds is None else rounds
    mini_block_s = ROUND_MINI_BLOCK_S if mini_block_s is None else mini_block_s
    copies = DEFAULT_COPIES.get(backend, 1) if copies is None else copies
    require_torch("measuring latency")
    from hwnas.hardware.backends import pinned_threads

    with pinned_threads(threads):  # the exporter too: it crawls with threads on a busy machine
        return _measure_set(
            space,
            archs,
            backend,
            batch,
            threads,
            warmup,
            rounds,
            mini_block_s,
            copies,
            seed,
            progress,
        )


def _measure_set(
    space: SearchSpace,
    archs: Sequence[Arch],
    backend: str,
    batch: int,
    threads: int,
    warmup: int,
    rounds: int,
    mini_block_s: float,
    copies: int,
    seed: int,
    progress: Callable[[int], None] | None,
) -> list[Measurement]:
    from hwnas.hardware.measured import _warn_if_busy
    from hwnas.hardware.reference import machine_reference_ms, reference_runner

    n_refs = max(copies, REFERENCE_COPIES)
    refs = [reference_runner(backend=backend, batch=batch, threads=threads) for _ in range(n_refs)]
    ref_ms = machine_reference_ms(refs[0], backend=backend, batch=batch, threads=threads)
    overhead = None
    if backend in MIXED_SCALE:
        from hwnas.hardware.reference import OVERHEAD_INPUT, overhead_module, torch_calls

        kind = "overhead"
        orefs = [
            reference_runner(backend=backend, batch=batch, threads=threads, kind=kind)
            for _ in range(REFERENCE_COPIES)
        ]
        refs += orefs
        overhead = OverheadScale(
            ms=machine_reference_ms(
                orefs[0], backend=backend, batch=batch, threads=threads, kind=kind
            ),
            calls=torch_calls(overhead_module(), OVERHEAD_INPUT),
            columns=len(orefs),
        )
    rng = np.random.default_rng(seed)
    out: list[Measurement] = []
    per_chunk = max(1, CHUNK // copies)
    for start in range(0, len(archs), per_chunk):
        chunk = archs[start : start + per_chunk]
        runs: list[Callable[[], object]] = []
        calls: list[int] = []  # one per network, for the mixed scale only
        for a in chunk:
            for c in range(copies):
                count = overhead is not None and c == 0
                run, n = _arch_runner(
                    space, a, backend=backend, batch=batch, threads=threads, count=count
                )
                runs.append(run)
                if n is not None:
                    calls.append(n)
        times, share = time_rounds(
            [*runs, *refs], rounds=rounds, warmup=warmup, block_s=mini_block_s, rng=rng
        )
        del runs
        _warn_if_busy(share, clock="wall", threads=threads)
        out.extend(
            replace(m, cpu_share=share)
            for m in summarize_rounds(
                times,
                ref_ms=ref_ms,
                backend=backend,
                batch=batch,
                threads=threads,
                copies=copies,
                ref_columns=n_refs,
                overhead=overhead,
                calls=calls,
            )
        )
        if progress is not None:
            progress(len(out))
    return out


def _arch_runner(
    space: SearchSpace, arch: Arch, *, backend: str, batch: int, threads: int, count: bool
) -> tuple[Callable[[], object], int | None]:
    """A runner of ``arch``'s network and, with ``count``, its torch calls per forward pass."""
    import torch

    from hwnas.hardware.kernels import arch_input_shape
    from hwnas.hardware.measured import _runner
    from hwnas.hardware.reference import torch_calls

    with torch.random.fork_rng(devices=[]):  # weight init must not move the global RNG
        net = space.build_network(arch)
    shape = arch_input_shape(space, arch)
    calls = torch_calls(net, shape) if count else None
    return _runner(net, shape, backend=backend, batch=batch, threads=threads), calls


@dataclass(frozen=True)
class OverheadScale:
    """The overhead-bound reference of a round-robin chunk: its stored latency (ms), its torch
    calls per forward pass and how many copies of it (the last columns) the chunk timed."""

    ms: float
    calls: int
    columns: int


def time_rounds(
    runs: Sequence[Callable[[], object]],
    *,
    rounds: int,
    warmup: int,
    block_s: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """``(rounds, len(runs))`` seconds per run: each round times every function for one
    mini-block of about ``block_s`` (the run count is found during warm-up), in a random order;
    and the timing thread's CPU time over the wall time (well below 1: a busy machine)."""
    counts = []
    for fn in runs:
        for _ in range(warmup):
            fn()
        t = time.perf_counter()
        fn()
        fn()
        one = max((time.perf_counter() - t) / 2, 1e-7)
        counts.append(max(1, int(block_s / one)))
    out = np.empty((rounds, len(runs)))
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.disable()
    wall, cpu = clock(), time.thread_time()
    try:
        for r in range(rounds):
            for i in rng.permutation(len(runs)):
                fn, k = runs[i], counts[i]
                t = clock()
                for _ in range(k):
                    fn()
                out[r, i] = (clock() - t) / k
    finally:
        if gc_was_enabled:
            gc.enable()
    share = (time.thread_time() - cpu) / max(clock() - wall, 1e-9)
    return out, share


def speed_corrected(times: np.ndarray) -> np.ndarray:
    """``times`` with each round divided by its speed: the median over columns of the column's
    time in that round over the column's median."""
    per_run = np.median(times, axis=0)
    speed = np.median(times / per_run, axis=1, keepdims=True)
    return times / speed


def summarize_rounds(
    times: np.ndarray,
    *,
    ref_ms: float,
    backend: str,
    batch: int,
    threads: int,
    copies: int = 1,
    ref_columns: int | None = None,
    overhead: OverheadScale | None = None,
    calls: Sequence[int] | None = None,
) -> list[Measurement]:
    """Measurements of a rounds matrix whose columns are ``copies`` consecutive copies of each
    network, then ``ref_columns`` (default ``copies``) copies of the reference network, then,
    with ``overhead``, its copies of the overhead reference; ``calls`` (one per network) are
    then the networks' torch calls per forward pass (module docstring, point 5)."""
    from hwnas.hardware.measured import summarize

    ref_columns = copies if ref_columns is None else ref_columns
    n_over = 0 if overhead is None else overhead.columns
    corrected = speed_corrected(times)
    end = times.shape[1] - n_over
    groups = (end - ref_columns) // copies
    scale_c = ref_ms / 1e3 / float(np.median(corrected[:, end - ref_columns : end]))
    if overhead is not None:
        if calls is None or len(calls) != groups:
            raise ValueError(f"summarize_rounds: need {groups} call counts, got {calls!r}")
        ref_o = float(np.median(corrected[:, end:]))
        scale_o = overhead.ms / 1e3 / ref_o
        per_call = ref_o / overhead.calls
    out = []
    for g in range(groups):
        cols = slice(g * copies, (g + 1) * copies)
        share, scale = math.nan, scale_c
        if overhead is not None and calls is not None:
            own = float(np.median(corrected[:, cols]))
            share = min(1.0, calls[g] * per_call / own)
            scale = scale_c ** (1 - share) * scale_o**share
        m = summarize(
            corrected[:, cols].ravel() * scale,
            runs_per_block=0,
            backend=backend,
            batch=batch,
            threads=threads,
        )
        out.append(
            replace(
                m,
                timing="round-robin",
                raw_median_ms=float(np.median(times[:, cols]) * 1e3),
                reference_ms=ref_ms,
                overhead_share=share,
            )
        )
    return out


def round_robin_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The options of :func:`measure_set` among a measurement options dict."""
    keys = ("backend", "batch", "threads", "warmup")
    return {k: opts[k] for k in keys if k in opts}
