"""Training the mbv3 supernet on scikit-learn's 8x8 digits with the sandwich rule and with
progressive shrinking: both the largest and the smallest sub-network learn, the run's files say
what was trained, a finished run is reused, a killed run resumes bit for bit, and a mismatched
space or config is refused with one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn.datasets")

from hwnas.data import Dataset, load_dataset  # noqa: E402
from hwnas.errors import ConfigError  # noqa: E402
from hwnas.oneshot import (  # noqa: E402
    SupernetResult,
    SupernetScorer,
    largest_arch,
    load_supernet,
    smallest_arch,
    space_options,
    train_supernet,
)
from hwnas.spaces import MBV3Space, create_space  # noqa: E402

CONFIG: dict[str, Any] = {"train": {"epochs": 2, "batch_size": 64}, "calibration_images": 500}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny networks run fastest on one thread; several stall on oversubscribed CI runners.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def space() -> MBV3Space:
    return create_space("mbv3", preset="small", input_size=8, in_channels=1)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset({"name": "digits"})


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, space: MBV3Space, digits: Dataset
) -> SupernetResult:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_supernet(space, digits, CONFIG, tmp_path_factory.mktemp("supernet"))
    finally:
        torch.set_num_threads(threads)


def _weights(out_dir: Path) -> dict[str, Any]:
    return torch.load(out_dir / "supernet.pt", map_location="cpu", weights_only=True)


def test_sandwich_training_teaches_largest_and_smallest(trained: SupernetResult) -> None:
    acc = trained.accuracy
    # Chance is 0.1; after two epochs the largest reached 0.92 and the smallest 0.88.
    assert acc["split"] == "valid"
    assert acc["largest"] > 0.6, acc
    assert acc["smallest"] > 0.3, acc
    assert [h["phase"] for h in trained.history] == ["all", "all"]
    assert (trained.epochs, trained.resumed, trained.reused) == (2, False, False)


def test_files_record_the_run(trained: SupernetResult, space: MBV3Space, digits: Dataset) -> None:
    meta = json.loads((trained.out_dir / "supernet.json").read_text())
    assert meta["format"] == "hwnas-supernet" and meta["version"] == 1
    assert meta["space"] == space_options(space)
    assert meta["space"]["resolutions"] == [8] and meta["space"]["in_channels"] == 1
    assert meta["dataset"] == json.loads(json.dumps(digits.provenance()))
    assert meta["config"]["train"]["epochs"] == 2 and meta["config"]["schedule"] == "sandwich"
    assert meta["config"]["num_random"] == 2 and meta["epochs"] == 2
    assert meta["seconds"] == pytest.approx(sum(h["seconds"] for h in meta["history"]))
    assert meta["accuracy"] == trained.accuracy
    state = _weights(trained.out_dir)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state.keys() == trained.supernet.state_dict().keys()
    assert (trained.out_dir / "checkpoints" / "all" / "checkpoint.pt").exists()


def test_a_finished_run_is_reused(
    trained: SupernetResult, space: MBV3Space, digits: Dataset
) -> None:
    again = train_supernet(space, digits, CONFIG, trained.out_dir)
    assert (again.reused, again.epochs, again.accuracy) == (True, 2, trained.accuracy)
    for key, value in trained.supernet.state_dict().items():
        assert torch.equal(value, again.supernet.state_dict()[key]), key


def test_loaded_supernet_scores_as_trained(
    trained: SupernetResult, space: MBV3Space, digits: Dataset
) -> None:
    loaded = load_supernet(trained.out_dir, space, CONFIG)
    scorer = SupernetScorer(loaded, digits, calibration_images=500)
    assert scorer.accuracy(largest_arch(space)) == trained.accuracy["largest"]
    assert scorer.accuracy(smallest_arch(space)) == trained.accuracy["smallest"]
    calibration = scorer.calibration_batch()
    assert calibration.shape == (500, 1, 8, 8) and scorer.calibration_batch() is calibration
    assert 0.0 <= scorer.accuracy(smallest_arch(space), split="test") <= 1.0


def test_load_supernet_refuses_another_space_or_config(trained: SupernetResult) -> None:
    path = trained.out_dir / "supernet.json"
    other = create_space("mbv3", preset="small", input_size=16, in_channels=1)
    with pytest.raises(ConfigError) as err:
        load_supernet(trained.out_dir, other)
    assert str(err.value) == (
        f"{path} was written for another space (resolutions [8] there, [16] now); pass the "
        "space it was trained with, or use a new out_dir"
    )
    space = create_space("mbv3", preset="small", input_size=8, in_channels=1)
    with pytest.raises(ConfigError) as err:
        load_supernet(trained.out_dir, space, {**CONFIG, "num_random": 1})
    assert str(err.value) == (
        f"{path} was written for another supernet config (num_random 2 there, 1 now); pass the "
        "supernet config it was trained with, or use a new out_dir"
    )
    assert "\n" not in str(err.value)


def test_train_supernet_refuses_other_settings_in_a_used_folder(
    trained: SupernetResult, space: MBV3Space, digits: Dataset
) -> None:
    config = {**CONFIG, "train": {"epochs": 2, "batch_size": 32}}
    with pytest.raises(ConfigError, match=r"train.batch_size 64 there, 32 now"):
        train_supernet(space, digits, config, trained.out_dir)


class _Stop(Exception):
    pass


def _stop_after(n: int) -> Any:
    seen = []

    def progress(report: Any) -> None:
        seen.append(report)
        if len(seen) == n:
            raise _Stop

    return progress


@pytest.mark.parametrize(
    ("config", "stop_after"),
    [
        ({"train": {"epochs": 2, "batch_size": 64}}, 1),
        (
            {
                "train": {"batch_size": 64},
                "schedule": "progressive",
                "phase_epochs": {"largest": 1, "kernel": 1, "depth": 1, "expand": 2},
            },
            4,  # killed within the expansion phase, after its channel sorting
        ),
    ],
    ids=["sandwich", "progressive"],
)
def test_resume_after_an_interruption_is_bit_identical(
    space: MBV3Space, tmp_path: Path, config: dict[str, Any], stop_after: int
) -> None:
    small = load_dataset({"name": "digits", "limit": 150})
    config = {**config, "calibration_images": 60, "num_random": 1}
    whole = train_supernet(space, small, config, tmp_path / "whole")
    with pytest.raises(_Stop):
        train_supernet(space, small, config, tmp_path / "cut", progress=_stop_after(stop_after))
    assert not (tmp_path / "cut" / "supernet.pt").exists()
    resumed = train_supernet(space, small, config, tmp_path / "cut")
    assert resumed.resumed and not resumed.reused
    assert len(resumed.history) == len(whole.history)
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.accuracy == whole.accuracy
