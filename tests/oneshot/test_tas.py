"""TAS on the ``resnet`` space at toy sizes (digits, 8x8): the expected FLOPs are exact, the
search result has the promised shape, the FLOPs loss pulls the architecture to the target, a
seed fixes the result, and distillation trains a working pruned network."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hwnas.data import Dataset, load_dataset  # noqa: E402
from hwnas.errors import ConfigError  # noqa: E402
from hwnas.oneshot.relax.result import GradientResult  # noqa: E402
from hwnas.oneshot.relax.tas import (  # noqa: E402
    TASConfig,
    derive_archs,
    derive_at_flops,
    distill,
    kd_loss,
    tas_search,
    uniform_arch,
    uniform_at_flops,
)
from hwnas.oneshot.relax.tas_net import TASNetwork, channel_interpolate  # noqa: E402
from hwnas.spaces import ResNetSpace, create_space  # noqa: E402
from hwnas.training import TrainConfig, fit  # noqa: E402

# digits at 8x8; narrow layers keep a search epoch well under a second
TOY = {"blocks": 2, "widths": [8, 16, 16], "in_channels": 1, "input_size": 8}
FAST = {"epochs": 2, "batch_size": 64, "lr": 0.05, "kd_epochs": 2}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # Module-wide, so that the module's searches run (and compare) under one thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset({"name": "digits"})


@pytest.fixture(scope="module")
def space() -> ResNetSpace:
    return ResNetSpace(**TOY)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pulled_down(space: ResNetSpace, digits: Dataset) -> GradientResult:
    config = TASConfig(**FAST, arch_lr=0.05, flops_weight=10.0, target_flops_ratio=0.1)
    return tas_search(space, digits, config)


def _one_hot(net: TASNetwork, codes: np.ndarray) -> None:
    with torch.no_grad():
        for row, slot in enumerate(net.width_slots):
            net.width_logits[row] = -1e4
            net.width_logits[row, int(codes[slot])] = 0.0
        for stage, (depth_slot, _) in enumerate(net.space.stage_slots):
            net.depth_logits[stage] = -1e4
            net.depth_logits[stage, int(codes[depth_slot])] = 0.0


def test_expected_flops_of_one_architecture_are_its_flops(space: ResNetSpace) -> None:
    net = TASNetwork(space, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    for _ in range(10):
        arch = space.sample(rng)
        _one_hot(net, space.encode(arch))
        expected = float(net.expected_flops_m().detach())
        assert expected == pytest.approx(space.cheap_metrics(arch)["flops_m"], rel=1e-12)


def test_expected_flops_are_the_exact_expectation() -> None:
    # Equal widths across layers (2 or 4 channels everywhere) exercise the stride-1 shortcuts,
    # which project only when their widths differ; the stem and stage 3 are held fixed so the
    # sum runs over 2 x 2^4 choices in each of stages 1 and 2.
    space = ResNetSpace(blocks=2, widths=[4, 4, 4], ratios=[0.5, 1.0], in_channels=1, input_size=4)
    net = TASNetwork(space, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.width_logits.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
        net.depth_logits.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(2))
        fixed = [0] + [s for pair in space.stage_slots[2][1] for s in pair]
        for slot in fixed:
            net.width_logits[net.row_of[slot], 0] = -1e4
        net.depth_logits[2, 0] = -1e4
    probs = [torch.softmax(p.detach().double(), 0).numpy() for p in _logit_rows(net)]
    options = [[c for c in range(len(p)) if p[c] > 1e-100] for p in probs]
    total = 0.0
    for codes in itertools.product(*options):
        weight = float(np.prod([probs[i][c] for i, c in enumerate(codes)]))
        total += weight * space.cheap_metrics(space.decode(list(codes)))["flops_m"]
    assert len(list(itertools.product(*options))) == 1024
    assert float(net.expected_flops_m().detach()) == pytest.approx(total, rel=1e-9)


def _logit_rows(net: TASNetwork) -> list[torch.Tensor]:
    rows = [net.width_logits[net.row_of[0]]]
    for stage, (_, pairs) in enumerate(net.space.stage_slots):
        rows.append(net.depth_logits[stage])
        rows += [net.width_logits[net.row_of[s]] for pair in pairs for s in pair]
    return rows


def test_channel_interpolation_resizes_channels() -> None:
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    out = channel_interpolate(x, 6)
    assert out.shape == (2, 6, 2, 2)
    assert torch.equal(out[:, 0], x[:, 0]) and torch.equal(out[:, 5], x[:, 2])
    assert channel_interpolate(x, 3) is x


def test_search_result_has_the_promised_shape(
    space: ResNetSpace, pulled_down: GradientResult
) -> None:
    result = pulled_down
    assert result.method == "tas"
    assert result.cost == {
        "metric": "flops_m",
        "unit": "MMACs",
        "source": {"kind": "flops", "rows": 0, "device_rows": 0},
    }
    (run,) = result.runs
    assert run.label == "flops_ratio=0.1"
    assert run.slots == list(space.slot_names) and len(run.choices) == len(space.slots)
    assert len(run.trajectory) == len(run.expected_cost) == FAST["epochs"] + 1
    for epoch in run.trajectory:
        assert [len(p) for p in epoch] == [len(c) for c in space.slots]
        assert all(sum(p) == pytest.approx(1.0, abs=1e-6) for p in epoch)
    # the argmax moved into the FLOPs band first, then the argmax (if other), distinct networks
    m = run.metrics
    fitted = derive_at_flops(space, run.trajectory[-1], m["target_flops_m"], 0.05)
    assert run.archs[0] == space.to_string(fitted)
    final = space.to_string(space.decode([int(np.argmax(p)) for p in run.trajectory[-1]]))
    assert final in run.archs
    assert space.cheap_metrics(space.from_string(final))["flops_m"] == m["argmax_flops_m"]
    assert abs(m["derived_flops_m"] / m["target_flops_m"] - 1) <= 0.05
    plans = [space.network_plan(space.from_string(a)) for a in run.archs]
    assert len(run.archs) == 4 and len(set(plans)) == 4
    assert set(run.metrics) >= {"train_acc", "valid_acc", "derived_flops_m", "wall_s"}
    assert GradientResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_flops_loss_pulls_the_architecture_to_the_target(pulled_down: GradientResult) -> None:
    run = pulled_down.runs[0]
    m = run.metrics
    assert m["target_flops_m"] == pytest.approx(0.1 * m["unpruned_flops_m"])
    first, last = run.expected_cost[0], run.expected_cost[-1]
    assert abs(last - m["target_flops_m"]) < abs(first - m["target_flops_m"])
    assert m["argmax_flops_m"] <= 1.5 * m["target_flops_m"] < m["unpruned_flops_m"]


def test_flops_loss_pulls_up_to_a_high_target(space: ResNetSpace, digits: Dataset) -> None:
    config = TASConfig(**FAST, arch_lr=0.05, flops_weight=10.0, target_flops_ratio=0.8)
    run = tas_search(space, digits, config).runs[0]
    target = run.metrics["target_flops_m"]
    assert run.expected_cost[-1] > run.expected_cost[0]
    assert 0.6 * target <= run.metrics["argmax_flops_m"] <= run.metrics["unpruned_flops_m"]
    assert abs(run.metrics["derived_flops_m"] / target - 1) <= 0.05


def test_same_seed_same_result(
    space: ResNetSpace, digits: Dataset, pulled_down: GradientResult
) -> None:
    config = TASConfig(**FAST, arch_lr=0.05, flops_weight=10.0, target_flops_ratio=0.1)
    again = tas_search(space, digits, config).to_dict()
    before = pulled_down.to_dict()
    for d in (again, before):
        d.pop("wall_s")
        d["runs"][0]["metrics"].pop("wall_s")
    assert again == before
    other = tas_search(space, digits, TASConfig(**FAST, seed=1)).runs[0]
    assert other.trajectory != again["runs"][0]["trajectory"]


def test_distill_trains_a_working_pruned_network(space: ResNetSpace, digits: Dataset) -> None:
    torch.manual_seed(0)
    teacher = space.build_network(space.full_arch())
    fit(
        teacher,
        digits.tensors("train"),
        config=TrainConfig(epochs=2, batch_size=64, lr=0.05),
    )
    teacher.eval()
    arch = uniform_arch(space, 0.5)
    student, acc = distill(space, arch, digits, teacher, TASConfig(**{**FAST, "kd_epochs": 3}))
    assert acc > 0.3  # chance is 0.1; about 0.5 after three epochs
    assert sum(p.numel() for p in student.parameters()) == round(
        space.cheap_metrics(arch)["params_m"] * 1e6
    )
    assert not teacher.training  # left as it was


def test_kd_loss_ends() -> None:
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    y = torch.tensor([0, 1, 2, 0])
    ce = torch.nn.functional.cross_entropy(student, y)
    assert torch.allclose(kd_loss(student, teacher, y, alpha=0.0, temperature=4.0), ce)
    same = kd_loss(student, student, y, alpha=1.0, temperature=4.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def test_uniform_baseline(space: ResNetSpace) -> None:
    assert space.to_string(uniform_arch(space, 0.5)) == "w50|d2:w50-w50,w50-w50" + (
        "|d2:w50-w50,w50-w50" * 2
    )
    half = space.cheap_metrics(uniform_arch(space, 0.5))["flops_m"]
    three_quarters = space.cheap_metrics(uniform_arch(space, 0.75))["flops_m"]
    assert uniform_at_flops(space, three_quarters - 1e-6) == uniform_arch(space, 0.5)
    assert uniform_at_flops(space, half) == uniform_arch(space, 0.5)
    with pytest.raises(ConfigError, match=r"uniform_arch: ratio 0.6 is not one of the space's "):
        uniform_arch(space, 0.6)
    with pytest.raises(ConfigError, match=r"uniform_at_flops: no uniform width fits 0.001 MF"):
        uniform_at_flops(space, 0.001)


def test_alternatives_are_distinct_networks_by_probability(space: ResNetSpace) -> None:
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(len(c))) for c in space.slots]
    archs = derive_archs(space, probs, 5)
    assert archs[0] == space.decode([int(np.argmax(p)) for p in probs])
    assert len({space.network_plan(a) for a in archs}) == 6

    def network_probability(arch: dict[str, list[str]]) -> float:
        codes, total = space.encode(arch), 1.0
        for depth_slot, pairs in space.stage_slots:
            d = int(codes[depth_slot])
            total *= probs[depth_slot][d]
            for s in [s for pair in pairs[: d + 1] for s in pair]:
                total *= probs[s][codes[s]]
        return total * probs[0][codes[0]]

    scores = [network_probability(a) for a in archs[1:]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_derived_network_meets_the_flops_target(space: ResNetSpace, ratio: float) -> None:
    rng = np.random.default_rng(int(ratio * 10))
    probs = [rng.dirichlet(np.ones(len(c))) for c in space.slots]
    full = space.cheap_metrics(space.full_arch())["flops_m"]
    arch = derive_at_flops(space, probs, ratio * full, 0.05)
    assert abs(space.cheap_metrics(arch)["flops_m"] / (ratio * full) - 1) <= 0.05
    # an argmax already in the band is kept as it is
    argmax = space.decode([int(np.argmax(p)) for p in probs])
    at = space.cheap_metrics(argmax)["flops_m"]
    assert derive_at_flops(space, probs, at, 0.05) == argmax


def test_derivation_keeps_the_probable_choices(space: ResNetSpace) -> None:
    """Only the undecided slots move: a network the distributions are sure of, but for one
    layer, reaches the target through that layer."""
    sure = uniform_arch(space, 0.5)
    codes = list(space.encode(sure))
    probs = [np.eye(len(c))[codes[i]] * 0.97 + 0.03 / len(c) for i, c in enumerate(space.slots)]
    probs[0] = np.ones(len(space.slots[0])) / len(space.slots[0])  # the stem: undecided
    stem_full = space.decode([len(space.slots[0]) - 1, *codes[1:]])
    target = space.cheap_metrics(stem_full)["flops_m"]
    assert derive_at_flops(space, probs, target, 0.01) == stem_full


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epoch": 3}, "tas config has no key 'epoch'; did you mean 'epochs'"),
        ({"target_flops_ratio": 1.5}, "tas config: target_flops_ratio must be a number in (0, 1]"),
        ({"tolerance": 1}, "tas config: tolerance must be a number in [0, 1), got 1"),
        ({"epochs": 0}, "tas config: epochs must be an integer >= 1, got 0"),
        ({"top_k": True}, "tas config: top_k must be an integer >= 0, got True"),
        ({"tau_min": 6.0}, "tas config: tau_min must be <= tau_max, got tau_min=6 and tau_max=5"),
        ({"kd_temperature": "4"}, "tas config: kd_temperature must be a number in (0, inf)"),
        ({"derive": "best"}, "tas config: derive must be one of target, argmax, got 'best'"),
    ],
)
def test_bad_config_gives_one_line_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        TASConfig.from_dict(options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_space_that_does_not_fit_the_data_is_refused(digits: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"create the space with in_channels=1, input_size=8"):
        tas_search(ResNetSpace(), digits, TASConfig(**FAST))
    with pytest.raises(ConfigError, match=r"tas: needs the 'resnet' space, got 'nb201'"):
        tas_search(create_space("nb201"), digits, TASConfig(**FAST))  # type: ignore[arg-type]
