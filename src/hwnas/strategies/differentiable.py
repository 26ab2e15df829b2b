"""Gradient-based strategies: DARTS, PC-DARTS, sharpDARTS, RARTS, GDAS, FBNet, ProxylessNAS, TAS.

Each trains one relaxed network whose architecture weights learn with its weights (see
:mod:`hwnas.oneshot.relax` for the methods, their papers and defaults), then proposes what it
derived: the argmax architecture of every run (one run per latency weight of a sweep), then the
next most probable ones (``top_k``). The study evaluates them with the config's evaluators, so
on NB201 the benchmark table scores what the search found, which the search never read.

The relaxable spaces are :data:`RELAXABLE_SPACES`: ``nb201`` (the cell's 6 edges), ``fbnet``
(FBNet's supernet: 22 layers of 9 candidate blocks) and ``mbv3`` (Once-for-All's elastic
MobileNetV3: 20 blocks of 9 kernel-expansion pairs and 5 stage depths, at a fixed resolution
and width, the ``resolution`` and ``width`` options); fbnet and mbv3 take every method but
PC-DARTS, whose partial channels need a cell. TAS relaxes the ``resnet`` space. The slot choices
a search derives become architectures through the space's relaxation
(:mod:`hwnas.oneshot.relax.spaces`), and so do the slots of its cost model.

The search needs data: ``hwnas search`` hands it the config's ``data:`` block and a folder under
its output folder, trains before the study starts (resuming a killed search from its last epoch,
reusing a finished one), and stores the trajectory for the report. In Python, call
:meth:`GradientStrategy.attach` before the study runs; the first :meth:`ask` trains.

Strategies see only what the study tells them: the search reads its proxy data and, when its
options name one, a hardware cost model (the space's FLOPs, a calibrated predictor or LUT of this
CPU, or a sample of a device table whose size it records).

Example (a config)::

    space: nb201
    data: {name: mnist}
    strategy: {name: gdas, epochs: 10, channels: 8, cells: 1, top_k: 3}
    evaluators: [{nb201: {dataset: cifar10}}]
    objectives: [{metric: accuracy, direction: maximize}]
    budget: {evaluations: 3}
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from hwnas.compute import torch_device
from hwnas.errors import ConfigError
from hwnas.spaces.base import Arch
from hwnas.strategies.base import SearchExhausted, Strategy
from hwnas.trial import Observation

log = logging.getLogger(__name__)

RELAXABLE_SPACES: tuple[str, ...] = ("nb201", "fbnet", "mbv3")
_SEED_LIMIT = 2**31 - 1


class GradientStrategy(Strategy):
    """A differentiable search run once, then asked for its derived architectures in order.

    Options: the method's (see :func:`hwnas.oneshot.relax.methods.method_settings`), e.g.
    ``epochs``, ``channels``, ``cells``, ``top_k``, ``cost``, ``latency_weight(s)``, ``target``
    (with ``target_repairs``: measured misses of the target's band moved again, see :meth:`tell`),
    and on mbv3 ``resolution`` and ``width``.
    """

    method: ClassVar[str] = ""
    spaces: ClassVar[tuple[str, ...]] = RELAXABLE_SPACES

    def __init__(self, **options: Any) -> None:
        from hwnas.errors import require_torch

        require_torch(f"strategy {self.method!r}")
        self.settings = self.make_settings(options)
        self._dataset: Any = None
        self._folder: Path | None = None
        self._data_dir: Path | None = None
        self.progress: Callable[[dict[str, Any]], None] | None = None
        self.result: Any = None
        self._queue: list[str] | None = None
        self._next = 0
        # derived architecture -> (run index, choices per slot, repairs that led to it, the
        # (fitted, measured) cost of the one it was repaired from)
        self._origin: dict[str, tuple[int, tuple[int, ...], int, tuple[float, float] | None]] = {}
        self._measured: dict[str, float] = {}  # derived or repaired architecture -> its cost
        self.repairs = 0

    def make_settings(self, options: dict[str, Any]) -> Any:
        """The method's checked settings from the strategy's options."""
        from hwnas.oneshot.relax.methods import method_settings

        return method_settings(self.method, options)

    def attach(
        self,
        dataset: Any,
        *,
        folder: Path | None = None,
        data_dir: Path | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Give the search its data (a :class:`hwnas.data.Dataset`), the folder its checkpoints
        and result live in (none: in memory), the folder device tables are read from, and a
        per-epoch progress callback (also settable as ``progress``)."""
        self._dataset = dataset
        self._folder = folder
        self._data_dir = data_dir
        self.progress = progress

    def on_setup(self) -> None:
        space = self.problem.space
        if space.name not in self.spaces:
            names = ", ".join(self.spaces[:-1]) + " or " if len(self.spaces) > 1 else ""
            raise ConfigError(
                f"strategy {self.method!r} relaxes the {names}{self.spaces[-1]} space; the "
                f"space is {space.name!r}: use space: {self.spaces[0]}, or a sampling strategy"
            )
        self.check_space()
        self.check_compute()
        self.seed = int(self.rng.integers(_SEED_LIMIT))
        self._queue, self._next = None, 0
        self._origin, self._measured, self.repairs = {}, {}, 0

    def check_space(self) -> None:
        """Refuse, before any training, a method whose mode the space's relaxation lacks (e.g.
        PC-DARTS's partial channels on fbnet)."""
        from hwnas.oneshot.relax.spaces import relaxation

        relaxation(self.problem.space, self.settings)

    def check_compute(self) -> None:
        """Refuse, before any training, a ``compute_device`` this machine lacks."""
        torch_device(self.settings.compute_device, self.method)

    # -- the search ------------------------------------------------------------------------------
    def search_key(self) -> str:
        """Fingerprint of what the search depends on: method, settings, space, data, seed."""
        data = None if self._dataset is None else self._dataset.provenance()
        text = json.dumps(
            {
                "method": self.method,
                "settings": _key_settings(self.settings.to_dict()),
                "space": self.problem.space.options,
                "data": data,
                "seed": self.seed,
                "version": 1,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def search_folder(self) -> Path | None:
        """Where this search's checkpoints and result live (None in memory)."""
        if self._folder is None:
            return None
        return self._folder / f"{self.method}-{self.search_key()[:12]}"

    def prepare(self) -> Any:
        """Run (or resume, or reload) the search; returns its
        :class:`~hwnas.oneshot.relax.result.GradientResult`."""
        if self.result is not None:
            return self.result
        if self._dataset is None:
            raise ConfigError(
                f"strategy {self.method!r} trains a network and has no data: add a data: block "
                "to the config (e.g. data: {name: mnist}), or call attach(dataset) in Python"
            )
        from hwnas.oneshot.relax.result import GradientResult

        key = self.search_key()
        folder = self.search_folder()
        if folder is not None:
            stored = GradientResult.load(folder)
            if stored is not None and stored.key == key:
                self.result = stored
                return stored
        start = time.perf_counter()
        result = self.search(folder)
        result.wall_s = time.perf_counter() - start
        result.key = key
        if folder is not None:
            result.save(folder)
        self.result = result
        return result

    def search(self, folder: Path | None) -> Any:
        """Run the method (resuming from ``folder``); returns its ``GradientResult``."""
        import numpy as np

        from hwnas.oneshot.relax.cost import slot_cost_from_spec
        from hwnas.oneshot.relax.result import GradientResult
        from hwnas.oneshot.relax.search import run_search
        from hwnas.oneshot.relax.spaces import relaxation

        s = self.settings
        space = self.problem.space
        cost = None
        if s.cost is not None:
            cost = slot_cost_from_spec(
                space,
                s.cost,
                rng=np.random.default_rng(self.seed),
                data_dir=self._data_dir,
                slots=relaxation(space, s).cost_slots(space, s),
            )
        runs = []
        for i, weight in enumerate(s.weights_to_sweep()):
            runs.append(
                run_search(
                    space,
                    self._dataset,
                    s,
                    cost=cost,
                    latency_weight=weight,
                    seed=self.seed,
                    label=f"latency_weight={weight:g}",
                    folder=None if folder is None else folder / f"run-{i}",
                    progress=self.progress,
                )
            )
        return GradientResult(
            method=self.method,
            options=s.to_dict(),
            runs=runs,
            cost=None if cost is None else cost.to_dict(),
        )

    # -- ask / tell ------------------------------------------------------------------------------
    def ask(self) -> Arch:
        if self._queue is None:
            result = self.prepare()
            self._queue = result.ranked_archs()
            for r, run in enumerate(result.runs):
                for text, pick in zip(run.archs, run.picks):
                    self._origin.setdefault(text, (r, tuple(pick), 0, None))
        if self._next >= len(self._queue):
            raise SearchExhausted(
                f"{self.method}: all {len(self._queue)} derived architectures were asked; raise "
                "top_k or add latency_weights for more"
            )
        text = self._queue[self._next]
        self._next += 1
        return self.problem.space.from_string(text)

    def tell(self, observation: Observation) -> None:
        """The search does not learn from evaluations: the study scores what it derived. With a
        target, a derived architecture whose measured cost lies outside the target's band is
        moved again, by the model's error there, and proposed next (``target_repairs``; see
        :func:`hwnas.oneshot.relax.band.repair`)."""
        s = self.settings
        origin = self._origin.get(observation.arch_str)
        if (
            origin is None
            or observation.failed
            or s.target is None
            or s.derive == "argmax"
            or self.result is None
            or self.result.cost is None
            or self._queue is None
        ):
            return
        measured = observation.metrics.get(self.result.cost["metric"])
        if measured is None:
            return
        self._measured[observation.arch_str] = float(measured)
        if origin[2] >= s.target_repairs:
            return
        from hwnas.oneshot.relax.band import fitted_cost, repair, trajectory_probs
        from hwnas.oneshot.relax.cost_model import SlotCost
        from hwnas.oneshot.relax.spaces import relaxation

        space = self.problem.space
        r, pick, used, previous = origin
        probs = trajectory_probs(self.result.runs[r].trajectory)
        cost = SlotCost.from_dict(self.result.cost)
        moved = repair(space, s, cost, probs, pick, float(measured), previous)
        if moved is None:
            return
        text = space.to_string(relaxation(space, s).to_arch(space, s, moved))
        if text in self._queue:
            return
        self._queue.insert(self._next, text)
        point = (fitted_cost(space, s, cost, pick), float(measured))
        self._origin[text] = (r, moved, used + 1, point)
        self.repairs += 1
        log.info(
            "%s: %s measured %.4g %s (band %.4g-%.4g): proposing %s next",
            self.method, observation.arch_str, measured, self.result.cost.get("unit", ""),
            (1 - s.target_tolerance) * s.target, s.target, text,
        )  # fmt: skip

    def derived_from(self, arch_str: str) -> tuple[int, int] | None:
        """For an architecture this strategy proposed: the index of the run (latency weight)
        that derived it and the measured repairs that led to it (0: derived by the search)."""
        origin = self._origin.get(arch_str)
        return None if origin is None else (origin[0], origin[2])

    def chosen(self) -> dict[str, str]:
        """With a target, per run label: of the derived and repaired architectures measured so
        far, the one to keep (:func:`hwnas.oneshot.relax.band.choose`: the last in the band,
        else the costliest under it, else the cheapest over it)."""
        if self.result is None or not self._measured:  # measured only with a target
            return {}
        from hwnas.oneshot.relax.band import band, choose

        low, high = band(self.settings)
        out = {}
        for r, run in enumerate(self.result.runs):
            points = [(a, c) for a, c in self._measured.items() if self._origin[a][0] == r]
            if points:
                out[run.label] = choose(points, low, high)
        return out

    def diagnostics(self) -> dict[str, float | str]:
        if self.result is None:
            return {}
        out: dict[str, float | str] = {"search wall s": round(self.result.wall_s, 1)}
        if self.repairs:
            out["measured repairs into the target's band"] = float(self.repairs)
        for label, arch in self.chosen().items():
            out[f"{label}: kept for the target"] = arch
        for run in self.result.runs:
            free = run.metrics.get("parameter_free_edges")
            if free is not None:
                out[f"{run.label}: parameter-free edges"] = free
        if self.result.cost is not None:
            src = self.result.cost.get("source") or {}
            out["cost model"] = f"{self.result.cost.get('metric')} ({src.get('kind', 'unknown')})"
            out["device table rows read"] = float(
                src.get("rows", 0) if src.get("kind") == "table" else 0
            )
        return out


def _named(method: str, doc: str) -> type[GradientStrategy]:
    return type(
        f"{method.title().replace('_', '')}Strategy",
        (GradientStrategy,),
        {"method": method, "__doc__": doc, "__module__": __name__},
    )


DARTS = _named("darts", "DARTS (Liu et al., ICLR 2019); ``order: 2`` for the unrolled step.")
PCDARTS = _named("pc_darts", "PC-DARTS (Xu et al., ICLR 2020): partial channels, edge norm.")
SharpDARTS = _named("sharpdarts", "sharpDARTS (Hundt et al., 2019): cosine power, max-W.")
RARTS = _named("rarts", "RARTS (Xin et al., 2021): relaxed single-level, two networks.")
GDAS = _named("gdas", "GDAS (Dong & Yang, CVPR 2019): Gumbel top-1, tau 10 -> 0.1.")
FBNet = _named("fbnet", "FBNet (Wu et al., CVPR 2019): Gumbel softmax, CE * a * log(LAT)^b.")
Proxyless = _named("proxyless", "ProxylessNAS (Cai et al., ICLR 2019): binarized paths.")


# Settings added after searches were first stored: left out of the key while unset, so a search
# finished before them is found again.
# (gdas always sets ``gradient``: its stored searches from before it are not found again, since
# their gradient was the "sampled" one and the default is now "all".)
ADDED_SETTINGS = ("resolution", "width", "target_cost", "gradient")
# Settings that change nothing without a target: left out of the key then.
TARGET_SETTINGS = ("target_tolerance", "derive")
# Settings that do not change what the search finds, never in the key: used after it (on
# measured results), or saying only where it computes (a checkpoint resumes on another device).
OUTSIDE_KEY = ("target_repairs", "compute_device")


def _key_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in settings.items()
        if k not in OUTSIDE_KEY
        and not (k in ADDED_SETTINGS and v is None)
        and not (k in TARGET_SETTINGS and settings.get("target") is None)
    }
