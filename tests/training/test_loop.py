"""The training loop on scikit-learn's 8x8 digits with a tiny CNN: it learns, it repeats bit for
bit, it resumes bit for bit, its schedule and decay groups are as documented, and every error it
raises is one line naming the fix."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")

from torch import nn  # noqa: E402

from hwnas.errors import ConfigError, DataError  # noqa: E402
from hwnas.training import (  # noqa: E402
    BatchReport,
    EpochReport,
    StepOutput,
    TrainConfig,
    TrainingDiverged,
    build_optimizer,
    default_step,
    evaluate,
    fit,
    learning_rate,
)

Data = tuple[Any, Any]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny networks run fastest on one thread; several stall on oversubscribed CI runners.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> tuple[Data, Data]:
    """1,797 digits as (N, 1, 8, 8) floats in [0, 1]: the first 1,500 to train, the rest held
    out."""
    bunch = datasets.load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])


@pytest.fixture(scope="module")
def small(digits: tuple[Data, Data]) -> tuple[Data, Data]:
    """300 training and 100 held-out digits, for the tests that train several times."""
    (x, y), (vx, vy) = digits
    return (x[:300], y[:300]), (vx[:100], vy[:100])


def tiny_cnn(seed: int = 0, dropout: float = 0.1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(32, 10),
    )


def jitter(x: Any, generator: Any) -> Any:
    """A seeded augmentation: shift each image by up to one pixel, plus a little noise."""
    shifts = torch.randint(-1, 2, (2,), generator=generator).tolist()
    x = torch.roll(x, shifts=shifts, dims=(2, 3))
    return x + 0.02 * torch.randn(x.shape, generator=generator)


def weights(model: nn.Module) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


CONFIG = TrainConfig(epochs=3, batch_size=32, lr=0.1, warmup_epochs=1)


def test_learns_digits_above_90_percent(digits: tuple[Data, Data]) -> None:
    train, valid = digits
    reports: list[EpochReport] = []
    model = tiny_cnn()
    result = fit(
        model,
        train,
        valid,
        config=TrainConfig(epochs=6, batch_size=32, lr=0.4, warmup_epochs=1),
        progress=reports.append,
    )
    assert result.valid_acc is not None and result.valid_acc > 0.9
    assert (result.epochs_run, result.resumed, len(result.history)) == (6, False, 6)
    assert [r.epoch for r in reports] == [1, 2, 3, 4, 5, 6]
    assert [r.to_dict() for r in reports] == result.history
    assert reports[-1].eta_seconds == 0.0 and reports[0].eta_seconds > 0.0
    assert reports[-1].train_loss < reports[0].train_loss
    assert result.seconds == pytest.approx(sum(r.seconds for r in reports))
    assert evaluate(model, *valid) == (reports[-1].valid_loss, reports[-1].valid_acc)


def test_same_seed_gives_bit_identical_weights(small: tuple[Data, Data]) -> None:
    train, valid = small
    runs = []
    for _ in range(2):
        model = tiny_cnn()
        fit(model, train, valid, config=CONFIG, augment=jitter)
        runs.append(weights(model))
    assert_same_weights(runs[0], runs[1])
    other = tiny_cnn()
    fit(other, train, valid, config=TrainConfig(**{**CONFIG.to_dict(), "seed": 1}), augment=jitter)
    assert not torch.equal(weights(other)["9.weight"], runs[0]["9.weight"])


def test_fit_leaves_the_global_random_state_and_modes_alone(small: tuple[Data, Data]) -> None:
    model = tiny_cnn()
    model[1].eval()  # a frozen BN stays frozen after fit
    torch.manual_seed(123)
    before = torch.get_rng_state()
    fit(model, small[0], config=TrainConfig(epochs=1, batch_size=64))
    assert torch.equal(torch.get_rng_state(), before)
    assert model.training and not model[1].training


def test_deterministic_algorithms_give_the_same_weights(small: tuple[Data, Data]) -> None:
    # fit does not switch the flag on; it works, with the same weights, when a caller does.
    plain = tiny_cnn()
    fit(plain, small[0], config=CONFIG)
    strict = tiny_cnn()
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        fit(strict, small[0], config=CONFIG)
    finally:
        torch.use_deterministic_algorithms(was)
    assert_same_weights(weights(plain), weights(strict))


class StopAfter:
    """A progress callback that interrupts training after ``epoch`` epochs."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, report: Any) -> None:
        if isinstance(report, EpochReport) and report.epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_after_interrupt_is_bit_identical(small: tuple[Data, Data], tmp_path: Path) -> None:
    train, valid = small
    whole = tiny_cnn()
    expected = fit(whole, train, valid, config=CONFIG, augment=jitter)

    first = tiny_cnn()
    with pytest.raises(KeyboardInterrupt):
        fit(
            first,
            train,
            valid,
            config=CONFIG,
            augment=jitter,
            checkpoint_dir=tmp_path,
            progress=StopAfter(1),
        )
    second = tiny_cnn(seed=99)  # a new process would build fresh weights; the checkpoint wins
    result = fit(second, train, valid, config=CONFIG, augment=jitter, checkpoint_dir=tmp_path)
    assert_same_weights(weights(second), weights(whole))
    assert (result.epochs_run, result.resumed, len(result.history)) == (2, True, 3)
    for got, want in zip(result.history, expected.history):
        for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "lr"):
            assert got[key] == want[key], key
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left

    third = tiny_cnn(seed=7)
    reports: list[Any] = []
    done = fit(third, train, valid, config=CONFIG, checkpoint_dir=tmp_path, progress=reports.append)
    assert (done.epochs_run, done.resumed, reports) == (0, True, [])
    assert done.history == result.history and done.valid_acc == result.valid_acc
    assert_same_weights(weights(third), weights(whole))


