"""Standalone models from a study: ``model.pt``, ``model.onnx`` and ``manifest.json`` for one
trial, with weights from the study's supernet (optionally fine-tuned) or trained from scratch,
checked with ONNX Runtime against PyTorch on the test split, and its latency re-measured.
Importing this package needs the ``torch`` extra; see ``docs/export.md``.

Example:
    >>> from hwnas.export import export_trial, load_model
    >>> result = export_trial("runs/mnist", 3, "exports/t3")  # doctest: +SKIP
    >>> net, info = load_model("exports/t3/model.pt")  # doctest: +SKIP
"""

from __future__ import annotations

from hwnas.errors import require_torch

require_torch("hwnas.export")

from hwnas.export.bundle import (  # noqa: E402
    FILES,
    MANIFEST,
    MODEL_ONNX,
    MODEL_PT,
    ExportCheckError,
    ExportResult,
    export_trial,
    load_model,
)
from hwnas.export.source import StudySource, read_study  # noqa: E402

__all__ = [
    "FILES",
    "MANIFEST",
    "MODEL_ONNX",
    "MODEL_PT",
    "ExportCheckError",
    "ExportResult",
    "StudySource",
    "export_trial",
    "load_model",
    "read_study",
]
