"""The ``supernet`` evaluator on a supernet trained for one epoch on scikit-learn's 8x8 digits:
inherited-weight accuracy in percent (the largest sub-network scores as ``supernet.json`` says),
cheap, keyed by what fixes the supernet, and a resume with other data or other weights refused."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn.datasets")

from hwnas.config import build_evaluators, parse_config  # noqa: E402
from hwnas.errors import ConfigError, StudyMismatchError  # noqa: E402
from hwnas.evaluation import EVALUATORS  # noqa: E402
from hwnas.evaluation.supernet import SupernetAccuracy  # noqa: E402
from hwnas.oneshot import largest_arch, smallest_arch, train_supernet  # noqa: E402
from hwnas.problem import Objective  # noqa: E402
from hwnas.storage.base import MemoryStore  # noqa: E402
from hwnas.study import Study  # noqa: E402

SPACE = {"name": "mbv3", "options": {"preset": "small", "input_size": 8, "in_channels": 1}}
DATA = {"name": "digits", "limit": 600}
SUPERNET = {"train": {"epochs": 1, "batch_size": 64}, "calibration_images": 200}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(folder: Path, options: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "space": SPACE,
        "data": dict(DATA),
        "supernet": {**SUPERNET, "dir": str(folder)},
        "evaluators": [{"supernet": dict(options or {})}],
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "budget": {"evaluations": 5},
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


def _evaluator(config: dict[str, Any], base_dir: Path) -> SupernetAccuracy:
    _, evaluators = build_evaluators(parse_config(config), base_dir=base_dir)
    (ev,) = evaluators
    assert isinstance(ev, SupernetAccuracy)
    return ev


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A supernet trained through the config's own pieces, as ``hwnas search`` trains it."""
    folder = tmp_path_factory.mktemp("sn") / "supernet"
    config = parse_config(_config(folder))
    ev = _evaluator(_config(folder), folder.parent)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert config.supernet is not None
        train_supernet(ev.space, ev.dataset, config.supernet.config_dict(), folder)
    finally:
        torch.set_num_threads(threads)
    return folder


def test_registered_and_cheap(trained: Path) -> None:
    assert EVALUATORS.get("supernet") is SupernetAccuracy
    ev = _evaluator(_config(trained), trained.parent)
    assert (ev.expensive, ev.cacheable, ev.metrics()) == (False, False, ("accuracy",))
    assert ev.dir == trained.resolve()
    assert "accuracy: valid accuracy (%)" in ev.describe()


def test_accuracy_is_the_scorers_in_percent(trained: Path) -> None:
    ev = _evaluator(_config(trained), trained.parent)
    meta = json.loads((trained / "supernet.json").read_text())
    largest = ev.evaluate(largest_arch(ev.space))["accuracy"]
    assert largest == pytest.approx(100 * meta["accuracy"]["largest"])
    assert ev.evaluate(smallest_arch(ev.space))["accuracy"] == pytest.approx(
        100 * meta["accuracy"]["smallest"]
    )
    # Pickled (to a worker process) without the loaded supernet, and scoring the same there.
    copy = pickle.loads(pickle.dumps(ev))
    assert copy._scorer is None
    assert copy.evaluate(largest_arch(ev.space))["accuracy"] == largest
    test = _evaluator(_config(trained, {"split": "test", "metric": "acc_sn"}), trained.parent)
    assert set(test.evaluate(largest_arch(ev.space))) == {"acc_sn"}


def test_key_is_known_before_training_and_names_what_fixes_the_supernet(
    tmp_path: Path, trained: Path
) -> None:
    untrained = _evaluator(_config(tmp_path / "empty"), tmp_path)
    key = _evaluator(_config(trained), trained.parent).key()
    assert untrained.key() == key  # the folder is not part of it: the settings and data are
    other_data = _config(trained, data={**DATA, "limit": 500})
    other_config = _config(trained, supernet={**SUPERNET, "num_random": 1, "dir": str(trained)})
    keys = {key, _evaluator(other_data, tmp_path).key(), _evaluator(other_config, tmp_path).key()}
    assert len(keys) == 3
    with pytest.raises(ConfigError) as info:  # a study cannot start on a supernet not trained
        untrained.provenance()
    assert "hwnas supernet train" in str(info.value)
    with pytest.raises(ConfigError, match="no trained supernet"):
        untrained.evaluate(largest_arch(untrained.space))


def _study(ev: SupernetAccuracy, store: MemoryStore) -> Study:
    return Study(
        space=ev.space,
        evaluators=[ev],
        objectives=[Objective("accuracy", "maximize")],
        store=store,
        seed=0,
    )


def test_resume_with_other_weights_or_data_is_refused(tmp_path: Path, trained: Path) -> None:
    folder = tmp_path / "supernet"
    shutil.copytree(trained, folder)
    ev = _evaluator(_config(folder), tmp_path)
    weights = ev.provenance()["supernet weights (supernet.pt)"]
    assert weights["sha256"] == hashlib.sha256((folder / "supernet.pt").read_bytes()).hexdigest()
    store = MemoryStore()
    study = _study(ev, store)
    study.optimize(2)
    assert len(study.trials) == 2 and study.n_charged == 2  # no expensive evaluator: all count
    _study(_evaluator(_config(folder), tmp_path), store)  # the same: resumes

    state = torch.load(folder / "supernet.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 1.0
    torch.save(state, folder / "supernet.pt")
    with pytest.raises(StudyMismatchError, match=r"supernet weights \(supernet.pt\).*changed"):
        _study(_evaluator(_config(folder), tmp_path), store)

    shutil.copyfile(trained / "supernet.pt", folder / "supernet.pt")
    _study(_evaluator(_config(folder), tmp_path), store)  # restored: resumes again
    # Other data: the supernet was not trained on it, which is said before the stored study is
    # even compared (a search retrains nothing: train_supernet refuses the folder first).
    other = _evaluator(_config(folder, data={**DATA, "limit": 500}), tmp_path)
    with pytest.raises(ConfigError, match="was trained on other data"):
        _study(other, store)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"space": {"name": "nb201"}, "supernet": None},
            "evaluator 'supernet' needs space 'mbv3'",
        ),
        ({"supernet": None}, "the config has no top-level supernet: block"),
        ({"options": {"split": "tset"}}, "supernet: unknown split 'tset'"),
        ({"options": {"metric": ""}}, "supernet: metric must be a name"),
        ({"options": {"splits": "valid"}}, "evaluator 'supernet' has no option 'splits'"),
    ],
)
def test_config_errors_name_the_fix(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    change = dict(change)
    options = change.pop("options", None)
    with pytest.raises(ConfigError) as info:
        build_evaluators(parse_config(_config(tmp_path, options, **change)), base_dir=tmp_path)
    message = str(info.value)
    assert expected in message and "\n" not in message
