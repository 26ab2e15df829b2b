"""Kernel features: what ONNX Runtime executes for a network, and the ``kernels`` predictor."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from hwnas.errors import ConfigError, DataError
from hwnas.hardware.kernels import executed_kernels, kernel_features, kernel_matrix
from hwnas.hardware.predictor import LatencyPredictor
from hwnas.spaces import create_space

NB201 = create_space("nb201")
LIVE_CONV3 = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"
CHAIN = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"
# the same chain plus two 3x3 convs into node 2, which reaches the output only through 'none'
DEAD_BRANCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|none~2|"
ONE_CONV3 = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"


def _k3_convs(arch: str) -> int:
    return sum(1 for k in executed_kernels(NB201, arch) if k.key.startswith("conv:dense:k3:s1"))


def test_each_live_3x3_conv_of_the_cell_runs_once_per_cell() -> None:
    # 15 cells: two live 3x3 convs per cell against one is 15 more 3x3 kernels
    assert _k3_convs(LIVE_CONV3) - _k3_convs(ONE_CONV3) == 15


def test_a_dead_edge_and_a_degenerate_cell_run_nothing() -> None:
    dead = "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    degenerate = {k.key for k in executed_kernels(NB201, dead)}
    assert not any(key.startswith("conv:dense:k3:s1") for key in degenerate)
    # node 2 feeds the output through 'none' only: its two convs are dropped
    assert executed_kernels(NB201, DEAD_BRANCH) == executed_kernels(NB201, CHAIN)


def test_features_count_macs_and_bytes_per_class() -> None:
    kernels = executed_kernels(NB201, LIVE_CONV3)
    f = kernel_features(kernels)
    assert f["total|n"] == len(kernels)
    convs = [k for k in kernels if k.mmacs > 0]
    assert f["total|mmacs"] == pytest.approx(sum(k.mmacs for k in convs))
    k3 = [k for k in kernels if k.key.startswith("conv:dense:k3:s1")]
    # NB201 keeps C*H*W fixed: a cell's 3x3 conv is 16*16*9*32*32 MACs at every stage; the
    # stem's is 3*16*9*32*32
    assert {round(k.mmacs, 4) for k in k3} == {2.3593, 0.4424}
    assert all(v >= 0 for v in f.values())


def test_kernel_matrix_keeps_the_fitted_columns() -> None:
    X, names = kernel_matrix(NB201, [LIVE_CONV3, ONE_CONV3])
    assert X.shape == (2, len(names)) and names == sorted(names)
    Y, same = kernel_matrix(NB201, [ONE_CONV3], names[:5])
    assert same == names[:5] and np.array_equal(Y[0], X[1, :5])


def _archs(n: int) -> list[dict]:
    rng = np.random.default_rng(3)
    return [NB201.sample(rng) for _ in range(n)]


def test_kernels_predictor_recovers_a_kernel_cost_model_and_survives_saving(tmp_path) -> None:  # type: ignore[no-untyped-def]
    archs = _archs(14)
    X, names = kernel_matrix(NB201, archs)
    ms = 0.05 + 0.02 * X[:, names.index("total|mmacs")] + 0.003 * X[:, names.index("total|n")]
    p = LatencyPredictor("kernels", device="toy").fit(NB201, archs, ms)
    assert np.allclose(p.predict(archs), ms, rtol=1e-3)
    p.save(tmp_path)
    q = LatencyPredictor.load(tmp_path)
    assert q.kind == "kernels" and q.feature_names == names
    assert np.allclose(q.predict(archs[:3]), p.predict(archs[:3]))


def test_a_damaged_kernels_predictor_names_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    archs = _archs(6)
    LatencyPredictor("kernels").fit(NB201, archs, np.linspace(1, 2, 6)).save(tmp_path)
    meta = json.loads((tmp_path / "predictor.json").read_text())
    del meta["model"]["scale"]
    (tmp_path / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="model field 'scale' is missing or malformed"):
        LatencyPredictor.load(tmp_path)


def test_kernels_predictor_computes_its_own_features() -> None:
    with pytest.raises(ConfigError, match="computes its own features; call fit"):
        LatencyPredictor("kernels").fit_features(NB201, np.zeros((3, 2)), [1.0, 2.0, 3.0])
