"""The ``mbv3`` space (Once-for-All's elastic MobileNetV3): size, strings, operators, encodings,
and the PyTorch sub-networks of both presets.

Reference figures: OFA counts ((3*3)^2 + (3*3)^3 + (3*3)^4)^5 = 7371^5 ~ 2.2e19 sub-networks at
one resolution (Cai et al., ICLR 2020, "> 10^19"), and its largest MobileNetV3 sub-network
(k7 e6 d4, width 1.0, 1000 classes) has 7.7M parameters. Our builder gives 7,664,760 for that
network (0.46% under 7.7M, i.e. 7.7M rounded), checked exactly below as a golden value and
against the published figure with a 1% tolerance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest

from hwnas import ConfigError, create_space
from hwnas.spaces.mbv3 import (
    MBV3_BLOCKS,
    MBV3_MAX_DEPTH,
    OFA_RESOLUTIONS,
    VECTOR_LENGTH,
    MBV3Space,
    make_divisible,
)

OFA_SUBNETS = 21_758_655_492_572_485_851
STRING = re.compile(r"r\d+-w\d+\.\d+(\|k[357]e[346](,k[357]e[346]){1,3}){5}")


def _uniform(space: MBV3Space, block: str, depth: int, r: int, w: float = 1.0) -> dict:
    return space.from_string(f"r{r}-w{w!r}|" + "|".join([",".join([block] * depth)] * 5))


def _active(arch: dict) -> list[tuple[int, int, int]]:
    """(block index, kernel, expansion) of the active blocks."""
    return [
        (i, arch["ks"][i], arch["e"][i])
        for i in range(MBV3_BLOCKS)
        if i % MBV3_MAX_DEPTH < arch["d"][i // MBV3_MAX_DEPTH]
    ]


def _choices(arch: dict) -> dict[str, object]:
    """Every active choice of ``arch``, keyed by name, for counting differences."""
    out: dict[str, object] = {f"d{s}": d for s, d in enumerate(arch["d"])}
    for i, k, e in _active(arch):
        out[f"k{i}"], out[f"e{i}"] = k, e
    out["r"], out["w"] = arch["r"], arch["w"]
    return out


@pytest.fixture
def space() -> MBV3Space:
    return MBV3Space(resolutions=[160, 176, 192, 208, 224], widths=[1.0, 1.2])


# -- size -------------------------------------------------------------------------------------
def test_size_is_ofas_count() -> None:
    assert create_space("mbv3", input_size=224).size == OFA_SUBNETS == 7371**5
    assert create_space("mbv3").size == OFA_SUBNETS * 25  # OFA's 128..224 step 4
    assert create_space("mbv3", widths=[1.0, 1.2]).size == OFA_SUBNETS * 25 * 2
    assert create_space("mbv3", preset="small", input_size=28).size == OFA_SUBNETS
    assert MBV3Space().resolutions == OFA_RESOLUTIONS == tuple(range(128, 225, 4))


def test_plan_names_are_importable_from_the_space_module() -> None:
    from hwnas.spaces import mbv3, mbv3_plan

    public = {n for n in vars(mbv3_plan) if not n.startswith("_")}
    public -= {"annotations", "dataclass", "Arch", "BlockNetwork", "ConfigError"}  # imports
    assert set(mbv3.__all__) == public | {"MBV3Space"}
    for name in public:
        assert getattr(mbv3, name) is getattr(mbv3_plan, name)


# -- strings ----------------------------------------------------------------------------------
def test_round_trip_of_random_archs(space: MBV3Space, rng: np.random.Generator) -> None:
    for _ in range(200):
        arch = space.sample(rng)
        s = space.to_string(arch)
        assert STRING.fullmatch(s), s
        assert space.from_string(s) == arch
        assert space.to_string(space.from_string(s)) == s
        assert space.decode(space.encode(arch)) == arch


def test_documented_example_string() -> None:
    space = MBV3Space(input_size=224)
    s = "r224-w1.0|k3e4,k5e6|k7e3,k3e3,k5e4|k3e3,k3e3|k5e6,k5e6,k7e4,k3e3|k7e6,k7e6"
    arch = space.from_string(s)
    assert arch["d"] == [2, 3, 2, 4, 2]
    assert arch["ks"] == [3, 5, 0, 0, 7, 3, 5, 0, 3, 3, 0, 0, 5, 5, 7, 3, 7, 7, 0, 0]
    assert arch["e"] == [4, 6, 0, 0, 3, 3, 4, 0, 3, 3, 0, 0, 6, 6, 4, 3, 6, 6, 0, 0]
    assert (arch["r"], arch["w"]) == (224, 1.0)
    assert space.to_string(arch) == s
    spaced = " r224-w1| k3e4 , k5e6|k7e3,k3e3,k5e4|k3e3,k3e3|k5e6,k5e6,k7e4,k3e3|k7e6,k7e6\n"
    assert space.canonical(spaced) == s


def test_inactive_blocks_are_normalised_away(space: MBV3Space, rng: np.random.Generator) -> None:
    arch = space.sample(rng)
    arch["d"][1] = 2
    other = {k: list(v) if isinstance(v, list) else v for k, v in arch.items()}
    # OFA-style dicts carry values in every slot; inactive ones must not matter.
    arch["ks"][6:8], arch["e"][6:8] = [7, 5], [6, 3]
    other["ks"][6:8], other["e"][6:8] = [3, 0], [4, 0]
    assert arch != other
    assert space.to_string(arch) == space.to_string(other)
    normal = space.validate(arch)
    assert normal == space.validate(other) == space.from_string(space.to_string(arch))
    assert normal["ks"][6:8] == normal["e"][6:8] == [0, 0]
    assert (space.encode(arch) == space.encode(other)).all()


# -- operators --------------------------------------------------------------------------------
def test_sampling_is_seeded_and_covers_every_choice(space: MBV3Space) -> None:
    draw = [space.to_string(space.sample(np.random.default_rng(5))) for _ in range(3)]
    assert len(set(draw)) == 1
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(300)]
    assert {d for a in archs for d in a["d"]} == {2, 3, 4}
    assert {k for a in archs for _, k, _ in _active(a)} == {3, 5, 7}
    assert {e for a in archs for _, _, e in _active(a)} == {3, 4, 6}
    assert {a["r"] for a in archs} == set(space.resolutions)
    assert {a["w"] for a in archs} == {1.0, 1.2}


def test_mutate_changes_a_few_choices(space: MBV3Space, rng: np.random.Generator) -> None:
    changed = []
    for _ in range(200):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert space.validate(child) == child
        assert space.to_string(child) != space.to_string(arch)
        a, c = _choices(arch), _choices(child)
        changed.append(sum(a.get(k) != c.get(k) for k in set(a) | set(c)))
    # About one choice in expectation (probability 1/n each), plus the blocks a depth change
    # adds or drops; never the whole architecture.
    assert min(changed) >= 1
    assert np.median(changed) <= 3


def test_crossover_takes_each_choice_from_a_parent(
    space: MBV3Space, rng: np.random.Generator
) -> None:
    for _ in range(100):
        a, b = space.sample(rng), space.sample(rng)
        child = space.crossover(a, b, rng)
        assert space.validate(child) == child
        assert all(x in (y, z) for x, y, z in zip(child["d"], a["d"], b["d"]))
        assert child["r"] in (a["r"], b["r"]) and child["w"] in (a["w"], b["w"])
        for i, k, e in _active(child):
            assert k in (a["ks"][i], b["ks"][i]) and k != 0
            assert e in (a["e"][i], b["e"][i]) and e != 0
    same = space.sample(rng)
    assert space.crossover(same, same, rng) == same


def test_neighbours_are_distinct_one_choice_moves(
    space: MBV3Space, rng: np.random.Generator
) -> None:
    for _ in range(20):
        arch = space.sample(rng)
        neigh = space.neighbours(arch)
        strings = {space.to_string(n) for n in neigh}
        others = len(space.resolutions) - 1 + len(space.widths) - 1
        assert len(strings) == len(neigh) == 4 * sum(arch["d"]) + 2 * 5 + others
        assert space.to_string(arch) not in strings
        base = _choices(arch)
        for n in neigh:
            assert space.validate(n) == n
            c = _choices(n)
            if n["d"] == arch["d"]:
                assert sum(base[k] != c[k] for k in base) == 1
                continue
            # A depth move: one stage's depth; added blocks repeat the stage's last block.
            (s,) = [s for s in range(5) if n["d"][s] != arch["d"][s]]
            assert all(base[k] == c[k] for k in base.keys() & c.keys() if k != f"d{s}")
            last = 4 * s + arch["d"][s] - 1
            for j in range(arch["d"][s], n["d"][s]):
                assert (n["ks"][4 * s + j], n["e"][4 * s + j]) == (
                    arch["ks"][last],
                    arch["e"][last],
                )


# -- encodings --------------------------------------------------------------------------------
def test_encoding_layout(space: MBV3Space) -> None:
    arch = _uniform(space, "k5e4", 3, 192, 1.2)
    vec = space.encode(arch)
    assert vec.dtype.kind == "i" and vec.shape == (VECTOR_LENGTH,) == (47,)
    assert list(vec[:4]) == [5, 5, 5, 0] and list(vec[20:24]) == [4, 4, 4, 0]
    assert list(vec[40:]) == [3, 3, 3, 3, 3, 192, 1]
    one_hot = space.one_hot(arch)
    assert one_hot.sum() == VECTOR_LENGTH
    assert one_hot.shape == (20 * 4 + 20 * 4 + 5 * 3 + 5 + 2,)


def test_active_mask_marks_the_live_entries(space: MBV3Space, rng: np.random.Generator) -> None:
    arch = space.from_string(
        "r224-w1.2|k3e4,k5e6|k7e3,k3e3,k5e4|k3e3,k3e3|k5e6,k5e6,k7e4,k3e3|k7e6,k7e6"
    )
    blocks = [True, True, False, False, True, True, True, False, True, True, False, False]
    blocks += [True] * 4 + [True, True, False, False]
    assert space.active_mask(arch).tolist() == blocks + blocks + [True] * 7
    for _ in range(50):
        arch = space.sample(rng)
        mask, vec = space.active_mask(arch), space.encode(arch)
        assert mask.dtype == bool and mask.shape == (VECTOR_LENGTH,)
        assert mask.sum() == 2 * sum(arch["d"]) + 7
        kernels_and_expansions = slice(0, 2 * MBV3_BLOCKS)  # 0 exactly for inactive blocks
        assert ((vec[kernels_and_expansions] != 0) == mask[kernels_and_expansions]).all()
        assert mask[2 * MBV3_BLOCKS :].all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({0: 4}, r"kernel 4 of stage 1 block 1 \(ks\[0\]\) is not allowed; choose from 3, 5, 7"),
        (
            {3: 9},
            r"kernel 9 of stage 1 block 4 \(ks\[3\]\) is not allowed; "
            r"choose from 0 \(the block is inactive\) or 3, 5, 7",
        ),
        ({20: 5}, r"expansion 5 of stage 1 block 1 \(e\[0\]\)"),
        ({40: 5}, r"depth 5 of stage 1 is not allowed; choose from 2, 3, 4"),
        ({45: 100}, r"resolution 100 is not offered; choose from 160, 176, 192, 208, 224"),
        ({46: 2}, r"entry 46 \(width index\) must lie in 0..1, got 2"),
    ],
)
def test_decode_names_the_bad_entry(space: MBV3Space, change: dict, message: str) -> None:
    vec = space.encode(_uniform(space, "k3e3", 3, 224))
    for i, v in change.items():
        vec[i] = v
    with pytest.raises(ConfigError, match=message):
        space.decode(vec)
    with pytest.raises(ConfigError, match="needs 47 entries, got 46"):
        space.decode(vec[:-1])


# -- errors -----------------------------------------------------------------------------------
GOOD = "r224-w1.0|k3e4,k5e6|k7e3,k3e3,k5e4|k3e3,k3e3|k5e6,k5e6,k7e4,k3e3|k7e6,k7e6"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.rsplit("|", 1)[0], r"expected 5 stages after the header, got 4"),
        (GOOD + "|k3e3,k3e3", r"expected 5 stages after the header, got 6"),
        (
            GOOD.replace("k7e3", "k4e3"),
            r"kernel 4 in block 'k4e3' \(stage 2 block 1\) is not "
            r"allowed; choose from 3, 5, 7",
        ),
        (
            GOOD.replace("k3e4", "k3e5"),
            r"expansion 5 in block 'k3e5' \(stage 1 block 1\) is not "
            r"allowed; choose from 3, 4, 6",
        ),
        (
            GOOD.replace("k7e6,k7e6", "k7e6,k7e6,k7e6,k7e6,k7e6"),
            r"stage 5 has 5 blocks \('k7e6,k7e6,k7e6,k7e6,k7e6'\); a stage has 2, 3 or 4 blocks",
        ),
        (GOOD.replace("k3e4,k5e6", "k3e4"), r"stage 1 has 1 blocks"),
        (GOOD.replace("k3e4,k5e6", ""), r"stage 1 has 0 blocks"),
        (GOOD.replace("r224", "r100"), r"resolution 100 is not offered; choose from 224"),
        (GOOD.replace("w1.0", "w1.5"), r"width 1.5 is not offered; choose from 1.0"),
        (GOOD.replace("r224-w1.0", "224"), r"header '224' must read 'r<resolution>-w<width>'"),
        (
            GOOD.replace("k3e4", "k3_e4"),
            r"block 'k3_e4' \(stage 1 block 1\) must read "
            r"'k<kernel>e<expansion>'",
        ),
        ("not an architecture", r"^mbv3: expected 5 stages after the header, got 0"),
    ],
)
def test_bad_strings_give_one_line_errors(text: str, message: str) -> None:
    space = MBV3Space(input_size=224)
    assert space.to_string(space.from_string(GOOD)) == GOOD
    with pytest.raises(ConfigError, match=message) as err:
        space.from_string(text)
    assert "\n" not in str(err.value) and str(err.value).startswith("mbv3: ")


def test_default_resolutions_are_named_compactly() -> None:
    with pytest.raises(ConfigError, match=r"choose from 128, 132, \.\.\., 224$"):
        MBV3Space().from_string(GOOD.replace("r224", "r226"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"preset": "smal"}, r"unknown preset 'smal'; did you mean 'small'"),
        ({"input_size": 28, "resolutions": [28]}, r"give either input_size or resolutions"),
        ({"resolutions": []}, r"resolutions must be a non-empty list"),
        ({"resolutions": [224, 224]}, r"resolutions must not repeat a value"),
        ({"resolutions": [22.5]}, r"a resolution must be a whole number >= 1, got 22.5"),
        ({"widths": [0.0]}, r"a width multiplier must be a number > 0, got 0.0"),
        ({"in_channels": 0}, r"in_channels must be a whole number >= 1"),
    ],
)
def test_bad_options(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_space("mbv3", **options)


def test_bad_arch_dicts(space: MBV3Space) -> None:
    good = _uniform(space, "k3e3", 2, 224)
    with pytest.raises(ConfigError, match=r"a dict with keys ks, e, d, r, w; got \['d', 'e'"):
        space.validate({k: v for k, v in good.items() if k != "ks"})
    with pytest.raises(ConfigError, match=r"'ks' must be a list of 20 ints"):
        space.to_string({**good, "ks": [3] * 19})
    with pytest.raises(ConfigError, match=r"width 1.1 is not offered; choose from 1.0, 1.2"):
        space.encode({**good, "w": 1.1})
    with pytest.raises(ConfigError, match=r"entries of 'd' must be ints, got 2.0"):
        space.validate({**good, "d": [2.0] * 5})


# -- networks ---------------------------------------------------------------------------------
@pytest.fixture
def torch() -> Iterator[object]:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks run fastest on one thread on shared CI runners
    yield torch
    torch.set_num_threads(threads)


def _params(net: object) -> int:
    return sum(p.numel() for p in net.parameters())  # type: ignore[attr-defined]


@pytest.mark.torch
@pytest.mark.parametrize("in_channels", [1, 3])
def test_small_preset_extremes_run(torch, in_channels: int) -> None:  # type: ignore[no-untyped-def]
    from torch.utils.flop_counter import FlopCounterMode

    space = MBV3Space(preset="small", input_size=28, in_channels=in_channels)
    assert space.input_shape == (in_channels, 28, 28)
    assert space.num_classes == 10
    for block, depth in (("k3e3", 2), ("k7e6", 4)):
        arch = _uniform(space, block, depth, 28)
        assert space.input_shape_for(arch) == (in_channels, 28, 28)
        net = space.build_network(arch).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = net(torch.randn(2, in_channels, 28, 28))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        cheap = space.cheap_metrics(arch)
        assert _params(net) == round(cheap["params_m"] * 1e6)
        assert counter.get_total_flops() == round(2 * 2 * cheap["flops_m"] * 1e6)  # batch of 2
    net = space.build_network(_uniform(space, "k3e3", 2, 28)).train()
    loss = net(torch.randn(4, in_channels, 28, 28)).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.torch
def test_module_names_follow_the_active_blocks(torch) -> None:  # type: ignore[no-untyped-def]
    space = MBV3Space(preset="small", input_size=32)
    arch = space.from_string(
        "r32-w1.0|k3e3,k5e4|k7e6,k3e3,k3e3|k3e4,k3e4|k5e3,k5e3,k5e3,k5e3|k3e6,k3e6"
    )
    net = space.build_network(arch)
    names = dict(net.named_modules())
    assert "first_block.expand" not in names and "first_block.depthwise.conv" in names
    assert "blocks.12.project.bn" in names and "blocks.13" not in names  # 2+3+2+4+2 active
    assert names["blocks.1.depthwise.conv"].kernel_size == (5, 5)
    assert names["blocks.2.expand.conv"].out_channels == 16 * 6  # c_in 16 (stage 1) x e6
    assert "blocks.0.se" not in names and "blocks.2.se.reduce" in names  # SE from stage 2
    assert names["blocks.2.se.reduce"].out_channels == make_divisible(96 // 4)
    assert names["blocks.1"].residual and not names["blocks.2"].residual  # stage 2 strides
    for name in ("stem.conv", "final_expand.bn", "feature_mix.conv", "classifier"):
        assert name in names
    out = net(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_width_multiplier_scales_channels() -> None:
    space = MBV3Space(input_size=224, widths=[1.0, 1.2])
    plan = space.plan(_uniform(space, "k3e3", 2, 224, 1.2))
    assert (plan.stem_channels, plan.final_expand, plan.feature_mix) == (24, 1152, 1536)
    assert [plan.blocks[2 * s].c_out for s in range(5)] == [32, 48, 96, 136, 192]


@pytest.mark.torch
def test_full_largest_network_matches_ofa(torch) -> None:  # type: ignore[no-untyped-def]
    space = create_space("mbv3", input_size=224)
    arch = _uniform(space, "k7e6", 4, 224)
    net = space.build_network(arch).eval()
    n = _params(net)
    assert n == 7_664_760 == round(space.cheap_metrics(arch)["params_m"] * 1e6)
    assert abs(n - 7.7e6) / 7.7e6 < 0.01  # OFA: 7.7M
    with torch.no_grad():  # about 0.2 s on one core
        out = net(torch.zeros(2, 3, 224, 224))
    assert out.shape == (2, 1000)
    assert _params(space.build_network(_uniform(space, "k3e3", 2, 224))) < n / 2
