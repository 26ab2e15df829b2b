"""The ``resnet`` space: canonical strings, exact parameter and FLOP counts against the built
module and ``torch.utils.flop_counter``, and one-line errors for bad options and strings."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from hwnas import ConfigError, create_space
from hwnas.spaces import ResNetSpace

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

RESNET20 = "|".join(["w100"] + ["d3:" + ",".join(["w100-w100"] * 3)] * 3)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registered_with_resnet20_defaults() -> None:
    space = create_space("resnet")
    assert isinstance(space, ResNetSpace)
    assert space.to_string(space.full_arch()) == RESNET20
    # 1 stem + 3 stages x (1 depth + 3 blocks x 2 convs)
    assert len(space.slots) == 22 and space.size == 4**19 * 3**3
    # ResNet-20 on CIFAR: 40.81 M MACs (TAS, table 3: 40.8 M FLOPs); 1x1 projections add
    # 2.1 k parameters to the 0.27 M of He et al.'s zero-padding shortcuts.
    assert space.cheap_metrics(space.full_arch()) == {"params_m": 0.272474, "flops_m": 40.813184}
    assert space.input_shape == (3, 32, 32)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"blocks": 2, "widths": [8, 16, 16], "in_channels": 1, "input_size": 8},
        {"blocks": 1, "ratios": [0.3, 0.7, 1.0], "input_size": 9, "num_classes": 7},
    ],
)
def test_strings_round_trip(options: dict[str, object]) -> None:
    space = ResNetSpace(**options)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    for _ in range(30):
        arch = space.sample(rng)
        text = space.to_string(arch)
        assert space.from_string(text) == arch
        assert space.from_string(f"  {text}\n") == arch


def test_string_format_names_depth_then_width_pairs() -> None:
    space = ResNetSpace(blocks=2, in_channels=1, input_size=8)
    text = "w50|d1:w25-w50,w75-w100|d2:w100-w50,w50-w50|d2:w25-w25,w100-w100"
    plan = space.network_plan(space.from_string(text))
    # stage 1 uses one block (the second's widths stay in the string but build nothing)
    assert [(b.c_in, b.mid, b.out, b.stride) for b in plan.blocks] == [
        (8, 4, 8, 1),
        (8, 32, 16, 2),
        (16, 16, 16, 1),
        (16, 16, 16, 2),
        (16, 64, 64, 1),
    ]
    assert [b.projects for b in plan.blocks] == [False, True, False, True, True]
    other = space.from_string(text.replace("d1:w25-w50,w75-w100", "d1:w25-w50,w25-w25"))
    assert space.network_plan(other) == plan


def _counted(space: ResNetSpace, arch: dict[str, list[str]]) -> tuple[int, float]:
    net = space.build_network(arch).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, *space.input_shape))
    return sum(p.numel() for p in net.parameters()), counter.get_total_flops() / 2


@pytest.mark.parametrize(
    "options",
    [
        {"blocks": 2, "widths": [8, 16, 16], "in_channels": 1, "input_size": 8},
        {"blocks": 2, "widths": [6, 10, 12], "ratios": [0.3, 0.5, 1.0], "input_size": 9},
    ],
)
def test_params_and_flops_are_exact(options: dict[str, object]) -> None:
    space = ResNetSpace(**options)  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    archs = [space.full_arch()] + [space.sample(rng) for _ in range(6)]
    for arch in archs:
        params, macs = _counted(space, arch)
        metrics = space.cheap_metrics(arch)
        assert round(metrics["params_m"] * 1e6) == params
        assert round(metrics["flops_m"] * 1e6) == macs


def test_resnet20_module_matches_the_count() -> None:
    space = ResNetSpace()
    params, macs = _counted(space, space.full_arch())
    assert (params, macs) == (272474, 40813184)


def test_smallest_ratio_keeps_one_channel() -> None:
    space = ResNetSpace(widths=[2, 4, 4], ratios=[0.25, 1.0])
    assert space.slot_channels(0) == (1, 2)
    assert space.slot_channels(space.stage_slots[2][1][0][0]) == (1, 4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"blocks": 0}, "resnet: blocks must be a whole number >= 1, got 0"),
        ({"blocks": 2.5}, "resnet: blocks must be a whole number >= 1, got 2.5"),
        ({"widths": [16, 32]}, "resnet: widths must be a list of 3 stage widths like [16, 32,"),
        ({"widths": [16, 0, 64]}, "resnet: a stage width must be a whole number >= 1, got 0"),
        ({"ratios": [0.333]}, "resnet: ratios must be a list of distinct numbers in (0, 1]"),
        ({"ratios": [0.5, 1.5]}, "got 1.5 in [0.5, 1.5]"),
        ({"ratios": [0.5, 0.5]}, "got a repeat in [0.5, 0.5]"),
        ({"ratios": []}, "resnet: ratios must be a list of distinct numbers"),
        ({"input_size": 2}, "resnet: input_size must be a whole number >= 4, got 2"),
        ({"in_channels": True}, "resnet: in_channels must be a whole number >= 1, got True"),
        ({"num_classes": "ten"}, "resnet: num_classes must be a whole number >= 1, got 'ten'"),
    ],
)
def test_bad_options_give_one_line_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ResNetSpace(**options)  # type: ignore[arg-type]
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_option_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="depth"):
        ResNetSpace(depth=3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resnet20", "resnet: 'resnet20' is not a resnet string; expected 4 '|'-joined groups "),
        ("w100|d3|d3|d3", "resnet: stage 1 'd3' in 'w100|d3|d3|d3' must read d<depth>:"),
        (RESNET20.replace("w100", "w40", 1), "unknown stem width 'w40'"),
        (RESNET20.replace("d3", "d4", 1), "unknown stage 1 depth 'd4'"),
        (RESNET20.replace(",w100-w100", "", 1), "stage 1 of 'w100|d3:w100-w100,w100-w100|"),
        (RESNET20.replace("w100-w100", "w100", 1), "block 1 of stage 1 'w100'"),
        (RESNET20.replace("w100-w100", "w100-w10", 1), "did you mean 'w100'"),
    ],
)
def test_bad_strings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ResNetSpace().from_string(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_string_shows_a_valid_one() -> None:
    with pytest.raises(ConfigError, match=r"like w100\|d3:w100-w100,w100-w100,w100-w100\|"):
        ResNetSpace().from_string("not an architecture")
    with pytest.raises(ConfigError, match=r"like w100\|d1:w100-w100\|d1:w100-w100\|d1:w100-w100$"):
        ResNetSpace(blocks=1).from_string("")
