"""The trained weights of an exported network: inherited from the study's supernet (BatchNorm
recalibrated on training images, as the supernet evaluator scores it), optionally fine-tuned, or
trained from scratch.

Every path feeds the network images at the architecture's own input size: the dataset's images
(already normalised) resized bilinearly (``align_corners=False``, as the supernet resizes them)
when their size differs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError, DataError, one_line
from hwnas.export.source import SUPERNET_META, SUPERNET_NAME, StudySource

if TYPE_CHECKING:
    from hwnas.data import Dataset
    from hwnas.training import TrainConfig

log = logging.getLogger(__name__)

# Fine-tuning starts from weights that already fit: a tenth of the supernet's learning rate
# (Once-for-All fine-tunes its extracted networks with a small learning rate as well).
FINETUNE_LR_SCALE = 0.1


@dataclass(frozen=True)
class Weights:
    """A trained standalone network (eval mode, CPU) and how its weights were obtained.

    ``how`` is JSON-ready: ``source`` (``supernet``, ``supernet+finetune`` or ``scratch``) and
    the settings that made the weights (supernet folder, calibration images, training config and
    history).
    """

    module: nn.Module
    how: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One phrase, e.g. ``supernet, fine-tuned 2 epochs``."""
        h = self.how
        if h["source"] == "scratch":
            return f"trained from scratch, {h['epochs']} epochs"
        text = f"supernet weights, BatchNorm recalibrated on {h['calibration_images']} images"
        if h["source"] == "supernet+finetune":
            text += f", fine-tuned {h['finetune_epochs']} epochs"
        return text


