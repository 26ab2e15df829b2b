"""Zero-cost proxies: finite on every cell (degenerate ones at their floor), synflow data-free and
deterministic, the evaluator in a study and its cache, option errors, and the FBNet space."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from hwnas import ConfigError, Objective, Study, create_space, create_strategy
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.evaluation.zero_cost import PROXIES, ZeroCostProxies, zero_cost_scores
from hwnas.evaluation.zero_cost_measures import jacob_cov_floor
from hwnas.spaces import NB201Space
from hwnas.spaces.base import Arch
from hwnas.storage.cache import EvaluationCache

BATCH = 8  # small minibatches keep the file fast; the definitions do not depend on the size
ALL_3X3 = NB201Space().to_string({"ops": ["nor_conv_3x3"] * 6})
ALL_SKIP = NB201Space().to_string({"ops": ["skip_connect"] * 6})
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
# Node 3 receives only 'none': the cell's output is zero whatever the convs before it compute.
CUT = "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"
MIXED = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nb201() -> NB201Space:
    return NB201Space()


def scores(space: NB201Space, text: str, **options: object) -> dict[str, float]:
    return zero_cost_scores(space, space.from_string(text), batch_size=BATCH, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def all_scores(nb201: NB201Space) -> dict[str, dict[str, float]]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {s: scores(nb201, s) for s in (MIXED, CUT, ALL_NONE)}
    finally:
        torch.set_num_threads(threads)


def test_every_proxy_is_finite_and_degenerate_cells_sit_at_the_floor(
    nb201: NB201Space, all_scores: dict[str, dict[str, float]]
) -> None:
    got = all_scores
    for s, values in got.items():
        assert list(values) == list(PROXIES)
        assert all(math.isfinite(v) for v in values.values()), (s, values)
    for s in (CUT, ALL_NONE):  # no signal reaches the classifier
        assert got[s]["synflow"] == 0.0
        assert got[s]["snip"] == 0.0
        assert got[s]["grad_norm"] == 0.0
        assert got[s]["jacob_cov"] == jacob_cov_floor(BATCH)
    assert got[ALL_NONE]["naswot"] == 0.0  # every sample has the same activation code
    for proxy in ("synflow", "snip", "grad_norm", "naswot", "jacob_cov"):
        assert got[MIXED][proxy] > got[ALL_NONE][proxy], proxy
    assert got[MIXED]["params"] == nb201.cheap_metrics(nb201.from_string(MIXED))["params_m"]
    assert got[MIXED]["flops"] == nb201.cheap_metrics(nb201.from_string(MIXED))["flops_m"]


def test_synflow_is_deterministic_and_data_free(
    nb201: NB201Space, all_scores: dict[str, dict[str, float]]
) -> None:
    first = scores(nb201, MIXED, proxies=["synflow"])["synflow"]
    assert all_scores[MIXED]["synflow"] == first  # alone or with the other proxies
    assert scores(nb201, MIXED, proxies=["synflow"], data="gaussian")["synflow"] == first
    assert (
        zero_cost_scores(nb201, nb201.from_string(MIXED), proxies=["synflow"], batch_size=64)[
            "synflow"
        ]
        == first
    )
    assert first > 0.0
    # The seed draws the initial weights, which synflow does depend on (a little).
    other = scores(nb201, MIXED, proxies=["synflow"], seed=1)["synflow"]
    assert other != first and abs(math.log(other / first)) < 0.5


def test_synflow_ranks_convolutions_above_skips_above_nothing(nb201: NB201Space) -> None:
    conv, skip, none = (
        scores(nb201, s, proxies=["synflow"])["synflow"] for s in (ALL_3X3, ALL_SKIP, ALL_NONE)
    )
    assert conv > skip > none == 0.0


def test_naswot_needs_data_and_moves_little_with_the_seed(
    nb201: NB201Space, all_scores: dict[str, dict[str, float]]
) -> None:
    digits = [scores(nb201, MIXED, proxies=["naswot"], seed=s)["naswot"] for s in (0, 1, 2)]
    assert all_scores[MIXED]["naswot"] == digits[0]  # deterministic
    assert len(set(digits)) == 3  # the seed picks other images and weights...
    assert (max(digits) - min(digits)) / max(digits) < 0.05  # ...but the score barely moves
    noise = scores(nb201, MIXED, proxies=["naswot"], data="gaussian")["naswot"]
    assert noise != digits[0]
    # A cell with convolutions separates the inputs better than one of skips and pools.
    assert (
        scores(nb201, ALL_3X3, proxies=["naswot"])["naswot"]
        > scores(nb201, ALL_SKIP, proxies=["naswot"])["naswot"]
    )


def test_options_fail_with_the_closest_name(nb201: NB201Space) -> None:
    ctx = EvaluatorContext(space=nb201)
    with pytest.raises(ConfigError, match=r"unknown proxy 'synflw'; did you mean 'synflow'"):
        create_evaluator("zero_cost", ctx, proxies=["synflw"])
    with pytest.raises(ConfigError, match=r"unknown proxy 'nwot'; did you mean 'naswot'"):
        zero_cost_scores(nb201, nb201.from_string(MIXED), proxies=["nwot"])
    with pytest.raises(ConfigError, match=r"unknown data 'digit'; did you mean 'digits'"):
        create_evaluator("zero_cost", ctx, data="digit")
    with pytest.raises(ConfigError, match=r"proxies must be a list of names"):
        create_evaluator("zero_cost", ctx, proxies="synflow")
    with pytest.raises(ConfigError, match=r"batch_size must be an integer in 2\.\.1797"):
        create_evaluator("zero_cost", ctx, batch_size=1)
    with pytest.raises(ConfigError, match=r"has no option 'batchsize'; did you mean 'batch_size'"):
        create_evaluator("zero_cost", ctx, batchsize=8)


class Accuracy(Evaluator):
    """A made-up accuracy that grows with convolutions (expensive, like training)."""

    cacheable = False

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy",)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        gain = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "skip_connect": 1.0}
        return {"accuracy": 80.0 + sum(gain.get(op, 0.0) for op in arch["ops"])}


def test_evaluator_in_a_study_is_free_cached_and_an_objective(tmp_path: Path) -> None:
    space = create_space("nb201")
    ev = create_evaluator(
        "zero_cost", EvaluatorContext(space=space), proxies=["synflow", "params"], batch_size=BATCH
    )
    assert isinstance(ev, ZeroCostProxies)
    assert ev.metrics() == ("zc_synflow", "zc_params")
    assert not ev.expensive and ev.cacheable
    assert ev.key() == "zero_cost:v1:nb201:3x32x32->10:synflow,params:b8:digits:s0"
    cifar100 = create_evaluator(
        "zero_cost",
        EvaluatorContext(space=create_space("nb201", num_classes=100)),
        proxies=["synflow", "params"],
        batch_size=BATCH,
    )
    assert cifar100.key() != ev.key()  # other networks, other cache entries

    cache = EvaluationCache(tmp_path / "cache.db")

    def run() -> Study:
        study = Study(
            space=space,
            evaluators=[Accuracy(), ev],
            objectives=[Objective("accuracy", "maximize"), Objective("zc_synflow", "maximize")],
            strategy=create_strategy("random"),
            seed=3,
            cache=cache,
        )
        study.optimize(budget=3)
        return study

    study = run()
    assert study.n_charged == 3  # the proxies are free; only the accuracy is charged
    assert len(cache) == 3
    for trial in study.trials:
        arch = space.from_string(trial.arch)
        want = zero_cost_scores(space, arch, proxies=["synflow", "params"], batch_size=BATCH)
        assert trial.metrics["zc_synflow"] == pytest.approx(want["synflow"], rel=1e-12)
        assert trial.metrics["zc_params"] == trial.metrics["params_m"]
    assert study.pareto_front()

    calls: list[Arch] = []
    real = ev.evaluate

    def counting(arch: Arch) -> dict[str, float]:
        calls.append(arch)
        return real(arch)

    ev.evaluate = counting  # type: ignore[method-assign]
    again = run()
    assert [t.metrics for t in again.trials] == [t.metrics for t in study.trials]
    assert calls == []  # all served from the shared cache


def test_fbnet_space_works_for_synflow() -> None:
    space = create_space("fbnet")
    small = space.from_string(" ".join(["k3_e1"] * 11 + ["skip"] * 11))
    wide = space.from_string(" ".join(["k3_e3"] * 11 + ["k3_e1"] * 11))
    got = {
        name: zero_cost_scores(space, arch, proxies=["synflow", "params"])
        for name, arch in (("small", small), ("wide", wide))
    }
    assert all(math.isfinite(v["synflow"]) and v["synflow"] > 0 for v in got.values())
    assert got["wide"]["synflow"] > got["small"]["synflow"]
    ev = create_evaluator("zero_cost", EvaluatorContext(space=space), proxies=["synflow"])
    assert ev.key().startswith("zero_cost:v1:fbnet:3x32x32->100:synflow")
    assert ev.evaluate(small) == {"zc_synflow": got["small"]["synflow"]}


def test_space_without_closed_form_counts_is_counted_on_the_network(nb201: NB201Space) -> None:
    class Plain(NB201Space):
        def cheap_metrics(self, arch: Arch) -> dict[str, float]:
            return {}

    arch = nb201.from_string(MIXED)
    got = zero_cost_scores(Plain(), arch, proxies=["params", "flops"])
    want = nb201.cheap_metrics(arch)
    assert got["params"] == pytest.approx(want["params_m"], rel=1e-12)
    assert got["flops"] == pytest.approx(want["flops_m"], rel=1e-12)
