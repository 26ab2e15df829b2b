"""Latency predictors: accuracy on structured synthetic latencies, readable save/load round trips,
clear errors for damaged folders, and exact accuracy figures on hand-made numbers."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.errors import ConfigError, DataError
from hwnas.hardware.accuracy import evaluate_predictions
from hwnas.hardware.features import feature_matrix
from hwnas.hardware.predictor import ARCH_KINDS, KINDS_SPEC, LatencyPredictor
from hwnas.predictors import PREDICTORS
from hwnas.spaces import create_space


@pytest.fixture(scope="module")
def split(synthetic_frame: pd.DataFrame) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    order = rng.permutation(len(synthetic_frame))
    archs = synthetic_frame["arch"].to_numpy()
    y = synthetic_frame["latency_ms@raspi4"].to_numpy()
    tr, te = order[:300], order[300:2300]
    return list(archs[tr]), y[tr], list(archs[te]), y[te]


@pytest.fixture(scope="module")
def fitted(split) -> dict[str, LatencyPredictor]:  # type: ignore[no-untyped-def]
    space = create_space("nb201")
    archs, y, _, _ = split
    return {k: LatencyPredictor(k, device="raspi4").fit(space, archs, y) for k in ARCH_KINDS}


def test_learned_predictors_rank_held_out_latencies(fitted, split) -> None:  # type: ignore[no-untyped-def]
    _, _, test_archs, y = split
    figures = {k: evaluate_predictions(y, p.predict(test_archs)) for k, p in fitted.items()}
    assert figures["gbdt"]["spearman"] > 0.97
    assert figures["ridge"]["spearman"] > 0.97
    assert figures["ridge"]["share_within_10pct"] > 0.9
    # The FLOPs-only baseline cannot tell pooling from skips: clearly worse.
    assert figures["flops"]["spearman"] < figures["ridge"]["spearman"] - 0.02
    assert all(f["n"] == 2000 for f in figures.values())


def test_dicts_and_strings_predict_the_same(fitted, split) -> None:  # type: ignore[no-untyped-def]
    space = create_space("nb201")
    archs = split[2][:20]
    p = fitted["gbdt"]
    assert np.array_equal(p.predict(archs), p.predict([space.from_string(a) for a in archs]))
    assert p.predict([]).shape == (0,)


@pytest.mark.parametrize("kind", ARCH_KINDS)
def test_save_load_round_trip_is_exact_and_readable(kind, fitted, split, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = fitted[kind]
    folder = p.save(tmp_path / "pred")
    files = sorted(f.name for f in folder.iterdir())
    assert files == (["model.txt", "predictor.json"] if kind == "gbdt" else ["predictor.json"])
    meta = json.loads((folder / "predictor.json").read_text())
    assert meta["kind"] == kind and meta["device"] == "raspi4"
    assert meta["space"] == {"name": "nb201", "options": {"num_classes": 10, "input_size": 32}}
    assert meta["feature_names"] == p.feature_names and meta["training"]["n"] == 300
    for f in folder.iterdir():  # text only: no pickle protocol header, no zip archive
        raw = f.read_bytes()
        assert not raw.startswith((b"\x80", b"PK")) and raw.decode("utf-8")
    if kind == "gbdt":
        assert (folder / "model.txt").read_text().startswith("tree")
    back = LatencyPredictor.load(folder)
    archs = split[2][:500]
    assert np.array_equal(back.predict(archs), p.predict(archs))
    assert (back.kind, back.device, back.log_target) == (kind, "raspi4", p.log_target)


def _saved(fitted, kind: str, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    return fitted[kind].save(folder)


def test_damaged_folders_raise_one_clear_data_error(fitted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=r"folder .*nowhere does not exist"):
        LatencyPredictor.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"has no predictor.json; it is not a folder written by"):
        LatencyPredictor.load(tmp_path / "empty")

    g = _saved(fitted, "gbdt", tmp_path / "g")
    text = (g / "predictor.json").read_text()
    (g / "predictor.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"predictor.json is not readable JSON \(.*\); save it"):
        LatencyPredictor.load(g)

    g = _saved(fitted, "gbdt", tmp_path / "g2")
    model = (g / "model.txt").read_text()
    (g / "model.txt").write_text(model.replace("tree", "tre", 1))
    with pytest.raises(DataError, match=r"model.txt does not match the checksum .*damaged or"):
        LatencyPredictor.load(g)
    (g / "model.txt").unlink()
    with pytest.raises(DataError, match=r"model.txt is missing"):
        LatencyPredictor.load(g)
    # A matching checksum over text that is no model: the file and the fix are named.
    (g / "model.txt").write_text("not a model")
    meta = json.loads((g / "predictor.json").read_text())
    meta["model_sha256"] = hashlib.sha256(b"not a model").hexdigest()
    (g / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"model.txt: linear_gbdt: not a LightGBM text model"):
        LatencyPredictor.load(g)

    r = _saved(fitted, "ridge", tmp_path / "r")
    meta = json.loads((r / "predictor.json").read_text())
    meta["model"]["coef"] = meta["model"]["coef"][:-1]
    (r / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"model field 'coef' is missing or malformed"):
        LatencyPredictor.load(r)
    meta["feature_names"][0] = "renamed"
    (r / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"other nb201 features .*'renamed' vs 'edge0=none'"):
        LatencyPredictor.load(r)
    meta["version"] = 99
    (r / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"format version 99; this hwnas reads version 1"):
        LatencyPredictor.load(r)


def test_bad_arguments_fail_where_they_are_given() -> None:
    space = create_space("nb201")
    archs = [space.sample(np.random.default_rng(i)) for i in range(5)]
    with pytest.raises(ConfigError, match=r"unknown latency predictor kind 'gbtd'; did you mean"):
        LatencyPredictor("gbtd")
    with pytest.raises(ConfigError, match=r"entry 2 is -1.0"):
        LatencyPredictor("ridge").fit(space, archs, [1.0, 2.0, -1.0, 3.0, 4.0])
    with pytest.raises(ConfigError, match=r"5 architectures and 4 latencies"):
        LatencyPredictor("ridge").fit(space, archs, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ConfigError, match=r"not fitted; call fit\(\) or load\(\)"):
        LatencyPredictor().predict(archs)
    with pytest.raises(ConfigError, match=r"cannot save an unfitted"):
        LatencyPredictor().save("unused")


def test_evaluate_predictions_on_hand_made_numbers() -> None:
    # Relative errors 0, 4, 5, 10 and 20 %: both bounds are inclusive.
    got = evaluate_predictions([10, 20, 30, 40, 50], [10, 20.8, 28.5, 44, 40])
    assert got["share_within_5pct"] == 0.6
    assert got["share_within_10pct"] == 0.8
    assert got["rmspe_pct"] == pytest.approx(100 * math.sqrt((0.04**2 + 0.05**2 + 0.01 + 0.04) / 5))
    assert got["mape_pct"] == pytest.approx(100 * 0.39 / 5)
    assert got["spearman"] == pytest.approx(0.9)  # one swapped pair: 1 - 6 * 2 / (5 * 24)
    assert got["kendall_tau"] == pytest.approx(0.8)  # 9 concordant, 1 discordant of 10
    assert got["n"] == 5
    assert evaluate_predictions([1.0, 1.1], [1.1, 1.21])["share_within_10pct"] == 1.0
    flat = evaluate_predictions([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert math.isnan(flat["spearman"]) and math.isnan(flat["kendall_tau"])
    assert flat["share_within_5pct"] == pytest.approx(1 / 3)
    with pytest.raises(ConfigError, match="finite and > 0"):
        evaluate_predictions([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ConfigError, match="equal-length"):
        evaluate_predictions([1.0, 2.0], [1.0])


V1 = Path(__file__).parent / "data" / "latency_predictor_v1"


@pytest.mark.parametrize("kind", ["ridge", "flops"])
def test_folders_saved_by_earlier_versions_load_and_predict_the_same(kind: str) -> None:
    # Written by the latency predictor before its models moved into hwnas.predictors
    # (flops with a log target: a line over log-FLOPs saved as slope and intercept).
    p = LatencyPredictor.load(V1 / kind)
    expected = json.loads((V1 / "expected.json").read_text())
    assert (p.kind, p.device, p.log_target) == (kind, "raspi4", kind == "flops")
    want = np.array([float.fromhex(h) for h in expected[kind]])
    np.testing.assert_allclose(p.predict(expected["archs"]), want, rtol=1e-12, atol=0)


def test_each_kind_is_a_registered_predictor(fitted, split) -> None:  # type: ignore[no-untyped-def]
    assert {k: s.predictor for k, s in KINDS_SPEC.items()} == {
        "gbdt": "linear_gbdt",
        "ridge": "ridge",
        "flops": "linear",
        "kernels": "nnls",
    }
    for kind in ARCH_KINDS:  # the latency predictor is its registered model plus the features
        p = fitted[kind]
        assert isinstance(p._model, PREDICTORS.get(KINDS_SPEC[kind].predictor))
    archs, y, test_archs, _ = split
    space = create_space("nb201")
    model = PREDICTORS.create("ridge").fit(feature_matrix(space, archs), y)
    direct = np.maximum(model.predict(feature_matrix(space, test_archs[:50])), 0.0)
    assert np.array_equal(direct, fitted["ridge"].predict(test_archs[:50]))
