"""Property-based tests (hypothesis) of input handling: any config mapping, any architecture
string and any table CSV either works or raises an :class:`HwnasError` with a one-line message,
never another exception; and what works is right (round trips, finite values, excluded rows
reported)."""

from __future__ import annotations

import copy
import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from hwnas.config import build_parts, parse_config
from hwnas.errors import ConfigError, HwnasError
from hwnas.evaluation import EvaluatorContext, MissingArchError
from hwnas.evaluation.table import TableEvaluator
from hwnas.spaces import create_space
from hwnas.spaces.fbnet import FBNET_BLOCKS, FBNET_LAYERS
from hwnas.spaces.nb201 import NB201_OPS

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} without a message"
    assert "\n" not in message, f"a message of more than one line: {message!r}"
    return message


# -- (a) configs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_table(tmp_path_factory: pytest.TempPathFactory, synthetic_table: Path) -> Path:
    path = tmp_path_factory.mktemp("prop-table") / "small.csv"
    pd.read_csv(synthetic_table).head(200).to_csv(path, index=False)
    return path


def _valid_config(table: str, data_dir: str) -> dict[str, Any]:
    return {
        "space": {"name": "nb201", "options": {"num_classes": 10, "input_size": 32}},
        "evaluators": [
            {"table": {"path": table, "key": "arch", "metrics": ["accuracy", "latency_ms@raspi4"]}},
            {"nb201": {"dataset": "cifar10", "devices": ["pixel3"]}},
        ],
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms@raspi4", "direction": "minimize"},
        ],
        "constraints": [{"metric": "latency_ms@pixel3", "le": 30.0}],
        "strategy": {"name": "nsga2", "population_size": 10, "crossover_prob": 0.5},
        "budget": {"evaluations": 20},
        "seed": 3,
        "execution": {"executor": "sequential", "timeout_s": 5.0, "retries": 1},
        "data_dir": data_dir,
    }


# Values that are wrong in plausible ways, and JSON-ish values of any shape.
PLAUSIBLE = st.sampled_from(
    [0, -1, 1, 2, 1.5, 10.5, 1e30, -3, "ten", "", "nb2011", "random", "max", "cifar11", True,
     False, None, [], {}, ["raspi4"], {"name": "nb201"}, float("nan"), float("inf")]
).map(copy.deepcopy)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_configs(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(config)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = config
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        action = draw(st.sampled_from(["drop", "rename", "plausible", "jsonish"]))
        if action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            new = draw(st.text(min_size=1, max_size=10) | st.just(str(key)[:-1] or "x"))
            parent[new] = parent.pop(key)
        elif action == "plausible":
            parent[key] = draw(PLAUSIBLE)
        else:
            parent[key] = draw(JSONISH)
    return config


@FAST
@given(data=st.data())
def test_any_config_builds_or_says_why_in_one_line(
    data: st.DataObject, small_table: Path, synthetic_nb201_dir: Path, tmp_path: Path
) -> None:
    base = _valid_config(str(small_table), str(synthetic_nb201_dir))
    config = data.draw(mutated_configs(base))
    try:
        parts = build_parts(parse_config(config, "prop.yaml"), base_dir=tmp_path)
    except HwnasError as exc:
        _one_line(exc)
        event(f"refused: {type(exc).__name__}")
        return
    event("built")
    # What builds is what was asked for.
    assert parts.budget == config["budget"]["evaluations"]
    assert parts.seed == config.get("seed", 0)
    assert parts.space.name == "nb201"


def test_the_unmutated_config_builds(
    small_table: Path, synthetic_nb201_dir: Path, tmp_path: Path
) -> None:
    base = _valid_config(str(small_table), str(synthetic_nb201_dir))
    parts = build_parts(parse_config(base), base_dir=tmp_path)
    assert parts.strategy_name == "nsga2"
    assert [ev.key().split(":")[0] for ev in parts.evaluators] == ["table", "nb201"]


# -- (b) architecture strings --------------------------------------------------------------------
NB201 = create_space("nb201")
FBNET = create_space("fbnet")


@st.composite
def nb201_like(draw: st.DrawFn) -> str:
    """Canonical NB201 strings, often with one corruption, sometimes padded with blanks."""
    ops = [draw(st.sampled_from(NB201_OPS)) for _ in range(6)]
    text = NB201.to_string({"ops": ops})
    corruption = draw(st.sampled_from(["none"] * 4 + ["op", "source", "bar", "plus", "cut", "add"]))
    if corruption == "op":
        text = text.replace(ops[0], draw(st.sampled_from(["conv_3x3", "", "None", "none "])), 1)
    elif corruption == "source":
        text = text.replace("~1", draw(st.sampled_from(["~2", "~", "1", "~01"])), 1)
    elif corruption == "bar":
        text = text.replace("|", draw(st.sampled_from(["", "||", "/"])), 1)
    elif corruption == "plus":
        text = text.replace("+", draw(st.sampled_from(["", "++", "-"])), 1)
    elif corruption == "cut":
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif corruption == "add":
        text += draw(st.sampled_from(["+|none~0|", "|", "x"]))
    pad = st.sampled_from(["", "", "", " ", "\t", "\n", "x"])
    return draw(pad) + text + draw(pad)


@st.composite
def fbnet_like(draw: st.DrawFn) -> str:
    """FBNet strings: 22 blocks with one separator, one block or the count wrong sometimes."""
    parts = [draw(st.sampled_from(FBNET_BLOCKS)) for _ in range(FBNET_LAYERS)]
    corruption = draw(st.sampled_from(["none"] * 4 + ["block", "fewer", "more"]))
    if corruption == "block":
        parts[draw(st.integers(0, FBNET_LAYERS - 1))] = draw(
            st.sampled_from(["k7_e6", "skipp", "K3_E1", "k3-e1", ""])
        )
    elif corruption == "fewer":
        parts.pop()
    elif corruption == "more":
        parts.append(draw(st.sampled_from(FBNET_BLOCKS)))
    sep = draw(st.sampled_from([" "] * 6 + ["  ", "\t", "\n", ",", " , "]))
    pad = st.sampled_from(["", "", " ", "\n"])
    return draw(pad) + sep.join(parts) + draw(pad)


@FAST
@given(text=st.text(max_size=120) | nb201_like())
def test_nb201_strings_parse_canonically_or_raise_config_error(text: str) -> None:
    try:
        arch = NB201.from_string(text)
    except ConfigError as exc:
        _one_line(exc)
        event("refused")
        return
    event("parsed")
    assert NB201.to_string(arch) == text.strip()  # only the canonical form parses
    assert NB201.from_string(NB201.to_string(arch)) == arch


@FAST
@given(text=st.text(max_size=200) | fbnet_like())
def test_fbnet_strings_parse_canonically_or_raise_config_error(text: str) -> None:
    try:
        arch = FBNET.from_string(text)
    except ConfigError as exc:
        _one_line(exc)
        event("refused")
        return
    event("parsed")
    assert FBNET.to_string(arch) == " ".join(text.split())
    assert FBNET.from_string(FBNET.to_string(arch)) == arch


@settings(max_examples=100, deadline=None)
@given(
    nb201=st.lists(st.integers(0, len(NB201_OPS) - 1), min_size=6, max_size=6),
    fbnet=st.lists(
        st.integers(0, len(FBNET_BLOCKS) - 1), min_size=FBNET_LAYERS, max_size=FBNET_LAYERS
    ),
)
def test_canonical_strings_of_any_arch_parse_back(nb201: list[int], fbnet: list[int]) -> None:
    for space, code in ((NB201, nb201), (FBNET, fbnet)):
        arch = space.decode(np.asarray(code))
        assert space.from_string(space.to_string(arch)) == arch
        assert space.encode(space.from_string(space.to_string(arch))).tolist() == code


# -- (c) table CSVs ------------------------------------------------------------------------------
ARCHS = [
    NB201.to_string(NB201.decode(np.asarray(np.unravel_index(i, (5,) * 6))))
    for i in range(0, 15625, 97)
]
CELL = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.integers(-1000, 1000).map(str),
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "", "n/a", "fast", "1e400", " 3.5 ", '"4"', "x,y"]
    ),
    st.text(max_size=6),
)


