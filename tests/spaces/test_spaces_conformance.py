"""Conformance suite run over every registered space.

Every space runs the generic tests; categorical spaces (``{"ops": [...]}`` over fixed slots) also
run the stricter slot tests. The generic tests count moves in entries of :meth:`encode`:

* An entry is *live* in an architecture when it is one of that architecture's choices. A space
  with conditional choices says which entries are live through ``active_mask(arch)`` (``mbv3``:
  the kernel and expansion of a block beyond its stage's depth are no choice, and encode as 0);
  in a space without ``active_mask`` every entry is live.
* An entry live in neither of two architectures must encode the same value in both (one
  architecture, one encoding).
* One *step* changes exactly one entry that is live in both architectures; any other change is in
  entries live in only one of them (the blocks an ``mbv3`` depth change adds or drops). In a
  categorical space a step is exactly one changed slot.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwnas import ConfigError, create_space, list_spaces
from hwnas.spaces import CategoricalSpace, NB201Space, SearchSpace
from hwnas.spaces.base import Arch

# Options of the spaces that need some (a space defined in the config alone has no default).
SPACE_OPTIONS: dict[str, dict[str, object]] = {
    "categorical": {"slots": {"kernel": [3, 5, 7], "stem": ["conv"], "act": ["relu", "hswish"]}},
}


def _create(name: str) -> SearchSpace:
    return create_space(name, **SPACE_OPTIONS.get(name, {}))


CATEGORICAL = [n for n in list_spaces() if isinstance(_create(n), CategoricalSpace)]
GARBAGE = (
    "not an architecture",
    "",
    "   ",
    "|",
    "||||||",
    "+",
    "none",
    "k3e3",
    "skip skip skip",
    "r224-w1.0",
    "|nor_conv_3x3~0|+|",
    "line one\nline two",
    "\x00",
)


@pytest.fixture(params=list_spaces())
def space(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return _create(request.param)


@pytest.fixture(params=CATEGORICAL)
def categorical_space(request: pytest.FixtureRequest) -> SearchSpace:
    return _create(request.param)


def _live(space: SearchSpace, arch: Arch) -> np.ndarray:
    """The live entries of ``space.encode(arch)`` (see the module docstring)."""
    mask = getattr(space, "active_mask", None)
    n = len(space.encode(arch))
    live = np.ones(n, dtype=bool) if mask is None else np.asarray(mask(arch))
    assert live.dtype == bool and live.shape == (n,)
    return live


def _steps(space: SearchSpace, a: Arch, b: Arch) -> int:
    """Entries of ``encode`` live in both ``a`` and ``b`` that differ between them; asserts that
    no entry live in neither differs."""
    ea, eb = space.encode(a), space.encode(b)
    la, lb = _live(space, a), _live(space, b)
    differ = ea != eb
    assert not (differ & ~la & ~lb).any(), f"an entry that is no choice differs: {ea} vs {eb}"
    return int((differ & la & lb).sum())


def _round_trips(space: SearchSpace, arch: Arch) -> None:
    assert space.from_string(space.to_string(arch)) == arch
    assert space.decode(space.encode(arch)) == arch


def test_categorical_spaces_run_the_slot_tests() -> None:
    assert {"nb201", "fbnet", "resnet", "categorical"} <= set(CATEGORICAL)


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


def test_mutate_changes_exactly_one_slot(
    categorical_space: CategoricalSpace, rng: np.random.Generator
) -> None:
    space = categorical_space
    for _ in range(50):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        diff = sum(a != b for a, b in zip(arch["ops"], child["ops"]))
        assert diff == 1
        space.validate(child)


def test_crossover_takes_each_slot_from_a_parent(
    categorical_space: CategoricalSpace, rng: np.random.Generator
) -> None:
    space = categorical_space
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        child = space.crossover(a, b, rng)
        assert all(c in (x, y) for c, x, y in zip(child["ops"], a["ops"], b["ops"]))


def test_neighbours_are_distinct_one_step_moves(
    categorical_space: CategoricalSpace, rng: np.random.Generator
) -> None:
    space = categorical_space
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
    if space.name == "categorical":  # a user's choices mean nothing to hwnas: no cheap metrics
        assert metrics == {} and space.cheap_metric_names() == ()
        return
    assert set(metrics) == set(space.cheap_metric_names()) == {"params_m", "flops_m"}
    assert all(v > 0 for v in metrics.values())


def test_bad_strings_name_the_problem(categorical_space: CategoricalSpace) -> None:
    space = categorical_space
    with pytest.raises(ConfigError, match=space.name):
        space.from_string("not an architecture")
    with pytest.raises(ConfigError, match="entry"):
        space.decode([0] * (len(space.slots) - 1) + [99])


def test_mutate_changes_the_arch_and_round_trips(
    space: SearchSpace, rng: np.random.Generator
) -> None:
    for _ in range(100):
        arch = space.sample(rng)
        before = space.to_string(arch)
        child = space.mutate(arch, rng)
        assert space.to_string(arch) == before  # the parent is not changed in place
        assert space.to_string(child) != before
        assert _steps(space, arch, child) >= 1
        _round_trips(space, child)


def test_crossover_takes_each_entry_from_a_parent(
    space: SearchSpace, rng: np.random.Generator
) -> None:
    for _ in range(50):
        a, b = space.sample(rng), space.sample(rng)
        parents = [(space.encode(p), _live(space, p)) for p in (a, b)]
        child = space.crossover(a, b, rng)
        _round_trips(space, child)
        code, live = space.encode(child), _live(space, child)
        for i, value in enumerate(code):
            # Every entry is one of the parents' at that position; a live one comes from a
            # parent in which it is live too (mbv3: a block active in one parent only takes that
            # parent's kernel and expansion, not the other's inactive 0).
            assert value in (parents[0][0][i], parents[1][0][i])
            if live[i]:
                assert any(p[i] == value and pl[i] for p, pl in parents), i
        assert space.crossover(a, a, rng) == a


def test_neighbours_are_distinct_single_steps(space: SearchSpace, rng: np.random.Generator) -> None:
    for _ in range(5):
        arch = space.sample(rng)
        neigh = space.neighbours(arch)
        strings = [space.to_string(n) for n in neigh]
        assert neigh and len(set(strings)) == len(neigh)
        assert space.to_string(arch) not in strings
        for n in neigh:
            _round_trips(space, n)
            assert _steps(space, arch, n) == 1
            if (_live(space, n) == _live(space, arch)).all():
                # A step that keeps the same choices live can be undone in one step.
                assert space.to_string(arch) in {space.to_string(m) for m in space.neighbours(n)}
        # Every mutation that is a single step in one live entry is a neighbour.
        for _ in range(100):
            child = space.mutate(arch, rng)
            if (space.encode(child) != space.encode(arch)).sum() == 1:
                assert space.to_string(child) in strings


def test_bad_input_gives_one_line_errors_naming_the_space(
    space: SearchSpace, rng: np.random.Generator
) -> None:
    good = space.to_string(space.sample(rng))
    for text in (*GARBAGE, good[: len(good) // 2], good + "|x", good + " x", "x" + good):
        with pytest.raises(ConfigError) as err:
            space.from_string(text)
        message = str(err.value)
        assert message.startswith(f"{space.name}: ") and "\n" not in message, (text, message)
    code = space.encode(space.sample(rng))
    bad_vectors = [code[:-1], np.append(code, 0)]
    for i in range(len(code)):
        bad = code.copy()
        bad[i] = -1  # no entry of an integer encoding (indices, sizes) is negative
        bad_vectors.append(bad)
    for vector in bad_vectors:
        with pytest.raises(ConfigError) as err:
            space.decode(vector)
        message = str(err.value)
        assert message.startswith(f"{space.name}: ") and "\n" not in message, (vector, message)


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
