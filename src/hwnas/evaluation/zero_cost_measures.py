"""The zero-cost proxy measures on a ``torch.nn.Module`` (needs the torch extra).

Each function takes a freshly initialised network (which it may modify) and returns scores; the
caller (:func:`hwnas.evaluation.zero_cost.zero_cost_scores`) builds the network, seeds it and
picks the minibatch. The definitions follow the reference implementations of Abdelfattah et
al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas, as vendored by
NASLib), and Mellor et al., "Neural Architecture Search without Training", ICML 2021:

* **weights** are the parameters with two or more dimensions (conv, linear and attention weights):
  NASLib's ``mode="param"`` over ``Conv2d`` / ``Linear`` layers, generalised. Biases and the affine
  parameters of normalisation layers are left out.
* **synflow**: every normalisation layer replaced by the identity (the ``bn=False`` copy of
  Abdelfattah et al.), parameters made absolute, the network in float64 (products of absolute
  weights over 20+ layers overflow float32), one all-ones input; ``R = sum(net(1))`` and the score
  is ``sum over weights of |theta * dR/dtheta|``. Data-free.
* **naswot**: forward hooks on every module whose class name contains ``ReLU``; each sample's
  binary activation code; ``K[i, j] = sum over units of [c_i == c_j]`` (units minus Hamming
  distance); the score is ``log det K`` (Mellor et al., v2 of the paper).
* **jacob_cov**: the input Jacobian of the summed logits per sample, its correlation matrix with
  eigenvalues ``v``, score ``-sum(log(v + k) + 1 / (v + k))``, ``k = 1e-5`` (Mellor et al., v1).
* **snip**: ``sum over weights of |theta * dL/dtheta|`` with the cross-entropy loss on the
  minibatch (Lee et al., ICLR 2019, as a proxy in Abdelfattah et al.).
* **grad_norm**: ``sum over weight tensors of ||dL/dtheta||_2``.

Data-dependent measures run in training mode (BatchNorm uses the minibatch statistics), as the
reference code does.

Degenerate networks (no path from input to output, or an all-zero output) give a finite floor,
never NaN or infinity: synflow, snip and grad_norm are sums of non-negative terms and come out 0.
For naswot, ``K`` is a positive semi-definite integer matrix, so ``det K`` is a non-negative
integer and ``log det K >= 0`` whenever ``K`` is regular; a singular ``K`` (all samples with the
same code) scores the floor 0. For jacob_cov, the score is bounded below by the value of an
all-zero spectrum, ``-B * (log k + 1 / k)``; a constant Jacobian (its correlation undefined) scores
that floor. Any other non-finite result is mapped to the measure's floor as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError, MissingExtraError

JACOB_COV_K = 1e-5

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, InstanceNorm*, SyncBatchNorm
    nn.GroupNorm,
    nn.LayerNorm,
)


def jacob_cov_floor(batch_size: int) -> float:
    """The lowest possible jacob_cov score of a minibatch of ``batch_size`` samples."""
    return -batch_size * (float(np.log(JACOB_COV_K)) + 1.0 / JACOB_COV_K)


def weights(net: nn.Module) -> list[nn.Parameter]:
    """The weight tensors the gradient-based scores sum over (parameters of 2+ dimensions)."""
    return [p for p in net.parameters() if p.dim() >= 2]


def strip_normalization(net: nn.Module) -> nn.Module:
    """Replace every normalisation layer of ``net`` by ``nn.Identity`` (in place)."""
    if isinstance(net, _NORM_TYPES):
        return nn.Identity()
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _NORM_TYPES):
                setattr(parent, name, nn.Identity())
    return net


def _finite_or(value: float, floor: float) -> float:
    return float(value) if np.isfinite(value) else floor


# -- measures --------------------------------------------------------------------------------------
def synflow(net: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Synaptic flow of ``net`` (modified in place: normalisation stripped, absolute, float64)."""
    net = strip_normalization(net).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    out = net(torch.ones((1, *input_shape), dtype=torch.float64))
    out.sum().backward()
    total = torch.zeros((), dtype=torch.float64)
    for p in weights(net):
        if p.grad is not None:
            total += (p.detach() * p.grad).abs().sum()
    return _finite_or(total.item(), 0.0)


def _kernel_hooks(net: nn.Module, kernel: np.ndarray) -> list[Any]:
    """Hook every ReLU-like module to add its activation codes to the naswot ``kernel``."""

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        # A ReLU-like output is positive exactly where its input is (also when it ran in place).
        signs = (output.detach().flatten(1) > 0).to(torch.float32) * 2.0 - 1.0
        # Matching units minus differing ones; exact in float32 below 2**24 units.
        agree = signs @ signs.T
        kernel[...] += (signs.shape[1] + agree.double().numpy()) / 2.0

    relus = [m for m in net.modules() if "ReLU" in type(m).__name__]
    if not relus:
        raise ConfigError(
            f"zero-cost proxy 'naswot' needs ReLU modules, but {type(net).__name__} has none; "
            "leave 'naswot' out of proxies for this space"
        )
    return [m.register_forward_hook(hook) for m in relus]


