"""The ``train`` evaluator on scikit-learn's 8x8 digits: accuracy (percent) of a network trained
from scratch, the same for one architecture and seed every time, a cache key that names what
changes the result, inputs resized to the architecture's resolution, one-line config errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn.datasets")

from hwnas.config import build_evaluators, parse_config  # noqa: E402
from hwnas.data import load_dataset  # noqa: E402
from hwnas.errors import ConfigError  # noqa: E402
from hwnas.evaluation import EVALUATORS, EvaluatorContext  # noqa: E402
from hwnas.evaluation.train import TrainAccuracy  # noqa: E402
from hwnas.spaces.base import CategoricalSpace  # noqa: E402

SMALLEST = "r8-w1.0|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3"
DATA = {"name": "digits", "limit": 300}
SPACE = {"name": "mbv3", "options": {"preset": "small", "input_size": 8, "in_channels": 1}}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(options: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "space": {
            "name": "mbv3",
            "options": {"preset": "small", "input_size": 8, "in_channels": 1},
        },
        "data": dict(DATA),
        "evaluators": [{"train": {"epochs": 1, "batch_size": 64, **(options or {})}}],
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "budget": {"evaluations": 5},
        "seed": 3,
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


def _evaluator(tmp_path: Path, config: dict[str, Any], seed: int | None = None) -> TrainAccuracy:
    _, evaluators = build_evaluators(parse_config(config), base_dir=tmp_path, seed=seed)
    (ev,) = evaluators
    assert isinstance(ev, TrainAccuracy)
    return ev


def test_registered_and_expensive(tmp_path: Path) -> None:
    assert EVALUATORS.get("train") is TrainAccuracy
    ev = _evaluator(tmp_path, _config())
    assert (ev.expensive, ev.cacheable, ev.metrics()) == (True, True, ("accuracy",))
    assert ev.config.seed == 3  # the study seed
    assert list(ev.provenance()) == ["dataset digits"]
    assert "valid accuracy (%)" in ev.describe()


def test_same_arch_and_seed_give_the_same_accuracy(tmp_path: Path) -> None:
    ev = _evaluator(tmp_path, _config())
    arch = ev.space.from_string(SMALLEST)
    rng_before = torch.get_rng_state()
    first = ev.evaluate(arch)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's random state is kept
    again = _evaluator(tmp_path, _config()).evaluate(arch)  # a fresh instance, a fresh network
    assert first == again
    (value,) = first.values()
    # A percentage, not a fraction: correct images are a whole number of 100 / n percent.
    n = ev.dataset.indices["valid"].size
    assert 1.0 < value <= 100.0
    assert value * n / 100 == pytest.approx(round(value * n / 100))


def test_key_names_seed_data_split_and_settings(tmp_path: Path) -> None:
    base = _evaluator(tmp_path, _config()).key()
    assert base == _evaluator(tmp_path, _config()).key()
    others = [
        _evaluator(tmp_path, _config(), seed=4).key(),  # --seed
        _evaluator(tmp_path, _config({"seed": 9})).key(),
        _evaluator(tmp_path, _config({"lr": 0.1})).key(),
        _evaluator(tmp_path, _config({"split": "test"})).key(),
        _evaluator(tmp_path, _config(data={**DATA, "limit": 250})).key(),
        _evaluator(tmp_path, _config({"metric": "accuracy_scratch"}), seed=3).key(),
    ]
    assert base not in others and len(set(others)) == len(others)
    assert _evaluator(tmp_path, _config({"eval_batch_size": 64})).key() == base


def test_inputs_are_resized_to_the_architecture(tmp_path: Path) -> None:
    space_options = {"preset": "small", "input_size": 12, "in_channels": 1}
    config = _config(space={"name": "mbv3", "options": space_options})
    ev = _evaluator(tmp_path, config)
    arch = ev.space.from_string(SMALLEST.replace("r8", "r12"))
    net = ev.network(arch)
    assert isinstance(net[0], torch.nn.Upsample) and net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert 0.0 <= ev.evaluate(arch)["accuracy"] <= 100.0
    at_8 = _evaluator(tmp_path, _config())
    plain = at_8.network(at_8.space.from_string(SMALLEST))
    assert not isinstance(plain, torch.nn.Sequential)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"data": None}, "evaluator 'train' needs the dataset"),
        ({"options": {"split": "train"}}, "train: unknown split 'train'"),
        ({"options": {"lr": -1.0}}, "train: train config: lr must be a number > 0"),
        ({"options": {"epoch": 1}}, "evaluator 'train' has no option 'epoch'"),
        ({"options": {"metric": "acc uracy"}}, "train: metric must be a name without spaces"),
        ({"data": {**DATA, "valid_fraction": 0.0}}, "the dataset's valid split is empty"),
        (
            {"space": {"name": "mbv3", "options": {"preset": "small", "input_size": 8}}},
            "set the space option in_channels: 1",
        ),
        (
            {
                "space": {
                    "name": "mbv3",
                    "options": {"preset": "small", "in_channels": 1, "num_classes": 7},
                }
            },
            "set the space option num_classes: 10",
        ),
    ],
)
def test_config_errors_name_the_fix(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    change = dict(change)
    options = change.pop("options", None)
    with pytest.raises(ConfigError) as info:
        build_evaluators(parse_config(_config(options, **change)), base_dir=tmp_path)
    message = str(info.value)
    assert expected in message and "\n" not in message


class _Choices(CategoricalSpace):
    name = "choices"
    slots = (("a", "b"),)

    def to_string(self, arch: dict[str, Any]) -> str:
        return str(arch["ops"][0])

    def from_string(self, text: str) -> dict[str, Any]:
        return {"ops": [text]}


def test_a_space_without_networks_is_refused() -> None:
    context = EvaluatorContext(space=_Choices(), dataset=load_dataset(DATA))
    with pytest.raises(ConfigError, match="space 'choices' cannot build PyTorch networks"):
        TrainAccuracy(epochs=1, context=context)