@st.composite
def table_csvs(draw: st.DrawFn) -> tuple[str, list[str]]:
    """CSV text with header ``arch,m0..`` and random rows, and the header."""
    n_metrics = draw(st.integers(1, 3))
    header = ["arch", *[f"m{j}" for j in range(n_metrics)]]
    keys = draw(st.lists(st.sampled_from(ARCHS), min_size=1, max_size=12, unique=True))
    rows = []
    for key in keys:
        if draw(st.integers(0, 19)) == 0:  # now and then a malformed or repeated key
            key = draw(st.sampled_from(["resnet", "", keys[0], key.replace("~0", "~1", 1)]))
        cells = [draw(CELL) for _ in range(n_metrics)]
        shape = draw(st.sampled_from(["full"] * 8 + ["short", "long"]))
        if shape == "short":
            cells = cells[: draw(st.integers(0, n_metrics - 1))]
        elif shape == "long":
            cells = [*cells, draw(CELL)]
        rows.append([key, *cells])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue(), header


def _finite(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@FAST
@given(table=table_csvs())
def test_any_table_csv_loads_checked_or_says_why_in_one_line(
    table: tuple[str, list[str]], tmp_path: Path
) -> None:
    text, header = table
    path = tmp_path / "t.csv"
    path.write_text(text)
    ctx = EvaluatorContext(space=NB201, base_dir=tmp_path)
    try:
        ev = TableEvaluator(path=str(path), context=ctx)
    except HwnasError as exc:
        _one_line(exc)
        event(f"refused: {type(exc).__name__}")
        return
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    rows = [r for r in rows if r]
    width = len(header)
    names = list(ev.metrics())
    assume(names)
    excluded, kept = [], {}
    for row in rows:
        cells = [row[header.index(n)] if header.index(n) < len(row) else "" for n in names]
        values = [_finite(c) for c in cells]
        if len(row) < width or any(v is None for v in values):
            excluded.append(row)
        else:
            kept[NB201.canonical(row[0])] = values
    # Every kept architecture gives its finite numbers; every excluded one is refused.
    assert set(ev.table().index) == set(kept)
    for arch_str, values in kept.items():
        got = ev.evaluate(NB201.from_string(arch_str))
        assert list(got) == names
        assert all(math.isfinite(v) for v in got.values())
        assert list(got.values()) == pytest.approx(values)
    for row in excluded:
        try:
            arch = NB201.from_string(row[0])
        except ConfigError:
            continue  # a cut-off key: the row is reported as truncated
        with pytest.raises(MissingArchError, match=re.escape("is excluded from t.csv")):
            ev.evaluate(arch)
    event("loaded, some rows excluded" if excluded else "loaded, every row kept")
    # ... and the notes say how many rows were left out.
    notes = " ".join(ev.notes())
    if excluded:
        found = re.search(r"(\d+) rows? excluded", notes)
        assert found is not None and int(found.group(1)) == len(excluded), notes
    else:
        assert "excluded" not in notes
    assert all("\n" not in note for note in ev.notes())
