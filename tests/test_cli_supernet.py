"""``hwnas search`` with a ``supernet:`` block and ``hwnas supernet train``, on scikit-learn's 8x8
digits with a one-epoch supernet: the supernet is trained once before the study into
``DIR/supernet`` and reused on resume, ``DIR/config.yaml`` rebuilds the study's parts, bad
``data:``/``supernet:`` blocks get one ``error:`` line and leave nothing, and the example config
runs at a toy size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn.datasets")

from hwnas.cli import main  # noqa: E402
from hwnas.config import build_evaluators, load_config  # noqa: E402
from hwnas.evaluation.supernet import SupernetAccuracy  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPACE = {"name": "mbv3", "options": {"preset": "small", "input_size": 8, "in_channels": 1}}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "space": SPACE,
        "data": {"name": "digits", "limit": 600},
        "supernet": {"train": {"epochs": 1, "batch_size": 64}, "calibration_images": 200},
        "evaluators": [{"supernet": {"split": "valid"}}, {"memory": {}}],
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "peak_sram_kb", "direction": "minimize"},
        ],
        "strategy": {"name": "random"},
        "budget": {"evaluations": 6},
        "seed": 1,
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One search (the supernet trained inside it): the config file and the output folder."""
    folder = tmp_path_factory.mktemp("search")
    cfg = _write(folder / "configs" / "study.yaml", _config())
    out = folder / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["search", str(cfg), "--out", str(out), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    return cfg, out


def test_search_trains_the_supernet_and_writes_the_study(searched: tuple[Path, Path]) -> None:
    _, out = searched
    for name in ("study.db", "trials.csv", "pareto.csv", "report.html", "pareto.png"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "supernet" / "supernet.json").read_text())
    assert meta["epochs"] == 1 and meta["dataset"]["name"] == "digits"
    assert (out / "supernet" / "supernet.pt").is_file()
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and list(trials.columns[2:4]) == ["accuracy", "peak_sram_kb"]
    assert trials["accuracy"].between(0, 100).all() and trials["accuracy"].max() > 1
    assert len(pd.read_csv(out / "pareto.csv")) >= 1


def test_config_copy_rebuilds_the_evaluators(searched: tuple[Path, Path]) -> None:
    cfg, out = searched
    copy = yaml.safe_load((out / "config.yaml").read_text())
    given = yaml.safe_load(cfg.read_text())
    assert copy == {**given, "base_dir": str(cfg.resolve().parent)}
    config = load_config(out / "config.yaml")
    _, evaluators = build_evaluators(config, base_dir=out, out_dir=out)
    sn = evaluators[0]
    assert isinstance(sn, SupernetAccuracy) and sn.dir == (out / "supernet").resolve()
    trials = pd.read_csv(out / "trials.csv")
    arch = sn.space.from_string(trials["arch"][0])
    assert sn.evaluate(arch)["accuracy"] == pytest.approx(trials["accuracy"][0])


def test_resume_reuses_the_supernet(
    capsys: pytest.CaptureFixture[str], searched: tuple[Path, Path]
) -> None:
    cfg, out = searched
    weights = out / "supernet" / "supernet.pt"
    stamps = [p.stat().st_mtime_ns for p in (weights, weights.with_suffix(".json"))]
    capsys.readouterr()
    assert main(["search", str(cfg), "--out", str(out), "--budget", "8"]) == 0
    err = capsys.readouterr().err
    assert f"supernet in {(out / 'supernet').resolve()}: reused" in err
    assert [p.stat().st_mtime_ns for p in (weights, weights.with_suffix(".json"))] == stamps
    assert len(pd.read_csv(out / "trials.csv")) == 8
    assert yaml.safe_load((out / "config.yaml").read_text())["budget"] == {"evaluations": 8}


def test_supernet_train_writes_its_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = _write(tmp_path / "study.yaml", _config())
    out = tmp_path / "sn"
    assert main(["supernet", "train", str(cfg), "--out", str(out), "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints",
        "run.json",
        "supernet.json",
        "supernet.pt",
    ]
    acc = json.loads((out / "supernet.json").read_text())["accuracy"]
    assert f"largest {100 * acc['largest']:.2f} %, smallest {100 * acc['smallest']:.2f} %" in line
    assert line.startswith(f"supernet in {out.resolve()}: trained 1 epoch in")
    # Again: reused, nothing trained.
    assert main(["supernet", "train", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert ": reused (trained 1 epoch before)" in capsys.readouterr().out


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


BAD = [
    ({"supernet": {"train": {"epochs": 1}, "trian": {}}}, "supernet: unknown key 'trian'"),
    ({"supernet": {"epochs": 1}}, "supernet: unknown key 'epochs'"),
    ({"supernet": {"train": {"epoch": 1}}}, "train config has no key 'epoch'"),
    ({"supernet": {"train": {"epochs": 1}, "schedule": "sandwhich"}}, "unknown schedule"),
    ({"data": {"name": "digits", "limt": 5}}, "data: dataset spec has unknown key 'limt'"),
    ({"data": {"name": "digitz"}}, "unknown dataset 'digitz'"),
    ({"data": None}, "supernet: a supernet is trained on the config's dataset"),
    (
        {"space": "nb201", "evaluators": [{"memory": {}}], "objectives": None},
        "supernets are built for space 'mbv3', but the space is 'nb201'",
    ),
    ({"supernet": None}, "no top-level supernet: block; add one"),
    (
        {"evaluators": [{"supernet": {}}, {"train": {"epochs": 1}}]},
        "both yield 'accuracy'; give one of them another name",
    ),
    ({"spce": SPACE}, "unknown key 'spce'"),
]


@pytest.mark.parametrize(("change", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_blocks_get_one_line_and_leave_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    config = _config(**change)
    if "objectives" not in config:
        config["objectives"] = [{"metric": "peak_sram_kb", "direction": "minimize"}]
    cfg = _write(tmp_path / "study.yaml", config)
    line = _error_line(capsys, ["search", str(cfg), "--out", str(tmp_path / "out")])
    assert expected in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_supernet_train_needs_a_supernet_block(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = _write(tmp_path / "study.yaml", _config(supernet=None, evaluators=[{"memory": {}}]))
    line = _error_line(capsys, ["supernet", "train", str(cfg), "--out", str(tmp_path / "sn")])
    assert "has no supernet: block to train; add one" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]