def _naswot_score(kernel: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(kernel)
    if sign <= 0 or not np.isfinite(logdet):
        return 0.0
    return max(float(logdet), 0.0)


def _jacob_cov_score(jac: np.ndarray | None, batch: int) -> float:
    floor = jacob_cov_floor(batch)
    if jac is None:  # the output does not depend on the input at all
        return floor
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return floor
    v = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    score = -float(np.sum(np.log(v + JACOB_COV_K) + 1.0 / (v + JACOB_COV_K)))
    return _finite_or(max(score, floor), floor)


def input_scores(
    net: nn.Module, x: torch.Tensor, *, naswot: bool = True, jacob_cov: bool = True
) -> dict[str, float]:
    """naswot (log det of the ReLU-code kernel) and jacob_cov of ``net`` on the minibatch ``x``.

    Both come from one forward pass in training mode (plus, for jacob_cov, one backward pass to
    the input); ``net`` is modified (hooks are removed, but its weights stop requiring gradients).
    """
    batch = x.shape[0]
    kernel = np.zeros((batch, batch), dtype=np.float64)
    handles = _kernel_hooks(net, kernel) if naswot else []
    out: dict[str, float] = {}
    try:
        net.train()
        if jacob_cov:
            for p in net.parameters():  # only the input gradient is needed
                p.requires_grad_(False)
            x = x.clone().requires_grad_(True)
            y = net(x)
            jac = None
            if y.requires_grad:
                y.backward(torch.ones_like(y))
                if x.grad is not None:
                    jac = x.grad.detach().flatten(1).double().numpy()
            out["jacob_cov"] = _jacob_cov_score(jac, batch)
        else:
            with torch.no_grad():
                net(x)
    finally:
        for h in handles:
            h.remove()
    if naswot:
        out["naswot"] = _naswot_score(kernel)
    return out


def loss_scores(
    net: nn.Module,
    x: torch.Tensor,
    labels: np.ndarray,
    *,
    snip: bool = True,
    grad_norm: bool = True,
) -> dict[str, float]:
    """snip (sum of ``|theta * dL/dtheta|``) and grad_norm (sum of ``||dL/dtheta||``) of ``net``
    from one forward and backward pass of the cross-entropy loss on ``(x, labels)``."""
    net.train()
    net.zero_grad()
    y = net(x)
    target = torch.as_tensor(labels % y.shape[1], dtype=torch.int64)
    F.cross_entropy(y, target).backward()
    sens = torch.zeros((), dtype=torch.float64)
    norms = torch.zeros((), dtype=torch.float64)
    for p in weights(net):
        if p.grad is not None:
            sens += (p.detach() * p.grad).abs().sum().double()
            norms += p.grad.double().norm()
    out: dict[str, float] = {}
    if snip:
        out["snip"] = _finite_or(sens.item(), 0.0)
    if grad_norm:
        out["grad_norm"] = _finite_or(norms.item(), 0.0)
    return out


def count_params_flops(net: nn.Module, input_shape: tuple[int, ...]) -> tuple[float, float]:
    """Millions of parameters and of conv / linear MACs on one input (``flops_m`` convention).

    MACs are counted by forward hooks on ``Conv*d`` and ``Linear`` modules, as the closed-form
    counts of :mod:`hwnas.spaces.nb201_cost` do; matrix products outside such modules (e.g.
    functional attention) are not counted.
    """
    macs = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.modules.conv._ConvNd):
            per_out = module.in_channels // module.groups * int(np.prod(module.kernel_size))
        else:
            per_out = module.in_features  # type: ignore[assignment]
        macs += output.numel() * int(per_out)

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if isinstance(m, nn.modules.conv._ConvNd | nn.Linear)
    ]
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
    return sum(p.numel() for p in net.parameters()) / 1e6, macs / 1e6


# -- inputs ----------------------------------------------------------------------------------------
@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator inside the block and restore its state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingExtraError(
            "scikit-learn", "ml", "zero-cost proxies with data='digits'"
        ) from None
    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


@lru_cache(maxsize=8)
def _minibatch(
    input_shape: tuple[int, ...], batch_size: int, data: str, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    if data == "gaussian":
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((batch_size, *input_shape), generator=gen)
        labels = rng.integers(0, 2**31 - 1, size=batch_size)
        return x, labels
    if len(input_shape) != 3:
        raise ConfigError(
            f"zero-cost data 'digits' needs image inputs (channels, height, width), "
            f"got input shape {input_shape}; use data='gaussian'"
        )
    images, targets = _digits()
    idx = np.sort(rng.choice(len(images), size=batch_size, replace=False))
    mean, std = float(images.mean()), float(images.std())
    batch = torch.from_numpy((images[idx] - mean) / std)[:, None]
    batch = F.interpolate(batch, size=input_shape[1:], mode="bilinear", align_corners=False)
    return batch.expand(-1, input_shape[0], -1, -1).contiguous(), targets[idx]


def minibatch(
    input_shape: tuple[int, ...], *, batch_size: int, data: str, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """A fixed, seeded minibatch ``(x, labels)``; a fresh copy of ``x`` on every call.

    ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images), normalised, bilinearly
    upsampled to the input size and replicated over the channels, with their true labels 0-9.
    ``gaussian``: standard normal inputs with uniform random labels. Labels are taken modulo the
    network's number of outputs.
    """
    x, labels = _minibatch(tuple(input_shape), batch_size, data, seed)
    return x.clone(), labels.copy()
