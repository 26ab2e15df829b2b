"""The additive slot cost of differentiable search: exact recovery of additive costs, an expected
cost whose gradient is the table, honest row counts per source, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.errors import ConfigError, DataError
from hwnas.hardware.lut import LatencyLUT
from hwnas.hardware.lut_ops import op_configs
from hwnas.hardware.predictor import LatencyPredictor
from hwnas.hardware.tabular import FBNET_FILE
from hwnas.oneshot.relax.cost import SlotCost, fit_slot_cost, slot_cost_from_spec
from hwnas.spaces import FBNetSpace, NB201Space, create_space

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NB201_LATENCY = SHARED / "nb201_fbnet_latency_help" / "nb201_latency_ms.csv"


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space()


@pytest.fixture(scope="module")
def additive(space: NB201Space) -> tuple[np.ndarray, float, SlotCost]:
    """A cost fitted to an exactly additive made-up cost, with the truth it was made from."""
    truth = np.random.default_rng(1).uniform(0.5, 3.0, size=(6, 5))
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    values = [
        2.0 + sum(truth[i, space.slots[i].index(o)] for i, o in enumerate(a["ops"])) for a in archs
    ]
    cost = fit_slot_cost(
        space, archs, values, metric="latency_ms@toy", unit="ms", source={"kind": "synthetic"}
    )
    return truth, 2.0, cost


def test_an_additive_cost_is_recovered_exactly(space: NB201Space, additive: tuple) -> None:
    truth, constant, cost = additive
    table = np.array(cost.table)
    # the cheapest choice of each slot is moved into the constant
    np.testing.assert_allclose(table, truth - truth.min(axis=1, keepdims=True), atol=1e-6)
    assert cost.constant == pytest.approx(constant + truth.min(axis=1).sum(), abs=1e-6)
    assert table.min(axis=1).tolist() == [0.0] * 6
    for arch in [space.sample(np.random.default_rng(s)) for s in range(20)]:
        want = constant + sum(truth[i, space.slots[i].index(o)] for i, o in enumerate(arch["ops"]))
        assert cost.predict(arch) == pytest.approx(want, abs=1e-6)
        assert cost.predict_ops(arch["ops"]) == cost.predict(arch)
    assert cost.source["kind"] == "synthetic" and cost.source["rows"] == 200
    assert cost.source["cv_within_10pct"] == 1.0
    assert cost.source["cv_spearman"] == pytest.approx(1.0)
    assert cost.source["r2_in_sample"] == pytest.approx(1.0)
    assert cost.choices == [list(c) for c in space.slots]


def test_expected_with_one_hot_probs_is_predict_and_its_gradient_is_the_table(
    space: NB201Space, additive: tuple
) -> None:
    torch = pytest.importorskip("torch")
    cost = additive[2]
    arch = space.sample(np.random.default_rng(3))
    one_hot = torch.tensor(space.one_hot(arch).reshape(6, 5), dtype=torch.float64)
    probs = [row.clone().requires_grad_(True) for row in one_hot]
    value = cost.expected(probs)
    assert value.dim() == 0 and value.item() == pytest.approx(cost.predict(arch), abs=1e-9)
    value.backward()
    grads = np.stack([p.grad.numpy() for p in probs])
    np.testing.assert_allclose(grads, np.array(cost.table), atol=1e-12)
    # a 2-D tensor of uniform probabilities: the mean cost per slot
    uniform = torch.full((6, 5), 0.2, dtype=torch.float64, requires_grad=True)
    mean = cost.constant + np.array(cost.table).mean(axis=1).sum()
    assert cost.expected(uniform).item() == pytest.approx(mean)
    with pytest.raises(ConfigError, match=r"probs of slot 0 have shape \(4,\), expected \(5,\)"):
        cost.expected([torch.ones(4)] * 6)


def test_flops_source_is_additive_on_nb201_and_reads_no_device_rows(space: NB201Space) -> None:
    cost = slot_cost_from_spec(space, {"source": "flops"}, rng=np.random.default_rng(0))
    assert (cost.metric, cost.unit) == ("flops_m", "MMACs")
    assert cost.source["kind"] == "flops"
    assert cost.source["rows"] == 200 and cost.source["device_rows"] == 0
    assert cost.source["cv_within_10pct"] >= 0.95
    assert cost.source["cv_spearman"] > 0.99
    arch = space.sample(np.random.default_rng(7))
    assert cost.predict(arch) == pytest.approx(space.cheap_metrics(arch)["flops_m"], rel=0.01)


@pytest.mark.skipif(
    not NB201_LATENCY.is_file(), reason="../shared/data is not beside the repository"
)
def test_table_source_records_the_rows_it_read(space: NB201Space) -> None:
    spec = {"source": "table", "device": "raspi4", "rows": 60}
    cost = slot_cost_from_spec(space, spec, rng=np.random.default_rng(0), data_dir=SHARED)
    assert (cost.metric, cost.unit) == ("latency_ms@raspi4", "ms")
    assert cost.source["kind"] == "table" and cost.source["device"] == "raspi4"
    assert cost.source["rows"] == 60
    assert cost.source["cv_spearman"] > 0.8  # measured 0.838 with seed 0 (0.84-0.93 over seeds 0-4)


def test_a_sampled_table_is_read_by_its_own_rows(tmp_path: Path) -> None:
    """FBNet's table lists 5,000 of 9^22 archs: random draws from the space would never hit it."""
    fbnet = FBNetSpace()
    rng = np.random.default_rng(0)
    archs = [fbnet.sample(rng) for _ in range(200)]
    per_block = {b: 0.1 * i for i, b in enumerate(fbnet.slots[0])}
    (tmp_path / FBNET_FILE.parent).mkdir(parents=True)
    pd.DataFrame(
        {
            "sample": range(200),
            "op_idx_list": ["0"] * 200,
            "arch_str": [fbnet.to_string(a) for a in archs],
            "raspi4": [2.0 + sum(per_block[o] for o in a["ops"]) for a in archs],
        }
    ).to_csv(tmp_path / FBNET_FILE, index=False)
    spec = {"source": "table", "device": "raspi4", "rows": 60}
    cost = slot_cost_from_spec(fbnet, spec, rng=np.random.default_rng(0), data_dir=tmp_path)
    assert cost.metric == "latency_ms@raspi4"
    assert cost.source["rows"] == 60 and cost.source["table_archs"] == 200
    assert cost == slot_cost_from_spec(fbnet, spec, rng=np.random.default_rng(0), data_dir=tmp_path)
    whole = slot_cost_from_spec(
        fbnet, {**spec, "rows": 200}, rng=np.random.default_rng(1), data_dir=tmp_path
    )
    assert whole.source["r2_in_sample"] == pytest.approx(1.0)
    for a in archs[:5]:  # every tabulated row is fitted
        assert whole.predict(a) == pytest.approx(2.0 + sum(per_block[o] for o in a["ops"]))
    with pytest.raises(ConfigError, match=r"rows 201 exceeds the 200 archs of the fbnet table"):
        slot_cost_from_spec(
            fbnet, {**spec, "rows": 201}, rng=np.random.default_rng(0), data_dir=tmp_path
        )


