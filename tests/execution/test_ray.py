"""The Ray executor on a local Ray this module starts: parallel evaluation, failures, a worker
killed mid-evaluation retried elsewhere, time limits, and the CLI's --executor ray."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from execution_support import make_study

from hwnas.cli import main
from hwnas.execution import RunPolicy

ray = pytest.importorskip("ray", reason="the ray extra is part of hwnas[all]")

pytestmark = pytest.mark.xdist_group("ray")  # one local Ray per test process is plenty


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_evaluates_in_parallel_within_the_budget():
    study = make_study(strategy="moea_bus", sleep_s=0.01)
    stats = study.optimize(24, executor="ray", workers=2)
    assert study.n_charged == 24 == len({t.arch for t in study.trials})
    assert stats.executor == "ray, 2 workers"
    assert all(t.ok for t in study.trials)


def test_a_killed_ray_worker_is_retried_elsewhere_and_the_study_completes(first_archs, tmp_path):
    planted = {first_archs[1]: "crash-once", first_archs[3]: "raise", first_archs[4]: "nan"}
    study = make_study(planted, marker_dir=tmp_path)
    study.optimize(8, executor="ray", workers=2, policy=RunPolicy(retries=2))
    trials = {t.arch: t for t in study.trials}
    killed = trials[first_archs[1]]
    assert killed.ok and killed.attempts == 2
    assert "raised RuntimeError: planted failure" in trials[first_archs[3]].error
    assert "returned accuracy = nan" in trials[first_archs[4]].error
    assert study.n_charged == 8


def test_a_ray_task_past_its_time_limit_fails_with_the_reason(first_archs, tmp_path):
    study = make_study({first_archs[0]: "hang"}, marker_dir=tmp_path)
    # 8 s: a busy machine's Ray worker start must not push a quick evaluation past the limit
    # (2 s did, once, with six jobs on two cores).
    study.optimize(3, executor="ray", workers=2, policy=RunPolicy(timeout_s=8.0, retries=0))
    hung = {t.arch: t for t in study.trials}[first_archs[0]]
    assert hung.error == "the evaluation ran past timeout_s = 8 s"
    others = [t for t in study.trials if t.arch != first_archs[0]]
    assert [t.error for t in others if not t.ok] == [] and len(others) == 2


def test_cli_search_on_ray_writes_the_same_contract_files(tmp_path, synthetic_table, capsys):
    shutil.copy(synthetic_table, tmp_path / "table.csv")
    config = {
        "space": "nb201",
        "evaluators": [{"table": {"path": "table.csv"}}],
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@raspi4", "direction": "minimize"},
        ],
        "budget": {"evaluations": 20},
    }
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    rc = main(["search", str(cfg), "--out", str(out), "--executor", "ray", "--workers", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 20 and trials["arch"].is_unique
    assert "ray, 2 workers" in Path(out / "report.html").read_text()
