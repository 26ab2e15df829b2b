"""The ``measured`` evaluator: metric names, cache keys, and no second measurement via the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwnas import ConfigError, Objective, Study, create_space
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.measured import MeasuredLatency
from hwnas.hardware import measured
from hwnas.hardware.measured import Measurement
from hwnas.spaces import NB201Space
from hwnas.storage.cache import EvaluationCache

pytest.importorskip("torch")


@pytest.fixture()
def ctx() -> EvaluatorContext:
    return EvaluatorContext(space=create_space("nb201"))


def _fake_measure(calls: list[str]):  # type: ignore[no-untyped-def]
    def measure_arch(space, arch, **opts):  # type: ignore[no-untyped-def]
        s = space.to_string(arch)
        calls.append(s)
        ms = 1.0 + sum(op.startswith("nor_conv") for op in arch["ops"])
        return Measurement(
            ms,
            0.2,
            ms - 0.1,
            ms + 0.1,
            0.05,
            opts["repeats"],
            1,
            opts["backend"],
            opts["batch"],
            opts["threads"],
        )

    return measure_arch


def test_metrics_and_values(ctx: EvaluatorContext, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(measured, "measure_arch", _fake_measure(calls))
    ev = create_evaluator("measured", ctx, device="laptop", repeats=4)
    assert ev.metrics() == ("latency_ms@laptop", "latency_iqr_ms@laptop", "latency_cv@laptop")
    assert ev.expensive and ev.cacheable
    got = ev.evaluate({"ops": ["nor_conv_3x3"] * 2 + ["none"] * 4})
    assert got == {
        "latency_ms@laptop": 3.0,
        "latency_iqr_ms@laptop": 0.2,
        "latency_cv@laptop": 0.05,
    }


def test_key_names_fingerprint_backend_batch_threads(ctx: EvaluatorContext) -> None:
    base = MeasuredLatency(context=ctx)
    assert base.key() == MeasuredLatency(context=ctx, repeats=30).key()  # precision, not identity
    assert base.key().startswith(f"measured:{base.fingerprint.key()}:onnxruntime:b1:t1")
    variants = [
        MeasuredLatency(context=ctx, backend="torch"),
        MeasuredLatency(context=ctx, batch=8),
        MeasuredLatency(context=ctx, device="other"),
        MeasuredLatency(context=ctx, clock="cpu"),
    ]
    import os

    if (os.cpu_count() or 1) >= 2:
        variants.append(MeasuredLatency(context=ctx, threads=2))
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == 1 + len(variants)


def test_bad_options_fail_with_one_clear_line(ctx: EvaluatorContext) -> None:
    with pytest.raises(ConfigError, match="measured: unknown latency backend 'pytorch'; did you"):
        create_evaluator("measured", ctx, backend="pytorch")
    with pytest.raises(
        ConfigError, match="evaluator 'measured' has no option 'thread'; did you mean 'threads'"
    ):
        create_evaluator("measured", ctx, thread=1)
    with pytest.raises(ConfigError, match="measured: batch must be an integer >= 1"):
        create_evaluator("measured", ctx, batch=0)
    with pytest.raises(ConfigError, match="measured: device must be a non-empty name"):
        create_evaluator("measured", ctx, device="my cpu")

    class NoBuilder(NB201Space):
        @property
        def input_shape(self) -> tuple[int, ...]:
            raise NotImplementedError

    with pytest.raises(ConfigError, match="space 'nb201' cannot build PyTorch networks"):
        create_evaluator("measured", EvaluatorContext(space=NoBuilder()))


def test_a_second_study_measures_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(measured, "measure_arch", _fake_measure(calls))
    space = create_space("nb201")
    cache_path = tmp_path / "cache.db"

    def run_study() -> Study:
        ev = create_evaluator("measured", EvaluatorContext(space=space), repeats=3)
        study = Study(
            space=space,
            evaluators=[ev],
            objectives=[Objective("latency_ms@local", "minimize")],
            seed=3,
            cache=EvaluationCache(cache_path),
        )
        study.optimize(budget=6)
        return study

    first = run_study()
    assert len(calls) == 6 and len(set(calls)) == 6
    measured_first = list(calls)
    # Same seed, same six archs: all served by the cache, nothing measured again; they still
    # count against the budget (the cache saves time, it never changes the search).
    second = run_study()
    assert [t.arch for t in second.trials] == measured_first
    assert [t.metrics for t in second.trials] == [t.metrics for t in first.trials]
    assert all(t.charged and t.cached for t in second.trials)
    assert calls == measured_first
    assert len(EvaluationCache(cache_path)) == 6
    # Another thread count, batch or backend is another measurement.
    other = create_evaluator("measured", EvaluatorContext(space=space), batch=2)
    assert EvaluationCache(cache_path).get(other.key(), first.trials[0].arch) is None


@pytest.mark.torch
def test_a_real_measurement(ctx: EvaluatorContext) -> None:
    ev = create_evaluator("measured", ctx, warmup=1, repeats=3, min_block_s=0.001)
    got = ev.evaluate({"ops": ["none"] * 6})
    assert got["latency_ms@local"] > 0 and got["latency_cv@local"] >= 0


def test_what_deploys_is_the_default_and_other_settings_have_their_own_names(
    ctx: EvaluatorContext,
) -> None:
    import os

    default = create_evaluator("measured", ctx)
    assert default.backend == "onnxruntime"
    assert default.metrics()[0] == "latency_ms@local"
    assert "ONNX Runtime on this CPU, batch 1, 1 thread, wall clock, ms" in default.describe()
    eager = create_evaluator("measured", ctx, backend="torch")
    assert eager.metrics()[0] == "latency_ms@local-torch"
    assert "PyTorch eager" in eager.describe()
    cores = len(os.sched_getaffinity(0))
    wide = create_evaluator("measured", ctx, batch=8, threads="all")
    assert wide.threads == cores
    assert wide.metrics()[0] == (
        f"latency_ms@local-b8-t{cores}" if cores > 1 else "latency_ms@local-b8-t1"
    )
    assert create_evaluator("measured", ctx, batch=1, threads=1).metrics()[0] == "latency_ms@local"
    with pytest.raises(ConfigError, match=r"threads must be a whole number or 'all', got 'many'"):
        create_evaluator("measured", ctx, threads="many")
