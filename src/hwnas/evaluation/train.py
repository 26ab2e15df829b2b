"""The ``train`` evaluator: accuracy of each architecture trained from scratch on the config's
dataset, the expensive ground truth that inherited-weight accuracy (``supernet``) stands in for.

The network is ``space.build_network(arch)``, initialised from the seed, trained with
:func:`hwnas.training.fit` on the ``train`` split and scored on ``valid`` (or ``test``). Every
random draw comes from the seed (the study seed unless the evaluator's ``seed`` is given), so one
architecture trained twice with one seed scores the same. Accuracy is in percent, like the
``nb201`` benchmark's, so one config reads the same across evaluators.

The helpers here (:func:`dataset_provenance`, :func:`check_data_fits`, :func:`check_metric_name`)
are shared with the ``supernet`` evaluator.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from hwnas.errors import ConfigError, require_torch
from hwnas.evaluation.base import Evaluator, EvaluatorContext
from hwnas.registry import closest

if TYPE_CHECKING:
    from hwnas.data import Dataset
    from hwnas.spaces.base import Arch, SearchSpace

SCORED_SPLITS = ("valid", "test")


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 of the dataset's provenance: its content hash, splits, seed and preprocessing."""
    text = json.dumps(dataset.provenance(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def dataset_provenance(dataset: Dataset) -> dict[str, dict[str, str]]:
    """The :meth:`Evaluator.provenance` entry of a dataset: the file (or built-in source) and a
    hash that changes with its content, its splits and its preprocessing."""
    path = dataset.provenance()["path"]
    where = path if path is not None else f"built-in {dataset.name}"
    return {f"dataset {dataset.name}": {"path": where, "sha256": dataset_fingerprint(dataset)}}


def check_metric_name(metric: object, who: str) -> str:
    """``metric`` if it is a usable metric name, else a one-line :class:`ConfigError`."""
    if not isinstance(metric, str) or not metric or any(ch in metric for ch in " \t\n,"):
        raise ConfigError(
            f"{who}: metric must be a name without spaces or commas, got {metric!r}; "
            "e.g. metric: accuracy"
        )
    return metric


def check_split(split: object, dataset: Dataset, who: str) -> str:
    """``split`` if it is a split to score on and holds images, else a :class:`ConfigError`."""
    if split not in SCORED_SPLITS:
        raise ConfigError(f"{who}: unknown split {split!r}; {closest(str(split), SCORED_SPLITS)}")
    assert isinstance(split, str)
    if dataset.indices[split].size == 0:
        raise ConfigError(
            f"{who}: the dataset's {split} split is empty; raise data.{split}_fraction above 0 "
            f"or score another split"
        )
    return split


def require_dataset(context: EvaluatorContext, who: str) -> Dataset:
    """The config's loaded dataset, or a :class:`ConfigError` naming the missing block."""
    if context.dataset is None:
        raise ConfigError(
            f"evaluator {who!r} needs the dataset to train and score on, but the config has no "
            "top-level data: block; add one, e.g. data: {name: mnist}"
        )
    return context.dataset


def check_data_fits(space: SearchSpace, dataset: Dataset, who: str) -> None:
    """Raise :class:`ConfigError` when the space's networks cannot take the dataset's images
    (channels) or labels (classes). Image sizes may differ: inputs are resized."""
    try:
        channels = int(space.input_shape[0])
    except NotImplementedError:
        raise ConfigError(
            f"{who}: space {space.name!r} cannot build PyTorch networks, so nothing can be "
            "trained; use a space with a PyTorch builder (mbv3, nb201, fbnet)"
        ) from None
    if channels != dataset.input_shape[0]:
        raise ConfigError(
            f"{who}: the dataset's images have {dataset.input_shape[0]} channel(s), the networks "
            f"of space {space.name!r} take {channels}; set the space option in_channels: "
            f"{dataset.input_shape[0]}"
        )
    classes = getattr(space, "num_classes", None)
    if isinstance(classes, int) and classes != dataset.num_classes:
        raise ConfigError(
            f"{who}: the dataset has {dataset.num_classes} classes, the networks of space "
            f"{space.name!r} have {classes} outputs; set the space option num_classes: "
            f"{dataset.num_classes}"
        )


class TrainAccuracy(Evaluator):
    """``accuracy`` (percent) of each architecture trained from scratch on the config's data.

    Options are :class:`hwnas.training.TrainConfig`'s keys (``epochs`` required; the others
    default to TrainConfig's), plus:

    Args:
        seed: seeds initialisation, shuffling and augmentation (default: the study seed).
        split: ``valid`` (default) or ``test``: the split the trained network is scored on.
        metric: the metric's name (default ``accuracy``). Give it another name (e.g.
            ``accuracy_scratch``) to use it beside the ``supernet`` evaluator in one config.
        context: the space, the loaded dataset and the study seed (given by the study builder).

    It is expensive (each evaluation trains a network, so it counts against the budget) and
    cacheable across studies: the key names the space and its options, the dataset's content and
    splits, the training settings and the seed.

    Example (config)::

        data: {name: digits}
        evaluators:
          - train: {epochs: 5, batch_size: 64, split: valid}
        objectives:
          - {metric: accuracy, direction: maximize}
    """

    expensive = True
    cacheable = True

    def __init__(
        self,
        *,
        epochs: int,
        batch_size: int | None = None,
        optimizer: str | None = None,
        lr: float | None = None,
        momentum: float | None = None,
        nesterov: bool | None = None,
        weight_decay: float | None = None,
        label_smoothing: float | None = None,
        warmup_epochs: int | None = None,
        schedule: str | None = None,
        grad_clip: float | None = None,
        eval_batch_size: int | None = None,
        seed: int | None = None,
        split: str = "valid",
        metric: str = "accuracy",
        context: EvaluatorContext,
    ) -> None:
        who = "train"
        self.metric = check_metric_name(metric, who)
        dataset = require_dataset(context, who)
        self.split = check_split(split, dataset, who)
        check_data_fits(context.space, dataset, who)
        require_torch("the 'train' evaluator")
        from hwnas.training import TrainConfig

        given: dict[str, Any] = {
            "batch_size": batch_size,
            "optimizer": optimizer,
            "lr": lr,
            "momentum": momentum,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
            "label_smoothing": label_smoothing,
            "warmup_epochs": warmup_epochs,
            "schedule": schedule,
            "grad_clip": grad_clip,
            "eval_batch_size": eval_batch_size,
        }
        settings = {k: v for k, v in given.items() if v is not None}
        settings["epochs"] = epochs
        settings["seed"] = context.seed if seed is None else seed
        try:
            self.config = TrainConfig.from_dict(settings)
        except ConfigError as exc:
            raise ConfigError(f"{who}: {exc}") from None
        self.space = context.space
        self.dataset = dataset
        self._data_sha = dataset_fingerprint(dataset)

    def metrics(self) -> tuple[str, ...]:
        return (self.metric,)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        from hwnas.training import evaluate, fit

        net = self.network(arch)
        augment = self.dataset.augment if self.dataset.augmentation.active else None
        fit(net, self.dataset.tensors("train"), None, config=self.config, augment=augment)
        x, y = self.dataset.tensors(self.split)
        _, accuracy = evaluate(net, x, y, self.config.eval_batch_size)
        return {self.metric: 100.0 * float(accuracy)}

    def network(self, arch: Arch) -> Any:
        """``arch``'s untrained network, initialised from the seed (the caller's global random
        state is left as it was), taking the dataset's images: inputs of another size than the
        architecture's are resized bilinearly first, as the supernet does."""
        import torch
        from torch import nn

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            net = self.space.build_network(arch)
        shape_for = getattr(self.space, "input_shape_for", None)
        shape = tuple(shape_for(arch) if shape_for is not None else self.space.input_shape)
        if shape[1:] != tuple(self.dataset.input_shape[1:]):
            size = (int(shape[1]), int(shape[2]))
            net = nn.Sequential(nn.Upsample(size=size, mode="bilinear", align_corners=False), net)
        return net

    def describe(self) -> str:
        c = self.config
        return (
            f"{self.metric}: {self.split} accuracy (%) after training from scratch on "
            f"{self.dataset.name} for {c.epochs} epoch{'s' if c.epochs != 1 else ''} "
            f"({c.optimizer}, lr {c.lr:g}, batch {c.batch_size}, seed {c.seed})"
        )

    def key(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.space.options.items()))
        return (
            f"train:{self.metric}:{self.split}:{self.space.name}({opts})"
            f":data={self._data_sha[:16]}:cfg={self.config.fingerprint()}"
        )

    def provenance(self) -> dict[str, dict[str, str]]:
        return dataset_provenance(self.dataset)
