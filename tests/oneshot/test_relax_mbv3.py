"""The mbv3 relaxation: a one-hot sample computes the standalone sub-network, a one-hot depth
truncates each stage, the expected cost over blocks that may be off is exact and multilinear, the
derived top-k are the best distinct architectures, searches on digits derive valid mbv3 archs, and
a mode the relaxation lacks fails with one line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hwnas import Objective, Study, create_strategy
from hwnas.data import load_dataset
from hwnas.errors import ConfigError
from hwnas.oneshot.relax.cost import SlotCost, slot_cost_from_spec
from hwnas.oneshot.relax.mbv3_net import BLOCK_PAIRS, RelaxedMBV3
from hwnas.oneshot.relax.mbv3_relax import BLOCK_CHOICES, SLOT_NAMES
from hwnas.oneshot.relax.methods import method_settings
from hwnas.oneshot.relax.nb201_net import ArchSample
from hwnas.oneshot.relax.search import run_search
from hwnas.oneshot.relax.spaces import Relaxation, relaxation
from hwnas.spaces import MBV3Space, NB201Space
from hwnas.spaces.mbv3_plan import MBV3_BLOCKS, MBV3_DEPTHS, MBV3_MAX_DEPTH, MBV3_STAGES
from hwnas.testing import CheapMetric

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_SLOTS = MBV3_BLOCKS + MBV3_STAGES
GDAS = method_settings("gdas", {})


@pytest.fixture(scope="module")
def space() -> MBV3Space:
    return MBV3Space(preset="small", input_size=8, in_channels=1, num_classes=10)


@pytest.fixture(scope="module")
def relax(space: MBV3Space) -> Relaxation:
    return relaxation(space, GDAS)


@pytest.fixture(scope="module")
def net(space: MBV3Space, relax: Relaxation) -> RelaxedMBV3:
    torch.manual_seed(0)
    module = relax.build(space, GDAS, 10, 1)
    assert isinstance(module, RelaxedMBV3)
    return module.eval()


@pytest.fixture(scope="module")
def flops(space: MBV3Space, relax: Relaxation) -> SlotCost:
    slots = relax.cost_slots(space, GDAS)
    spec = {"source": "flops"}  # the mbv3 slots' default: 400 rows
    return slot_cost_from_spec(space, spec, rng=np.random.default_rng(0), slots=slots)


def _one_hot(picks: list[int]) -> list[torch.Tensor]:
    sizes = [len(BLOCK_PAIRS)] * MBV3_BLOCKS + [len(MBV3_DEPTHS)] * MBV3_STAGES
    return [torch.nn.functional.one_hot(torch.tensor(j), n).double() for j, n in zip(picks, sizes)]


def _random_picks(rng: np.random.Generator) -> list[int]:
    blocks = [int(i) for i in rng.integers(len(BLOCK_PAIRS), size=MBV3_BLOCKS)]
    return blocks + [int(i) for i in rng.integers(len(MBV3_DEPTHS), size=MBV3_STAGES)]


def test_slots_and_their_choices(space: MBV3Space, relax: Relaxation) -> None:
    assert relax.slot_names == SLOT_NAMES and len(SLOT_NAMES) == N_SLOTS == 25
    assert SLOT_NAMES[0] == "stage 1 block 1" and SLOT_NAMES[-1] == "stage 5 depth"
    choices = relax.slot_choices(space)
    assert choices[:MBV3_BLOCKS] == [list(BLOCK_CHOICES)] * MBV3_BLOCKS
    assert choices[MBV3_BLOCKS:] == [["depth 2", "depth 3", "depth 4"]] * MBV3_STAGES
    assert BLOCK_CHOICES[0] == "k3e3" and BLOCK_CHOICES[-1] == "k7e6" and len(BLOCK_CHOICES) == 9
    assert relax.modes == ("softmax", "gumbel_hard", "gumbel_soft", "binary")
    assert all(len(block.ops) == 9 for block in RelaxedMBV3(resolution=8).blocks)


def test_one_hot_sample_is_the_standalone_network(
    space: MBV3Space, relax: Relaxation, net: RelaxedMBV3
) -> None:
    rng = np.random.default_rng(3)
    picks = _random_picks(rng)
    picks[MBV3_BLOCKS:] = [0, 1, 0, 1, 0]  # depths 2, 3, 2, 3, 2: below the maximum
    arch = relax.to_arch(space, GDAS, picks)
    assert arch["d"] == [2, 3, 2, 3, 2] and (arch["r"], arch["w"]) == (8, 1.0)
    assert space.validate(arch) == arch and arch["ks"][2:4] == [0, 0]
    alone = space.build_network(arch).eval()
    for name in ("stem", "first_block", "final_expand", "feature_mix", "classifier"):
        getattr(alone, name).load_state_dict(getattr(net, name).state_dict())
    active_blocks = [
        s * MBV3_MAX_DEPTH + j for s, d in enumerate(arch["d"]) for j in range(d)
    ]  # blocks.{i} of the standalone network are the active blocks in order
    for i, b in enumerate(active_blocks):
        assert (arch["ks"][b], arch["e"][b]) == BLOCK_PAIRS[picks[b]]
        alone.blocks[i].load_state_dict(net.blocks[b].ops[picks[b]].state_dict())
    calls: list[tuple[int, int]] = []
    hooks = [
        op.register_forward_hook(lambda *_, at=(b, c): calls.append(at))
        for b, block in enumerate(net.blocks)
        for c, op in enumerate(block.ops)
    ]
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    weights = [w.float() for w in _one_hot(picks)]
    try:
        with torch.no_grad():
            only = net(x, ArchSample(weights=weights, active=[[j] for j in picks]))
            assert calls == [(b, picks[b]) for b in active_blocks]  # nothing else ran
            calls.clear()
            every = net(x, ArchSample(weights=weights))
            assert len(calls) == MBV3_BLOCKS * 9
            want = alone(x)
    finally:
        for h in hooks:
            h.remove()
    torch.testing.assert_close(only, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(every, want, rtol=1e-5, atol=1e-5)
    assert float(want.abs().max()) > 0.0


def test_a_one_hot_depth_truncates_each_stage(net: RelaxedMBV3) -> None:
    gen = torch.Generator().manual_seed(1)
    blocks = [torch.softmax(torch.randn(9, generator=gen), 0) for _ in range(MBV3_BLOCKS)]
    x = torch.rand(2, 1, 8, 8, generator=gen)

    def by_hand(depths: list[int]) -> torch.Tensor:
        h = net.first_block(net.stem(x))
        for s, d in enumerate(depths):
            for j in range(d):
                h = net.blocks[s * MBV3_MAX_DEPTH + j](h, blocks[s * MBV3_MAX_DEPTH + j], None)
        h = net.feature_mix(net.pool(net.final_expand(h)))
        return net.classifier(torch.flatten(h, 1))

    with torch.no_grad():
        for depths in ([2] * 5, [3] * 5, [4] * 5, [4, 2, 3, 2, 4]):
            one_hot = [
                torch.nn.functional.one_hot(torch.tensor(MBV3_DEPTHS.index(d)), 3).float()
                for d in depths
            ]
            got = net(x, ArchSample(weights=blocks + one_hot))
            torch.testing.assert_close(got, by_hand(depths), rtol=1e-5, atol=1e-6)
        # a stage's output is linear in its depth weights: the last stage feeds the head, so
        # compare the mixture on its input to the head through a hook
        captured: list[torch.Tensor] = []
        hook = net.final_expand.register_forward_hook(lambda _m, i, _o: captured.append(i[0]))
        try:
            for p in ([1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.2, 0.3, 0.5]):
                net(
                    x,
                    ArchSample(
                        weights=blocks + [torch.tensor([0, 0, 1.0])] * 4 + [torch.tensor(p)]
                    ),
                )
        finally:
            hook.remove()
    mix = 0.2 * captured[0] + 0.3 * captured[1] + 0.5 * captured[2]
    torch.testing.assert_close(captured[3], mix, rtol=1e-5, atol=1e-6)


def test_expected_cost_is_the_derived_cost_at_one_hot_and_linear_between(
    space: MBV3Space, relax: Relaxation, flops: SlotCost
) -> None:
    slots = relax.cost_slots(space, GDAS)
    assert [len(c) for c in slots.choices] == [9, 9, 10, 10] * MBV3_STAGES
    assert slots.choices[2][0] == "off"
    rng = np.random.default_rng(5)

    def expected(weights: list[torch.Tensor]) -> float:
        return float(flops.expected(relax.cost_weights(weights)))

    def derived(picks: list[int]) -> float:
        return flops.predict_ops(slots.names(relax.to_arch(space, GDAS, picks)))

    for _ in range(5):
        picks = _random_picks(rng)
        assert expected(_one_hot(picks)) == pytest.approx(derived(picks), abs=1e-9)
    # between two one-hot choices of one slot (a depth, then the fourth block of a stage that
    # keeps it), the expected cost moves on the line between the two architectures' costs
    picks = _random_picks(rng)
    picks[MBV3_BLOCKS + 1] = 2  # stage 2 at depth 4
    for slot, a, b in ((MBV3_BLOCKS + 1, 0, 2), (7, 0, 8)):
        lo, hi = list(picks), list(picks)
        lo[slot], hi[slot] = a, b
        ends = derived(lo), derived(hi)
        assert ends[0] != pytest.approx(ends[1])
        for t in (0.0, 0.25, 0.5, 1.0):
            w = _one_hot(lo)
            w[slot] = (1 - t) * _one_hot(lo)[slot] + t * _one_hot(hi)[slot]
            assert expected(w) == pytest.approx((1 - t) * ends[0] + t * ends[1], abs=1e-9)
    # under a spread distribution over every slot it is the mean cost of sampled architectures
    probs = [torch.tensor(rng.dirichlet(np.ones(len(c)))) for c in relax.slot_choices(space)]
    draws = [derived([int(rng.choice(len(p), p=p.numpy())) for p in probs]) for _ in range(1500)]
    assert expected(probs) == pytest.approx(np.mean(draws), rel=0.01)


def test_a_fitted_flops_cost_predicts_held_out_archs(
    space: MBV3Space, relax: Relaxation, flops: SlotCost
) -> None:
    slots = relax.cost_slots(space, GDAS)
    assert flops.source["rows"] == 400 and flops.source["kind"] == "flops"
    rng = np.random.default_rng(99)
    held_out = [slots.sample(rng) for _ in range(100)]
    true = np.array([space.cheap_metrics(a)["flops_m"] for a in held_out])
    pred = np.array([flops.predict_ops(slots.names(a)) for a in held_out])
    # FLOPs at a fixed resolution are exactly additive over blocks: measured max relative error
    # 9e-16 with seed 0 (400 rows, 171 free coefficients)
    assert np.max(np.abs(pred - true) / true) < 1e-6
    assert flops.source["cv_within_10pct"] == 1.0
    wide = MBV3Space(preset="small", resolutions=[8, 16], in_channels=1)
    wide_slots = relaxation(wide, GDAS).cost_slots(wide, GDAS)  # at the largest, 16
    assert wide_slots.sample(rng)["r"] == 16
    with pytest.raises(ConfigError, match=r"the cost is for resolution 16 and width 1.0, got 8"):
        wide_slots.names(held_out[0])


def test_derive_gives_the_best_distinct_architectures(space: MBV3Space, relax: Relaxation) -> None:
    rng = np.random.default_rng(2)
    # stage 1 is uncertain (two candidates per block, three depths); every other slot is sure
    probs: list[np.ndarray] = []
    for b in range(MBV3_BLOCKS):
        p = np.zeros(9)
        if b < MBV3_MAX_DEPTH:
            p[[1, 4]] = rng.dirichlet([1.0, 1.0])
        else:
            p[int(rng.integers(9))] = 1.0
        probs.append(p)
    probs += [np.array([0.5, 0.3, 0.2])] + [np.array([0.0, 1.0, 0.0])] * 4
    k = 8
    picks = relax.derive(space, GDAS, probs, k)
    archs = [space.to_string(relax.to_arch(space, GDAS, t)) for t in picks]
    assert len(set(archs)) == k
    assert list(picks[0]) == [int(np.argmax(p)) for p in probs]  # the per-slot argmax first
    # brute force: each architecture scored by its most probable slot assignment
    best: dict[str, float] = {}
    for combo in itertools.product([1, 4], [1, 4], [1, 4], [1, 4], [0, 1, 2]):
        t = [*combo[:4], *(int(np.argmax(p)) for p in probs[4:MBV3_BLOCKS]), combo[4], 1, 1, 1, 1]
        text = space.to_string(relax.to_arch(space, GDAS, t))
        score = float(np.prod([p[j] for p, j in zip(probs, t)]))
        best[text] = max(best.get(text, 0.0), score)
    ranked = sorted(best, key=lambda a: -best[a])
    assert [best[a] for a in archs] == pytest.approx([best[a] for a in ranked[:k]])
    assert set(archs) <= set(best)


@pytest.fixture(scope="module")
def digits():
    return load_dataset({"name": "digits", "limit": 100})  # one step of each kind


@pytest.mark.parametrize("method", ["darts", "gdas", "proxyless"])
def test_a_short_search_derives_valid_mbv3_archs(
    space: MBV3Space, relax: Relaxation, flops: SlotCost, digits, method: str
) -> None:
    options = {"epochs": 1, "batch_size": 64, "top_k": 3, "cost": {"source": "flops"}}
    if method == "proxyless":
        options["form"] = "add#linear"  # the toy network's FLOPs are under 1 MMAC
    s = method_settings(method, options)
    run = run_search(space, digits, s, cost=flops, latency_weight=0.1, seed=1, label="x")
    assert len(run.archs) == 3 == len(set(run.archs))
    for text in run.archs:
        arch = space.from_string(text)
        assert space.validate(arch) == arch and space.to_string(arch) == text
        assert arch["r"] == 8 and arch["w"] == 1.0
    assert run.slots == list(SLOT_NAMES)
    assert run.choices == relax.slot_choices(space)
    assert len(run.trajectory) == 2 and run.trajectory[-1] != run.trajectory[0]
    assert [len(p) for p in run.trajectory[-1]] == [9] * 20 + [3] * 5
    best = space.from_string(run.archs[0])
    names = relax.cost_slots(space, s).names(best)
    assert run.metrics["derived_cost"] == pytest.approx(flops.predict_ops(names))
    assert run.metrics["derived_cost"] == pytest.approx(space.cheap_metrics(best)["flops_m"])
    assert "parameter_free_edges" not in run.metrics  # every candidate has weights
    assert 0.0 <= run.metrics["valid_accuracy"] <= 1.0


def test_what_the_relaxation_lacks_fails_with_one_line(space: MBV3Space) -> None:
    cases = [
        (
            method_settings("pc_darts", {"warmup_epochs": 1}),
            space,
            r"pc_darts: its 'partial' relaxation is not available on the 'mbv3' space; use a "
            r"method whose mode is one of softmax, gumbel_hard, gumbel_soft, binary$",
        ),
        (
            method_settings("darts", {"resolution": 32}),
            space,
            r"darts: resolution 32 is not offered by the mbv3 space; choose one of 8 ",
        ),
        (
            method_settings("darts", {"width": 1.2}),
            space,
            r"darts: width 1.2 is not offered by the mbv3 space; choose one of 1.0 ",
        ),
        (
            method_settings("gdas", {"resolution": 32}),
            NB201Space(),
            r"gdas: option 'resolution' applies to the mbv3 space only, not 'nb201'; remove it$",
        ),
    ]
    for settings, where, text in cases:
        with pytest.raises(ConfigError, match=text) as err:
            relaxation(where, settings)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"'partial' relaxation is not available on the 'mbv3'"):
        Study(  # refused at setup, before any data or training
            space=space,
            evaluators=[CheapMetric(space)],
            objectives=[Objective("flops_m", "minimize")],
            strategy=create_strategy("pc_darts", epochs=2, warmup_epochs=1),
        )


def test_a_target_moves_every_derived_mbv3_arch_into_its_band(
    space: MBV3Space, relax: Relaxation, flops: SlotCost, digits
) -> None:
    rng = np.random.default_rng(0)
    target = float(
        np.median([space.cheap_metrics(space.sample(rng))["flops_m"] for _ in range(50)])
    )
    options = {"epochs": 1, "batch_size": 64, "top_k": 3, "cost": {"source": "flops"}}
    s = method_settings("gdas", {**options, "target": target})
    run = run_search(space, digits, s, cost=flops, latency_weight=0.0, seed=1, label="x")
    # Up to top_k distinct networks: after one epoch the moves from 12 starts meet on two.
    assert len(run.archs) == 2 == len(set(run.archs))
    for text in run.archs:  # the fitted cost is the exact FLOPs here: depths included
        assert 0.9 * target <= space.cheap_metrics(space.from_string(text))["flops_m"] <= target
    assert "argmax_cost" in run.metrics
