"""Published loss terms, schedules and samplers of differentiable NAS methods, as plain functions.

Each function implements one formula of one paper (FBNet, ProxylessNAS, sharpDARTS, GDAS, TAS)
and names its source. Loss and schedule terms take python floats (computed with :mod:`math`) or
torch tensors (computed with torch ops, so gradients flow); arguments outside a formula's domain
raise :class:`~hwnas.errors.ConfigError` instead of returning NaN. Value checks on a tensor read
its smallest and largest element, one host sync per call. Schedules interpolate as
``w * high + (1 - w) * low`` (the papers' formulas rearranged), so their ends are exact.

Example:
    >>> round(fbnet_loss(2.0, 10.0), 3)
    0.66
    >>> gdas_tau(0, 5), gdas_tau(4, 5)
    (10.0, 0.1)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from hwnas.errors import ConfigError

Num = float | torch.Tensor
PROXYLESS_FORMS = ("mul#log", "add#linear")


def _op(x: Num, name: str) -> Callable[[Num], Num]:
    return getattr(torch, name) if isinstance(x, torch.Tensor) else getattr(math, name)


def _check(func: str, name: str, x: Num, allowed: str, ok: Callable[[float], bool]) -> None:
    """Raise unless ``ok`` holds for ``x`` (for a tensor: its smallest and largest element)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        values = [t.min().item(), t.max().item()] if t.numel() else []
    else:
        values = [x]
    for v in values:
        if not ok(v):  # NaN fails every comparison, so it is caught here too
            raise ConfigError(f"{func}: {name} must be {allowed}, got {name}={v!r}")


def _check_epochs(func: str, epoch: Num, epochs: int) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"{func}: epochs must be an integer >= 1, got epochs={epochs!r}")
    _check(func, "epoch", epoch, f"in [0, {epochs - 1}]", lambda v: 0 <= v <= epochs - 1)


def _check_taus(func: str, tau_max: float, tau_min: float) -> None:
    if not 0 < tau_min <= tau_max:
        raise ConfigError(
            f"{func}: 0 < tau_min <= tau_max must hold, "
            f"got tau_min={tau_min!r}, tau_max={tau_max!r}"
        )


def fbnet_loss(ce: Num, latency_ms: Num, *, a: float = 0.2, b: float = 0.6) -> Num:
    """FBNet's latency-aware loss (Wu et al., CVPR 2019, eq. 2): ``CE * a * log(LAT)^b``.

    The log is natural; ``latency_ms`` must exceed 1 ms so that ``log(LAT)`` is positive.
    Differentiable in ``ce`` and ``latency_ms`` when they are tensors.
    """
    _check("fbnet_loss", "latency_ms", latency_ms, "> 1 (log(LAT) > 0)", lambda v: v > 1)
    return ce * a * _op(latency_ms, "log")(latency_ms) ** b


def proxyless_loss(
    ce: Num,
    expected_latency: Num,
    reference: float,
    *,
    form: str = "mul#log",
    alpha: float = 0.2,
    beta: float = 0.3,
    lam: float = 0.1,
) -> Num:
    """ProxylessNAS's latency-regularised loss (Cai et al., ICLR 2019), in the two forms of its
    code's ``reg_loss_type``:

    - ``"mul#log"``: ``CE * alpha * (log(E[LAT]) / log(ref))^beta``;
    - ``"add#linear"``: ``CE + lam * (E[LAT] - ref) / ref``.

    ``reference`` is the target latency in the unit of ``expected_latency``; ``mul#log`` needs
    both above 1 so that the logs are positive.
    """
    func = "proxyless_loss"
    if form == "mul#log":
        _check(func, "reference", reference, "> 1 for form 'mul#log'", lambda v: v > 1)
        _check(func, "expected_latency", expected_latency, "> 1 for 'mul#log'", lambda v: v > 1)
        ratio = _op(expected_latency, "log")(expected_latency) / math.log(reference)
        return ce * alpha * ratio**beta
    if form == "add#linear":
        _check(func, "reference", reference, "> 0", lambda v: v > 0)
        return ce + lam * (expected_latency - reference) / reference
    raise ConfigError(f"{func}: form must be one of {', '.join(PROXYLESS_FORMS)}, got {form!r}")


def cosine_power_lr(
    step: Num, total: float, lr_max: float, lr_min: float, *, power: float = 2.0
) -> Num:
    """sharpDARTS cosine power annealing (Hundt, Jain & Hager, arXiv 2019, and its
    ``cosine_power_annealing.py``): with ``c = (1 + cos(pi * step / total)) / 2``,
    ``lr = lr_min + (lr_max - lr_min) * (p^(c+1) - p) / (p^2 - p)``, i.e. ``(p^c - 1) / (p - 1)``.

    ``power == 1`` is the plain cosine ``lr_min + (lr_max - lr_min) * c``, the limit of the
    formula; it is computed with ``expm1`` so powers near 1 approach it smoothly. Larger powers
    decay faster early on (the paper uses 10). As in the reference code, power must be >= 1.
    """
    func = "cosine_power_lr"
    _check(func, "total", total, "> 0", lambda v: v > 0)
    _check(func, "step", step, f"in [0, {total}]", lambda v: 0 <= v <= total)
    _check(func, "power", power, ">= 1", lambda v: v >= 1)
    if not 0 <= lr_min <= lr_max:
        raise ConfigError(
            f"{func}: 0 <= lr_min <= lr_max must hold, got lr_min={lr_min!r}, lr_max={lr_max!r}"
        )
    c = (1 + _op(step, "cos")(math.pi * step / total)) / 2
    if power == 1:
        w = c
    else:
        log_p = math.log(power)
        w = _op(c, "expm1")(c * log_p) / math.expm1(log_p)
    return w * lr_max + (1 - w) * lr_min


