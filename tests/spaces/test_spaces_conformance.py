"""Conformance suite run over every registered space."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas import ConfigError, create_space, list_spaces
from hwnas.spaces import NB201Space


@pytest.fixture(params=list_spaces())
def space(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return create_space(request.param)


def test_string_round_trip(space, rng) -> None:  # type: ignore[no-untyped-def]
    for _ in range(50):
        arch = space.sample(rng)
        s = space.to_string(arch)
        assert space.from_string(s) == arch
        assert space.to_string(space.from_string(s)) == s
        assert space.canonical("  " + s + " ") == s


def test_encode_decode_round_trip(space, rng) -> None:  # type: ignore[no-untyped-def]
    for _ in range(50):
        arch = space.sample(rng)
        vec = space.encode(arch)
        assert vec.dtype.kind == "i"
        assert space.decode(vec) == arch
        assert space.one_hot(arch).sum() == len(vec)


def test_mutate_changes_exactly_one_slot(space, rng) -> None:  # type: ignore[no-untyped-def]
    for _ in range(50):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        diff = sum(a != b for a, b in zip(arch["ops"], child["ops"]))
        assert diff == 1
        space.validate(child)


def test_crossover_takes_each_slot_from_a_parent(space, rng) -> None:  # type: ignore[no-untyped-def]
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        child = space.crossover(a, b, rng)
        assert all(c in (x, y) for c, x, y in zip(child["ops"], a["ops"], b["ops"]))


def test_neighbours_are_distinct_one_step_moves(space, rng) -> None:  # type: ignore[no-untyped-def]
    arch = space.sample(rng)
    neigh = space.neighbours(arch)
    strings = {space.to_string(n) for n in neigh}
    assert len(strings) == len(neigh) == sum(len(s) - 1 for s in space.slots)
    assert space.to_string(arch) not in strings
    assert all(sum(a != b for a, b in zip(arch["ops"], n["ops"])) == 1 for n in neigh)


def test_sampling_is_seeded(space) -> None:  # type: ignore[no-untyped-def]
    a = [space.to_string(space.sample(np.random.default_rng(3))) for _ in range(5)]
    b = [space.to_string(space.sample(np.random.default_rng(3))) for _ in range(5)]
    assert a == b


def test_cheap_metrics_are_positive(space, rng) -> None:  # type: ignore[no-untyped-def]
    metrics = space.cheap_metrics(space.sample(rng))
    assert set(metrics) == set(space.cheap_metric_names()) == {"params_m", "flops_m"}
    assert all(v > 0 for v in metrics.values())


def test_bad_strings_name_the_problem(space) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=space.name):
        space.from_string("not an architecture")
    with pytest.raises(ConfigError, match="entry"):
        space.decode([0] * (len(space.slots) - 1) + [99])


def test_nb201_standard_string() -> None:
    space = NB201Space()
    s = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    )
    arch = space.from_string(s)
    assert arch["ops"] == [
        "nor_conv_3x3",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "skip_connect",
    ]
    assert space.to_string(arch) == s


def test_nb201_enumerates_every_cell_once() -> None:
    space = NB201Space()
    strings = {space.to_string(a) for a in space.enumerate()}
    assert len(strings) == space.size == 15625


def test_nb201_parse_errors_say_what_is_wrong() -> None:
    space = NB201Space()
    with pytest.raises(ConfigError, match=r"unknown op 'conv_3x3'.*did you mean 'nor_conv_3x3'"):
        space.from_string("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ConfigError, match=r"must read 'op~1'"):
        space.from_string("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|")
    with pytest.raises(ConfigError, match="needs 2 edge"):
        space.from_string("|none~0|+|none~0|+|none~0|none~1|none~2|")


def test_fbnet_size_and_string() -> None:
    space = create_space("fbnet")
    assert space.size == 9**22
    with pytest.raises(ConfigError, match=r"unknown block 'k7_e6' at layer 0"):
        space.from_string(" ".join(["k7_e6"] + ["skip"] * 21))
