"""The ``categorical`` space a user defines in the config alone: strings, sizes, the errors of
bad slots, every strategy over a user's table, and ``hwnas search`` end to end."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import hwnas
from hwnas import ConfigError, Objective, Study, create_space, create_strategy
from hwnas.cli import main
from hwnas.config import build_space
from hwnas.config_schema import parse_config
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.spaces import UserCategoricalSpace
from hwnas.storage import SQLiteStore
from hwnas.strategies.gradient import GRADIENT_STRATEGIES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 3 x 4 x 3 x 4 = 144 architectures; slot order is not alphabetical on purpose.
SLOTS: dict[str, list[Any]] = {
    "kernel": [3, 5, 7],
    "width": ["w16", "w32", "w48", "w64"],
    "act": ["relu", "hswish", "gelu"],
    "depth": [1, 2, 3, 4],
}
ACT_GAIN = {"relu": 0.0, "hswish": 1.5, "gelu": 1.0}
ACT_COST = {"relu": 0.0, "hswish": 0.2, "gelu": 0.4}
OBJECTIVES = [Objective("accuracy", "maximize"), Objective("latency_ms@dev", "minimize")]
BUDGET = 20


def _metrics(kernel: str, width: str, act: str, depth: str) -> tuple[float, float]:
    """A made-up but structured accuracy and latency: bigger is better and slower."""
    k, w, d = int(kernel), int(width[1:]), int(depth)
    accuracy = 60 + 2 * k + 3 * w / 16 + ACT_GAIN[act] + 2 * d
    latency = k * w * d / 50 + ACT_COST[act]
    return round(accuracy, 3), round(latency, 3)


def _write_table(folder: Path) -> pd.DataFrame:
    """Every architecture of :data:`SLOTS`, keyed by its canonical string, as a user would."""
    rows = []
    for combo in itertools.product(*[[str(c) for c in v] for v in SLOTS.values()]):
        acc, lat = _metrics(*combo)
        rows.append({"arch": "-".join(combo), "accuracy": acc, "latency_ms@dev": lat})
    frame = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "models.csv", index=False)
    return frame.set_index("arch")


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user-table")
    _write_table(folder)
    return folder


def _space(**options: Any) -> UserCategoricalSpace:
    space = create_space("categorical", **{"slots": SLOTS, **options})
    assert isinstance(space, UserCategoricalSpace)
    return space


# -- strings, sizes, order ------------------------------------------------------------------------
def test_canonical_string_joins_the_choices_in_slot_order() -> None:
    space = _space()
    arch = {"ops": ["5", "w32", "gelu", "2"]}
    assert space.to_string(arch) == "5-w32-gelu-2"
    assert space.from_string("5-w32-gelu-2") == arch
    assert space.canonical("  5-w32-gelu-2\n") == "5-w32-gelu-2"
    assert space.slot_names == ("kernel", "width", "act", "depth")
    assert space.size == 3 * 4 * 3 * 4 == len({space.to_string(a) for a in space.enumerate()})
    assert space.cheap_metrics(arch) == {} and space.cheap_metric_names() == ()
    with pytest.raises(NotImplementedError, match="no PyTorch builder"):
        space.build_network(arch)


def test_every_architecture_round_trips(rng: np.random.Generator) -> None:
    space = _space(separator="/")
    for arch in space.enumerate():
        s = space.to_string(arch)
        assert s.count("/") == 3
        assert space.from_string(s) == arch
        assert space.decode(space.encode(arch)) == arch
    child = space.mutate(space.sample(rng), rng)
    assert space.from_string(space.to_string(child)) == child


def test_slot_order_is_the_given_order_not_sorted() -> None:
    space = create_space("categorical", slots={"z": ["a", "b"], "m": ["c", "d"], "a": ["e", "f"]})
    assert space.slot_names == ("z", "m", "a")
    assert space.to_string({"ops": ["b", "c", "f"]}) == "b-c-f"
    assert list(space.options["slots"]) == ["z", "m", "a"]


def test_integer_choices_are_strings_and_a_single_choice_slot_is_kept() -> None:
    space = create_space(
        "categorical", slots={"stem": ["conv3x3"], "kernel": [3, 5, 7]}, separator="_"
    )
    assert space.slots == (("conv3x3",), ("3", "5", "7"))
    assert space.size == 3
    assert [space.to_string(a) for a in space.enumerate()] == [
        "conv3x3_3",
        "conv3x3_5",
        "conv3x3_7",
    ]
    assert space.from_string("conv3x3_5") == {"ops": ["conv3x3", "5"]}
    rng = np.random.default_rng(0)
    for _ in range(20):  # mutation moves the slot that has a choice to make
        assert space.mutate({"ops": ["conv3x3", "3"]}, rng)["ops"][0] == "conv3x3"
    assert len(space.neighbours({"ops": ["conv3x3", "3"]})) == 2


def test_options_identify_the_space_however_they_were_written() -> None:
    a = create_space("categorical", slots={"k": [3, 5], "act": ["relu", "gelu"]})
    b = create_space("categorical", slots={"k": ["3", "5"], "act": ["relu", "gelu"]}, separator="-")
    expected = {"slots": {"k": ["3", "5"], "act": ["relu", "gelu"]}, "separator": "-"}
    assert a.options == b.options == expected
    assert json.loads(json.dumps(a.options)) == a.options
    rebuilt = create_space("categorical", **json.loads(json.dumps(a.options)))
    assert rebuilt.options == a.options and rebuilt.slots == a.slots


# -- errors ---------------------------------------------------------------------------------------
BAD_OPTIONS = [
    ({"slots": {}}, r"slots is empty; give at least one slot"),
    ({"slots": {"k": []}}, r"slot 'k' has no choices; give it at least one"),
    ({"slots": {"k": "3x3"}}, r"slot 'k' must be a list of choices, got '3x3'; .*k: \[3x3\]"),
    ({"slots": {"k": [3, True]}}, r"slot 'k': choice True is a boolean; .*quote it"),
    ({"slots": {"k": [3, None]}}, r"slot 'k': choice None is empty; .*quote it"),
    ({"slots": {"k": [3, 5.5]}}, r"slot 'k': choice 5.5 is a decimal number; write it in quotes"),
    ({"slots": {"k": [3, [5, 7]]}}, r"slot 'k': choice \[5, 7\] is a list; .*flatten it"),
    ({"slots": {"k": [3, {"a": 1}]}}, r"slot 'k': choice \{'a': 1\} is a mapping; .*flatten it"),
    ({"slots": {"k": [3, ""]}}, r"slot 'k': choice '' is empty; give every choice a name"),
    ({"slots": {"k": [3, " 5"]}}, r"slot 'k': choice ' 5' has leading or trailing spaces"),
    ({"slots": {"k": [3, "3"]}}, r"slot 'k' lists choice '3' twice \(entries 0 and 1.*keep one"),
    ({"slots": {1: [3, 5]}}, r"slot name 1 is not a non-empty string; name every slot"),
    ({"slots": {"": [3, 5]}}, r"slot name '' is not a non-empty string"),
    ({"slots": {True: [3, 5]}}, r"slot name True is not a non-empty string; .*quote it"),
    ({"slots": ["k", "a"]}, r"slots must be a mapping of slot name -> list of choices"),
    ({"slots": {"k": [3, 5]}, "separator": ""}, r"separator must be a non-empty string"),
    (
        {"slots": {"act": ["relu", "h-swish"]}},
        r"slot 'act': choice 'h-swish' contains the separator '-'.*separator: '_', or rename",
    ),
    (
        {"slots": {"a": ["x-", "y"], "b": ["z", "w"]}, "separator": "--"},
        r"slot 'a': choice 'x-' contains the separator '--' \(or starts or ends with one",
    ),
    ({"slots": {"k": [3], "act": ["relu"]}}, r"holds one architecture; give some slot two"),
]


@pytest.mark.parametrize("options, message", BAD_OPTIONS)
def test_bad_slots_give_one_line_naming_the_fix(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        create_space("categorical", **options)
    text = str(err.value)
    assert text.startswith("categorical: ") and "\n" not in text and "; " in text


def test_bad_strings_name_the_slot_and_the_closest_choice() -> None:
    space = _space()
    with pytest.raises(ConfigError) as err:
        space.from_string("5-w32-gelux-2")
    assert str(err.value) == (
        "categorical: unknown choice 'gelux' for slot 'act' (position 2); "
        "did you mean 'gelu' or 'relu'?"
    )
    with pytest.raises(ConfigError) as err:
        space.from_string("5-w32-gelu")
    assert str(err.value) == (
        "categorical: '5-w32-gelu' has 3 part(s) joined by '-', expected 4 "
        "(kernel-width-act-depth); e.g. '3-w16-relu-1'"
    )
    with pytest.raises(ConfigError, match=r"slot 'kernel' \(position 0\); did you mean '5'"):
        space.to_string({"ops": [5, "w32", "gelu", "2"]})  # ints in a dict are not choices
    with pytest.raises(ConfigError, match="categorical: expected 4 ops, got 2"):
        space.to_string({"ops": ["5", "w32"]})


def _from_config(options: dict[str, Any]) -> Any:
    config = {
        "space": {"name": "categorical", "options": options},
        "evaluators": [{"table": {"path": "models.csv"}}],
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "budget": {"evaluations": 5},
    }
    return build_space(parse_config(yaml.safe_load(yaml.safe_dump(config, sort_keys=False))))


def test_a_config_carries_the_nested_slots_in_order() -> None:
    space = _from_config({"slots": {"z": [3, 5], "a": ["relu", "gelu"]}, "separator": "_"})
    assert space.slot_names == ("z", "a") and space.to_string({"ops": ["5", "gelu"]}) == "5_gelu"
    with pytest.raises(ConfigError, match=r"space 'categorical' needs the option 'slots'"):
        _from_config({})
    with pytest.raises(ConfigError, match=r"has no option 'slot'; did you mean 'slots'"):
        _from_config({"slot": {"k": [3, 5]}})
    with pytest.raises(ConfigError, match=r"choice True is a boolean"):
        _from_config({"slots": {"flag": [True, False]}})  # YAML's yes / no


# -- every strategy over a user's table -----------------------------------------------------------
# Options a gradient strategy needs before it looks at the space (a latency-aware loss).
GRADIENT_OPTIONS: dict[str, dict[str, Any]] = {
    "fbnet": {"cost": {"source": "flops"}},
    "proxyless": {"cost": {"source": "flops"}},
}
SAMPLING = [s for s in hwnas.list_strategies() if s not in GRADIENT_STRATEGIES]


def _run(strategy: str, table_dir: Path, budget: int = BUDGET, store: Any = None) -> Study:
    space = _space()
    table = create_evaluator(
        "table", EvaluatorContext(space=space, base_dir=table_dir), path="models.csv"
    )
    study = Study(
        space=space,
        evaluators=[table],
        objectives=OBJECTIVES,
        strategy=create_strategy(strategy),
        seed=7,
        store=store,
    )
    study.optimize(budget)
    return study


@pytest.mark.parametrize("strategy", SAMPLING)
def test_every_sampling_strategy_searches_a_users_table(strategy: str, table_dir: Path) -> None:
    if strategy == "optuna" and importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna is not installed (hwnas[optuna])")
    study = _run(strategy, table_dir)
    table = pd.read_csv(table_dir / "models.csv").set_index("arch")
    archs = [t.arch for t in study.trials]
    assert len(archs) == len(set(archs)) == BUDGET == study.n_charged
    assert all(t.state == "complete" for t in study.trials)
    assert set(archs) <= set(table.index)
    for t in study.trials:
        assert dict(t.metrics) == pytest.approx(table.loc[t.arch].to_dict())
    front = study.pareto_front()
    assert front and {t.arch for t in front} <= set(archs)
    assert [t.arch for t in _run(strategy, table_dir).trials] == archs  # seeded


@pytest.mark.parametrize("strategy", sorted(GRADIENT_STRATEGIES))
def test_gradient_strategies_refuse_the_space(strategy: str, table_dir: Path) -> None:
    pytest.importorskip("torch")
    space = _space()
    table = create_evaluator(
        "table", EvaluatorContext(space=space, base_dir=table_dir), path="models.csv"
    )
    with pytest.raises(ConfigError) as err:
        Study(
            space=space,
            evaluators=[table],
            objectives=OBJECTIVES,
            strategy=create_strategy(strategy, **GRADIENT_OPTIONS.get(strategy, {})),
        )
    text = str(err.value)
    assert "\n" not in text and "categorical" in text


def test_a_stored_study_resumes_with_its_slots_in_order(table_dir: Path, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "study.db")
    try:
        first = [t.arch for t in _run("nsga2", table_dir, budget=8, store=store).trials]
    finally:
        store.close()
    store = SQLiteStore(tmp_path / "study.db")
    try:
        meta, _ = store.load()  # read back from the file: the definition went through JSON
        options = meta["definition"]["space"]["options"]
        assert list(options["slots"]) == ["kernel", "width", "act", "depth"]
        assert options == _space().options
        resumed = _run("nsga2", table_dir, budget=BUDGET, store=store)
    finally:
        store.close()
    archs = [t.arch for t in resumed.trials]
    assert archs[:8] == first
    assert archs == [t.arch for t in _run("nsga2", table_dir).trials]


# -- hwnas search end to end ----------------------------------------------------------------------
def test_hwnas_search_on_a_users_space_and_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    table = _write_table(tmp_path / "config")
    config = {
        "space": {"name": "categorical", "options": {"slots": SLOTS, "separator": "-"}},
        "evaluators": [{"table": {"path": "models.csv", "key": "arch"}}],
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@dev", "direction": "minimize"},
        ],
        "constraints": [{"metric": "latency_ms@dev", "le": 5.0}],
        "budget": {"evaluations": 30},
        "seed": 0,
    }
    cfg = tmp_path / "config" / "study.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "out"
    assert main(["search", str(cfg), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err

    for name in ("study.db", "trials.csv", "pareto.csv", "report.html", "pareto.png"):
        assert (out / name).is_file(), name
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials.columns) == ["trial", "arch", "accuracy", "latency_ms@dev"]
    assert len(trials) == 30 and trials["arch"].is_unique
    assert set(trials["arch"]) <= set(table.index)
    expected = table.loc[trials["arch"]]
    np.testing.assert_allclose(trials["accuracy"], expected["accuracy"], rtol=1e-9)
    np.testing.assert_allclose(trials["latency_ms@dev"], expected["latency_ms@dev"], rtol=1e-9)

    pareto = pd.read_csv(out / "pareto.csv")
    feasible = trials[trials["latency_ms@dev"] <= 5.0]
    points = np.column_stack([-feasible["accuracy"], feasible["latency_ms@dev"]])
    dominated = [bool(((points <= p).all(axis=1) & (points < p).any(axis=1)).any()) for p in points]
    assert sorted(pareto["trial"]) == sorted(feasible["trial"][[not d for d in dominated]])

    before = (out / "trials.csv").read_bytes()
    assert main(["search", str(cfg), "--out", str(out)]) == 0  # the same command resumes
    assert "(0 new" in capsys.readouterr().out
    assert (out / "trials.csv").read_bytes() == before
