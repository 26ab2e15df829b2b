"""Per-op latency LUTs: decompositions cover every FLOP and parameter, fitting, JSON, building."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import ConfigError, DataError
from hwnas.hardware import lut as lut_mod
from hwnas.hardware.lut import LatencyLUT, build_lut
from hwnas.hardware.lut_ops import OpSpec, decompose, op_configs
from hwnas.hardware.measured import Measurement
from hwnas.spaces import FBNetSpace, NB201Space
from hwnas.spaces.fbnet_cost import fbnet_params_flops
from hwnas.spaces.nb201_cost import nb201_params_flops

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Single ops run fastest on one thread; two stall on a busy 2-core runner.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _op_costs(specs: dict[str, OpSpec]) -> dict[str, tuple[float, int]]:
    """MACs and parameters of each op config, counted by running it on its input shape.

    Forward hooks on every conv and linear count ``output elements x (C_in / groups) x kernel
    area`` (torch.utils.flop_counter / 2, without its multi-second first import).
    """
    macs = 0

    def count(module, inputs, output) -> None:  # type: ignore[no-untyped-def]
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.numel() * module.in_channels // module.groups * kh * kw
        else:
            macs += output.numel() * module.in_features

    out = {}
    for key, spec in specs.items():
        module = spec.build().eval()
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.register_forward_hook(count)
        macs = 0
        with torch.inference_mode():
            module(torch.zeros(1, *spec.input_shape))
        out[key] = (float(macs), sum(p.numel() for p in module.parameters()))
    return out


def _check_covers_network(space, archs, analytic) -> None:  # type: ignore[no-untyped-def]
    costs = _op_costs(op_configs(space, archs))
    for arch in archs:
        counts = Counter(spec.key for spec in decompose(space, arch))
        macs = sum(n * costs[k][0] for k, n in counts.items())
        params = sum(n * costs[k][1] for k, n in counts.items())
        want_params, want_flops = analytic(arch["ops"])
        assert macs / 1e6 == pytest.approx(want_flops, rel=1e-12), space.to_string(arch)
        assert params / 1e6 == pytest.approx(want_params, rel=1e-12), space.to_string(arch)


def test_nb201_decomposition_covers_every_flop_and_parameter(rng: np.random.Generator) -> None:
    space = NB201Space()
    archs = [space.sample(rng) for _ in range(6)] + [{"ops": ["nor_conv_3x3"] * 6}]
    _check_covers_network(space, archs, nb201_params_flops)
    assert len(op_configs(space)) == 19  # stem, 5 ops x 3 stages, 2 reductions, head
    assert len(decompose(space, archs[0])) == 1 + 6 * 5 * 3 + 2 + 1


def test_nb201_decomposition_follows_space_options() -> None:
    space = NB201Space(num_classes=120, input_size=16)
    keys = [s.key for s in decompose(space, {"ops": ["nor_conv_1x1"] * 6})]
    assert keys[0] == "nb201/stem:c3-16:16x16" and keys[-1] == "nb201/head:c64:4x4:n120"
    assert "nb201/edge:nor_conv_1x1:c32:8x8" in keys
    # channels, cells and input channels as the space builds the network
    small = NB201Space(channels=8, cells=2, in_channels=1, input_size=16, num_classes=7)
    arch = {"ops": ["nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "avg_pool_3x3", "none"]}
    specs = decompose(small, arch)
    assert specs[0].key == "nb201/stem:c1-8:16x16" and specs[-1].key == "nb201/head:c32:4x4:n7"
    assert len(specs) == 1 + 6 * 2 * 3 + 2 + 1
    parts = sum(p.numel() for s in specs for p in s.build().parameters())
    assert parts == sum(p.numel() for p in small.build_network(arch).parameters())


def test_fbnet_decomposition_covers_every_flop_and_parameter(rng: np.random.Generator) -> None:
    space = FBNetSpace()
    archs = [space.sample(rng) for _ in range(2)] + [{"ops": ["skip"] * 22}]
    _check_covers_network(space, archs, fbnet_params_flops)
    assert len(op_configs(space)) == 110  # stem, 12 layer shapes x 9 blocks, head
    assert len(decompose(space, archs[0])) == 24


def _synthetic_lut(space: NB201Space, seed: int = 0) -> LatencyLUT:
    keys = sorted(op_configs(space))
    values = np.random.default_rng(seed).uniform(0.01, 1.0, len(keys))
    return LatencyLUT(space=space, ops=dict(zip(keys, values.tolist())))


def test_prediction_is_the_op_sum_plus_glue() -> None:
    space = NB201Space()
    table = _synthetic_lut(space)
    arch = {"ops": ["nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "none"]}
    want = sum(table.ops[s.key] for s in decompose(space, arch))
    assert table.predict(arch) == pytest.approx(want)
    table.glue_ms, table.scale = 2.0, 0.5
    assert table.predict(arch) == pytest.approx(0.5 * want + 2.0)


def test_fit_glue_recovers_a_known_constant_and_scale(rng: np.random.Generator) -> None:
    space = NB201Space()
    table = _synthetic_lut(space)
    archs = [space.sample(rng) for _ in range(20)]
    sums = np.array([table.op_sum(a) for a in archs])
    assert table.fit_glue(archs, sums + 3.7) == pytest.approx((3.7, 1.0))
    assert table.predict(archs[0]) == pytest.approx(sums[0] + 3.7)
    glue, scale = table.fit_glue(archs, 1.3 * sums + 2.0, scale=True)
    assert (glue, scale) == pytest.approx((2.0, 1.3))
    with pytest.raises(ConfigError, match="as many measurements as archs"):
        table.fit_glue(archs, [1.0])
    with pytest.raises(ConfigError, match="at least 2 different op sums"):
        table.fit_glue(archs[:1], [1.0], scale=True)


def test_json_round_trip_gives_identical_predictions(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    from hwnas.hardware.fingerprint import device_fingerprint

    space = NB201Space(num_classes=100)
    table = _synthetic_lut(space)
    table.fingerprint = device_fingerprint(backend="torch", threads=1)
    table.clock = "cpu"
    table.fit_glue([space.sample(rng) for _ in range(5)], [10.0, 12.0, 9.0, 11.0, 15.0], scale=True)
    path = tmp_path / "lut" / "nb201.json"
    table.to_json(path)
    back = LatencyLUT.from_json(path)
    assert back.space.name == "nb201" and back.space.num_classes == 100  # type: ignore[attr-defined]
    assert back.fingerprint == table.fingerprint and back.ops == table.ops and back.clock == "cpu"
    archs = [space.sample(rng) for _ in range(50)]
    assert np.array_equal(back.predict_many(archs), table.predict_many(archs))
    assert json.loads(path.read_text())["format"] == "hwnas-latency-lut"
    with pytest.raises(ConfigError, match="is a LUT for space 'nb201', not 'fbnet'"):
        LatencyLUT.from_json(path, space=FBNetSpace())


def test_bad_files_and_missing_ops_fail_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="is not an hwnas latency LUT"):
        LatencyLUT.from_json(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read latency LUT"):
        LatencyLUT.from_json(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(
        '{"format": "hwnas-latency-lut", "version": 1, "space": "nb201"}'
    )
    with pytest.raises(DataError, match="malformed latency LUT"):
        LatencyLUT.from_json(tmp_path / "z.json")
    small = _synthetic_lut(NB201Space())
    with pytest.raises(DataError, match="no entry for op 'nb201/stem:c3-16:8x8'"):
        LatencyLUT(space=NB201Space(input_size=8), ops=small.ops).predict(
            {"ops": ["nor_conv_3x3"] * 6}
        )


def test_build_lut_measures_each_distinct_op_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []

    def fake_measure(module, input_shape, **opts):  # type: ignore[no-untyped-def]
        seen.append(tuple(input_shape))
        ms = float(np.prod(input_shape)) / 1e4
        return Measurement(ms, 0.0, ms, ms, 0.0, 3, 1, opts["backend"], opts["batch"], 1)

    monkeypatch.setattr(lut_mod, "measure_latency", fake_measure)
    space = NB201Space()
    progress: list[tuple[int, int]] = []
    table = build_lut(space, batch=2, progress=lambda d, t: progress.append((d, t)))
    assert len(seen) == 19 and progress[-1] == (19, 19)
    assert table.batch == 2 and table.fingerprint is not None and table.fingerprint.threads == 1
    arch = {"ops": ["avg_pool_3x3"] * 6}
    want = sum(float(np.prod(s.input_shape)) / 1e4 for s in decompose(space, arch))
    assert table.predict(arch) == pytest.approx(want)


@pytest.mark.torch
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_build_lut_really_measures_the_ops_of_given_archs(backend: str) -> None:
    space = NB201Space(input_size=16)
    arch = {"ops": ["none", "skip_connect", "none", "none", "none", "skip_connect"]}
    table = build_lut(space, archs=[arch], backend=backend, warmup=1, repeats=3, min_block_s=1e-3)
    assert len(table.ops) == 1 + 2 * 3 + 2 + 1
    assert all(v > 0 for v in table.ops.values())
    assert table.predict(arch) > 0 and set(table.op_stats) == set(table.ops)


def test_spaces_without_a_decomposer_are_named() -> None:
    class Other(NB201Space):
        name = "other"

        def lut_decomposer(self) -> None:  # type: ignore[override]
            return None

    with pytest.raises(
        ConfigError, match=r"space 'other' has no LUT decomposer \(spaces with one: fbnet, nb201\)"
    ):
        decompose(Other(), {"ops": ["none"] * 6})
