"""The torch NB201 network: parameter counts against NASLib, forward shapes, input checks.

``tests/fixtures/naslib_params_flops.csv`` holds 83 rows (61 cifar10, 11 cifar100, 11
ImageNet16-120) of NASLib's zero-cost table ``zc_nasbench201.json`` (automl/NASLib, commit
a06ba0e9, Apache-2.0): the NASLib key, our NB201 string, ``params.score`` and ``flops.score``.
The key maps to our ops as ``[t[0], t[1], t[3], t[2], t[4], t[5]]`` with op index 0 skip_connect,
1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hwnas.errors import ConfigError  # noqa: E402
from hwnas.spaces.nb201 import NB201Space  # noqa: E402
from hwnas.spaces.nb201_torch import build_nb201_network  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "naslib_params_flops.csv"
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
NASLIB_OP_INDEX = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny networks run fastest on one thread; several stall on oversubscribed CI runners.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rows() -> list[dict[str, str]]:
    with FIXTURE.open(newline="") as f:
        return list(csv.DictReader(f))


def _param_count(ops: list[str], num_classes: int) -> int:
    net = build_nb201_network(ops, num_classes=num_classes)
    return sum(p.numel() for p in net.parameters())


def test_fixture_strings_follow_the_naslib_key_mapping() -> None:
    space = NB201Space()
    for row in _rows():
        t = [NASLIB_OP_INDEX[int(x)] for x in row["naslib_key"].strip("()").split(",")]
        ops = [t[0], t[1], t[3], t[2], t[4], t[5]]
        assert space.from_string(row["arch"])["ops"] == ops


def test_params_match_naslib_table() -> None:
    # cifar10 rows; the other datasets' rows are checked against the closed form, which
    # tests/hardware/test_analytic.py ties to this builder for 10, 100 and 120 classes.
    rows = [r for r in _rows() if r["dataset"] == "cifar10"]
    assert len(rows) >= 40
    space = NB201Space()
    errors = []
    for row in rows:
        ops = space.from_string(row["arch"])["ops"]
        params_m = _param_count(ops, 10) / 1e6
        errors.append(abs(params_m - float(row["params_m"])))
    # NASLib rounds to 1e-6 M; the counts agree exactly (the brief's bound is 0.002 M).
    assert max(errors) < 1e-6


@pytest.mark.parametrize(("num_classes", "size"), [(10, 32), (100, 32), (120, 16)])
def test_forward_gives_one_logit_row_per_image(num_classes: int, size: int) -> None:
    ops = ["nor_conv_3x3", "avg_pool_3x3", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"]
    net = build_nb201_network({"ops": ops}, num_classes=num_classes).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


def test_all_none_cell_outputs_the_classifier_bias() -> None:
    # With no path through the cells the features are zero until the reduction blocks.
    net = build_nb201_network(["none"] * 6, C=4, N=1).eval()
    with torch.no_grad():
        out = net(torch.randn(3, 3, 32, 32))
    bias = dict(net.named_parameters())["classifier.bias"]
    assert torch.equal(out, bias.expand(3, -1))


def test_arch_dict_and_list_build_the_same_network() -> None:
    ops = ["skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3", "none"]
    from_dict = build_nb201_network({"ops": ops})
    assert sum(p.numel() for p in from_dict.parameters()) == _param_count(ops, 10)


def test_smaller_skeleton_options() -> None:
    small = build_nb201_network(["nor_conv_3x3"] * 6, C=8, N=1)
    assert sum(p.numel() for p in small.parameters()) < _param_count(["nor_conv_3x3"] * 6, 10)


def test_unknown_op_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown op 'conv_3x3'"):
        build_nb201_network(["conv_3x3"] + ["none"] * 5)


def test_wrong_op_count_is_rejected() -> None:
    with pytest.raises(ConfigError, match="list of 6 op names"):
        build_nb201_network(["none"] * 5)
    with pytest.raises(ConfigError, match="num_classes must be >= 1"):
        build_nb201_network(["none"] * 6, num_classes=0)


def test_a_small_grey_network_counts_what_it_builds():
    import torch

    from hwnas.spaces import NB201Space

    space = NB201Space(in_channels=1, channels=8, cells=1, input_size=16)
    arch = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    net = space.build_network(arch)
    params = sum(p.numel() for p in net.parameters())
    assert space.cheap_metrics(arch)["params_m"] == params / 1e6
    assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 10)
    assert space.input_shape == (1, 16, 16)


def test_added_options_stay_out_of_saved_option_sets_at_their_defaults():
    # Predictor / LUT files and measurement cache keys written before the network options
    # existed must still match a default space; a non-default network is told apart.
    from hwnas.hardware.lut import space_options as lut_options
    from hwnas.hardware.predictor_io import space_options
    from hwnas.spaces import NB201Space

    assert space_options(NB201Space()) == {"num_classes": 10, "input_size": 32}
    assert lut_options(NB201Space()) == {"num_classes": 10, "input_size": 32}
    assert space_options(NB201Space(channels=8))["channels"] == 8
    assert lut_options(NB201Space(in_channels=1))["in_channels"] == 1
