"""The ``supernet`` evaluator: inherited-weight accuracy of ``mbv3`` architectures, read off the
config's trained weight-sharing supernet (:mod:`hwnas.oneshot`).

Each architecture's sub-network is extracted from the supernet, its BatchNorm statistics are
re-estimated on training images (Once-for-All's recalibration) and it is scored on a split:
about 0.1-1 s on a CPU and deterministic. ``hwnas search`` trains the supernet (or reuses a
finished one) before the study starts; the evaluator reads it from its folder at the first
evaluation, so it can be built, and a config checked, before the supernet exists.

Why it is not ``expensive``: once the supernet is trained, the accuracy is a function of the
architecture that hwnas computes itself, cheaply, like analytic memory or zero-cost proxies
(docs: "a trained supernet's inherited-weight accuracy" is one of the cheap metrics). So it
never counts against the budget: the budget counts the expensive evaluators beside it (measured
latency, training from scratch), and every metric it gives is shown to the strategy with each
told result as a cheap metric. With no expensive evaluator in a config, every evaluation counts,
as for any config of cheap evaluators. Results are not shared across studies (``cacheable =
False``): recomputing costs less than a second and depends on a local file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.errors import ConfigError, require_torch
from hwnas.evaluation.base import Evaluator, EvaluatorContext
from hwnas.evaluation.train import (
    check_data_fits,
    check_metric_name,
    check_split,
    dataset_fingerprint,
    dataset_provenance,
    require_dataset,
)
from hwnas.spaces.mbv3 import MBV3Space

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch

WEIGHTS = "supernet.pt"  # the file names of hwnas.oneshot.train
META = "supernet.json"


class SupernetAccuracy(Evaluator):
    """``accuracy`` (percent) of a sub-network of the config's trained supernet, with inherited
    weights and recalibrated BatchNorm (:class:`hwnas.oneshot.SupernetScorer`).

    Percent, like the ``nb201`` benchmark's accuracy and the ``train`` evaluator's, so bounds
    read the same across configs (``supernet.json`` and :class:`~hwnas.oneshot.SupernetScorer`
    keep fractions in [0, 1]).

    Args:
        split: ``valid`` (default) or ``test``: the split each sub-network is scored on.
        metric: the metric's name (default ``accuracy``); give another name (e.g.
            ``accuracy_supernet``) to use it beside the ``train`` evaluator in one config.
        context: the ``mbv3`` space, the loaded dataset, and the supernet's folder and training
            config (given by the study builder from the config's ``data:`` and ``supernet:``).

    Example (config)::

        space: {name: mbv3, options: {preset: small, input_size: 28, in_channels: 1}}
        data: {name: mnist}
        supernet: {train: {epochs: 4, batch_size: 64}}
        evaluators:
          - supernet: {split: valid}
        objectives:
          - {metric: accuracy, direction: maximize}
    """

    expensive = False
    cacheable = False

    def __init__(
        self, *, split: str = "valid", metric: str = "accuracy", context: EvaluatorContext
    ) -> None:
        who = "supernet"
        self.metric = check_metric_name(metric, who)
        space = context.space
        if not isinstance(space, MBV3Space):
            raise ConfigError(
                f"evaluator 'supernet' needs space 'mbv3' (supernets are OFA's elastic "
                f"MobileNetV3), but the space is {space.name!r}; use the train evaluator for "
                "other spaces"
            )
        dataset = require_dataset(context, who)
        if context.supernet_dir is None or context.supernet_config is None:
            raise ConfigError(
                "evaluator 'supernet' reads the config's trained supernet, but the config has no "
                "top-level supernet: block; add one, e.g. supernet: {train: {epochs: 4}}"
            )
        self.split = check_split(split, dataset, who)
        check_data_fits(space, dataset, who)
        require_torch("the 'supernet' evaluator")
        from hwnas.oneshot import SupernetConfig, space_options

        self.config = SupernetConfig.from_dict(context.supernet_config)
        self.space: MBV3Space = space
        self.dataset = dataset
        self.dir = Path(context.supernet_dir)
        identity = {
            "space": space_options(space),
            "config": self.config.to_dict(),
            "data": dataset_fingerprint(dataset),
        }
        text = json.dumps(identity, sort_keys=True, default=str)
        self._identity = hashlib.sha256(text.encode()).hexdigest()[:16]
        self._scorer: Any = None

    def metrics(self) -> tuple[str, ...]:
        return (self.metric,)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return {self.metric: 100.0 * float(self.scorer().accuracy(arch, self.split))}

    def scorer(self) -> Any:
        """The :class:`~hwnas.oneshot.SupernetScorer` of the trained supernet (loaded once, with
        the calibration settings training used, so the largest sub-network scores as
        ``supernet.json`` says)."""
        if self._scorer is None:
            from hwnas.oneshot import SupernetScorer, load_supernet

            self._check_trained()
            supernet = load_supernet(self.dir, self.space, self.config)
            self._scorer = SupernetScorer(
                supernet,
                self.dataset,
                calibration_images=self.config.calibration_images,
                seed=self.config.train.seed,
            )
        return self._scorer

    def _check_trained(self) -> None:
        if not (self.dir / META).is_file() or not (self.dir / WEIGHTS).is_file():
            raise ConfigError(
                f"supernet: no trained supernet in {self.dir} ({WEIGHTS} or {META} is missing); "
                f"train it with 'hwnas supernet train CONFIG --out {self.dir}' or let "
                "'hwnas search' train it"
            )
        try:
            meta = json.loads((self.dir / META).read_text())
        except (OSError, ValueError):
            return  # load_supernet says what is wrong with the file
        trained_on = meta.get("dataset") if isinstance(meta, dict) else None
        now = json.loads(json.dumps(self.dataset.provenance(), sort_keys=True, default=str))
        if trained_on is not None and trained_on != now:
            raise ConfigError(
                f"supernet: the supernet in {self.dir} was trained on other data than the "
                "config's data: block; restore that data, or train a new supernet in a new folder"
            )

    def __getstate__(self) -> dict[str, Any]:
        # Workers load the supernet themselves; a loaded one is not sent along.
        state = dict(self.__dict__)
        state["_scorer"] = None
        return state

    def describe(self) -> str:
        return (
            f"{self.metric}: {self.split} accuracy (%) of each sub-network of the supernet in "
            f"{self.dir} (inherited weights, BatchNorm recalibrated on "
            f"{self.config.calibration_images} training images; {self.dataset.name})"
        )

    def key(self) -> str:
        # Known before training: the space, the training config and the data fix the supernet.
        return f"supernet:{self.metric}:{self.split}:{self._identity}"

    def provenance(self) -> dict[str, dict[str, str]]:
        """The trained weights (path and content hash) and the dataset: a resume with another
        supernet or other data is refused, naming which."""
        from hwnas.data.sources import sha256_file

        self._check_trained()
        path = (self.dir / WEIGHTS).resolve()
        return {
            f"supernet weights ({WEIGHTS})": {"path": str(path), "sha256": sha256_file(path)},
            **dataset_provenance(self.dataset),
        }
