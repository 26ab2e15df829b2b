"""The saved form of a latency predictor: a folder of readable files, checked on reading.

:meth:`hwnas.hardware.predictor.LatencyPredictor.save` writes ``predictor.json`` (format and
version, kind, space and its options, device, feature names, training metadata, package versions,
ridge/FLOPs coefficients) and, for ``gbdt``, LightGBM's text model ``model.txt`` whose checksum
the JSON keeps; files are replaced atomically. The helpers here write those files and check every
field on loading, so a damaged or edited folder fails with a :class:`~hwnas.errors.DataError`
that names the file and the field.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwnas.errors import DataError
from hwnas.spaces.base import SearchSpace

FORMAT = "hwnas-latency-predictor"
FORMAT_VERSION = 1
META_FILE = "predictor.json"
MODEL_FILE = "model.txt"


def space_options(space: SearchSpace) -> dict[str, Any]:
    """The space's constructor options, read back from its attributes (for saving)."""
    import inspect

    out: dict[str, Any] = {}
    for name, p in inspect.signature(type(space).__init__).parameters.items():
        if p.kind is p.KEYWORD_ONLY and hasattr(space, name):
            value = getattr(space, name)
            if name in space.added_options and value == p.default:
                continue  # see SearchSpace.added_options
            if isinstance(value, (int, float, str, bool)) or value is None:
                out[name] = value
    return out


def package_versions(kind: str) -> dict[str, str]:
    """Installed versions of hwnas and the package that fits ``kind`` (for the JSON)."""
    from importlib.metadata import PackageNotFoundError, version

    def get(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "unknown"

    return {pkg: get(pkg) for pkg in ("hwnas", "lightgbm" if kind == "gbdt" else "scikit-learn")}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def meta_field(meta: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """``meta[key]`` if it is a ``kind``; else :class:`DataError` naming ``where``."""
    value = meta.get(key)
    if not isinstance(value, kind):
        raise DataError(
            f"{where}: field {key!r} is missing or not a {kind.__name__}; save the predictor again"
        )
    return value


def check_linear(model: dict[str, Any], kind: str, n_features: int, where: str) -> dict[str, Any]:
    """``model`` if it holds the coefficients a ``ridge``/``flops``/``kernels`` predictor needs."""
    keys = {
        "flops": ("slope", "intercept"),
        "kernels": ("intercept", "coef", "scale"),
    }.get(kind, ("intercept", "coef", "mean", "scale"))
    for k in keys:
        v = model.get(k)
        ok = (
            isinstance(v, list) and len(v) == n_features and all(isinstance(x, float) for x in v)
            if k in ("coef", "mean", "scale")
            else isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        if not ok:
            raise DataError(f"{where}: model field {k!r} is missing or malformed; save it again")
    return model


def read_model_text(path: Path, meta: Mapping[str, Any], where: str) -> str:
    """The text of the model file ``path``, checked against the checksum in ``meta``."""
    if not path.is_file():
        raise DataError(f"{path} is missing; a gbdt predictor keeps its trees there")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not readable text ({exc}); save the predictor again") from None
    if hashlib.sha256(text.encode()).hexdigest() != meta.get("model_sha256"):
        raise DataError(
            f"{path} does not match the checksum in {where} (damaged or edited); "
            "save the predictor again"
        )
    return text
