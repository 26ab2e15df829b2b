"""``hwnas export``: a trial of a small mbv3 study on digits becomes model.pt + model.onnx +
manifest.json; model.pt rebuilds (weights_only) a network whose outputs are the ONNX model's;
the manifest carries the split, preprocessing, versions and checks; weights come from the
supernet (as it scored them), fine-tuned, or from scratch; bad input gets one error line."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn.datasets")

from hwnas.cli import main  # noqa: E402
from hwnas.data import load_dataset  # noqa: E402
from hwnas.evaluation import EvaluatorContext, create_evaluator  # noqa: E402
from hwnas.evaluation.base import Evaluator  # noqa: E402
from hwnas.export import load_model  # noqa: E402
from hwnas.hardware import reference  # noqa: E402
from hwnas.oneshot import SupernetScorer, load_supernet, train_supernet  # noqa: E402
from hwnas.problem import Objective  # noqa: E402
from hwnas.spaces import create_space  # noqa: E402
from hwnas.storage import SQLiteStore  # noqa: E402
from hwnas.study import Study  # noqa: E402

SPACE = {"name": "mbv3", "options": {"preset": "small", "resolutions": [8, 12], "in_channels": 1}}
DATA = {"name": "digits", "image_size": 12}  # 8x8 digits upsampled to the largest resolution
SUPERNET = {"train": {"epochs": 1, "batch_size": 64}, "num_random": 1, "calibration_images": 300}
STORED_LATENCY_MS = 0.5
STORED_ACCURACY = 50.0  # percent, as the supernet and train evaluators store it


class _Stored(Evaluator):
    """Stands in for the study's accuracy and latency evaluators; its third call fails."""

    def __init__(self) -> None:
        self.calls = 0

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@local")

    def evaluate(self, arch: Any) -> dict[str, float]:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("made to fail")
        return {"accuracy": STORED_ACCURACY, "latency_ms@local": STORED_LATENCY_MS}


def _config(**blocks: Any) -> dict[str, Any]:
    return {
        "space": SPACE,
        "evaluators": [{"memory": {}}],
        "objectives": [{"metric": "peak_sram_kb", "direction": "minimize"}],
        "budget": {"evaluations": 4},
        "seed": 0,
        **blocks,
    }


