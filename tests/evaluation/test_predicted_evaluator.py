"""The ``predicted`` evaluator: a saved latency predictor as a free metric inside a study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas import Objective, Study, create_space
from hwnas.errors import ConfigError, DataError
from hwnas.evaluation import EvaluatorContext, create_evaluator, list_evaluators
from hwnas.hardware.predictor import LatencyPredictor


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_frame: pd.DataFrame) -> Path:
    rows = synthetic_frame.sample(200, random_state=0)
    p = LatencyPredictor("ridge", device="raspi4")
    p.fit(create_space("nb201"), list(rows["arch"]), rows["latency_ms@raspi4"].to_numpy())
    return p.save(tmp_path_factory.mktemp("models") / "raspi4-ridge")


def test_predicted_latency_inside_a_study(model_dir: Path, synthetic_nb201_dir: Path) -> None:
    space = create_space("nb201")
    ctx = EvaluatorContext(space=space, base_dir=model_dir.parent, data_dir=synthetic_nb201_dir)
    bench = create_evaluator("nb201", ctx, devices=[])
    pred = create_evaluator("predicted", ctx, model=model_dir.name, device="local")
    assert "predicted" in list_evaluators()
    assert pred.metrics() == ("latency_ms@local",)
    assert (pred.expensive, pred.cacheable) == (False, False)
    study = Study(
        space=space,
        evaluators=[bench, pred],
        objectives=[
            Objective("accuracy", "maximize"),
            Objective("latency_ms@local", "minimize"),
        ],
        seed=3,
    )
    study.optimize(budget=15)
    assert study.n_charged == 15 and len(study.trials) == 15
    direct = LatencyPredictor.load(model_dir)
    for t in study.trials:
        expected = float(direct.predict([t.arch])[0])
        assert t.metrics["latency_ms@local"] == pytest.approx(expected, rel=1e-12)
    assert study.pareto_front()
    latencies = [t.metrics["latency_ms@local"] for t in study.trials]
    assert np.all(np.asarray(latencies) > 0)


def test_the_metric_names_the_fitted_device_by_default(model_dir: Path) -> None:
    ctx = EvaluatorContext(space=create_space("nb201"))
    ev = create_evaluator("predicted", ctx, model=str(model_dir))
    assert ev.metrics() == ("latency_ms@raspi4",)
    got = ev.evaluate({"ops": ["nor_conv_3x3"] * 6})["latency_ms@raspi4"]
    cheap = ev.evaluate({"ops": ["none"] * 6})["latency_ms@raspi4"]
    assert got > cheap


def test_mismatches_and_missing_models_fail_clearly(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"fitted for space 'nb201', but the study's space is 'fbnet'"
    ):
        create_evaluator(
            "predicted", EvaluatorContext(space=create_space("fbnet")), model=str(model_dir)
        )
    with pytest.raises(
        ConfigError, match=r"options \{'num_classes': 10, .*has \{'num_classes': 100"
    ):
        create_evaluator(
            "predicted",
            EvaluatorContext(space=create_space("nb201", num_classes=100)),
            model=str(model_dir),
        )
    with pytest.raises(DataError, match=r"folder .*nowhere does not exist"):
        create_evaluator(
            "predicted",
            EvaluatorContext(space=create_space("nb201"), base_dir=tmp_path),
            model="nowhere",
        )
    with pytest.raises(ConfigError, match=r"has no option 'modle'; did you mean 'model'"):
        create_evaluator(
            "predicted", EvaluatorContext(space=create_space("nb201")), modle=str(model_dir)
        )
    p = LatencyPredictor("flops").fit(
        create_space("nb201"),
        [{"ops": [o] * 6} for o in ("none", "nor_conv_1x1", "nor_conv_3x3")],
        [1.0, 2.0, 3.0],
    )
    p.save(tmp_path / "nodevice")
    with pytest.raises(ConfigError, match=r"names no device; set the option 'device'"):
        create_evaluator(
            "predicted",
            EvaluatorContext(space=create_space("nb201")),
            model=str(tmp_path / "nodevice"),
        )
