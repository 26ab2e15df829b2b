"""Learned latency predictors (nn-Meter style) over the features of :mod:`hwnas.hardware.features`.

Four kinds, fitted on measured (architecture, latency) pairs:

- ``gbdt``: LightGBM gradient-boosted trees with linear leaves on the features, fitted to
  log-latency. The default: on the 25 tabular device settings (300 training architectures) it
  trails ridge by at most ~4 points of +-10 % share, beats it where latency is not a sum over
  layers (NB201 raspi4), and keeps improving with more data where ridge saturates
  (benchmarks/results/latency_predictor_tabular.md);
- ``ridge``: ridge regression on standardised features (alpha by leave-one-out CV), fitted to
  latency itself: latency is close to a sum over layers, and on the NB201/FBNet device tables a
  log target made ridge worse on every device (RMSPE up to 8x higher), so it is off by default;
- ``flops``: the FLOPs-only baseline, latency = a + b * FLOPs (least squares);
- ``kernels``: non-negative least squares over the kernels ONNX Runtime executes
  (:mod:`hwnas.hardware.kernels`: count, MMACs and MB per kernel class), minimising the relative
  error: latency is a non-negative sum of what each kernel costs. For latency measured with ONNX
  Runtime it is the model that reaches the noise floor
  (``benchmarks/results/kernel_features.md``); its features cost an export and a session per
  network (~0.3 s for NB201, cached), so it is the default of ``hwnas hw calibrate`` with the
  onnxruntime backend.

Each kind fits a model of the :mod:`hwnas.predictors` registry (:data:`KINDS_SPEC` names it:
``linear_gbdt``, ``ridge``, ``linear`` over the FLOPs column, ``nnls``); this class adds what is
particular to latency: the features, the log target and the saved form.

Saved folders hold readable files only (no pickle): ``predictor.json`` (kind, space and options,
device, feature names, training metadata, ridge/FLOPs coefficients) and, for ``gbdt``,
LightGBM's text model ``model.txt`` (its checksum is in the JSON), written and checked by
:mod:`hwnas.hardware.predictor_io`. :func:`hwnas.hardware.accuracy.evaluate_predictions` scores
predictions against measurements.

Example:
    >>> import numpy as np
    >>> from hwnas.spaces import create_space
    >>> space = create_space("nb201")
    >>> archs = [space.sample(np.random.default_rng(i)) for i in range(50)]
    >>> ms = [1.0 + sum(o == "nor_conv_3x3" for o in a["ops"]) for a in archs]
    >>> p = LatencyPredictor("ridge", device="toy").fit(space, archs, ms)
    >>> float(np.round(p.predict(archs[:1])[0], 1)) == ms[0]
    True
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hwnas.errors import ConfigError, DataError, HwnasError
from hwnas.hardware.features import feature_matrix, feature_names, has_feature_set
from hwnas.hardware.kernels import kernel_matrix
from hwnas.hardware.predictor_io import (
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    MODEL_FILE,
    check_linear,
    meta_field,
    package_versions,
    read_model_text,
    space_options,
    write_atomic,
)
from hwnas.predictors import PREDICTORS
from hwnas.predictors.fitted import PlainFitted
from hwnas.registry import closest
from hwnas.spaces.base import Arch, SearchSpace


@dataclass(frozen=True)
class Kind:
    """A latency predictor kind: the registered predictor it fits and its default target."""

    predictor: str  # a name in hwnas.predictors
    log_target: bool  # fit log-latency unless told otherwise


KINDS_SPEC: dict[str, Kind] = {
    "gbdt": Kind("linear_gbdt", log_target=True),
    "ridge": Kind("ridge", log_target=False),
    "flops": Kind("linear", log_target=False),  # over the FLOPs column alone
    "kernels": Kind("nnls", log_target=False),  # over ONNX Runtime's kernel features
}
ARCH_KINDS = ("gbdt", "ridge", "flops")  # over architecture features: any space, any device
KINDS = (*ARCH_KINDS, "kernels")
LOG_FLOOR_MS = 1e-6  # guards log(0); the tables' smallest latency is 0.003 ms


class LatencyPredictor:
    """Predicts latency (ms) of architectures of one space from their features.

    Args:
        kind: ``gbdt``, ``ridge``, ``flops`` or ``kernels`` (see the module docstring).
        log_target: fit log-latency (default: True for gbdt, False for ridge and flops).
        seed: seeds LightGBM's bagging.
        device: the device the training latencies come from (names the metric
            ``latency_ms@<device>`` in studies).
        batch: the batch size the latencies were measured at (``kernels``: the kernels' shapes).
    """

    def __init__(
        self,
        kind: str = "gbdt",
        *,
        log_target: bool | None = None,
        seed: int = 0,
        device: str | None = None,
        batch: int = 1,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown latency predictor kind {kind!r}; {closest(kind, KINDS)}")
        self.kind = kind
        default = KINDS_SPEC[kind].log_target
        self.log_target = default if log_target is None else bool(log_target)
        self.seed = int(seed)
        self.device = device
        self.batch = int(batch)
        self.space: SearchSpace | None = None
        self.feature_names: list[str] = []
        self.training: dict[str, Any] = {}
        self._model: PlainFitted | None = None

    # -- fitting ----------------------------------------------------------------------------------
    def fit(
        self, space: SearchSpace, archs: Sequence[Arch | str], latencies_ms: ArrayLike
    ) -> LatencyPredictor:
        """Fit on architectures (dicts or canonical strings) and their latencies in ms."""
        y = _check_latencies(latencies_ms, len(archs))
        if self.kind == "kernels":
            X, names = kernel_matrix(space, archs, batch=self.batch)
            return self._fit(space, X, y, names)
        if self.kind == "flops" and not has_feature_set(space):
            return self._fit(space, _cheap_flops(space, archs), y, ["flops_m"])
        return self.fit_features(space, feature_matrix(space, archs), y)

    def fit_features(
        self, space: SearchSpace, X: np.ndarray, latencies_ms: ArrayLike
    ) -> LatencyPredictor:
        """Fit on a precomputed :func:`~hwnas.hardware.features.feature_matrix` of ``space``."""
        y = _check_latencies(latencies_ms, len(X))
        if self.kind == "kernels":
            raise ConfigError("a kernels predictor computes its own features; call fit()")
        names = feature_names(space)
        if X.shape != (len(y), len(names)):
            raise ConfigError(
                f"fit_features() needs an ({len(y)}, {len(names)}) feature matrix for space "
                f"{space.name!r}, got {X.shape}"
            )
        return self._fit(space, X, y, names)

    def _fit(
        self, space: SearchSpace, X: np.ndarray, y: np.ndarray, names: list[str]
    ) -> LatencyPredictor:
        start = time.perf_counter()
        self.space = space
        self.feature_names = names
        target = np.log(np.maximum(y, LOG_FLOOR_MS)) if self.log_target else y
        model = PREDICTORS.create(KINDS_SPEC[self.kind].predictor, seed=self.seed)
        assert isinstance(model, PlainFitted)
        model.fit(self._columns(X), target)
        self._model = model
        self.training = {
            "n": len(y),
            "latency_ms_min": float(y.min()),
            "latency_ms_median": float(np.median(y)),
            "latency_ms_max": float(y.max()),
            "seed": self.seed,
            "batch": self.batch,
            "fit_seconds": round(time.perf_counter() - start, 4),
            "fitted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        return self

    @property
    def is_fitted(self) -> bool:
        return self.space is not None

    # -- prediction -------------------------------------------------------------------------------
    def predict(self, archs: Sequence[Arch | str]) -> np.ndarray:
        """Predicted latency in ms of each architecture (dicts or canonical strings), >= 0."""
        if self.space is None or len(archs) == 0:
            return self.predict_features(np.empty((0, len(self.feature_names))))
        if self.kind == "kernels":
            X, _ = kernel_matrix(self.space, archs, self.feature_names, batch=self.batch)
            return self.predict_features(X)
        if self.feature_names == ["flops_m"]:  # a space without a latency feature set
            return self.predict_features(_cheap_flops(self.space, archs))
        return self.predict_features(feature_matrix(self.space, archs))

    def predict_features(self, X: np.ndarray) -> np.ndarray:
        """Predicted latency in ms from a precomputed feature matrix of the predictor's space."""
        if self.space is None:
            raise ConfigError("this LatencyPredictor is not fitted; call fit() or load() first")
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ConfigError(
                f"expected a feature matrix with {len(self.feature_names)} columns, got {X.shape}"
            )
        if len(X) == 0:
            return np.empty(0)
        assert self._model is not None
        out = self._model.predict(self._columns(X))
        return np.exp(out) if self.log_target else np.maximum(out, 0.0)

    def _model_class(self) -> type[PlainFitted]:
        """The :mod:`hwnas.predictors` model of this kind."""
        cls = PREDICTORS.get(KINDS_SPEC[self.kind].predictor)
        assert isinstance(cls, type) and issubclass(cls, PlainFitted)
        return cls

    def _columns(self, X: np.ndarray) -> np.ndarray:
        """The columns of a feature matrix the model sees: for ``flops``, FLOPs alone (their
        log with a log target: latency ~ a * FLOPs^b)."""
        if self.kind != "flops":
            return X
        flops = X[:, self.feature_names.index("flops_m")]
        return (np.log(flops) if self.log_target else flops)[:, None]

    # -- persistence ------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``predictor.json`` (+ ``model.txt`` for gbdt) into ``folder``; returns it."""
        if self.space is None:
            raise ConfigError("cannot save an unfitted LatencyPredictor; call fit() first")
        out = Path(folder).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "log_target": self.log_target,
            "space": {"name": self.space.name, "options": space_options(self.space)},
            "device": self.device,
            "feature_names": self.feature_names,
            "training": self.training,
            "versions": package_versions(self.kind),
        }
        assert self._model is not None
        state = self._model.state()
        if self.kind == "gbdt":
            text = state["model_text"]
            write_atomic(out / MODEL_FILE, text)
            meta["model_file"] = MODEL_FILE
            meta["model_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        else:
            if self.kind == "flops":  # saved as a line since format version 1
                state = {"slope": state["coef"][0], "intercept": state["intercept"]}
            meta["model"] = state
            (out / MODEL_FILE).unlink(missing_ok=True)  # a gbdt saved here before
        write_atomic(out / META_FILE, json.dumps(meta, indent=1) + "\n")
        return out

    @classmethod
    def load(cls, folder: str | Path) -> LatencyPredictor:
        """Read a folder written by :meth:`save`; :class:`DataError` if missing or damaged."""
        root = Path(folder).expanduser()
        meta_path = root / META_FILE
        if root.is_file():
            raise DataError(
                f"latency predictor folder {root} is a file; give the folder that "
                "'hwnas hw calibrate --out' wrote"
            )
        if not root.is_dir():
            raise DataError(f"latency predictor folder {root} does not exist; fix the path")
        if not meta_path.is_file():
            raise DataError(
                f"{root} has no {META_FILE}; it is not a folder written by LatencyPredictor.save"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{meta_path} is not readable JSON ({exc}); save it again") from None
        where = str(meta_path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataError(f"{where} is not a hwnas latency predictor (no format {FORMAT!r})")
        if meta.get("version") != FORMAT_VERSION:
            raise DataError(
                f"{where} has format version {meta.get('version')!r}; this hwnas reads "
                f"version {FORMAT_VERSION}; fit and save the predictor again"
            )
        kind = meta_field(meta, "kind", str, where)
        if kind not in KINDS:
            raise DataError(f"{where}: unknown kind {kind!r}; {closest(kind, KINDS)}")
        spec = meta_field(meta, "space", dict, where)
        options = spec.get("options") or {}
        training = meta_field(meta, "training", dict, where)
        device, seed = meta.get("device"), training.get("seed")
        p = cls(
            kind,
            log_target=meta_field(meta, "log_target", bool, where),
            seed=seed if isinstance(seed, int) else 0,
            device=device if isinstance(device, str) else None,
            batch=training.get("batch") if isinstance(training.get("batch"), int) else 1,
        )
        from hwnas.spaces import create_space

        try:
            if not isinstance(options, dict):
                raise DataError(f"space options must be a mapping, got {options!r}")
            space = create_space(str(spec.get("name")), **options)
            plain = kind == "kernels" or not has_feature_set(space)
            current = None if plain else feature_names(space)
        except HwnasError as exc:
            raise DataError(f"{where}: its space cannot be built: {exc}") from None
        names = meta_field(meta, "feature_names", list, where)
        if current is not None and names != current:
            diff = next(
                (f"{a!r} vs {b!r}" for a, b in zip(names, current) if a != b),
                f"{len(names)} vs {len(current)} features",
            )
            raise DataError(
                f"{where} was saved with other {space.name} features than this hwnas computes "
                f"(first difference: {diff}); fit and save the predictor again"
            )
        p.space, p.feature_names, p.training = space, names, training
        state: dict[str, Any]
        if kind == "gbdt":
            state = {"model_text": read_model_text(root / MODEL_FILE, meta, where)}
        else:
            state = check_linear(meta_field(meta, "model", dict, where), kind, len(names), where)
            if kind == "flops":
                state = {"coef": [float(state["slope"])], "intercept": state["intercept"]}
        n_columns = 1 if kind == "flops" else len(names)
        try:
            p._model = p._model_class().from_state(state, n_columns, seed=p.seed)
        except ConfigError as exc:
            path = root / MODEL_FILE if kind == "gbdt" else where
            raise DataError(f"{path}: {exc}; save the predictor again") from None
        return p


# --- helpers ------------------------------------------------------------------------------------
def _check_latencies(latencies_ms: ArrayLike, n_archs: int) -> np.ndarray:
    y = np.asarray(latencies_ms, dtype=np.float64)
    if y.ndim != 1 or len(y) != n_archs:
        raise ConfigError(
            f"fit() needs one latency per architecture, got {n_archs} architectures "
            f"and {y.size} latencies"
        )
    if len(y) < 3:
        raise ConfigError(f"fit() needs at least 3 architectures, got {len(y)}")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        bad = int(np.flatnonzero(~np.isfinite(y) | (y < 0))[0])
        raise ConfigError(f"latencies must be finite and >= 0 ms; entry {bad} is {float(y[bad])!r}")
    return y


def _cheap_flops(space: SearchSpace, archs: Sequence[Arch | str]) -> np.ndarray:
    """One column: the space's own FLOPs (``cheap_metrics``) of each architecture."""
    parsed = [space.from_string(a) if isinstance(a, str) else a for a in archs]
    return np.array([[space.cheap_metrics(a)["flops_m"]] for a in parsed], dtype=np.float64)