def test_checkpoint_holds_only_plain_values(small: tuple[Data, Data], tmp_path: Path) -> None:
    fit(tiny_cnn(), small[0], config=TrainConfig(epochs=1, batch_size=64), checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["format"] == "hwnas-train-checkpoint" and state["version"] == 1
    assert (state["epoch"], state["step"], state["finished"]) == (1, 5, True)
    assert state["data"] == [300, 1, 8, 8] and state["config"]["lr"] == 0.05
    assert "eval_batch_size" not in state["config"]


def test_eval_batch_size_may_change_on_resume(small: tuple[Data, Data], tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=64)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_cnn(), small[0], config=config, checkpoint_dir=tmp_path, progress=StopAfter(1))
    other = TrainConfig(**{**config.to_dict(), "eval_batch_size": 7})
    assert fit(tiny_cnn(), small[0], config=other, checkpoint_dir=tmp_path).epochs_run == 1


def test_other_config_in_checkpoint_dir_is_refused(
    small: tuple[Data, Data], tmp_path: Path
) -> None:
    fit(tiny_cnn(), small[0], config=TrainConfig(epochs=1, batch_size=64), checkpoint_dir=tmp_path)
    other = TrainConfig(epochs=1, batch_size=64, lr=0.2)
    with pytest.raises(
        ConfigError,
        match=r"another training config \(lr 0\.05 there, 0\.2 now\)"
        r".*new checkpoint_dir.*delete",
    ) as info:
        fit(tiny_cnn(), small[0], config=other, checkpoint_dir=tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"shape \(300, 1, 8, 8\), got \(200, 1, 8, 8\)"):
        x, y = small[0]
        fit(
            tiny_cnn(),
            (x[:200], y[:200]),
            config=TrainConfig(epochs=1, batch_size=64),
            checkpoint_dir=tmp_path,
        )


