from __future__ import annotations

import json
import os
import re

import pytest

from hwnas.errors import ConfigError
from hwnas.hardware.fingerprint import DeviceFingerprint, cpu_model, device_fingerprint


def test_fingerprint_is_stable_and_names_the_setup() -> None:
    a = device_fingerprint(backend="torch", threads=1)
    b = device_fingerprint(backend="torch", threads=1)
    assert a == b and a.key() == b.key()
    assert re.fullmatch(r"[0-9a-f]{12}", a.key())
    assert a.threads == 1 and a.backend == "torch"
    assert a.logical_cores == os.cpu_count()
    assert a.cpu_model == cpu_model() and a.cpu_model
    assert a.torch_version and a.numpy_version and a.python_version
    assert a.onnxruntime_version is None  # not part of a torch measurement
    assert "1 thread(s)" in a.describe()


def test_fingerprint_changes_with_backend_and_threads() -> None:
    torch_fp = device_fingerprint(backend="torch", threads=1)
    ort_fp = device_fingerprint(backend="onnxruntime", threads=1)
    assert ort_fp.onnxruntime_version is not None
    assert ort_fp.key() != torch_fp.key()
    if (os.cpu_count() or 1) >= 2:
        assert device_fingerprint(backend="torch", threads=2).key() != torch_fp.key()


def test_fingerprint_round_trips_through_json() -> None:
    fp = device_fingerprint(backend="onnxruntime", threads=1)
    back = DeviceFingerprint.from_dict(json.loads(json.dumps(fp.as_dict())))
    assert back == fp and back.key() == fp.key()
    with pytest.raises(ConfigError, match="not a device fingerprint"):
        DeviceFingerprint.from_dict({"cpu": "x"})


def test_bad_options_say_what_is_allowed() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown latency backend 'onnx'; did you mean 'onnxruntime'"
    ):
        device_fingerprint(backend="onnx", threads=1)
    with pytest.raises(ConfigError, match=r"threads must be an integer in 1\.\.\d+ .* got 0"):
        device_fingerprint(backend="torch", threads=0)
    with pytest.raises(ConfigError, match="threads must be"):
        device_fingerprint(backend="torch", threads=10_000)
