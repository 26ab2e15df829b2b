"""Gradient strategies in a study and through ``hwnas search``: the derived cells are evaluated
and stored, the trajectory reaches the report, a finished search is reused, bad configs fail
with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from numpy.random import default_rng as rng

from hwnas import Objective, Study, create_space, create_strategy
from hwnas.cli import main
from hwnas.data import load_dataset
from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator
from hwnas.problem import Problem
from hwnas.spaces import NB201Space
from hwnas.testing import CheapMetric

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY = {"epochs": 2, "channels": 4, "cells": 1, "batch_size": 128}


def test_study_evaluates_the_derived_cells_then_stops(tmp_path):
    space = create_space("nb201")
    strategy = create_strategy("gdas", **TOY, top_k=2)
    strategy.attach(load_dataset({"name": "digits"}), folder=tmp_path)
    study = Study(
        space=space,
        evaluators=[CheapMetric(space, name="score")],
        objectives=[Objective("score", "maximize")],
        strategy=strategy,
        seed=0,
    )
    study.optimize(budget=10)
    archs = [t.arch for t in study.trials]
    assert archs == strategy.result.ranked_archs() and len(archs) == 2
    folder = strategy.search_folder()
    assert (folder / "result.json").is_file()
    assert (folder / "run-0" / "checkpoint.pt").is_file()


def test_tas_strategy_searches_the_resnet_space():
    space = create_space("resnet", input_size=8, in_channels=1, blocks=2)
    strategy = create_strategy("tas", epochs=1, batch_size=128, top_k=2, target_flops_ratio=0.4)
    strategy.attach(load_dataset({"name": "digits"}))
    study = Study(
        space=space,
        evaluators=[CheapMetric(space, name="score")],
        objectives=[Objective("score", "minimize")],
        strategy=strategy,
        seed=0,
    )
    study.optimize(budget=5)
    assert len(study.trials) >= 1
    full = space.cheap_metrics(space.from_string(space.to_string(_full(space))))["flops_m"]
    assert all(t.metrics["score"] < full for t in study.trials)


def test_a_space_without_relaxation_is_refused():
    space = create_space("resnet", input_size=8, in_channels=1, blocks=2)
    text = "relaxes the nb201, fbnet or mbv3 space; the space is 'resnet'"
    with pytest.raises(ConfigError, match=text):
        Study(
            space=space,
            evaluators=[CheapMetric(space, name="score")],
            objectives=[Objective("score", "maximize")],
            strategy=create_strategy("darts", **TOY),
        )


def test_a_study_on_mbv3_evaluates_the_derived_archs_and_reports_every_slot():
    from hwnas.oneshot.relax.mbv3_relax import SLOT_NAMES
    from hwnas.report.trajectory import gradient_section

    space = create_space("mbv3", preset="small", input_size=8, in_channels=1)
    strategy = create_strategy(
        "proxyless",
        epochs=1,
        batch_size=64,
        top_k=2,
        cost={"source": "flops", "rows": 250},
        form="add#linear",
    )
    strategy.attach(load_dataset({"name": "digits", "limit": 160}))
    study = Study(
        space=space,
        evaluators=[CheapMetric(space, name="score")],
        objectives=[Objective("score", "minimize")],
        strategy=strategy,
        seed=0,
    )
    study.optimize(budget=5)
    archs = [t.arch for t in study.trials]
    assert archs == strategy.result.ranked_archs() and len(archs) == 2
    assert all(space.to_string(space.from_string(a)) == a for a in archs)
    assert all(a.startswith("r8-w1.0|") for a in archs)
    assert strategy.result.cost["source"]["rows"] == 250
    assert len(strategy.result.cost["table"]) == 20  # one cost slot per block
    assert "parameter-free edges" not in "".join(strategy.diagnostics())
    html, figures = gradient_section(strategy.result.to_dict())
    assert list(figures) == ["fig-arch-0"]
    assert all(name in html for name in SLOT_NAMES)  # all 25 slots, blocks then depths
    assert "depth 4 (p " in html or "depth 3 (p " in html or "depth 2 (p " in html


def test_target_settings_enter_the_search_key_only_with_a_target():
    def key(**options):  # type: ignore[no-untyped-def]
        strategy = create_strategy("darts", **TOY, cost={"source": "flops"}, **options)
        strategy.attach(load_dataset({"name": "digits"}))
        strategy.setup(Problem(create_space("nb201"), (Objective("a", "maximize"),)), rng(0))
        return strategy.search_key()

    # Without a target they change nothing, so a search stored before them is found again.
    assert key() == key(derive="argmax") == key(target_tolerance=0.2)
    assert key(target=30.0) != key(target=30.0, derive="argmax")
    assert key(target=30.0) != key(target=30.0, target_tolerance=0.2)
    assert key(target=30.0) != key(target=30.0, target_cost="argmax")


def test_where_a_search_computes_stays_out_of_its_key():
    def key(**options):  # type: ignore[no-untyped-def]
        strategy = create_strategy("gdas", **TOY, **options)
        strategy.attach(load_dataset({"name": "digits"}))
        strategy.setup(Problem(create_space("nb201"), (Objective("a", "maximize"),)), rng(0))
        return strategy.search_key()

    # A search stored before the option existed, or checkpointed elsewhere, is found again.
    assert key() == key(compute_device="cpu") == key(compute_device="auto")


def test_gdas_gradient_form_enters_its_search_key():
    from hwnas.strategies.differentiable import _key_settings

    def key(method, **options):  # type: ignore[no-untyped-def]
        strategy = create_strategy(method, **TOY, **options)
        strategy.attach(load_dataset({"name": "digits"}))
        strategy.setup(Problem(create_space("nb201"), (Objective("a", "maximize"),)), rng(0))
        return _key_settings(strategy.settings.to_dict())

    # GDAS always keys on it (its searches stored before it used "sampled"); others never do.
    assert key("gdas")["gradient"] == "all"
    assert key("gdas", gradient="sampled")["gradient"] == "sampled"
    assert "gradient" not in key("darts")


def _full(space):  # type: ignore[no-untyped-def]
    return {"ops": [choices[-1] for choices in space.slots]}


def _config(tmp: Path, data_dir: Path, **strategy) -> Path:  # type: ignore[no-untyped-def]
    config = {
        "space": "nb201",
        "data": {"name": "digits"},
        "data_dir": str(data_dir),
        "strategy": {"name": "darts", **TOY, "top_k": 2, **strategy},
        "evaluators": [{"nb201": {"dataset": "cifar10"}}],
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@raspi4", "direction": "minimize"},
        ],
        "budget": {"evaluations": 4},
    }
    path = tmp / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_search_command_stores_the_trajectory_and_reuses_the_search(
    capsys, tmp_path, synthetic_nb201_dir
):
    cfg = _config(tmp_path, synthetic_nb201_dir, cost={"source": "flops"}, latency_weights=[0, 2])
    out = tmp_path / "out"
    assert main(["search", str(cfg), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "darts latency_weight=2: epoch 2/2" in err
    trials = pd.read_csv(out / "trials.csv")
    result = json.loads(next((out / "gradient").glob("darts-*/result.json")).read_text())
    assert list(trials["arch"]) == _ranked(result)[:4]
    assert [r["label"] for r in result["runs"]] == ["latency_weight=0", "latency_weight=2"]
    html = (out / "report.html").read_text()
    assert "Architecture weights" in html and "fig-arch-1" in html
    # A second run reuses the finished search: no epoch is trained again.
    assert main(["search", str(cfg), "--out", str(out)]) == 0
    assert "epoch" not in capsys.readouterr().err


def _ranked(result) -> list[str]:  # type: ignore[no-untyped-def]
    out: list[str] = []
    for i in range(max(len(r["archs"]) for r in result["runs"])):
        for run in result["runs"]:
            if i < len(run["archs"]) and run["archs"][i] not in out:
                out.append(run["archs"][i])
    return out


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"data": None}, "trains a network on the config's dataset, but there is no"),
        ({"strategy": {"name": "fbnet", "epochs": 2, "warmup_epochs": 0}}, "needs a cost model"),
        ({"strategy": {"name": "darts", "epoch": 2}}, "unknown option 'epoch'"),
        pytest.param(
            {"strategy": {"name": "darts", **TOY, "compute_device": "cuda"}},
            "darts: compute_device 'cuda', but this PyTorch",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here"),
        ),
    ],
)
def test_bad_configs_fail_with_one_line(capsys, tmp_path, synthetic_nb201_dir, change, text):
    cfg = _config(tmp_path, synthetic_nb201_dir)
    data = yaml.safe_load(cfg.read_text())
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    cfg.write_text(yaml.safe_dump(data))
    assert main(["search", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert text in err and len(err.splitlines()) == 1 and err.startswith("error:")
    assert not (tmp_path / "out").exists()


class _Skewed(Evaluator):
    """Raspberry Pi 4 latency of the synthetic table, 1.5x what the table (and so the search's
    fitted cost) says: a device the cost model misses."""

    def __init__(self, frame: pd.DataFrame, factor: float) -> None:
        self.ms = dict(zip(frame["arch"], frame["latency_ms@raspi4"] * factor))

    def metrics(self) -> tuple[str, ...]:
        return ("latency_ms@raspi4",)

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        return {"latency_ms@raspi4": float(self.ms[NB201Space().to_string(arch)])}


@pytest.mark.parametrize("repairs", [0, 2])
def test_a_measured_miss_of_the_target_is_repaired(synthetic_nb201_dir, synthetic_frame, repairs):
    space = create_space("nb201")
    cost = {"source": "table", "device": "raspi4", "rows": 200}
    options = {**TOY, "cost": cost, "target": 20.0, "target_repairs": repairs}
    strategy = create_strategy("darts", **options)
    strategy.attach(load_dataset({"name": "digits"}), data_dir=synthetic_nb201_dir)
    study = Study(
        space=space,
        evaluators=[_Skewed(synthetic_frame, 1.5)],
        objectives=[Objective("latency_ms@raspi4", "minimize")],
        strategy=strategy,
        seed=0,
    )
    study.optimize(budget=5)
    measured = [t.metrics["latency_ms@raspi4"] for t in study.trials]
    derived = strategy.result.runs[0]
    assert study.trials[0].arch == derived.archs[0]
    assert 18.0 <= derived.metrics["derived_cost"] <= 20.0  # in the band of the fitted cost
    assert measured[0] > 20.0 * 1.3  # ... and 1.5x that on the device
    kept = strategy.diagnostics()["latency_weight=0.1: kept for the target"]
    if repairs == 0:
        assert len(study.trials) == 1 and strategy.repairs == 0
        assert kept == study.trials[0].arch  # over the band, and alone
        return
    # Moved again by the measured error, proposed next: the repaired cell lands in the band.
    assert strategy.repairs >= 1 and len(study.trials) == 1 + strategy.repairs
    assert 18.0 <= measured[-1] <= 20.0 * 1.1, measured
    assert strategy.diagnostics()["measured repairs into the target's band"] == strategy.repairs
    assert kept == study.trials[-1].arch  # the repaired cell, in the band
