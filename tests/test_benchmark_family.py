"""The front-vs-family benchmark's parts (benchmarks/front_vs_family.py, _mobilenet_v2.py): the
hand-designed MobileNetV2 family, the budgeted training of one member, the hypervolume scoring."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from benchmark_scripts import imported

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench() -> Iterator[SimpleNamespace]:
    with imported("_mobilenet_v2", "front_vs_family") as (mbv2, fvf):
        yield SimpleNamespace(mbv2=mbv2, fvf=fvf)


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_mobilenet_v2_has_the_papers_parameter_counts(bench: SimpleNamespace) -> None:
    # MobileNetV2 1.0 on ImageNet: 3,504,872 parameters (the paper's 3.4M, torchvision's count);
    # below width 1 the last conv keeps 1280 channels, so 0.35 keeps most of the classifier.
    assert _params(bench.mbv2.mobilenet_v2(1.0)) == 3_504_872
    small = bench.mbv2.mobilenet_v2(0.35)
    assert small[-1].in_features == 1280
    assert 1_600_000 < _params(small) < 1_700_000


def test_small_input_form_keeps_output_stride_16(bench: SimpleNamespace) -> None:
    net = bench.mbv2.mobilenet_v2(0.5, in_channels=1, num_classes=10, stem_stride=1)
    features = net[:-3]  # up to the global pool
    assert features(torch.zeros(2, 1, 28, 28)).shape[-2:] == (2, 2)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_member_trains_within_its_budget(bench: SimpleNamespace) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8, generator=g), torch.randint(0, 3, (64,), generator=g)
    data = {"train": (x, y), "classes": 3}
    train = {"batch_size": 32, "lr": 0.05, "warmup_epochs": 0}
    net, epochs, cpu = bench.fvf.train_family_member(0.35, 0.0, data, train)
    assert epochs == 1 and cpu > 0  # a zero budget still trains one epoch after the timed one
    assert net(x[:2]).shape == (2, 3)
    # With a warm-up the timed epoch runs without one, and training outlasts the warm-up.
    _, epochs, _ = bench.fvf.train_family_member(0.35, 0.0, data, {**train, "warmup_epochs": 1})
    assert epochs == 2
    # A replicate's seed starts the network from other weights; the same seed repeats it.
    again, _, _ = bench.fvf.train_family_member(0.35, 0.0, data, train)
    other, _, _ = bench.fvf.train_family_member(0.35, 0.0, data, train, seed=1)
    first = next(net.parameters())
    assert torch.equal(first, next(again.parameters()))
    assert not torch.equal(first, next(other.parameters()))


def test_compare_hand_computed(bench: SimpleNamespace) -> None:
    rows = [
        ("found", "a", "", 90.0, 1.0),
        ("found", "b", "", 85.0, 0.5),
        ("family", "c", "", 80.0, 2.0),
        ("family", "d", "", 95.0, 3.0),
    ]
    hv, ref, dominated = bench.fvf.compare(rows)
    # Minimisation form (-acc, ms); ranges 15 points and 2.5 ms, widened by 10 %.
    assert ref == pytest.approx([-80.0 + 1.5, 3.0 + 0.25])
    # found: (-90, 1.0) and (-85, 0.5) up to (-78.5, 3.25)
    assert hv["found"] == pytest.approx(11.5 * 2.25 + 6.5 * 0.5)
    # family: (-80, 2.0) and (-95, 3.0)
    assert hv["family"] == pytest.approx(1.5 * 1.25 + 15.0 * 0.25)
    assert dominated == 1  # c is dominated by a; d is the most accurate


def test_test_correct_matches_evaluate(bench: SimpleNamespace) -> None:
    from hwnas.training import evaluate

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    x, y = torch.randn(1234, 1, 8, 8), torch.randint(0, 10, (1234,))
    hits = bench.fvf.test_correct(net, x, y)
    assert hits.shape == (1234,)
    assert hits.mean() == pytest.approx(evaluate(net, x, y)[1])


def test_bootstrap_ratio_follows_the_test_images(bench: SimpleNamespace) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    family_hits = rng.random((2, 400)) < 0.8
    # Each found network gets every image its family counterpart gets, and more, at a lower
    # latency: it dominates on every resample, so every ratio exceeds 1.
    found_hits = family_hits | (rng.random((2, 400)) < 0.5)
    hits = np.concatenate([found_hits, family_hits])
    latency = [1.0, 2.0, 1.5, 3.0]
    sets = ["found", "found", "family", "family"]
    rows = [(s, "", "", 100.0 * h.mean(), ms) for s, h, ms in zip(sets, hits, latency)]
    boot = bench.fvf.bootstrap_ratio(rows, hits, draws=200)
    assert boot.shape == (200,) and np.all(boot > 1.0)
    # Identical hits for every network: accuracy ties in every draw, latency alone decides.
    same = np.repeat(family_hits[:1], 4, axis=0)
    rows = [(s, "", "", 100.0 * h.mean(), ms) for s, h, ms in zip(sets, same, latency)]
    boot = bench.fvf.bootstrap_ratio(rows, same, draws=50)
    assert np.ptp(boot) == pytest.approx(0.0)


def test_pooled_bootstrap_resamples_the_shared_images_once_per_draw(bench: SimpleNamespace) -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    sets = ["found", "found", "family", "family"]
    latency = [1.0, 2.0, 1.5, 3.0]
    replicates = []
    for _ in range(2):
        hits = rng.random((4, 300)) < 0.85
        rows = [(s, "", "", 100.0 * h.mean(), ms) for s, h, ms in zip(sets, hits, latency)]
        replicates.append((rows, hits))
    # One replicate: the same draws as its own bootstrap.
    alone = bench.fvf.pooled_bootstrap(replicates[:1], draws=100)
    assert np.array_equal(alone, bench.fvf.bootstrap_ratio(*replicates[0], draws=100))
    # Two: per draw, the mean of both ratios under the same resample of the images.
    both = bench.fvf.pooled_bootstrap(replicates, draws=100)
    other = bench.fvf.bootstrap_ratio(*replicates[1], draws=100)
    assert both == pytest.approx((alone + other) / 2)
    short = (replicates[1][0], replicates[1][1][:, :200])
    with pytest.raises(ValueError, match=r"different test sets: \[200, 300\] images"):
        bench.fvf.pooled_bootstrap([replicates[0], short], draws=5)
