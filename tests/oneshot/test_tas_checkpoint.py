"""TAS checkpoints: a search and a distillation killed after their first epoch resume and end
exactly as an uninterrupted run; a finished one is reloaded without training; a checkpoint made
with other settings, or a damaged one, is refused with one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch import Tensor, nn  # noqa: E402

from hwnas import Objective, Study  # noqa: E402
from hwnas.data import Dataset, load_dataset  # noqa: E402
from hwnas.errors import ConfigError, DataError  # noqa: E402
from hwnas.oneshot.relax.result import GradientResult  # noqa: E402
from hwnas.oneshot.relax.tas import TASConfig, distill, tas_search  # noqa: E402
from hwnas.oneshot.relax.tas_net import TASNetwork  # noqa: E402
from hwnas.spaces import ResNetSpace, create_space  # noqa: E402
from hwnas.strategies.tas import TASStrategy  # noqa: E402
from hwnas.testing import CheapMetric  # noqa: E402
from hwnas.training.checkpoint import read_state  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = TASConfig(epochs=2, kd_epochs=2, batch_size=64, lr=0.05, top_k=2)
TIMES = ("seconds", "eta_seconds")


class Killed(Exception):
    """Raised by a progress callback to stop a run after an epoch."""


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset({"name": "digits", "limit": 300})


@pytest.fixture(scope="module")
def space() -> ResNetSpace:
    return create_space("resnet", blocks=1, widths=[4, 8, 8], in_channels=1, input_size=8)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def teacher(space: ResNetSpace) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return space.build_network(space.full_arch())


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, space: ResNetSpace, digits: Dataset) -> Path:
    """A folder holding a finished search under CONFIG."""
    folder = tmp_path_factory.mktemp("searched")
    tas_search(space, digits, CONFIG, folder=folder)
    return folder


def _reports(into: list[dict[str, Any]], kill_at: int | None = None) -> Any:
    def progress(report: Any) -> None:
        into.append({k: v for k, v in report.to_dict().items() if k not in TIMES})
        if report.epoch == kill_at:
            raise Killed

    return progress


def _without_wall(result: GradientResult) -> dict[str, Any]:
    d = result.to_dict()
    d.pop("wall_s")
    for run in d["runs"]:
        run["metrics"].pop("wall_s")
    return d


def _pipeline(
    space: ResNetSpace,
    digits: Dataset,
    teacher: nn.Module,
    folder: Path | None,
    reports: list[dict[str, Any]],
    kill: tuple[str, int] | None = None,
) -> tuple[GradientResult, dict[str, Tensor], float]:
    """Search, then distill the derived network; ``kill`` stops a phase after that epoch."""
    search_kill = kill[1] if kill and kill[0] == "search" else None
    distill_kill = kill[1] if kill and kill[0] == "distill" else None
    result = tas_search(
        space,
        digits,
        CONFIG,
        folder=None if folder is None else folder / "search",
        progress=_reports(reports, search_kill),
    )
    student, acc = distill(
        space,
        result.runs[0].archs[0],
        digits,
        teacher,
        CONFIG,
        folder=None if folder is None else folder / "distill",
        progress=_reports(reports, distill_kill),
    )
    return result, student.state_dict(), acc


def test_a_killed_run_resumes_with_the_result_of_an_uninterrupted_one(
    space: ResNetSpace, digits: Dataset, teacher: nn.Module, tmp_path: Path
) -> None:
    straight_reports: list[dict[str, Any]] = []
    straight, weights, acc = _pipeline(space, digits, teacher, None, straight_reports)
    assert len(straight_reports) == CONFIG.epochs + CONFIG.kd_epochs

    reports: list[dict[str, Any]] = []
    with pytest.raises(Killed):
        _pipeline(space, digits, teacher, tmp_path, reports, kill=("search", 1))
    phase = read_state(tmp_path / "search" / "checkpoint.pt", what="", fix="")
    assert (phase["phase"], phase["epoch"]) == ("search", 1)
    with pytest.raises(Killed):
        _pipeline(space, digits, teacher, tmp_path, reports, kill=("distill", 1))
    assert read_state(tmp_path / "search" / "checkpoint.pt", what="", fix="")["phase"] == "done"
    assert (tmp_path / "distill" / "distill.json").is_file()
    resumed, resumed_weights, resumed_acc = _pipeline(space, digits, teacher, tmp_path, reports)

    assert reports == straight_reports  # every epoch ran once, with the same figures
    assert _without_wall(resumed) == _without_wall(straight)
    assert resumed.runs[0].archs == straight.runs[0].archs
    assert resumed_acc == acc
    assert resumed_weights.keys() == weights.keys()
    assert all(torch.equal(resumed_weights[k], weights[k]) for k in weights)


def test_a_finished_run_is_reloaded_without_training(
    space: ResNetSpace,
    digits: Dataset,
    teacher: nn.Module,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, weights, acc = _pipeline(space, digits, teacher, tmp_path, [])

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("trained again")

    monkeypatch.setattr(TASNetwork, "forward", no_training)
    monkeypatch.setattr(type(teacher), "forward", no_training)
    reports: list[dict[str, Any]] = []
    again, again_weights, again_acc = _pipeline(space, digits, teacher, tmp_path, reports)
    assert reports == []
    assert again == first and again_acc == acc
    assert all(torch.equal(again_weights[k], weights[k]) for k in weights)


@pytest.mark.parametrize(
    ("change", "data", "shown"),
    [
        ({"target_flops_ratio": 0.3}, None, "target_flops_ratio 0.5 there, 0.3 now"),
        ({"epochs": 3}, None, "epochs 2 there, 3 now"),
        ({"seed": 1}, None, "seed 0 there, 1 now"),
        ({}, {"name": "digits", "limit": 250}, "data.limit 300 there, 250 now"),
    ],
)
def test_a_search_checkpoint_of_other_settings_is_refused(
    space: ResNetSpace,
    digits: Dataset,
    searched: Path,
    change: dict[str, Any],
    data: dict[str, Any] | None,
    shown: str,
) -> None:
    config = dataclasses.replace(CONFIG, **change)
    dataset = digits if data is None else load_dataset(data)
    with pytest.raises(ConfigError) as info:
        tas_search(space, dataset, config, folder=searched)
    message = str(info.value)
    assert "\n" not in message and shown in message
    assert str(searched / "checkpoint.pt") in message and "delete" in message


def test_distillation_settings_do_not_refuse_a_finished_search(
    space: ResNetSpace, digits: Dataset, searched: Path
) -> None:
    config = dataclasses.replace(CONFIG, kd_epochs=5)
    result = tas_search(space, digits, config, folder=searched)
    assert result.options["kd_epochs"] == 5
    assert result.key == tas_search(space, digits, config).key


def test_a_distillation_of_other_settings_is_refused(
    space: ResNetSpace, digits: Dataset, teacher: nn.Module, tmp_path: Path
) -> None:
    arch = "w50|d1:w50-w50|d1:w50-w50|d1:w50-w50"
    other = "w100|d1:w50-w50|d1:w50-w50|d1:w50-w50"
    with pytest.raises(Killed):
        distill(space, arch, digits, teacher, CONFIG, folder=tmp_path, progress=_reports([], 1))
    key = str(tmp_path / "distill.json")
    cases = [
        ((other, teacher, CONFIG), [key, "arch 'w50|"]),
        ((arch, nn.Sequential(teacher, nn.ReLU()), CONFIG), [key, "teacher"]),
        ((arch, teacher, dataclasses.replace(CONFIG, kd_alpha=0.5)), [key, "kd_alpha 0.9"]),
        ((arch, teacher, dataclasses.replace(CONFIG, kd_epochs=3)), ["checkpoint.pt", "epochs"]),
    ]
    for (a, t, c), parts in cases:
        with pytest.raises(ConfigError) as info:
            distill(space, a, digits, t, c, folder=tmp_path)
        message = str(info.value)
        assert "\n" not in message and "delete" in message
        assert all(part in message for part in parts), message


@pytest.mark.parametrize("content", [b"not a checkpoint", "torch"])
def test_a_damaged_search_checkpoint_is_refused_with_one_line(
    space: ResNetSpace, digits: Dataset, tmp_path: Path, content: bytes | str
) -> None:
    path = tmp_path / "checkpoint.pt"
    if content == "torch":
        torch.save({"format": "something else"}, path)
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(DataError) as info:
        tas_search(space, digits, CONFIG, folder=tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "delete it" in message


def test_a_damaged_distillation_folder_is_refused_with_one_line(
    space: ResNetSpace, digits: Dataset, teacher: nn.Module, tmp_path: Path
) -> None:
    arch = "w50|d1:w50-w50|d1:w50-w50|d1:w50-w50"
    (tmp_path / "distill.json").write_text("{not json")
    with pytest.raises(DataError) as info:
        distill(space, arch, digits, teacher, CONFIG, folder=tmp_path)
    assert "\n" not in str(info.value) and "distill.json" in str(info.value)
    (tmp_path / "distill.json").unlink()
    distill(space, arch, digits, teacher, CONFIG, folder=tmp_path, progress=_reports([], None))
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError) as info:
        distill(space, arch, digits, teacher, CONFIG, folder=tmp_path)
    assert "\n" not in str(info.value) and "checkpoint.pt" in str(info.value)


def test_the_tas_strategy_checkpoints_its_run(
    space: ResNetSpace, digits: Dataset, tmp_path: Path
) -> None:
    strategy = TASStrategy(epochs=1, batch_size=128, top_k=1)
    strategy.attach(digits, folder=tmp_path)
    study = Study(
        space=space,
        evaluators=[CheapMetric(space, name="flops")],
        objectives=[Objective("flops", "minimize")],
        strategy=strategy,
        seed=0,
    )
    study.optimize(budget=1)
    folder = strategy.search_folder()
    assert folder is not None
    path = folder / "run-0" / "checkpoint.pt"
    assert read_state(path, what="", fix="")["phase"] == "done"
