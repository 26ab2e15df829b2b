"""The gradient search loop on digits at toy sizes: every method runs, derives valid NB201 cells,
is deterministic and resumes after a kill; the hardware term moves the derived cost; the
derivation and ProxylessNAS's gate gradients are exact."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from hwnas.data import load_dataset
from hwnas.errors import ConfigError
from hwnas.oneshot.relax.arch import ArchParams, draw
from hwnas.oneshot.relax.cost import slot_cost_from_spec
from hwnas.oneshot.relax.derive import into_band, top_k
from hwnas.oneshot.relax.methods import GRADIENTS, METHODS, method_settings
from hwnas.oneshot.relax.search import run_search
from hwnas.spaces import NB201Space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY = {"epochs": 2, "channels": 4, "cells": 1, "batch_size": 128, "top_k": 3}


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits"})


@pytest.fixture(scope="module")
def flops_cost():
    return slot_cost_from_spec(
        NB201Space(), {"source": "flops", "rows": 60}, rng=np.random.default_rng(0)
    )


def _settings(method: str, **extra):
    options = {**TOY, **extra}
    if method in ("fbnet", "pc_darts"):
        options.setdefault("warmup_epochs", 1)
    if method in ("fbnet", "proxyless"):
        options.setdefault("cost", {"source": "flops"})
    return method_settings(method, options)


@pytest.mark.parametrize("method", [*METHODS, "darts-2"])
def test_every_method_derives_valid_cells(method, digits, flops_cost):
    name, _, order = method.partition("-")
    s = _settings(name, **({"order": 2} if order else {}))
    cost = flops_cost if s.cost is not None else None
    run = run_search(
        NB201Space(),
        digits,
        s,
        cost=cost,
        latency_weight=s.weights_to_sweep()[0],
        seed=1,
        label="x",
    )
    space = NB201Space()
    assert len(run.archs) == 3 == len(set(run.archs))
    for text in run.archs:
        assert space.to_string(space.from_string(text)) == text
    assert len(run.trajectory) == s.epochs + 1
    for epoch in run.trajectory:
        assert len(epoch) == 6
        assert all(abs(sum(p) - 1.0) < 1e-4 for p in epoch)
    assert run.trajectory[-1] != run.trajectory[0]  # the architecture weights learned
    assert 0 <= run.metrics["parameter_free_edges"] <= 6
    assert 0.0 <= run.metrics["valid_accuracy"] <= 1.0
    if cost is not None:
        assert run.metrics["derived_cost"] == pytest.approx(
            cost.predict(space.from_string(run.archs[0]))
        )


def test_same_seed_same_result_and_resume_after_kill(digits, tmp_path):
    s = _settings("pc_darts", epochs=3)
    space = NB201Space()
    straight = run_search(space, digits, s, cost=None, latency_weight=0.0, seed=3, label="x")

    def kill_after_first(epoch):
        if epoch["epoch"] == 1:
            raise KeyboardInterrupt

    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_search(space, digits, s, cost=None, latency_weight=0.0, seed=3, label="x",
                   folder=folder, progress=kill_after_first)  # fmt: skip
    assert (folder / "checkpoint.pt").is_file()
    epochs = []
    resumed = run_search(space, digits, s, cost=None, latency_weight=0.0, seed=3, label="x",
                         folder=folder, progress=epochs.append)  # fmt: skip
    assert [e["epoch"] for e in epochs] == [2, 3]  # epoch 1 was not run again
    assert resumed.archs == straight.archs
    assert resumed.trajectory == straight.trajectory
    again = run_search(space, digits, s, cost=None, latency_weight=0.0, seed=3, label="x")
    assert again.trajectory == straight.trajectory
    # "auto" on a machine without a CUDA GPU is the CPU: the same search.
    if not torch.cuda.is_available():
        auto = _settings("pc_darts", epochs=3, compute_device="auto")
        on_auto = run_search(space, digits, auto, cost=None, latency_weight=0.0, seed=3, label="x")
        assert on_auto.trajectory == straight.trajectory and on_auto.archs == straight.archs


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_cuda_search_without_a_gpu_is_refused_before_training(digits):
    s = _settings("darts", compute_device="cuda")
    epochs = []
    with pytest.raises(ConfigError, match=r"^darts: compute_device 'cuda', but this PyTorch"):
        run_search(NB201Space(), digits, s, cost=None, latency_weight=0.0, seed=0, label="x",
                   progress=epochs.append)  # fmt: skip
    assert epochs == []


def test_latency_weight_lowers_the_derived_cost(digits, flops_cost):
    space = NB201Space()
    costs = []
    for weight in (0.0, 3.0):
        s = _settings("darts", epochs=3, cost={"source": "flops"}, arch_lr=3e-2)
        run = run_search(
            space, digits, s, cost=flops_cost, latency_weight=weight, seed=0, label="w"
        )
        costs.append((run.metrics["expected_cost"], run.metrics["derived_cost"]))
    assert costs[1][0] < costs[0][0]
    assert costs[1][1] <= costs[0][1]


def test_top_k_matches_brute_force():
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(n)) for n in (3, 4, 2, 5)]
    every = sorted(
        itertools.product(*(range(len(p)) for p in probs)),
        key=lambda t: -np.prod([p[j] for p, j in zip(probs, t)]),
    )
    assert top_k(probs, 7) == every[:7]


def test_into_band_takes_the_cheapest_log_probability_per_unit():
    probs = [np.array([0.6, 0.4]), np.array([0.9, 0.1]), np.array([0.5, 0.5]), np.array([0.7, 0.3])]
    unit = [(0, 8), (0, 8), (0, 1), (0, 0)]  # the last slot never changes the cost

    def cost(t: tuple[int, ...]) -> float:
        return float(sum(unit[i][j] for i, j in enumerate(t)))

    # Up from the argmax: slot 2 is free in log-probability, then slot 0 (0.405 / 8 per unit)
    # beats slot 1 (2.197 / 8); the cost-neutral slot 3 stays at its argmax.
    assert into_band(probs, (0, 0, 0, 0), cost, 9.0, 10.0) == (1, 0, 1, 0)
    in_band = [t for t in itertools.product(range(2), repeat=4) if 9 <= cost(t) <= 10 and t[3] == 0]
    best = max(in_band, key=lambda t: np.prod([p[j] for p, j in zip(probs, t)]))
    assert best == (1, 0, 1, 0)
    # Down: the change that loses least per unit saved (here slot 1 gains the most), stopping
    # once under the band's top.
    assert into_band(probs, (1, 1, 1, 0), cost, 0.0, 9.0) == (1, 0, 1, 0)
    # A band out of reach gives the closest choices found.
    assert into_band(probs, (0, 0, 0, 0), cost, 100.0, 200.0) == (1, 1, 1, 0)


def test_a_target_moves_the_derived_cells_into_its_band(digits, flops_cost):
    space = NB201Space()
    runs = {}
    for derive in ("argmax", "target"):
        s = _settings("darts", cost={"source": "flops"}, target=60.0, derive=derive)
        runs[derive] = run_search(
            space, digits, s, cost=flops_cost, latency_weight=0.0, seed=0, label="t"
        )
    plain, moved = runs["argmax"], runs["target"]
    argmax_cost = flops_cost.predict(space.from_string(plain.archs[0]))
    assert argmax_cost < 54.0  # the argmax undershoots the band [54, 60]
    assert moved.metrics["argmax_cost"] == pytest.approx(argmax_cost)
    assert "argmax_cost" not in plain.metrics
    assert len(moved.archs) == len(set(moved.archs)) == 3
    for arch in moved.archs:
        assert 54.0 <= flops_cost.predict(space.from_string(arch)) <= 60.0
    assert moved.metrics["derived_cost"] == pytest.approx(
        flops_cost.predict(space.from_string(moved.archs[0]))
    )
    assert moved.trajectory == plain.trajectory  # the derivation alone differs


def _hinge_context(flops_cost, target_cost):
    """The DARTS loss context on NB201 FLOPs with a target between the probabilities' expected
    cost and their argmax's: the argmax is every edge's 3x3 convolution, but with little mass."""
    from types import SimpleNamespace

    params = ArchParams([len(c) for c in flops_cost.choices], generator=torch.Generator())
    conv = flops_cost.choices[0].index("nor_conv_3x3")
    with torch.no_grad():
        for a in params.alpha:
            a.fill_(0.0)
            a[conv] = 0.05
    chosen = {} if target_cost is None else {"target_cost": target_cost}
    s = _settings("darts", cost={"source": "flops"}, target=60.0, **chosen)
    fields = {"settings": s, "cost": flops_cost, "params": params, "latency_weight": 0.0,
              "reference": 60.0}  # fmt: skip
    return SimpleNamespace(**fields, cost_weights=list), params


@pytest.mark.parametrize("target_cost", [None, "expected", "argmax"])
def test_the_target_hinge_acts_on_the_chosen_cost(flops_cost, target_cost):
    from hwnas.oneshot.relax.steps import argmax_cost, hardware_loss

    ctx, params = _hinge_context(flops_cost, target_cost)
    probs = params.probs()
    expected = float(flops_cost.expected(probs))
    top = float(argmax_cost(ctx))
    assert top == pytest.approx(flops_cost.predict_ops(["nor_conv_3x3"] * 6))
    assert expected < 60.0 < top
    ce = torch.tensor(2.0)
    loss = hardware_loss(ctx, ce, probs)
    if target_cost == "argmax":  # fires: the derived cell is over the target
        assert float(loss) == pytest.approx(2.0 + top / 60.0 - 1.0)
        loss.backward()
        # Straight-through: the gradient is the expected cost's (over the target).
        want = [torch.autograd.grad(flops_cost.expected(params.probs()) / 60.0, a)[0]
                for a in params.alpha]  # fmt: skip
        for a, g in zip(params.alpha, want):
            assert torch.allclose(a.grad, g)
    else:  # the expected cost is under the target: no hinge
        assert float(loss) == pytest.approx(2.0)


def test_binary_gates_give_binaryconnect_gradients():
    gen = torch.Generator().manual_seed(0)
    params = ArchParams([5], generator=gen)
    with torch.no_grad():
        params.alpha[0].copy_(torch.tensor([0.3, -0.2, 0.9, 0.1, -0.5]))
    sample, _ = draw("binary", params, generator=gen, for_arch=True)
    two = sample.active[0]
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])  # dL/dg_j = values[j] for L = sum g_j v_j
    (sample.weights[0] * values).sum().backward()
    q = torch.softmax(params.alpha[0].detach()[two], dim=0)
    grad = params.alpha[0].grad
    for i, ti in enumerate(two):
        want = sum(float(values[tj] * q[j] * (float(i == j) - q[i])) for j, tj in enumerate(two))
        assert float(grad[ti]) == pytest.approx(want, abs=1e-6)
    assert sorted(float(v) for v in sample.weights[0].detach()) == [0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    ("method", "options", "text"),
    [
        ("darts", {"epochs": 2, "warmup_epochs": 2}, "warmup_epochs (2) must be fewer than epochs"),
        ("darts", {"latency_weight": 0.5}, "needs a cost model"),
        ("fbnet", {}, "its loss is latency-aware and needs a cost model"),
        ("gdas", {"partial_k": 4}, "unknown option 'partial_k'"),
        ("darts", {"latency_weights": 0.5, "cost": {"source": "flops"}}, "must be a list"),
        ("darts", {"order": 3}, "order must be 1"),
        ("pc_darts", {"channels": 6}, "multiple of partial_k"),
        ("proxyless", {"form": "mul", "cost": {"source": "flops"}}, "form must be one of"),
        ("darts", {"cost": "flops"}, "cost must be a mapping"),
        ("darts", {"derive": "best"}, "derive must be one of target, argmax, got 'best'"),
        ("darts", {"derive": "target"}, "derive: target needs a target"),
        ("darts", {"target_tolerance": 1.5}, "target_tolerance must be a number >= 0.0"),
        (
            "darts",
            {"target": 5.0, "target_cost": "max", "cost": {"source": "flops"}},
            "target_cost must be one of expected, argmax, got 'max'",
        ),
        ("darts", {"target_cost": "argmax"}, "target_cost needs a target"),
        ("gdas", {"gradient": "argmax"}, "gradient must be one of all, sampled, got 'argmax'"),
        ("darts", {"gradient": "all"}, "unknown option 'gradient'"),
        ("gdas", {"compute_device": "gpu"}, "compute_device must be cpu, cuda, cuda:N or auto"),
        ("darts", {"compute_device": 0}, "compute_device must be cpu, cuda, cuda:N or auto"),
    ],
)
def test_bad_options_name_the_problem(method, options, text):
    with pytest.raises(ConfigError, match="^" + method) as info:
        method_settings(method, options)
    assert text in str(info.value)
    assert "\n" not in str(info.value)


def test_methods_take_their_released_code_settings():
    """DARTS on NB201 (Dong & Yang's settings); PC-DARTS its own search code's batch 256, lr 0.1,
    weight decay 3e-4, architecture lr 6e-4 and 15 frozen epochs."""
    d, p = method_settings("darts", {}), method_settings("pc_darts", {})
    assert (d.batch_size, d.lr, d.lr_min, d.weight_decay, d.arch_lr) == (
        64,
        0.025,
        0.001,
        5e-4,
        3e-4,
    )
    assert (p.batch_size, p.lr, p.lr_min, p.weight_decay) == (256, 0.1, 0.001, 3e-4)
    assert (p.arch_lr, p.arch_weight_decay, p.warmup_epochs, p.partial_k) == (6e-4, 1e-3, 15, 4)
    assert method_settings("pc_darts", {"batch_size": 64}).batch_size == 64


def test_gdas_gradient_reaches_every_weight_of_a_slot_by_default(digits):
    """GDAS's released code adds each unsampled choice's weight (value 0) to the edge: the
    forward is unchanged, and every architecture weight gets a gradient. ``gradient: sampled``
    reaches only the sampled choice's weight (the straight-through softmax still spreads it)."""
    from hwnas.oneshot.relax.nb201_net import weighted_sum

    assert method_settings("gdas", {}).gradient == "all"
    assert method_settings("darts", {}).gradient is None
    ops = torch.nn.ModuleList([torch.nn.Conv2d(2, 2, 1), torch.nn.Identity(), torch.nn.Identity()])
    x = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    g = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    grads, outs = {}, {}
    for flag in (True, False):
        w = torch.tensor([0.0, 1.0, 0.0], requires_grad=True)
        out = weighted_sum(ops, x, w, [1], inactive_grad=flag)
        (out * g).sum().backward()
        grads[flag], outs[flag] = w.grad, out.detach()
    assert torch.equal(outs[True], outs[False])
    assert torch.allclose(grads[True], torch.stack([g.sum(), (g * x).sum(), g.sum()]))
    assert torch.allclose(grads[False], torch.tensor([0.0, float((g * x).sum()), 0.0]))
    runs = {}
    for gradient in GRADIENTS:
        s = _settings("gdas", gradient=gradient, epochs=1)
        runs[gradient] = run_search(
            NB201Space(), digits, s, cost=None, latency_weight=0.0, seed=3, label="x"
        )
        assert len(runs[gradient].archs) >= 1
    assert runs["all"].trajectory[-1] != runs["sampled"].trajectory[-1]


def test_result_round_trips(digits, tmp_path):
    from hwnas.oneshot.relax.result import GradientResult

    s = _settings("gdas")
    run = run_search(NB201Space(), digits, s, cost=None, latency_weight=0.0, seed=0, label="x")
    result = GradientResult(method="gdas", options=s.to_dict(), runs=[run], key="k")
    result.save(tmp_path)
    back = GradientResult.load(tmp_path)
    assert back == result
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["format"] == "hwnas-gradient-search"


def test_a_damaged_checkpoint_is_refused_with_one_line(digits, tmp_path):
    from hwnas.errors import DataError

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    s = _settings("gdas")
    with pytest.raises(DataError, match="delete it to start the search again") as info:
        run_search(NB201Space(), digits, s, cost=None, latency_weight=0.0, seed=0, label="x",
                   folder=folder)  # fmt: skip
    assert "\n" not in str(info.value)