def test_other_model_in_checkpoint_dir_is_refused(small: tuple[Data, Data], tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=64)
    fit(tiny_cnn(), small[0], config=config, checkpoint_dir=tmp_path)
    wider = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ConfigError, match=r"weights of another model.*new checkpoint_dir") as info:
        fit(wider, small[0], config=config, checkpoint_dir=tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b[: len(b) // 2], "damaged or not a training checkpoint"),
        (lambda b: b"not a zip file at all", "damaged or not a training checkpoint"),
        (lambda b: b"", "damaged or not a training checkpoint"),
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_damaged_checkpoint_is_a_data_error(
    small: tuple[Data, Data], tmp_path: Path, damage: Any, match: str
) -> None:
    config = TrainConfig(epochs=2, batch_size=64)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_cnn(), small[0], config=config, checkpoint_dir=tmp_path, progress=StopAfter(1))
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=f"{match}.*delete it") as info:
        fit(tiny_cnn(), small[0], config=config, checkpoint_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_foreign_checkpoint_is_a_data_error(small: tuple[Data, Data], tmp_path: Path) -> None:
    torch.save({"model": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(DataError, match="not a hwnas training checkpoint; delete it"):
        fit(tiny_cnn(), small[0], config=TrainConfig(epochs=1), checkpoint_dir=tmp_path)


def test_unwritable_checkpoint_dir_is_a_store_error(
    small: tuple[Data, Data], tmp_path: Path
) -> None:
    from hwnas.errors import StoreError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"cannot create the checkpoint_dir.*folder you can write"):
        fit(tiny_cnn(), small[0], config=TrainConfig(epochs=1), checkpoint_dir=blocker / "run")


def test_cosine_schedule_peaks_after_warmup_and_ends_near_zero(small: tuple[Data, Data]) -> None:
    config = TrainConfig(epochs=4, batch_size=50, lr=0.2, warmup_epochs=1)  # 6 steps an epoch
    batches: list[BatchReport] = []
    fit(
        tiny_cnn(),
        small[0],
        config=config,
        report_every=1,
        progress=lambda r: batches.append(r) if isinstance(r, BatchReport) else None,
    )
    lrs = [b.lr for b in batches]
    assert len(lrs) == 24 and [b.step for b in batches[:6]] == [1, 2, 3, 4, 5, 6]
    assert lrs == [learning_rate(config, s, 6) for s in range(24)]
    assert lrs[:6] == pytest.approx([0.2 * k / 6 for k in range(1, 7)])  # linear warm-up
    assert lrs[5] == pytest.approx(0.2) and lrs[6] == 0.2 and max(lrs) == pytest.approx(0.2)
    assert all(a >= b for a, b in itertools.pairwise(lrs[6:]))
    assert lrs[-1] < 0.01 * 0.2
    assert learning_rate(config, 24, 6) == pytest.approx(0.0, abs=1e-12)


def test_constant_schedule_keeps_the_rate_after_warmup() -> None:
    config = TrainConfig(epochs=3, lr=0.1, warmup_epochs=1, schedule="constant")
    assert [learning_rate(config, s, 2) for s in range(6)] == [0.05, 0.1, 0.1, 0.1, 0.1, 0.1]


def test_label_smoothing_changes_the_loss(small: tuple[Data, Data]) -> None:
    losses = {}
    for smoothing in (0.0, 0.1):
        config = TrainConfig(epochs=3, batch_size=32, lr=0.4, label_smoothing=smoothing)
        losses[smoothing] = fit(tiny_cnn(), small[0], config=config).history[-1]["train_loss"]
    # Smoothing puts 0.1 of the target on the wrong classes, so a confident net pays more.
    assert losses[0.1] > losses[0.0] + 0.1


def test_bn_and_bias_parameters_get_no_weight_decay() -> None:
    model = tiny_cnn()
    optimizer = build_optimizer(model, TrainConfig(epochs=1, weight_decay=1e-3))
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert set(groups) == {"decay", "no_decay"}
    named = dict(model.named_parameters())
    decayed = {n for n, p in named.items() if any(p is q for q in groups["decay"]["params"])}
    free = {n for n, p in named.items() if any(p is q for q in groups["no_decay"]["params"])}
    assert decayed == {"0.weight", "3.weight", "9.weight"}
    assert free == {"1.weight", "1.bias", "4.weight", "4.bias", "9.bias"}
    assert (groups["decay"]["weight_decay"], groups["no_decay"]["weight_decay"]) == (1e-3, 0.0)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["nesterov"] is True
    adamw = build_optimizer(model, TrainConfig(epochs=1, optimizer="adamw", lr=1e-3))
    assert isinstance(adamw, torch.optim.AdamW)
    assert [g["weight_decay"] for g in adamw.param_groups] == [4e-5, 0.0]


def test_custom_step_and_augment_are_used(small: tuple[Data, Data]) -> None:
    calls: list[int] = []
    seen: list[Any] = []

    def step(model: nn.Module, x: Any, y: Any, criterion: nn.Module) -> StepOutput:
        calls.append(len(y))
        out = default_step(model, x, y, criterion)
        return StepOutput(out.loss, len(y), len(y))  # claims every sample right

    def augment(x: Any, generator: Any) -> Any:
        seen.append(generator)
        return x

    result = fit(
        tiny_cnn(),
        small[0],
        config=TrainConfig(epochs=1, batch_size=128),
        step=step,
        augment=augment,
    )
    assert calls == [128, 128, 44] and len(seen) == 3
    assert isinstance(seen[0], torch.Generator)
    assert result.history[0]["train_acc"] == 1.0 and result.valid_acc is None


def test_grad_clip_bounds_the_update(small: tuple[Data, Data]) -> None:
    x, y = small[0]
    config = TrainConfig(
        epochs=1,
        batch_size=300,
        lr=1.0,
        momentum=0.0,
        nesterov=False,
        weight_decay=0.0,
        grad_clip=1e-3,
        label_smoothing=0.0,
    )
    model = tiny_cnn(dropout=0.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    fit(model, (x, y), config=config)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-3)  # one step, lr 1


def test_non_finite_loss_stops_training(small: tuple[Data, Data]) -> None:
    def step(model: nn.Module, x: Any, y: Any, criterion: nn.Module) -> StepOutput:
        out = default_step(model, x, y, criterion)
        return StepOutput(math.nan, out.correct, out.count)

    model = tiny_cnn()
    before = weights(model)
    with pytest.raises(TrainingDiverged, match=r"loss nan at epoch 1/2, step 1/3 .*lower lr") as e:
        fit(model, small[0], config=TrainConfig(epochs=2, batch_size=128), step=step)
    assert "\n" not in str(e.value)
    assert torch.equal(before["0.weight"], weights(model)["0.weight"])  # no step with nan


def test_evaluate_restores_modes_and_takes_no_gradients(small: tuple[Data, Data]) -> None:
    model = tiny_cnn()
    model.train()
    model[4].eval()
    x, y = small[1]
    loss, acc = evaluate(model, x, y, batch_size=7)
    assert model.training and model[1].training and not model[4].training
    assert all(p.grad is None for p in model.parameters())
    assert (loss, acc) == pytest.approx(evaluate(model, x, y, batch_size=512))
    assert 0.0 <= acc <= 1.0 and loss == pytest.approx(math.log(10), rel=0.2)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"epochs": 3, "lrr": 0.1}, r"no key 'lrr'; did you mean 'lr'\? \(allowed: epochs, "),
        ({"lr": 0.1}, "needs the key 'epochs'"),
        ({"epochs": "3"}, "epochs must be an integer >= 1, got '3'"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"epochs": True}, "epochs must be an integer >= 1, got True"),
        ({"epochs": 2, "batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"epochs": 2, "optimizer": "adam"}, r"unknown optimizer 'adam'; did you mean 'adamw'"),
        ({"epochs": 2, "lr": 0}, r"lr must be a number > 0, got 0"),
        ({"epochs": 2, "lr": float("nan")}, r"lr must be a number > 0, got nan"),
        ({"epochs": 2, "momentum": 1.5}, r"momentum must be a number in \[0, 1\), got 1.5"),
        ({"epochs": 2, "nesterov": "yes"}, "nesterov must be true or false, got 'yes'"),
        ({"epochs": 2, "momentum": 0}, "nesterov needs momentum > 0.*nesterov false"),
        ({"epochs": 2, "weight_decay": -1}, "weight_decay must be a number >= 0"),
        ({"epochs": 2, "label_smoothing": 1.0}, r"label_smoothing must be a number in \[0, 1\)"),
        ({"epochs": 2, "warmup_epochs": 2}, "warmup_epochs must be less than epochs.*lower"),
        ({"epochs": 2, "schedule": "cosin"}, "unknown schedule 'cosin'; did you mean 'cosine'"),
        ({"epochs": 2, "grad_clip": 0}, "grad_clip must be a number > 0 or null, got 0"),
        ({"epochs": 2, "seed": -1}, r"seed must be an integer in 0\.\.\d+, got -1"),
        ({"epochs": 2, "eval_batch_size": 1.5}, "eval_batch_size must be an integer >= 1"),
    ],
)
def test_config_errors_name_key_and_fix(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        TrainConfig.from_dict(options)
    assert "\n" not in str(info.value)


def test_config_round_trips_and_normalises_numbers() -> None:
    config = TrainConfig.from_dict({"epochs": 2, "lr": 1, "grad_clip": 5})
    assert config.lr == 1.0 and isinstance(config.lr, float) and config.grad_clip == 5.0
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.fingerprint() == TrainConfig(epochs=2, lr=1.0, grad_clip=5.0).fingerprint()
    assert config.fingerprint() != TrainConfig(epochs=2, lr=1.0).fingerprint()
    with pytest.raises(ConfigError, match="train config must be a mapping"):
        TrainConfig.from_dict([("epochs", 2)])  # type: ignore[arg-type]


def test_fit_argument_errors_are_one_line(small: tuple[Data, Data]) -> None:
    (x, y), _ = small
    config = TrainConfig(epochs=1)
    cases = [
        (lambda: fit(tiny_cnn(), [x, y], config=config), "train must be a tuple"),  # type: ignore[arg-type]
        (lambda: fit(tiny_cnn(), (x.long(), y), config=config), "x must be a float tensor"),
        (lambda: fit(tiny_cnn(), (x, y.int()), config=config), r"y must be an int64.*y\.long\(\)"),
        (lambda: fit(tiny_cnn(), (x, y[:5]), config=config), "same number of samples"),
        (lambda: fit(tiny_cnn(), (x, y - 1), config=config), "negative class index -1"),
        (lambda: fit(tiny_cnn(), (x, y), (x, y[:5]), config=config), "valid: x and y"),
        (lambda: fit(tiny_cnn(), (x, y), config={"epochs": 1}), "TrainConfig.from_dict"),  # type: ignore[arg-type]
        (lambda: fit(tiny_cnn(), (x, y), config=config, report_every=0), "report_every"),
        (lambda: fit(tiny_cnn(), (x, y), config=config, step=lambda *a: 1.0), "StepOutput"),  # type: ignore[arg-type,return-value]
        (lambda: fit(nn.Flatten(), (x, y), config=config), "no trainable parameters"),
        (lambda: evaluate(tiny_cnn(), x, y, batch_size=0), "batch_size must be an integer"),
    ]
    for call, match in cases:
        with pytest.raises(ConfigError, match=match) as info:
            call()
        assert "\n" not in str(info.value)