def resize_inputs(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """``x`` (N, C, H, W) resized bilinearly to ``input_shape``'s (H, W); ``x`` when it fits."""
    size = tuple(int(s) for s in input_shape[-2:])
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def check_data_fits(dataset: Dataset, input_shape: tuple[int, ...], source: StudySource) -> None:
    """Raise :class:`ConfigError` when the data cannot feed the network (channels, classes)."""
    if dataset.input_shape[0] != input_shape[0]:
        raise ConfigError(
            f"the data has {dataset.input_shape[0]} channel(s), trial {source.trial.number}'s "
            f"network takes {input_shape[0]}; make the space's in_channels and the data agree "
            f"in {source.config_path}"
        )
    outputs = getattr(source.space, "num_classes", None)
    if isinstance(outputs, int) and dataset.num_classes > outputs:
        raise ConfigError(
            f"the data has {dataset.num_classes} classes, the network {outputs} outputs; set the "
            f"space's num_classes to {dataset.num_classes} in {source.config_path}"
        )


def obtain_weights(
    source: StudySource,
    dataset: Dataset,
    input_shape: tuple[int, ...],
    *,
    finetune_epochs: int | None = None,
    epochs: int | None = None,
    progress: Callable[[Any], None] | None = None,
) -> Weights:
    """The trained network of ``source``'s trial (see the module docstring).

    With a trained supernet for the config and no ``epochs``: the supernet's sub-network, with
    BatchNorm recalibrated, then fine-tuned ``finetune_epochs`` epochs when given. With
    ``epochs``: trained from scratch that long (required when there is no supernet).
    ``progress`` gets the training loop's epoch reports.
    """
    check_weights_source(source, finetune_epochs=finetune_epochs, epochs=epochs)
    if epochs is None:
        return _from_supernet(source, dataset, input_shape, finetune_epochs, progress)
    return _from_scratch(source, dataset, input_shape, epochs, progress)


def check_weights_source(
    source: StudySource, *, finetune_epochs: int | None, epochs: int | None
) -> None:
    """Raise :class:`ConfigError` when the flags and the study give no way to the weights."""
    if epochs is not None and finetune_epochs is not None:
        raise ConfigError(
            "give --epochs (train from scratch) or --finetune-epochs (fine-tune the supernet's "
            "weights), not both"
        )
    if epochs is None and source.supernet_dir is None:
        if source.supernet_block is None:
            where = f"no supernet: block in {source.config_path}, no {SUPERNET_NAME}/ folder"
        else:
            where = f"the config's supernet has no {SUPERNET_META}: it was not trained"
        raise ConfigError(
            f"no supernet to take weights from ({where}); give --epochs E to train trial "
            f"{source.trial.number}'s network from scratch"
        )


def _supernet_config(source: StudySource, dataset: Dataset) -> Any:
    """The supernet's stored training config, after checking it was trained on this data."""
    from hwnas.oneshot import SupernetConfig

    assert source.supernet_dir is not None
    path = source.supernet_dir / SUPERNET_META
    try:
        meta = json.loads(path.read_text())
        stored = SupernetConfig.from_dict(meta["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path} cannot be read ({one_line(exc)[:120]}); train the supernet again"
        ) from None
    now = json.loads(json.dumps(dataset.provenance(), sort_keys=True, default=str))
    trained_on = meta.get("dataset")
    if trained_on is not None and trained_on != now:
        raise ConfigError(
            f"the supernet in {source.supernet_dir} was trained on other data than the data: "
            f"block of {source.config_path}; restore that data, or give --epochs E to train "
            "from scratch"
        )
    return stored


def _from_supernet(
    source: StudySource,
    dataset: Dataset,
    input_shape: tuple[int, ...],
    finetune_epochs: int | None,
    progress: Callable[[Any], None] | None,
) -> Weights:
    from hwnas.oneshot import SupernetScorer, load_supernet
    from hwnas.spaces.mbv3 import MBV3Space

    assert source.supernet_dir is not None
    if not isinstance(source.space, MBV3Space):
        raise ConfigError(
            f"supernets are built for space 'mbv3', the study's space is {source.space.name!r}; "
            "give --epochs E to train the network from scratch"
        )
    stored = _supernet_config(source, dataset)
    # The config's block, when it has settings, must be what the supernet was trained with.
    supernet = load_supernet(source.supernet_dir, source.space, source.supernet_block or None)
    # Exactly what the supernet evaluator scores: the same calibration images and seed.
    scorer = SupernetScorer(
        supernet,
        dataset,
        calibration_images=stored.calibration_images,
        seed=stored.train.seed,
    )
    net = scorer.subnet(source.arch).cpu()
    images = min(stored.calibration_images, int(dataset.indices["train"].size))
    how: dict[str, Any] = {
        "source": "supernet",
        "supernet_dir": str(source.supernet_dir.resolve()),
        "calibration_images": images,
        "calibration_seed": stored.train.seed,
    }
    if finetune_epochs:
        config = dataclasses.replace(
            stored.train,
            epochs=finetune_epochs,
            warmup_epochs=0,
            lr=stored.train.lr * FINETUNE_LR_SCALE,
        )
        history = _fit(net, dataset, input_shape, config, progress)
        how.update(
            source="supernet+finetune",
            finetune_epochs=finetune_epochs,
            train_config=config.to_dict(),
            history=history,
        )
    return Weights(net.eval(), how)


def _from_scratch(
    source: StudySource,
    dataset: Dataset,
    input_shape: tuple[int, ...],
    epochs: int,
    progress: Callable[[Any], None] | None,
) -> Weights:
    config = scratch_config(source, epochs)
    with torch.random.fork_rng(devices=[]):  # seeded init that leaves the caller's RNG alone
        torch.manual_seed(config.seed)
        net = source.space.build_network(source.arch)
    history = _fit(net, dataset, input_shape, config, progress)
    how = {
        "source": "scratch",
        "epochs": epochs,
        "init_seed": config.seed,
        "settings_from": "the config's train evaluator" if source.train_options else "defaults",
        "train_config": config.to_dict(),
        "history": history,
    }
    return Weights(net.cpu().eval(), how)


def scratch_config(source: StudySource, epochs: int) -> TrainConfig:
    """How to train from scratch: the config's ``train`` evaluator's settings when it has one
    (so ``--epochs`` equal to its epochs repeats its training), else TrainConfig's defaults;
    seeded with its ``seed`` or the study seed, as the evaluator seeds it."""
    from hwnas.training import TrainConfig

    options = {k: v for k, v in (source.train_options or {}).items() if v is not None}
    for key in ("split", "metric"):  # the evaluator's own options, not training settings
        options.pop(key, None)
    options["epochs"] = epochs
    if options.get("seed") is None:
        options["seed"] = source.seed
    try:
        return TrainConfig.from_dict(options)
    except ConfigError as exc:
        raise ConfigError(f"{source.config_path}: train evaluator: {exc}") from None


def _fit(
    net: nn.Module,
    dataset: Dataset,
    input_shape: tuple[int, ...],
    config: TrainConfig,
    progress: Callable[[Any], None] | None,
) -> list[dict[str, Any]]:
    from hwnas.training import fit

    x, y = dataset.tensors("train")
    if x.shape[0] == 0:
        raise ConfigError("the data's train split is empty; lower valid_fraction/test_fraction")
    valid: tuple[torch.Tensor, torch.Tensor] | None = dataset.tensors("valid")
    if valid is not None and valid[0].shape[0] == 0:
        valid = None
    if valid is not None:
        valid = (resize_inputs(valid[0], input_shape), valid[1])
    active = dataset.augmentation.active

    def augment(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # Augment at the data's size (as the study trained), then resize to the network's.
        if active:
            xb = dataset.augment(xb, generator)
        return resize_inputs(xb, input_shape)

    log.info("training %d epochs (%s)", config.epochs, dataset.describe())
    result = fit(net, (x, y), valid, config=config, progress=progress, augment=augment)
    return [dict(h) for h in result.history]
