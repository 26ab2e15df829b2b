"""The gradient strategies by name: the seven cell and block methods, and TAS."""

from __future__ import annotations

from hwnas.strategies.differentiable import (
    DARTS,
    GDAS,
    PCDARTS,
    RARTS,
    FBNet,
    GradientStrategy,
    Proxyless,
    SharpDARTS,
)
from hwnas.strategies.tas import TASStrategy

GRADIENT_STRATEGIES: dict[str, type[GradientStrategy]] = {
    c.method: c for c in (DARTS, PCDARTS, SharpDARTS, RARTS, GDAS, FBNet, Proxyless, TASStrategy)
}
