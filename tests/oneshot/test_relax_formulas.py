"""The published formulas of differentiable NAS methods: known values, both float and tensor
inputs, gradients where training needs them, and one-line errors for arguments out of range."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest

torch = pytest.importorskip("torch")

from hwnas.errors import ConfigError  # noqa: E402
from hwnas.oneshot.relax.formulas import (  # noqa: E402
    cosine_power_lr,
    fbnet_loss,
    fbnet_tau,
    gdas_tau,
    gumbel_softmax_sample,
    max_w_weights,
    proxyless_loss,
    tas_flops_loss,
    tas_tau,
)


def plain_cosine(step: float, total: float, lr_max: float, lr_min: float) -> float:
    return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * step / total)) / 2


# FBNet


def test_fbnet_loss_known_value() -> None:
    assert round(fbnet_loss(2.0, 10.0), 3) == 0.660


def test_fbnet_loss_tensor_matches_float_and_has_positive_latency_gradient() -> None:
    lat = torch.tensor(10.0, requires_grad=True)
    loss = fbnet_loss(torch.tensor(2.0), lat)
    assert isinstance(loss, torch.Tensor)
    assert loss.item() == pytest.approx(fbnet_loss(2.0, 10.0))
    loss.backward()
    assert lat.grad is not None and lat.grad.item() > 0


def test_fbnet_loss_rejects_latency_at_most_one_ms() -> None:
    with pytest.raises(ConfigError, match=r"latency_ms must be > 1.*latency_ms=0\.5"):
        fbnet_loss(2.0, 0.5)
    with pytest.raises(ConfigError, match="latency_ms"):
        fbnet_loss(torch.tensor(2.0), torch.tensor([3.0, 1.0]))


def test_fbnet_tau() -> None:
    assert fbnet_tau(0) == 5.0
    assert fbnet_tau(10) == pytest.approx(5 * math.exp(-0.45))
    assert fbnet_tau(torch.tensor(10.0)).item() == pytest.approx(5 * math.exp(-0.45))
    with pytest.raises(ConfigError, match=r"tau0 must be > 0, got tau0=0"):
        fbnet_tau(1, tau0=0.0)


# ProxylessNAS


def test_proxyless_mul_log_at_reference_is_alpha_times_ce() -> None:
    assert proxyless_loss(2.0, 30.0, 30.0) == pytest.approx(0.2 * 2.0)
    assert proxyless_loss(2.0, 30.0, 30.0, alpha=0.5) == pytest.approx(1.0)
    # slower than the reference costs more, faster less
    assert proxyless_loss(2.0, 60.0, 30.0) > 0.4 > proxyless_loss(2.0, 15.0, 30.0)


def test_proxyless_add_linear_at_reference_is_ce() -> None:
    assert proxyless_loss(2.0, 30.0, 30.0, form="add#linear") == pytest.approx(2.0)
    assert proxyless_loss(2.0, 60.0, 30.0, form="add#linear", lam=0.1) == pytest.approx(2.1)


def test_proxyless_tensor_gradient_flows_to_expected_latency() -> None:
    for form in ("mul#log", "add#linear"):
        lat = torch.tensor(40.0, requires_grad=True)
        proxyless_loss(torch.tensor(2.0), lat, 30.0, form=form).backward()
        assert lat.grad is not None and lat.grad.item() > 0


def test_proxyless_unknown_form_lists_both() -> None:
    with pytest.raises(ConfigError) as err:
        proxyless_loss(2.0, 30.0, 30.0, form="mul#linear")
    text = str(err.value)
    assert "mul#log" in text and "add#linear" in text and "'mul#linear'" in text
    assert "\n" not in text


def test_proxyless_mul_log_needs_reference_above_one() -> None:
    with pytest.raises(ConfigError, match=r"reference must be > 1.*reference=1\.0"):
        proxyless_loss(2.0, 30.0, 1.0)


# sharpDARTS


def test_cosine_power_lr_ends() -> None:
    for power in (1.0, 2.0, 10.0):
        assert cosine_power_lr(0, 100, 0.1, 0.001, power=power) == pytest.approx(0.1)
        assert cosine_power_lr(100, 100, 0.1, 0.001, power=power) == pytest.approx(0.001)


def test_cosine_power_lr_power_one_is_plain_cosine() -> None:
    for step in (0, 13, 50, 77, 100):
        expected = plain_cosine(step, 100, 0.1, 0.001)
        assert cosine_power_lr(step, 100, 0.1, 0.001, power=1.0) == pytest.approx(expected)
        near_one = cosine_power_lr(step, 100, 0.1, 0.001, power=1 + 1e-9)
        assert abs(near_one - expected) < 1e-6


def test_cosine_power_lr_large_power_lies_below_cosine_and_decreases() -> None:
    assert cosine_power_lr(50, 100, 0.1, 0.0, power=10.0) < plain_cosine(50, 100, 0.1, 0.0)
    # the sharpDARTS reference value at the middle: (sqrt(p) - 1) / (p - 1)
    assert cosine_power_lr(50, 100, 1.0, 0.0, power=10.0) == pytest.approx((math.sqrt(10) - 1) / 9)
    lrs = [cosine_power_lr(s, 100, 0.1, 0.0, power=10.0) for s in range(101)]
    assert all(a > b for a, b in itertools.pairwise(lrs))


def test_cosine_power_lr_tensor_step() -> None:
    steps = torch.tensor([0.0, 50.0, 100.0])
    lrs = cosine_power_lr(steps, 100, 0.1, 0.001, power=10.0)
    expected = [cosine_power_lr(float(s), 100, 0.1, 0.001, power=10.0) for s in steps]
    assert lrs.tolist() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda: cosine_power_lr(0, 100, 0.1, 0.0, power=0.0),
            r"power must be >= 1, got power=0\.0",
        ),
        (lambda: cosine_power_lr(0, 100, 0.1, 0.0, power=-2.0), r"power must be >= 1"),
        (lambda: cosine_power_lr(101, 100, 0.1, 0.0), r"step must be in \[0, 100\], got step=101"),
        (lambda: cosine_power_lr(-1, 100, 0.1, 0.0), r"step must be in \[0, 100\]"),
        (lambda: cosine_power_lr(0, 0, 0.1, 0.0), r"total must be > 0, got total=0"),
        (lambda: cosine_power_lr(0, 100, 0.1, 0.2), r"lr_min <= lr_max.*got lr_min=0\.2"),
    ],
)
def test_cosine_power_lr_bad_arguments(call: Callable[[], object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        call()


def test_max_w_weights_known_vector() -> None:
    w = torch.tensor([0.1, 0.6, 0.3])
    assert max_w_weights(w).tolist() == pytest.approx([0.5, 1.0, 0.7])
    batch = torch.tensor([[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]])
    out = max_w_weights(batch)
    assert out[0].tolist() == pytest.approx([0.5, 1.0, 0.7])
    assert out[1].tolist() == pytest.approx([0.75, 0.75, 1.0])


# GDAS and TAS temperatures


def test_gdas_tau_linear_from_ten_to_point_one() -> None:
    taus = [gdas_tau(e, 250) for e in range(250)]
    assert taus[0] == 10.0
    assert taus[-1] == 0.1
    assert gdas_tau(torch.tensor(249.0), 250).item() == pytest.approx(0.1)
    assert all(a > b for a, b in itertools.pairwise(taus))
    assert gdas_tau(1, 3) == pytest.approx((10.0 + 0.1) / 2)  # linear: the middle is the mean
    assert gdas_tau(0, 1) == 10.0


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: gdas_tau(0, 0), r"epochs must be an integer >= 1, got epochs=0"),
        (lambda: gdas_tau(5, 5), r"epoch must be in \[0, 4\], got epoch=5"),
        (lambda: gdas_tau(-1, 5), r"epoch must be in \[0, 4\]"),
        (lambda: gdas_tau(0, 5, tau_min=20.0), r"tau_min <= tau_max.*tau_min=20\.0, tau_max=10"),
        (lambda: tas_tau(0, 5, tau_min=0.0), r"0 < tau_min <= tau_max"),
        (lambda: tas_tau(0, 2.5), r"epochs must be an integer"),
    ],
)
def test_tau_schedules_bad_arguments(call: Callable[[], object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        call()


def test_tas_tau_ends_and_decreases() -> None:
    taus = [tas_tau(e, 600) for e in range(600)]
    assert taus[0] == 5.0
    assert taus[-1] == 0.1
    assert taus[300] < (5.0 + 0.1) / 2 < taus[299]  # cosine: crosses the mean at the middle
    assert all(a > b for a, b in itertools.pairwise(taus))
    assert tas_tau(0, 1) == pytest.approx(5.0)


# TAS FLOPs loss


def test_tas_flops_loss_three_regions() -> None:
    assert tas_flops_loss(120.0, 100.0) == pytest.approx(math.log(120.0))
    assert tas_flops_loss(80.0, 100.0) == pytest.approx(-math.log(80.0))
    assert tas_flops_loss(103.0, 100.0) == 0.0
    assert tas_flops_loss(97.0, 100.0) == 0.0


def test_tas_flops_loss_tensor_gradients() -> None:
    for value, sign in ((120.0, 1), (80.0, -1), (101.0, 0)):
        flops = torch.tensor(value, requires_grad=True)
        tas_flops_loss(flops, 100.0).backward()
        assert flops.grad is not None
        assert flops.grad.item() == pytest.approx(sign / value)


def test_tas_flops_loss_band_tested_on_current_flops() -> None:
    # the argmax architecture is too large although the expectation is in the band
    assert tas_flops_loss(101.0, 100.0, current_flops=130.0) == pytest.approx(math.log(101.0))
    assert tas_flops_loss(101.0, 100.0, current_flops=torch.tensor(50.0)) == pytest.approx(
        -math.log(101.0)
    )


def test_tas_flops_loss_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"tolerance must be in \[0, 1\), got tolerance=1\.5"):
        tas_flops_loss(100.0, 100.0, tolerance=1.5)
    with pytest.raises(ConfigError, match=r"expected_flops must be > 0"):
        tas_flops_loss(0.0, 100.0)


# Gumbel-softmax


def test_gumbel_same_seed_same_sample() -> None:
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    a, ia = gumbel_softmax_sample(logits, 1.0, torch.Generator().manual_seed(7))
    b, ib = gumbel_softmax_sample(logits, 1.0, torch.Generator().manual_seed(7))
    c, _ = gumbel_softmax_sample(logits, 1.0, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and torch.equal(ia, ib)
    assert not torch.equal(a, c)
    assert torch.allclose(a.sum(-1), torch.ones(4))
    assert torch.equal(ia, a.argmax(-1))


def test_gumbel_hard_is_exact_one_hot_with_gradients() -> None:
    logits = torch.randn(3, 6, generator=torch.Generator().manual_seed(1)).requires_grad_()
    gen = torch.Generator().manual_seed(2)
    weights, index = gumbel_softmax_sample(logits, 0.7, gen, hard=True)
    expected = torch.nn.functional.one_hot(index, 6).to(weights.dtype)
    assert torch.equal(weights, expected)
    (weights * torch.arange(6.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum().item() > 0


def test_gumbel_small_tau_approaches_one_hot() -> None:
    logits = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    soft, _ = gumbel_softmax_sample(logits, 5.0, torch.Generator().manual_seed(4))
    sharp, index = gumbel_softmax_sample(logits, 1e-3, torch.Generator().manual_seed(4))
    one_hot = torch.nn.functional.one_hot(index, 4).to(sharp.dtype)
    assert (sharp - one_hot).abs().max().item() < 1e-3
    assert (soft - one_hot).abs().max().item() > 0.1


def test_gumbel_rejects_non_positive_tau() -> None:
    with pytest.raises(ConfigError, match=r"tau must be > 0, got tau=0\.0"):
        gumbel_softmax_sample(torch.zeros(3), 0.0, torch.Generator())
