"""Zero-cost proxies: scores of an untrained network that rank architectures without training.

The proxies are computed on the space's own PyTorch network (``space.build_network(arch)``,
inputs of ``space.input_shape``), freshly initialised from ``seed``, so they work for every space
with a PyTorch builder (NB201, FBNet, ...):

* ``synflow`` (data-free): synaptic flow, Abdelfattah et al. 2021 (normalisation removed,
  absolute weights, float64, one all-ones input);
* ``naswot``: log det of the ReLU activation-code kernel over a minibatch, Mellor et al. 2021;
* ``jacob_cov``: correlation score of the per-sample input Jacobians, Mellor et al. (v1);
* ``snip``: sum of ``|theta * dL/dtheta|`` (minibatch and labels);
* ``grad_norm``: sum of the weight-gradient norms (minibatch and labels);
* ``params`` and ``flops`` (baselines): millions of parameters and of MACs, from
  ``space.cheap_metrics`` (counted on the network where a space has no closed form).

Higher is more promising for the five proxies.

References: M. S. Abdelfattah, A. Mehrotra, Ł. Dudziak, N. D. Lane, "Zero-Cost Proxies for
Lightweight NAS", ICLR 2021; J. Mellor, J. Turner, A. Storkey, E. J. Crowley, "Neural
Architecture Search without Training", ICML 2021. Exact definitions, and how degenerate cells get
a finite floor instead of NaN, are in :mod:`hwnas.evaluation.zero_cost_measures`.

**Data caveat.** The published scores use a minibatch of real training images (CIFAR-10 for
NB201). Those cannot be fetched offline, so the data-dependent proxies use a fixed, seeded
minibatch from a dataset that ships inside a package: scikit-learn's 8x8 handwritten digits
(``data="digits"``, the default: upsampled to the input size and replicated over the channels),
or Gaussian noise (``data="gaussian"``). Their scores can therefore differ from the published
ones where synflow's (data-free) cannot; ``benchmarks/zero_cost_fidelity.py`` measures by how
much against NASLib's CIFAR-10 scores.

Example:
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> arch = space.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    ...                          "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    >>> scores = zero_cost_scores(space, arch, proxies=("synflow", "params"))
    >>> sorted(scores), scores["params"]
    (['params', 'synflow'], 1.531546)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hwnas.errors import ConfigError, require_torch
from hwnas.evaluation.base import Evaluator, EvaluatorContext
from hwnas.registry import closest

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

PROXIES: tuple[str, ...] = (
    "synflow",
    "naswot",
    "jacob_cov",
    "snip",
    "grad_norm",
    "params",
    "flops",
)
DATA_SOURCES: tuple[str, ...] = ("digits", "gaussian")
# Proxies that never look at the minibatch (so batch_size and data do not change them).
DATA_FREE: frozenset[str] = frozenset({"synflow", "params", "flops"})
# Bumped when a definition changes, so that cached scores of older code are not reused.
VERSION = 1


def check_proxies(proxies: Sequence[str]) -> tuple[str, ...]:
    """Return ``proxies`` as a tuple if all are known and distinct, else raise ConfigError."""
    if isinstance(proxies, str) or not isinstance(proxies, Sequence):
        raise ConfigError(
            f"zero_cost: proxies must be a list of names like ['synflow', 'naswot'], "
            f"got {proxies!r}"
        )
    if not proxies:
        raise ConfigError(f"zero_cost: proxies is empty; choose from {', '.join(PROXIES)}")
    for p in proxies:
        if p not in PROXIES:
            raise ConfigError(f"zero_cost: unknown proxy {p!r}; {closest(str(p), PROXIES)}")
    if len(set(proxies)) != len(proxies):
        raise ConfigError(f"zero_cost: proxies lists a name twice: {list(proxies)}")
    return tuple(proxies)


def check_options(*, batch_size: int, data: str, seed: int) -> None:
    """Raise :class:`ConfigError` for a bad batch size, data source or seed."""
    if data not in DATA_SOURCES:
        raise ConfigError(f"zero_cost: unknown data {data!r}; {closest(str(data), DATA_SOURCES)}")
    top = 1797 if data == "digits" else 4096
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 2 <= batch_size <= top
    ):
        raise ConfigError(
            f"zero_cost: batch_size must be an integer in 2..{top} with data {data!r}, "
            f"got {batch_size!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"zero_cost: seed must be a non-negative integer, got {seed!r}")


def zero_cost_scores(
    space: SearchSpace,
    arch: Arch,
    *,
    proxies: Sequence[str] = PROXIES,
    batch_size: int = 64,
    data: str = "digits",
    seed: int = 0,
) -> dict[str, float]:
    """Zero-cost proxy scores of one architecture (higher means more promising, except that
    ``params`` and ``flops`` are plain sizes).

    Args:
        space: a space with a PyTorch builder (``build_network``, ``input_shape``).
        arch: the architecture.
        proxies: which scores, from :data:`PROXIES`.
        batch_size: minibatch size for the data-dependent proxies.
        data: ``digits`` (scikit-learn's handwritten digits, upsampled) or ``gaussian`` noise.
        seed: seeds the weight initialisation and the choice of minibatch.

    Returns:
        ``{proxy: score}`` in the order of ``proxies``; always finite.

    Raises:
        ConfigError: an unknown proxy or data source, or a bad batch size or seed.

    Example:
        >>> from hwnas.spaces import NB201Space
        >>> space = NB201Space()
        >>> arch = space.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        >>> zero_cost_scores(space, arch, proxies=["synflow"])
        {'synflow': 0.0}
    """
    proxies = check_proxies(proxies)
    check_options(batch_size=batch_size, data=data, seed=seed)
    require_torch("zero-cost proxies")
    from hwnas.evaluation import zero_cost_measures as zc

    shape = tuple(space.input_shape)
    with zc.seeded(seed):
        net = space.build_network(arch)
    wanted = set(proxies)
    scores: dict[str, float] = {}
    if wanted & {"params", "flops"}:
        cheap = space.cheap_metrics(arch)
        if "params_m" not in cheap or "flops_m" not in cheap:  # no closed form: count on the net
            cheap["params_m"], cheap["flops_m"] = zc.count_params_flops(copy.deepcopy(net), shape)
        scores["params"], scores["flops"] = float(cheap["params_m"]), float(cheap["flops_m"])
    # Every measure starts from the same initial weights; ``seeded`` also fixes dropout draws.
    if "synflow" in wanted:
        with zc.seeded(seed):
            scores["synflow"] = zc.synflow(copy.deepcopy(net), shape)
    if wanted - DATA_FREE:
        x, labels = zc.minibatch(shape, batch_size=batch_size, data=data, seed=seed)
        if wanted & {"naswot", "jacob_cov"}:
            with zc.seeded(seed):
                scores.update(
                    zc.input_scores(
                        copy.deepcopy(net),
                        x,
                        naswot="naswot" in wanted,
                        jacob_cov="jacob_cov" in wanted,
                    )
                )
        if wanted & {"snip", "grad_norm"}:
            with zc.seeded(seed):
                scores.update(
                    zc.loss_scores(
                        copy.deepcopy(net),
                        x,
                        labels,
                        snip="snip" in wanted,
                        grad_norm="grad_norm" in wanted,
                    )
                )
    return {p: scores[p] for p in proxies}


class ZeroCostProxies(Evaluator):
    """Zero-cost proxy scores as metrics ``zc_<proxy>`` (``zc_synflow``, ``zc_naswot``, ...).

    Cheap (``expensive = False``: computed from the architecture, never charged to the budget, and
    free for strategies to use) and cacheable: the key names the proxies, batch size, data source,
    seed, the space and its network's input and output sizes. ``zc_params`` and ``zc_flops`` are
    in millions (the space's ``params_m`` / ``flops_m``).

    Args:
        proxies: which proxies (default: all of :data:`PROXIES`).
        batch_size: minibatch size of the data-dependent proxies.
        data: ``digits`` or ``gaussian`` (see the module's data caveat).
        seed: seeds the weight initialisation and the minibatch.
        context: the space (it must have a PyTorch builder) and folders.

    Example (config)::

        evaluators:
          - nb201: {dataset: cifar10}
          - zero_cost: {proxies: [synflow, naswot], batch_size: 64, data: digits}
        objectives:
          - {metric: zc_synflow, direction: maximize}
    """

    expensive = False
    cacheable = True

    def __init__(
        self,
        *,
        proxies: list[str] | None = None,
        batch_size: int = 64,
        data: str = "digits",
        seed: int = 0,
        context: EvaluatorContext,
    ) -> None:
        self.proxies = check_proxies(PROXIES if proxies is None else proxies)
        check_options(batch_size=batch_size, data=data, seed=seed)
        require_torch("the zero_cost evaluator")
        space = context.space
        try:
            self.input_shape = tuple(space.input_shape)
        except NotImplementedError:
            raise ConfigError(
                f"evaluator 'zero_cost' needs a space with a PyTorch builder; "
                f"space {space.name!r} has none"
            ) from None
        self.space = space
        self.batch_size = batch_size
        self.data = data
        self.seed = seed
        self.outputs = self._probe_outputs()

    def _probe_outputs(self) -> int:
        """Number of network outputs (e.g. classes): part of the key, as it changes the scores."""
        import torch

        arch = self.space.sample(np.random.default_rng(0))
        from hwnas.evaluation.zero_cost_measures import seeded

        with seeded(0):
            net = self.space.build_network(arch).eval()
        with torch.no_grad():
            out = net(torch.zeros((2, *self.input_shape)))
        return int(out.reshape(2, -1).shape[1])

    def metrics(self) -> tuple[str, ...]:
        return tuple(f"zc_{p}" for p in self.proxies)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        scores = zero_cost_scores(
            self.space,
            arch,
            proxies=self.proxies,
            batch_size=self.batch_size,
            data=self.data,
            seed=self.seed,
        )
        return {f"zc_{p}": v for p, v in scores.items()}

    def key(self) -> str:
        shape = "x".join(str(s) for s in self.input_shape)
        return (
            f"zero_cost:v{VERSION}:{self.space.name}:{shape}->{self.outputs}:"
            f"{','.join(self.proxies)}:b{self.batch_size}:{self.data}:s{self.seed}"
        )
