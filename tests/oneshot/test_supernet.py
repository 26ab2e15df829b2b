"""The elastic layers and the mbv3 supernet: extracted sub-networks compute what the supernet
computes, the kernel transform starts as the centre crop, importance sorting keeps the
function, BatchNorm slices and recalibration behave, and the sandwich sampler is seeded."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from hwnas.errors import ConfigError  # noqa: E402
from hwnas.oneshot import (  # noqa: E402
    DynamicBatchNorm2d,
    DynamicConv2d,
    MBV3Supernet,
    SandwichStep,
    SubnetSampler,
    SupernetConfig,
    largest_arch,
    recalibrate_bn,
    smallest_arch,
)
from hwnas.spaces import MBV3Space  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny networks run fastest on one thread; several stall on oversubscribed CI runners.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def space() -> MBV3Space:
    # Two resolutions and two widths, so resolution and width are elastic too.
    return MBV3Space(preset="small", resolutions=[8, 12], widths=[0.75, 1.0], in_channels=1)


def _scramble(net: nn.Module, seed: int) -> None:
    """Move every weight, transform matrix and BatchNorm statistic away from its initial value
    (zero scales, identity transforms and unit variances would hide slicing mistakes), keeping
    activations near unit scale so float rounding stays far below the tolerances."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bn.weight"):
                high = 0.3 if "project" in name else 1.0
                p.uniform_(0.0 if "project" in name else 0.5, high, generator=g)
            else:
                p.add_(0.05 * torch.randn(p.shape, generator=g))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def _archs(space: MBV3Space) -> list[dict]:
    rng = np.random.default_rng(7)
    return [largest_arch(space), smallest_arch(space), *(space.sample(rng) for _ in range(4))]


def test_extract_equals_supernet_output(space: MBV3Space) -> None:
    net = MBV3Supernet(space, seed=3)
    _scramble(net, 1)
    net.eval()
    for i, arch in enumerate(_archs(space)):
        x = torch.randn(5, 1, arch["r"], arch["r"], generator=torch.Generator().manual_seed(i))
        sub = net.extract(arch)
        assert type(sub).__name__ == "MBV3Network"
        assert sum(p.numel() for p in sub.parameters()) == pytest.approx(
            space.cheap_metrics(arch)["params_m"] * 1e6
        )
        net.set_active(arch)
        with torch.no_grad():
            diff = (net(x) - sub(x)).abs().max().item()
        assert diff < 1e-5, (space.to_string(arch), diff)


def test_extract_leaves_the_active_subnet(space: MBV3Space) -> None:
    net = MBV3Supernet(space)
    net.set_active(smallest_arch(space))
    net.extract(largest_arch(space))
    assert net.active_arch == smallest_arch(space)


def test_kernel_transform_is_the_centre_crop_at_init() -> None:
    conv = DynamicConv2d(6, 6, (3, 5, 7), depthwise=True)
    conv.reset_parameters(torch.Generator().manual_seed(0))
    w = conv.weight.detach()
    assert torch.equal(conv.active_filter(4, 4, 7), w[:4])
    assert torch.equal(conv.active_filter(4, 4, 5), w[:4, :, 1:6, 1:6])
    assert torch.allclose(conv.active_filter(4, 4, 3), w[:4, :, 2:5, 2:5])
    names = sorted(n for n, _ in conv.named_parameters())
    assert names == ["transform_5to3", "transform_7to5", "weight"]
    # A learned transform maps the crop: 5x5 = crop @ M^T (OFA's F.linear over 25 entries).
    with torch.no_grad():
        conv.transform_7to5.copy_(torch.randn(25, 25, generator=torch.Generator().manual_seed(1)))
    crop = w[:4, :, 1:6, 1:6].reshape(-1, 25)
    expected = (crop @ conv.transform_7to5.detach().T).reshape(4, 1, 5, 5)
    assert torch.allclose(conv.active_filter(4, 4, 5), expected, atol=1e-6)


def test_supernet_kernels_start_as_centre_crops(space: MBV3Space) -> None:
    block = MBV3Supernet(space).blocks[5].depthwise.conv
    w = block.weight.detach()
    assert torch.allclose(block.active_filter(16, 16, 3), w[:16, :, 2:5, 2:5])


def test_depthwise_shortcut_on_tiny_maps_matches_the_full_kernel() -> None:
    conv = DynamicConv2d(8, 8, (3, 5, 7), depthwise=True, stride=2)
    conv.reset_parameters(torch.Generator().manual_seed(0))
    for size in (1, 2, 3):
        x = torch.randn(2, 8, size, size)
        full = F.conv2d(x, conv.active_filter(8, 8, 7), None, 2, 3, 1, 8)
        assert torch.allclose(conv(x, kernel_size=7), full, atol=1e-6)


