"""``compute_device``: the option's forms, and how it resolves with and without CUDA GPUs (the
GPU count is patched, so this runs on any machine)."""

from __future__ import annotations

import pytest
import torch

from hwnas.compute import check_compute_device, torch_device
from hwnas.errors import ConfigError


@pytest.mark.parametrize("value", ["cpu", "auto", "cuda", "cuda:0", "cuda:12"])
def test_the_forms_it_reads(value):
    assert check_compute_device(value, "darts") == value


@pytest.mark.parametrize("value", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", "", 1, None])
def test_other_values_are_refused_in_one_line(value):
    with pytest.raises(ConfigError) as info:
        check_compute_device(value, "darts")
    assert str(info.value) == (
        f"darts: compute_device must be cpu, cuda, cuda:N or auto, got {value!r}"
    )


def _gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_without_a_gpu_auto_is_the_cpu_and_cuda_is_refused(monkeypatch):
    _gpus(monkeypatch, 0)
    assert torch_device("auto", "gdas") == torch.device("cpu")
    assert torch_device("cpu", "gdas") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^gdas: compute_device 'cuda', but this PyTorch") as e:
        torch_device("cuda", "gdas")
    assert "sees no CUDA GPU; use compute_device: cpu, or auto" in str(e.value)


def test_with_two_gpus_auto_takes_the_first_and_an_index_is_checked(monkeypatch):
    _gpus(monkeypatch, 2)
    assert torch_device("auto", "gdas") == torch.device("cuda", 0)
    assert torch_device("cuda", "gdas") == torch.device("cuda", 0)
    assert torch_device("cuda:1", "gdas") == torch.device("cuda", 1)
    with pytest.raises(ConfigError) as info:
        torch_device("cuda:2", "gdas")
    assert str(info.value) == (
        "gdas: compute_device 'cuda:2', but this machine has 2 CUDA GPU(s), cuda:0 to cuda:1; "
        "use one of those, or auto"
    )