def _study_copy(src: Path, dst: Path, config: dict[str, Any] | None) -> Path:
    dst.mkdir(parents=True)
    shutil.copy(src / "study.db", dst / "study.db")
    if config is not None:
        (dst / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dst


@pytest.fixture(scope="module", autouse=True)
def _quick() -> Iterator[None]:
    # Tiny networks run fastest on one thread; a short stored reference for interleaved timing.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reference, "REFERENCE_SECONDS", 0.3)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A study folder with a trained supernet, its trials: complete ones and a failed one."""
    folder = tmp_path_factory.mktemp("study")
    space = create_space(SPACE["name"], **SPACE["options"])
    ctx = EvaluatorContext(space=space, base_dir=folder)
    with SQLiteStore(folder / "study.db") as store:
        Study(
            space=space,
            evaluators=[create_evaluator("memory", ctx), _Stored()],
            objectives=[Objective("peak_sram_kb", "minimize")],
            store=store,
            seed=0,
        ).optimize(4)
        trials = store.load()[1]
    (folder / "config.yaml").write_text(
        yaml.safe_dump(_config(data=DATA, supernet=SUPERNET), sort_keys=False)
    )
    dataset = load_dataset(DATA)
    train_supernet(space, dataset, SUPERNET, folder / "supernet")
    complete = [t for t in trials if t.ok]
    failed = [t for t in trials if not t.ok]
    assert complete and failed, trials
    # Prefer an arch at resolution 8, so the 12x12 images are resized for it.
    chosen = next((t for t in complete if t.arch.startswith("r8-")), complete[0])
    return {"dir": folder, "trial": chosen, "failed": failed[0], "space": space, "data": dataset}


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse's own errors (one line too, see hwnas.cli)
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def exported(study: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("export") / "t"
    argv = ["export", str(study["dir"]), "--trial", str(study["trial"].number), "--out", str(out)]
    rc, stdout, stderr = _cli(argv)
    assert rc == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    return {"out": out, "stdout": stdout, "manifest": manifest}


def test_model_pt_rebuilds_the_onnx_model(exported: dict[str, Any], study: dict[str, Any]):
    out = exported["out"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx", "model.pt"]
    saved = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert saved["arch"] == study["trial"].arch
    assert saved["space"] == SPACE
    space = create_space(saved["space"]["name"], **saved["space"]["options"])
    arch = space.from_string(saved["arch"])
    net = space.build_network(arch)
    net.load_state_dict(saved["state_dict"])
    net.eval()
    x, _ = study["data"].tensors("test")
    r = arch["r"]
    x = torch.nn.functional.interpolate(x[:32], size=(r, r), mode="bilinear", align_corners=False)
    with torch.no_grad():
        ours = net(x).numpy()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    theirs = np.concatenate(
        [session.run(None, {"input": x[i : i + 1].numpy()})[0] for i in range(32)]
    )
    assert np.max(np.abs(ours - theirs)) <= 1e-3 * np.max(np.abs(ours))
    loaded, info = load_model(out)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    assert info["arch"] == saved["arch"]


def test_manifest_records_split_preprocessing_and_checks(
    exported: dict[str, Any], study: dict[str, Any]
):
    m = exported["manifest"]
    trial, dataset = study["trial"], study["data"]
    for key in (
        "arch",
        "space",
        "metrics",
        "dataset",
        "test_indices",
        "preprocessing",
        "input_shape",
        "versions",
        "created",
        "weights",
        "checks",
    ):
        assert key in m, key
    assert m["arch"] == trial.arch and m["study"]["trial"] == trial.number
    assert m["metrics"] == pytest.approx(dict(trial.metrics))
    assert m["test_indices"] == dataset.indices["test"].tolist()
    assert m["dataset"]["name"] == "digits"
    assert m["dataset"]["provenance"]["splits"]["test"] == len(m["test_indices"])
    r = int(trial.arch[1 : trial.arch.index("-")])
    assert m["input_shape"] == [1, 1, r, r]
    pre = m["preprocessing"]
    assert pre["input_size"] == [r, r] and pre["channels"] == 1
    assert pre["mean"] == pytest.approx(list(dataset.mean))
    assert pre["std"] == pytest.approx(list(dataset.std))
    assert set(m["versions"]) >= {"hwnas", "torch", "onnx", "onnxruntime"}
    assert all(m["versions"][k] for k in ("hwnas", "torch", "onnx", "onnxruntime"))
    assert m["weights"]["source"] == "supernet"
    checks = m["checks"]
    assert checks["passed"] and checks["failures"] == []
    assert checks["onnx_vs_pytorch"]["relative"] <= 1e-3
    assert checks["onnx_vs_pytorch"]["images"] == len(m["test_indices"])
    acc = checks["accuracy"]
    assert abs(acc["onnx"] - acc["pytorch"]) * 100 <= 0.5
    assert acc["searched"] == {"accuracy": STORED_ACCURACY} and acc["unit"] == "percent"
    lat = checks["latency"]
    assert lat["searched_ms"] == STORED_LATENCY_MS and lat["remeasured_ms"] > 0
    assert lat["relative_difference"] == pytest.approx(
        (lat["remeasured_ms"] - STORED_LATENCY_MS) / STORED_LATENCY_MS
    )
    assert lat["measurement"]["timing"] == "interleaved"
    assert lat["measurement"]["threads"] == 1 and lat["measurement"]["batch"] == 1


def test_weights_are_the_supernets_as_scored(exported: dict[str, Any], study: dict[str, Any]):
    """The exported network's test accuracy is the supernet evaluator's inherited accuracy."""
    space, dataset = study["space"], study["data"]
    supernet = load_supernet(study["dir"] / "supernet", space)
    scorer = SupernetScorer(supernet, dataset, calibration_images=300, seed=0)
    inherited = scorer.accuracy(space.from_string(study["trial"].arch), "test")
    assert exported["manifest"]["checks"]["accuracy"]["pytorch"] == pytest.approx(100 * inherited)


def test_summary_prints_paths_accuracy_and_latency(exported: dict[str, Any]):
    text = exported["stdout"]
    assert str(exported["out"]) in text
    assert f"accuracy: searched accuracy {STORED_ACCURACY:.4g}; exported" in text
    assert f"searched latency_ms@local {STORED_LATENCY_MS:.4g} ms" in text


def test_force_overwrites_with_finetuned_weights(
    exported: dict[str, Any], study: dict[str, Any], tmp_path: Path
):
    out = tmp_path / "again"
    shutil.copytree(exported["out"], out)
    argv = ["export", str(study["dir"]), "--trial", str(study["trial"].number), "--out", str(out)]
    rc, _, stderr = _cli([*argv, "--finetune-epochs", "1"])
    assert rc == 2 and "exists and is not empty" in stderr
    rc, _, stderr = _cli([*argv, "--finetune-epochs", "1", "--force"])
    assert rc == 0, stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["weights"]["source"] == "supernet+finetune"
    assert m["weights"]["finetune_epochs"] == 1 and len(m["weights"]["history"]) == 1
    assert m["checks"]["passed"]


def test_scratch_training_with_epochs(study: dict[str, Any], tmp_path: Path):
    folder = _study_copy(study["dir"], tmp_path / "scratch", _config(data=DATA))
    out = tmp_path / "export"
    trial = study["trial"].number
    argv = ["export", str(folder), "--trial", str(trial), "--out", str(out), "--epochs", "1"]
    rc, stdout, stderr = _cli(argv)
    assert rc == 0, stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["weights"]["source"] == "scratch" and m["weights"]["epochs"] == 1
    assert m["checks"]["passed"]
    assert "trained from scratch, 1 epochs" in stdout


def _error(argv: list[str]) -> str:
    rc, _, err = _cli(argv)
    lines = err.strip().splitlines()
    assert rc == 2, f"exit code {rc}, stderr: {err!r}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_error_lines(study: dict[str, Any], tmp_path: Path):
    folder, trial = study["dir"], str(study["trial"].number)
    out = tmp_path / "out"

    def export(d: Path, *extra: str) -> str:
        return _error(["export", str(d), "--out", str(out), *extra])

    line = export(folder, "--trial", "99")
    assert "trial 99 is not in" in line and "trials.csv" in line
    line = export(folder, "--trial", str(study["failed"].number))
    assert "failed" in line and "made to fail" in line and "trials.csv" in line
    bare = _study_copy(folder, tmp_path / "bare", None)
    assert "config.yaml is missing" in export(bare, "--trial", trial)
    scratch = _study_copy(folder, tmp_path / "scratch", _config(data=DATA))
    assert "give --epochs E to train" in export(scratch, "--trial", trial)
    nodata = _study_copy(folder, tmp_path / "nodata", _config())
    assert "has no data: block" in export(nodata, "--trial", trial, "--epochs", "1")
    assert "not both" in export(folder, "--trial", trial, "--epochs", "1", "--finetune-epochs", "1")
    other = _config(data=DATA, space={"name": "mbv3", "options": {"preset": "small"}})
    moved = _study_copy(folder, tmp_path / "other", other)
    assert "restore the config" in export(moved, "--trial", trial)
    assert "--epochs" in export(folder, "--trial", trial, "--epochs", "0")
    assert not out.exists()  # nothing written for bad input
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert "--force" in export(folder, "--trial", trial)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_failed_check_exits_1_and_marks_the_manifest(
    study: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from hwnas.export import checks

    monkeypatch.setattr(checks, "OUTPUT_TOLERANCE", -1.0)  # no export can meet it
    out = tmp_path / "bad"
    argv = ["export", str(study["dir"]), "--trial", str(study["trial"].number), "--out", str(out)]
    rc, _, err = _cli(argv)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1, err
    assert lines[0].startswith("error: export check failed: ONNX Runtime and PyTorch outputs")
    m = json.loads((out / "manifest.json").read_text())
    assert not m["checks"]["passed"] and not m["checks"]["onnx_vs_pytorch"]["passed"]
    assert len(m["checks"]["failures"]) == 1 and m["checks"]["accuracy"]["passed"]