def test_sorting_channels_keeps_the_largest_function(space: MBV3Space) -> None:
    net = MBV3Supernet(space, seed=2)
    _scramble(net, 5)
    net.eval()
    x = torch.randn(6, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = net(x)
        old_first = net.blocks[4].project.conv.weight.detach().clone()
        net.sort_channels()
        after = net(x)
    assert (before - after).abs().max().item() < 1e-5
    for block in net.block_list():
        importance = block.project.conv.weight.detach().abs().sum(dim=(0, 2, 3))
        assert bool((importance[:-1] >= importance[1:]).all())
    assert not torch.equal(old_first, net.blocks[4].project.conv.weight.detach())


def test_sorting_with_an_expand_stage_keeps_the_function(space: MBV3Space) -> None:
    net = MBV3Supernet(space, seed=2)
    _scramble(net, 6)
    net.eval()
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        before = net(x)
        net.sort_channels(expand_stage=1)
        assert (before - net(x)).abs().max().item() < 1e-5


def test_dynamic_batchnorm_updates_only_the_active_channels() -> None:
    bn = DynamicBatchNorm2d(8)
    bn.train()
    bn(torch.randn(4, 5, 3, 3) + 3.0)
    assert bool((bn.running_mean[:5] > 0.1).all())
    assert torch.equal(bn.running_mean[5:], torch.zeros(3))
    assert torch.equal(bn.running_var[5:], torch.ones(3))


def test_recalibration_changes_statistics_deterministically(space: MBV3Space) -> None:
    net = MBV3Supernet(space, seed=4)
    _scramble(net, 2)
    arch = space.sample(np.random.default_rng(3))
    r = arch["r"]
    images = torch.randn(120, 1, r, r, generator=torch.Generator().manual_seed(9))
    stats = []
    for _ in range(2):
        sub = net.extract(arch)
        before = sub.stem.bn.running_mean.clone()
        recalibrate_bn(sub, images, batch_size=50)
        assert not torch.allclose(before, sub.stem.bn.running_mean)
        assert sub.stem.bn.momentum == 0.1 and not sub.training
        stats.append({k: v.clone() for k, v in sub.state_dict().items()})
    assert all(torch.equal(stats[0][k], stats[1][k]) for k in stats[0])
    # The batches' cumulative average: the stem's mean is the mean over all 120 images.
    sub = net.extract(arch)
    recalibrate_bn(sub, images, batch_size=40)
    with torch.no_grad():
        conv = sub.stem.conv(images)
    assert torch.allclose(sub.stem.bn.running_mean, conv.mean(dim=(0, 2, 3)), atol=1e-5)


def test_recalibrating_the_supernet_for_an_arch_matches_the_extracted_subnet(
    space: MBV3Space,
) -> None:
    net = MBV3Supernet(space, seed=4)
    _scramble(net, 3)
    arch = smallest_arch(space)
    images = torch.randn(40, 1, 8, 8)
    sub = net.extract(arch)
    recalibrate_bn(sub, images)
    recalibrate_bn(net, images, arch)
    net.eval()
    with torch.no_grad():
        assert (net(images) - sub(images)).abs().max().item() < 1e-5
    with pytest.raises(ConfigError, match="arch is for an MBV3Supernet"):
        recalibrate_bn(sub, images, arch)


def test_sandwich_draws_are_seeded_and_phase_limited(space: MBV3Space) -> None:
    step = SandwichStep(space, num_random=2, seed=11)
    first = step.archs(5)
    assert first == step.archs(5) and first != step.archs(6)
    assert first[:2] == [largest_arch(space), smallest_arch(space)] and len(first) == 4
    kernel = SubnetSampler(space, "kernel")
    rng = np.random.default_rng(0)
    for arch in (kernel.sample(rng) for _ in range(20)):
        assert arch["d"] == [4] * 5 and set(arch["e"]) == {6} and arch["w"] == 1.0
    assert len({tuple(a["ks"]) for a in (kernel.sample(rng) for _ in range(5))}) > 1
    assert kernel.smallest["ks"] == [3] * 20 and kernel.smallest["r"] == 8
    assert SandwichStep(space, phase="largest").archs(0) == [largest_arch(space)]


def test_sandwich_step_trains_every_subnet_once_per_batch(space: MBV3Space) -> None:
    net = MBV3Supernet(space)
    net.train()
    step = SandwichStep(space, num_random=1, seed=0)
    x, y = torch.randn(8, 1, 12, 12), torch.randint(0, 10, (8,))
    out = step(net, x, y, nn.CrossEntropyLoss(label_smoothing=0.1))
    assert out.count == 8 and 0 <= out.correct <= 8 and out.loss > 0
    assert int(net.sample_step) == 1 and net.active_arch == largest_arch(space)
    # The smallest sub-network's kernels came through the 7->5->3 transforms: they have grads.
    assert net.blocks[0].depthwise.conv.transform_5to3.grad is not None


def test_bad_settings_raise_one_line_errors(space: MBV3Space) -> None:
    with pytest.raises(ConfigError, match=r"no key 'num_randon'; did you mean 'num_random'"):
        SupernetConfig.from_dict({"train": {"epochs": 1}, "num_randon": 2})
    with pytest.raises(ConfigError, match="schedule 'progressive' needs phase_epochs"):
        SupernetConfig.from_dict({"train": {"epochs": 1}, "schedule": "progressive"})
    with pytest.raises(ConfigError, match=r"train.epochs 3 differs from the sum of phase_epochs"):
        SupernetConfig.from_dict(
            {"train": {"epochs": 3}, "schedule": "progressive", "phase_epochs": {"kernel": 2}}
        )
    with pytest.raises(ConfigError, match="unknown distill 'kd'"):
        SupernetConfig.from_dict({"train": {"epochs": 1}, "distill": "kd"})
    with pytest.raises(ConfigError, match="MBV3Supernet needs an mbv3 space"):
        MBV3Supernet("mbv3")  # type: ignore[arg-type]
    cfg = SupernetConfig.from_dict(
        {
            "train": {"lr": 0.1},
            "schedule": "progressive",
            "phase_epochs": {"largest": 1, "expand": 2},
        }
    )
    assert cfg.train.epochs == 3
    assert [(p, c.epochs) for p, c in cfg.phases()] == [("largest", 1), ("expand", 2)]
    assert SupernetConfig.from_dict(cfg.to_dict()) == cfg
