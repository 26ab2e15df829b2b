"""Overhead per trial (ask + tell + durable commit), tabular lookup speed, and table load times.

Measured in one run, interleaved per repeat so that drift hits every variant alike:

* ``hwnas_sqlite``: ``Study.optimize(N)`` / N with ``SQLiteStore``: random strategy, a trivial
  in-process evaluator (dict lookup of two metrics), N = 2000. Nothing is subtracted: this is the
  whole loop (ask, evaluate, cheap metrics, commit, tell).
* ``hwnas_memory``: the same with ``MemoryStore``; the difference is the store's share.
* ``optuna_rdb``: Optuna ask / 6 categorical suggests / tell with
  ``RDBStorage("sqlite:///...")`` and ``RandomSampler``, N = 300 (it is slow).
* ``optuna_memory``: the same with Optuna's in-memory storage.
* lookups per second: ``NB201Benchmark.evaluate(arch)`` over 100k random architectures, and the
  raw ``lookup(arch_str)`` on their precomputed strings.
* NB201 table load time: cold (``HWNAS_CACHE_DIR`` an empty folder: CSV parse + cache write) and
  warm (a second, fresh process reading the cache), each in a new subprocess.

Usage::

    python benchmarks/store_cost.py --out benchmarks/results/store_cost.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hwnas import Objective, Study, create_space, create_strategy
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.spaces.base import Arch
from hwnas.storage import MemoryStore, SQLiteStore
from hwnas.storage.base import Store

METRICS = ("accuracy", "latency_ms@raspi4")


class DictEvaluator(Evaluator):
    """A trivial in-process evaluator: two metrics from a dict keyed by canonical string."""

    cacheable = False

    def __init__(self, rows: dict[str, dict[str, float]]) -> None:
        self.rows = rows
        self.space = create_space("nb201")

    def metrics(self) -> tuple[str, ...]:
        return METRICS

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return self.rows[self.space.to_string(arch)]


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return float(med), float(q1), float(q3)


def hwnas_per_trial_ms(rows: dict[str, dict[str, float]], store: Store, n: int, seed: int) -> float:
    study = Study(
        space=create_space("nb201"),
        evaluators=[DictEvaluator(rows)],
        objectives=[Objective(METRICS[0], "maximize"), Objective(METRICS[1], "minimize")],
        strategy=create_strategy("random"),
        store=store,
        seed=seed,
    )
    start = time.perf_counter()
    study.optimize(budget=n)
    elapsed = time.perf_counter() - start
    store.close()
    assert study.n_charged == n
    return 1000.0 * elapsed / n


def optuna_per_trial_ms(
    rows: dict[str, dict[str, float]], storage: object, n: int, seed: int
) -> float:
    import optuna

    space = create_space("nb201")
    study = optuna.create_study(
        storage=storage,  # type: ignore[arg-type]
        sampler=optuna.samplers.RandomSampler(seed=seed),
        directions=["maximize", "minimize"],
    )
    start = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        ops = [trial.suggest_categorical(f"e{i}", list(c)) for i, c in enumerate(space.slots)]
        got = rows[space.to_string({"ops": ops})]
        study.tell(trial, [got[m] for m in METRICS])
    elapsed = time.perf_counter() - start
    assert len(study.trials) == n
    return 1000.0 * elapsed / n


def store_costs(n_hwnas: int, n_optuna: int, repeats: int) -> dict[str, list[float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = create_space("nb201")
    table = create_evaluator("nb201", EvaluatorContext(space=space), dataset="cifar10").table()
    rows = {
        s: {m: float(v) for m, v in zip(METRICS, r)}
        for s, r in zip(table.index, table[list(METRICS)].to_numpy())
    }
    out: dict[str, list[float]] = {
        k: [] for k in ("hwnas_sqlite", "hwnas_memory", "optuna_rdb", "optuna_memory")
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def runs(r: int, n_h: int, n_o: int) -> dict[str, Callable[[], float]]:
            return {
                "hwnas_sqlite": lambda: hwnas_per_trial_ms(
                    rows, SQLiteStore(folder / f"h{r}.db"), n_h, r
                ),
                "hwnas_memory": lambda: hwnas_per_trial_ms(rows, MemoryStore(), n_h, r),
                "optuna_rdb": lambda: optuna_per_trial_ms(
                    rows, optuna.storages.RDBStorage(f"sqlite:///{folder / f'o{r}.db'}"), n_o, r
                ),
                "optuna_memory": lambda: optuna_per_trial_ms(rows, None, n_o, r),
            }

        for fn in runs(999, 50, 20).values():  # warm-up: imports, first connections
            fn()
        for r in range(repeats):
            for name, fn in runs(r, n_hwnas, n_optuna).items():
                out[name].append(fn())
    return out


def cheap_metric_us(n: int = 2000) -> list[float]:
    """Microseconds per ``space.cheap_metrics`` call (the study adds them to every trial)."""
    space = create_space("nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(n)]
    space.cheap_metrics(archs[0])
    out = []
    for _ in range(5):
        start = time.perf_counter()
        for a in archs:
            space.cheap_metrics(a)
        out.append(1e6 * (time.perf_counter() - start) / n)
    return out


def lookup_rates(n: int, repeats: int) -> dict[str, list[float]]:
    space = create_space("nb201")
    ev = create_evaluator("nb201", EvaluatorContext(space=space), dataset="cifar10")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(n)]
    strings = [space.to_string(a) for a in archs]
    out: dict[str, list[float]] = {"evaluate": [], "lookup": []}
    for _ in range(repeats):
        start = time.perf_counter()
        for a in archs:
            ev.evaluate(a)
        out["evaluate"].append(n / (time.perf_counter() - start))
        lookup = ev.lookup  # type: ignore[attr-defined]
        start = time.perf_counter()
        for s in strings:
            lookup(s)
        out["lookup"].append(n / (time.perf_counter() - start))
    return out


_LOAD_SCRIPT = """
import json, time
t0 = time.perf_counter()
from hwnas import create_space
from hwnas.evaluation import EvaluatorContext, create_evaluator
t1 = time.perf_counter()
create_evaluator("nb201", EvaluatorContext(space=create_space("nb201")), dataset="cifar10")
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1}))
"""


def load_times(repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"cold_load": [], "warm_load": [], "import": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "HWNAS_CACHE_DIR": cache}
            for kind in ("cold_load", "warm_load"):
                res = subprocess.run(
                    [sys.executable, "-c", _LOAD_SCRIPT],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                got = json.loads(res.stdout.strip().splitlines()[-1])
                out[kind].append(got["load_s"])
                out["import"].append(got["import_s"])
            if not any(Path(cache).glob("nb201-*.npz")):
                raise RuntimeError(f"the cold load wrote no table cache into {cache}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n-hwnas", type=int, default=2000, help="trials per hwnas run (default 2000)")
    p.add_argument("--n-optuna", type=int, default=300, help="trials per Optuna run (default 300)")
    p.add_argument(
        "--repeats", type=int, default=5, help="repeats of every measurement (default 5)"
    )
    p.add_argument(
        "--lookups", type=int, default=100_000, help="architectures looked up (default 100k)"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/store_cost.csv"))
    args = p.parse_args(argv)

    results: list[tuple[str, str, list[float]]] = []
    for name, vals in store_costs(args.n_hwnas, args.n_optuna, args.repeats).items():
        results.append((f"{name}_per_trial", "ms", vals))
    results.append(("cheap_metrics_per_call", "us", cheap_metric_us()))
    for name, vals in lookup_rates(args.lookups, args.repeats).items():
        results.append((f"nb201_{name}_rate", "1/s", vals))
    for name, vals in load_times(args.repeats).items():
        results.append((f"nb201_{name}", "s", vals))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    med: dict[str, float] = {}
    with args.out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["measurement", "unit", "median", "q1", "q3", "repeats"])
        for name, unit, vals in results:
            m, q1, q3 = _quartiles(vals)
            med[name] = m
            w.writerow([name, unit, f"{m:.6g}", f"{q1:.6g}", f"{q3:.6g}", len(vals)])

    lines = [
        "| measurement | median | IQR |",
        "|---|---:|---:|",
    ]
    for name, unit, vals in results:
        m, q1, q3 = _quartiles(vals)
        lines.append(f"| {name} ({unit}) | {m:.4g} | {q1:.4g} – {q3:.4g} |")
    store_share = med["hwnas_sqlite_per_trial"] - med["hwnas_memory_per_trial"]
    lines += [
        "",
        f"- hwnas SQLite store's share per trial: {store_share:.4f} ms "
        f"({100 * store_share / med['hwnas_sqlite_per_trial']:.0f} % of the trial).",
        f"- Optuna RDB (SQLite) / hwnas SQLite, ms per trial: "
        f"{med['optuna_rdb_per_trial'] / med['hwnas_sqlite_per_trial']:.0f}x.",
        f"- Optuna in-memory / hwnas in-memory, ms per trial: "
        f"{med['optuna_memory_per_trial'] / med['hwnas_memory_per_trial']:.1f}x.",
        f"- Settings: hwnas N={args.n_hwnas}, Optuna N={args.n_optuna}, {args.repeats} repeats, "
        f"{args.lookups} lookups.",
    ]
    text = "\n".join(lines)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