def max_w_weights(weights: torch.Tensor) -> torch.Tensor:
    """sharpDARTS Max-W weighting (Hundt, Jain & Hager, arXiv 2019): ``1 - max(w) + w`` over
    the last dim of softmax weights ``w`` (one slot's choices), so the strongest gets weight 1.
    """
    return 1 - weights.max(dim=-1, keepdim=True).values + weights


def gdas_tau(epoch: Num, epochs: int, *, tau_max: float = 10.0, tau_min: float = 0.1) -> Num:
    """GDAS's Gumbel-softmax temperature (Dong & Yang, CVPR 2019), linear from
    ``tau_max`` at the first epoch to ``tau_min`` at the last:
    ``tau = tau_max - (tau_max - tau_min) * epoch / (epochs - 1)`` (``tau_max`` if one epoch).
    """
    _check_epochs("gdas_tau", epoch, epochs)
    _check_taus("gdas_tau", tau_max, tau_min)
    r = epoch / (epochs - 1) if epochs > 1 else 0 * epoch
    return (1 - r) * tau_max + r * tau_min


def fbnet_tau(epoch: Num, *, tau0: float = 5.0, decay: float = 0.045) -> Num:
    """FBNet's Gumbel-softmax temperature (Wu et al., CVPR 2019): initial 5.0,
    annealed by ``exp(-0.045)`` per epoch, i.e. ``tau = tau0 * exp(-decay * epoch)``."""
    _check("fbnet_tau", "epoch", epoch, ">= 0", lambda v: v >= 0)
    _check("fbnet_tau", "tau0", tau0, "> 0", lambda v: v > 0)
    _check("fbnet_tau", "decay", decay, ">= 0", lambda v: v >= 0)
    return tau0 * _op(epoch, "exp")(-decay * epoch)


def tas_tau(epoch: Num, epochs: int, *, tau_max: float = 5.0, tau_min: float = 0.1) -> Num:
    """TAS's Gumbel-softmax temperature (Dong & Yang, NeurIPS 2019; code: ``set_tau`` of its
    search models, run with 5 and 0.1): cosine from ``tau_max`` to ``tau_min``,
    ``tau = tau_min + (tau_max - tau_min) * (1 + cos(pi * r)) / 2``.

    Here ``r = epoch / (epochs - 1)``, so the last epoch reaches ``tau_min``; TAS's code uses
    ``epoch / epochs`` and stops one step short of it. One epoch gives ``tau_max``.
    """
    _check_epochs("tas_tau", epoch, epochs)
    _check_taus("tas_tau", tau_max, tau_min)
    r = epoch / (epochs - 1) if epochs > 1 else 0 * epoch
    w = (1 + _op(r, "cos")(math.pi * r)) / 2
    return w * tau_max + (1 - w) * tau_min


def tas_flops_loss(
    expected_flops: Num,
    target_flops: float,
    *,
    tolerance: float = 0.05,
    current_flops: float | torch.Tensor | None = None,
) -> Num:
    """TAS's FLOPs loss (Dong & Yang, NeurIPS 2019): ``log(E[F])`` when the FLOPs are
    above ``(1 + tolerance) * target``, ``-log(E[F])`` when below ``(1 - tolerance) * target``,
    and 0 in between. The gradient always flows through ``E[F]``, the expected FLOPs under the
    architecture distribution (a scalar).

    TAS tests the band on the FLOPs of the most probable architecture (``flop_cur`` in its
    code, whose upper edge is the target itself): pass them as ``current_flops``; without them
    ``E[F]`` is tested. Inside the band a tensor input gives a zero connected to the graph, so
    ``backward()`` still works.
    """
    func = "tas_flops_loss"
    _check(func, "expected_flops", expected_flops, "> 0", lambda v: v > 0)
    _check(func, "target_flops", target_flops, "> 0", lambda v: v > 0)
    _check(func, "tolerance", tolerance, "in [0, 1)", lambda v: 0 <= v < 1)
    current = expected_flops if current_flops is None else current_flops
    flops = float(current.detach()) if isinstance(current, torch.Tensor) else float(current)
    log = _op(expected_flops, "log")
    if flops > (1 + tolerance) * target_flops:
        return log(expected_flops)
    if flops < (1 - tolerance) * target_flops:
        return -log(expected_flops)
    return expected_flops * 0.0


def gumbel_softmax_sample(
    logits: torch.Tensor, tau: float, generator: torch.Generator, *, hard: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gumbel-softmax over the last dim (Jang et al., ICLR 2017; used by GDAS, FBNet, TAS):
    ``y = softmax((logits + g) / tau)`` with ``g = -log(E)``, ``E ~ Exp(1)`` drawn from
    ``generator`` (``torch.nn.functional.gumbel_softmax`` takes no generator).

    Returns ``(weights, index)``, ``index`` the argmax of ``y``. With ``hard`` the weights are
    the straight-through one-hot ``y_hard - y.detach() + y``, arranged as
    ``y_hard + (y - y.detach())`` so the values are exactly 0 and 1 while the gradient is ``y``'s.
    """
    _check("gumbel_softmax_sample", "tau", tau, "> 0", lambda v: v > 0)
    if generator.device.type != logits.device.type:
        raise ConfigError(
            f"gumbel_softmax_sample: generator is on {generator.device}, logits on "
            f"{logits.device}; create the generator on the logits' device"
        )
    noise = -torch.empty_like(logits).exponential_(generator=generator).log()
    y = torch.softmax((logits + noise) / tau, dim=-1)
    index = y.argmax(dim=-1)
    if not hard:
        return y, index
    y_hard = torch.zeros_like(y).scatter_(-1, index.unsqueeze(-1), 1.0)
    return y_hard + (y - y.detach()), index