def test_predictor_and_lut_sources_name_their_device(space: NB201Space, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(60)]
    ms = [1.0 + sum(o == "nor_conv_3x3" for o in a["ops"]) for a in archs]
    LatencyPredictor("ridge", device="toy").fit(space, archs, ms).save(tmp_path / "pred")
    spec = {"source": "predictor", "path": str(tmp_path / "pred"), "rows": 80}
    cost = slot_cost_from_spec(space, spec, rng=np.random.default_rng(1))
    assert cost.metric == "latency_ms@toy" and cost.source["rows"] == 80
    assert cost.source["path"] == str(tmp_path / "pred")
    assert cost.source["cv_within_10pct"] >= 0.95

    LatencyLUT(space=space, ops={k: 0.01 for k in op_configs(space)}, glue_ms=0.5).to_json(
        tmp_path / "lut.json"
    )
    spec = {"source": "lut", "path": str(tmp_path / "lut.json"), "rows": 50, "device": "cpu"}
    cost = slot_cost_from_spec(space, spec, rng=np.random.default_rng(2))
    assert cost.metric == "latency_ms@cpu" and cost.source["kind"] == "lut"
    assert cost.predict({"ops": ["nor_conv_3x3"] * 6}) == pytest.approx(1.44, abs=1e-6)
    with pytest.raises(ConfigError, match=r"the lut in .* names no device; set 'device'"):
        slot_cost_from_spec(space, {"source": "lut", "path": str(tmp_path / "lut.json")}, rng=rng)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"source": "flop"}, r"unknown source 'flop'; did you mean 'flops'\?"),
        ({"source": "flops", "rows": 1}, r"'rows' must be a whole number >= 2, got 1"),
        ({"source": "flops", "row": 10}, r"source 'flops' has no key 'row'; did you mean 'rows'"),
        ({"source": "table", "rows": 10}, r"source 'table' needs the key 'device'"),
        ({"rows": 10}, r"needs a mapping with 'source', one of flops, table, predictor, lut"),
    ],
)
def test_bad_specs_fail_with_one_line(space: NB201Space, spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        slot_cost_from_spec(space, spec, rng=np.random.default_rng(0))
    assert "\n" not in str(err.value)


def test_a_missing_table_device_is_named(space: NB201Space, synthetic_nb201_dir: Path) -> None:
    spec = {"source": "table", "device": "raspi5"}
    with pytest.raises(ConfigError, match=r"no device 'raspi5'; did you mean 'raspi4'"):
        slot_cost_from_spec(space, spec, rng=np.random.default_rng(0), data_dir=synthetic_nb201_dir)


def test_bad_inputs_to_the_fit(space: NB201Space) -> None:
    archs = [space.sample(np.random.default_rng(s)) for s in range(4)]
    kw = {"metric": "flops_m", "unit": "MMACs", "source": {}}
    with pytest.raises(ConfigError, match=r"needs at least 2 rows to fit flops_m, got 1"):
        fit_slot_cost(space, archs[:1], [1.0], **kw)
    with pytest.raises(DataError, match=r"flops_m: 2 of 4 values are NaN, infinite or negative"):
        fit_slot_cost(space, archs, [1.0, float("nan"), -1.0, 2.0], **kw)
    with pytest.raises(ConfigError, match=r"space 'mbv3' is not categorical"):
        fit_slot_cost(create_space("mbv3"), archs, [1.0] * 4, **kw)


def test_to_dict_round_trips_through_json(additive: tuple) -> None:
    cost = additive[2]
    back = SlotCost.from_dict(json.loads(json.dumps(cost.to_dict())))
    assert back == cost
    with pytest.raises(
        DataError,
        match=r"a slot cost is a mapping with exactly the keys metric, unit, constant, table",
    ):
        SlotCost.from_dict({k: v for k, v in cost.to_dict().items() if k != "table"})
