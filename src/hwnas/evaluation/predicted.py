"""The ``predicted`` evaluator: latency from a saved latency predictor.

The model is a folder written by :meth:`hwnas.hardware.predictor.LatencyPredictor.save`.

A prediction is not a measurement, so it is not charged against the budget (``expensive =
False``). Over architecture features it takes well under a millisecond; the ``kernels`` predictor
(the default of ``hwnas hw calibrate`` with ONNX Runtime) exports the network and profiles one run,
~0.3 s for an NB201 network on one core, cached per architecture in the process.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator, EvaluatorContext
from hwnas.hardware.predictor import LatencyPredictor
from hwnas.hardware.predictor_io import META_FILE, MODEL_FILE, space_options

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch


class PredictedLatency(Evaluator):
    """``latency_ms@<device>`` predicted by a latency predictor saved with ``save(DIR)``.

    Args:
        model: the predictor's folder; a relative path is resolved against the config file's
            folder.
        device: the metric's target (default: the device the predictor was fitted for).
        context: the space and folders (given by the study builder).

    Example (config)::

        evaluators:
          - predicted: {model: calib/predictor, device: local}
    """

    expensive = False
    cacheable = False

    def __init__(self, *, model: str, device: str | None = None, context: EvaluatorContext) -> None:
        path = Path(model).expanduser()
        if not path.is_absolute():
            path = context.base_dir / path
        self.predictor = LatencyPredictor.load(path)
        saved = self.predictor.space
        assert saved is not None  # load() always sets it
        if saved.name != context.space.name:
            raise ConfigError(
                f"predicted: the model in {path} was fitted for space {saved.name!r}, but the "
                f"study's space is {context.space.name!r}; fit a predictor for {context.space.name}"
            )
        ours, theirs = space_options(saved), space_options(context.space)
        if ours != theirs:
            raise ConfigError(
                f"predicted: the model in {path} was fitted for {saved.name} with options {ours}, "
                f"but the study's space has {theirs}; fit a predictor with the study's options"
            )
        target = device if device is not None else self.predictor.device
        if not target:
            raise ConfigError(
                f"predicted: the model in {path} names no device; set the option 'device'"
            )
        if "@" in target or not target.strip():
            raise ConfigError(f"predicted: device {target!r} must be a plain name like 'pixel3'")
        self.path = path
        self.device = target
        self._metric = f"latency_ms@{target}"
        # Hashed right after loading, so provenance describes the files that were read.
        files = [META_FILE] + ([MODEL_FILE] if self.predictor.kind == "gbdt" else [])
        self._files = {
            f"predicted {path.name}/{name}": {
                "path": str((path / name).resolve()),
                "sha256": hashlib.sha256((path / name).read_bytes()).hexdigest(),
            }
            for name in files
        }
        digest = self._files[f"predicted {path.name}/{META_FILE}"]["sha256"][:12]
        self._key = f"predicted:{path.name}:{digest}:{target}"

    def metrics(self) -> tuple[str, ...]:
        return (self._metric,)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return {self._metric: float(self.predictor.predict([arch])[0])}

    def key(self) -> str:
        return self._key

    def provenance(self) -> dict[str, dict[str, str]]:
        """``predictor.json`` and, for a ``gbdt`` predictor, ``model.txt`` of the loaded folder."""
        return {label: dict(entry) for label, entry in self._files.items()}
