"""Fidelity of hwnas's zero-cost proxies on NAS-Bench-201 (CIFAR-10) and reproduction of NASLib's.

Two checks, on the standard NB201 network (C=16, N=5, 10 classes), weights initialised from the
seed, proxies from :func:`hwnas.evaluation.zero_cost.zero_cost_scores`:

1. **Ranking fidelity**: Spearman and Kendall correlation of each proxy with NB201 CIFAR-10 test
   accuracy (200 epochs) and validation accuracy (``cifar10-valid``), on a fixed random sample of
   cells (1,000 by default, ``numpy.random.default_rng(0)``). Published (Abdelfattah et al., ICLR
   2021, all 15,625 cells, real CIFAR-10 minibatch): synflow 0.737 with test accuracy.
2. **Reproduction of NASLib**: on NASLib's zero-cost table for an NB201 subset
   (``shared/data/naslib_zc_nb201_subset/zc_nasbench201.json``, 725 CIFAR-10 cells), Spearman
   between hwnas's proxy and NASLib's stored score of the same proxy (``jacov`` and ``nwot`` are
   NASLib's names of ``jacob_cov`` and ``naswot``). NASLib's data-dependent scores used real
   CIFAR-10 images; hwnas's use the ``--data`` minibatch, so only the data-free ones (synflow,
   params, flops) can be expected to match up to rank.

Per-arch scores are kept in a resumable CSV in the hwnas cache folder, so an interrupted run goes
on where it stopped. The time per architecture of each proxy alone is measured separately on the
first ``--timing-archs`` sampled cells, one thread, median and interquartile range.

Usage::

    nice -n 10 python benchmarks/zero_cost_fidelity.py --jobs 2 \\
        --out benchmarks/results/zero_cost_fidelity.csv

Writes the summary table as CSV to ``--out`` and a Markdown report beside it (``.md``).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from hwnas.evaluation.data import NB201_FILES, cache_dir, find_data_dir, load_nb201_tables  # noqa: E402
from hwnas.evaluation.zero_cost import DATA_FREE, PROXIES, zero_cost_scores  # noqa: E402
from hwnas.evaluation.zero_cost_measures import jacob_cov_floor  # noqa: E402
from hwnas.spaces import NB201Space  # noqa: E402

NASLIB_FILE = Path("naslib_zc_nb201_subset/zc_nasbench201.json")
# hwnas proxy -> NASLib's key in zc_nasbench201.json
NASLIB_NAMES = {
    "synflow": "synflow",
    "naswot": "nwot",
    "jacob_cov": "jacov",
    "snip": "snip",
    "grad_norm": "grad_norm",
    "params": "params",
    "flops": "flops",
}
# NASLib op index -> NB201 op; tuple positions are the edges (1,2), (1,3), (1,4), (2,3), (2,4),
# (3,4) (1-based nodes), the canonical string lists (1,2), (1,3), (2,3), (1,4), (2,4), (3,4).
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_TO_STRING_ORDER = (0, 1, 3, 2, 4, 5)
# Abdelfattah et al. 2021 on all 15,625 NB201 cells with a CIFAR-10 minibatch (the target).
PUBLISHED_SPEARMAN_TEST = {"synflow": 0.737}


def naslib_to_nb201(key: str) -> str:
    """NASLib's op-index tuple string, e.g. ``"(0, 2, 3, 2, 3, 1)"``, as an NB201 string."""
    idx = [int(t) for t in key.strip("()").split(",")]
    ops = [NASLIB_OPS[idx[i]] for i in NASLIB_TO_STRING_ORDER]
    return NB201Space().to_string({"ops": ops})


# -- scoring (worker processes) --------------------------------------------------------------------
_space: NB201Space | None = None


def _score(job: tuple[str, tuple[str, ...], str, int, int]) -> dict[str, object]:
    import torch

    global _space
    torch.set_num_threads(1)
    arch_str, proxies, data, batch_size, seed = job
    if _space is None:
        _space = NB201Space()
    start = time.perf_counter()
    scores = zero_cost_scores(
        _space,
        _space.from_string(arch_str),
        proxies=proxies,
        batch_size=batch_size,
        data=data,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    return {"arch": arch_str, **scores, "seconds_all": seconds if proxies == PROXIES else ""}


def score_all(
    wanted: dict[str, tuple[str, ...]],
    cache: Path,
    *,
    data: str,
    batch_size: int,
    seed: int,
    jobs: int,
) -> tuple[dict[str, dict[str, float]], int]:
    """Scores of each arch for its proxies, computing only what the cache CSV lacks (and how many
    cells that was).

    Rows are appended as they finish (a blank cell: not computed); an arch's rows are merged.
    """
    columns = ["arch", *PROXIES, "seconds_all"]
    done: dict[str, dict[str, float]] = {}
    if cache.is_file():
        with cache.open() as f:
            for row in csv.DictReader(f):
                got = done.setdefault(row["arch"], {})
                got.update({k: float(row[k]) for k in columns[1:] if row.get(k)})
    todo = [
        (a, proxies, data, batch_size, seed)
        for a, proxies in wanted.items()
        if any(p not in done.get(a, {}) for p in proxies)
    ]
    print(
        f"scores: {len(wanted) - len(todo)} cached in {cache}, {len(todo)} to compute", flush=True
    )
    if todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        new = not cache.is_file()
        with cache.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            if new:
                writer.writeheader()
            start = time.perf_counter()
            for i, row in enumerate(_map(todo, jobs), start=1):
                writer.writerow({k: row.get(k, "") for k in columns})
                f.flush()
                got = done.setdefault(str(row["arch"]), {})
                got.update({k: float(row[k]) for k in columns[1:] if row.get(k, "") != ""})  # type: ignore[arg-type]
                if i % 50 == 0 or i == len(todo):
                    rate = (time.perf_counter() - start) / i
                    print(f"  {i}/{len(todo)} ({rate:.2f} s/arch wall)", flush=True)
    return done, len(todo)


def _map(
    jobs_in: list[tuple[str, tuple[str, ...], str, int, int]], jobs: int
) -> Iterator[dict[str, object]]:
    if jobs <= 1:
        yield from map(_score, jobs_in)
        return
    with mp.get_context("spawn").Pool(jobs) as pool:
        yield from pool.imap_unordered(_score, jobs_in, chunksize=2)


def time_proxies(
    archs: list[str], cache: Path, *, data: str, batch_size: int, seed: int, retime: bool
) -> dict[str, Any]:
    """Seconds per arch of each proxy alone and of all seven in one call (median, q25, q75),
    one thread, sequential; kept in ``cache`` (JSON) unless ``retime``."""
    if cache.is_file() and not retime:
        return dict(json.loads(cache.read_text()))
    import torch

    torch.set_num_threads(1)
    space = NB201Space()
    zero_cost_scores(space, space.from_string(archs[0]), data=data, seed=seed)  # warm-up
    out: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    for name in [*PROXIES, "all"]:
        proxies = PROXIES if name == "all" else (name,)
        ts = []
        for a in archs:
            arch = space.from_string(a)
            start = time.perf_counter()
            zero_cost_scores(
                space, arch, proxies=proxies, batch_size=batch_size, data=data, seed=seed
            )
            ts.append(time.perf_counter() - start)
        q25, med, q75 = np.percentile(ts, [25, 50, 75])
        out[name] = [float(med), float(q25), float(q75)]
    out["load_after"] = os.getloadavg()[0]
    cache.write_text(json.dumps(out))
    return out


# -- report ----------------------------------------------------------------------------------------
def correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    rho = stats.spearmanr(x, y).statistic
    tau = stats.kendalltau(x, y).statistic
    return float(rho), float(tau)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=1000, help="random NB201 cells (seed 0)")
    ap.add_argument("--data", default="digits", choices=["digits", "gaussian"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0, help="weight-init and minibatch seed")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    ap.add_argument("--timing-archs", type=int, default=30)
    ap.add_argument("--retime", action="store_true", help="measure times again (else cached)")
    ap.add_argument("--naslib-limit", type=int, default=None, help="first N NASLib cells only")
    ap.add_argument(
        "--data-sample", type=int, default=250, help="sampled cells scored by data proxies too"
    )
    ap.add_argument(
        "--naslib-data-sample", type=int, default=150, help="NASLib cells scored by data proxies"
    )
    ap.add_argument("--data-dir", default=None, help="folder holding the NB201 / NASLib data")
    ap.add_argument("--out", default="benchmarks/results/zero_cost_fidelity.csv")
    args = ap.parse_args(argv)
    command = "python benchmarks/zero_cost_fidelity.py " + shlex.join(sys.argv[1:])

    folder = find_data_dir([*NB201_FILES.values(), NASLIB_FILE], args.data_dir).resolve()
    tables = load_nb201_tables(folder)
    n_all = len(tables.arch)
    sample_idx = np.random.default_rng(0).choice(n_all, size=args.sample, replace=False)
    sample = [str(tables.arch[i]) for i in sample_idx]

    naslib = json.loads((folder / NASLIB_FILE).read_text())["cifar10"]
    naslib_archs = {naslib_to_nb201(k): rec for k, rec in naslib.items()}
    if args.naslib_limit is not None:
        naslib_archs = dict(list(naslib_archs.items())[: args.naslib_limit])
    for s in naslib_archs:
        if s not in tables.index:
            raise SystemExit(f"NASLib arch {s} is not an NB201 cell: the key mapping is wrong")

    tag = f"nb201-c10-{args.data}-b{args.batch_size}-s{args.seed}"
    cache = cache_dir() / f"zero_cost_scores-{tag}.csv"
    wall = time.perf_counter()
    # Data-dependent proxies (seconds per cell) on the first cells of each set, data-free ones
    # (synflow, params, flops: a fraction of a second) on all of them.
    free = tuple(p for p in PROXIES if p in DATA_FREE)
    data_archs = sample[: args.data_sample] + list(naslib_archs)[: args.naslib_data_sample]
    wanted = dict.fromkeys(data_archs, PROXIES)
    for a in [*sample, *naslib_archs]:
        wanted.setdefault(a, free)
    scores, n_new = score_all(
        wanted,
        cache,
        data=args.data,
        batch_size=args.batch_size,
        seed=args.seed,
        jobs=args.jobs,
    )
    wall = time.perf_counter() - wall
    # Scoring time summed over the runs that filled the resumable cache.
    log_path = cache.with_suffix(".json")
    spent = json.loads(log_path.read_text()) if log_path.is_file() else {"cells": 0, "wall_s": 0}
    if n_new:
        spent = {"cells": spent["cells"] + n_new, "wall_s": spent["wall_s"] + wall}
        log_path.write_text(json.dumps(spent))
    timing = time_proxies(
        sample[: args.timing_archs],
        cache.with_name(f"zero_cost_timing-{tag}-n{args.timing_archs}.json"),
        data=args.data,
        batch_size=args.batch_size,
        seed=args.seed,
        retime=args.retime,
    )

    floors = dict.fromkeys(("synflow", "naswot", "snip", "grad_norm"), 0.0)
    floors["jacob_cov"] = jacob_cov_floor(args.batch_size)
    test = tables.accuracy["cifar10"]
    valid = tables.valid_accuracy["cifar10"]
    common = sample[: args.data_sample]  # every proxy is scored on these
    common_acc = np.array([test[tables.index[a]] for a in common])
    rows = []
    for p in PROXIES:
        cells = [a for a in sample if p in scores[a]]
        acc_idx = np.array([tables.index[a] for a in cells])
        x = np.array([scores[a][p] for a in cells])
        rho_t, tau_t = correlations(x, test[acc_idx])
        rho_v, tau_v = correlations(x, valid[acc_idx])
        rho_c = correlations(np.array([scores[a][p] for a in common]), common_acc)[0]
        # NASLib's table lacks a few scores (one cell has no synflow): compare where both exist.
        sub = [a for a in naslib_archs if p in scores[a] and NASLIB_NAMES[p] in naslib_archs[a]]
        ours = np.array([scores[a][p] for a in sub])
        theirs = np.array([float(naslib_archs[a][NASLIB_NAMES[p]]["score"]) for a in sub])
        sub_acc = np.array([test[tables.index[a]] for a in sub])
        rows.append(
            {
                "proxy": p,
                "n_sample": len(cells),
                "spearman_test": round(rho_t, 4),
                "kendall_test": round(tau_t, 4),
                "spearman_valid": round(rho_v, 4),
                "kendall_valid": round(tau_v, 4),
                "floor_share": round(float(np.mean(x <= floors.get(p, -np.inf))), 4),
                "n_common": len(common),
                "spearman_test_common": round(rho_c, 4),
                "n_naslib": len(sub),
                "naslib_spearman": round(correlations(ours, theirs)[0], 4),
                "naslib_kendall": round(correlations(ours, theirs)[1], 4),
                "subset_spearman_test_hwnas": round(correlations(ours, sub_acc)[0], 4),
                "subset_spearman_test_naslib": round(correlations(theirs, sub_acc)[0], 4),
                "seconds_median": round(timing[p][0], 4),
                "seconds_q25": round(timing[p][1], 4),
                "seconds_q75": round(timing[p][2], 4),
            }
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_markdown(out.with_suffix(".md"), rows, args, command, spent, timing)
    print(out.with_suffix(".md").read_text())


def write_markdown(
    path: Path,
    rows: list[dict[str, object]],
    args: argparse.Namespace,
    command: str,
    spent: dict[str, float],
    timing: dict[str, Any],
) -> None:
    import torch

    lines = [
        "# Zero-cost proxies on NAS-Bench-201 (CIFAR-10)",
        "",
        f"Command: `nice -n 10 {command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores "
        f"(shared with other jobs), torch {torch.__version__}, one thread per worker, "
        f"{args.jobs} worker(s); scoring took {spent['wall_s'] / 60:.1f} min wall for "
        f"{spent['cells']:.0f} cells (summed over the runs that filled the resumable cache).",
        f"Network: standard NB201 (C=16, N=5, 10 classes), weights initialised with seed "
        f"{args.seed}; minibatch: {args.batch_size} images of `{args.data}`"
        + (
            " (scikit-learn's 8x8 digits upsampled to 3x32x32, not CIFAR-10: see the data caveat "
            "in `hwnas.evaluation.zero_cost`)."
            if args.data == "digits"
            else " (Gaussian noise)."
        ),
        "",
        f"## Ranking fidelity: {args.sample} random cells (seed 0)",
        "",
        "Correlation of each proxy with NB201 CIFAR-10 test accuracy (200 epochs) and validation "
        "accuracy (cifar10-valid) on `n` cells: all sampled cells for the data-free proxies; for "
        f"the data-dependent ones (seconds per cell each) the first {args.data_sample} and the "
        "sampled cells that are also in the NASLib check below; the "
        f"'common' column compares every proxy on those same {args.data_sample} cells. `floor` = "
        "share of cells at the proxy's floor score (degenerate cells). Published: Abdelfattah et "
        "al. 2021, all 15,625 cells, CIFAR-10 minibatch.",
        "",
        "| proxy | n | Spearman test | Kendall test | Spearman valid | Kendall valid | floor | "
        "Spearman test, common | published Spearman test |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        pub = PUBLISHED_SPEARMAN_TEST.get(str(r["proxy"]))
        lines.append(
            f"| {r['proxy']} | {r['n_sample']} | {r['spearman_test']:.3f} | "
            f"{r['kendall_test']:.3f} | {r['spearman_valid']:.3f} | {r['kendall_valid']:.3f} | "
            f"{r['floor_share']:.3f} | {r['spearman_test_common']:.3f} | "
            f"{'' if pub is None else f'{pub:.3f}'} |"
        )
    lines += [
        "",
        "## Reproduction of NASLib's zero-cost table (CIFAR-10 subset)",
        "",
        "Spearman / Kendall between hwnas's score and NASLib's stored score of the same proxy "
        "(`zc_nasbench201.json`), and each one's Spearman with NB201 CIFAR-10 test accuracy on "
        f"the same `n` cells (every cell NASLib scored for the data-free proxies; for the others "
        f"the first {args.naslib_data_sample} and those among the random sample's first "
        f"{args.data_sample}; NASLib has no synflow for one cell). "
        "NASLib's data-dependent scores come from real CIFAR-10 minibatches; its "
        "synflow is stored as log(synflow), its flops count BN/ReLU/pooling elements too "
        "(torchstat), so only ranks are compared.",
        "",
        "| proxy (NASLib name) | n | Spearman hwnas vs NASLib | Kendall | Spearman test, hwnas | "
        "Spearman test, NASLib |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['proxy']} ({NASLIB_NAMES[str(r['proxy'])]}) | {r['n_naslib']} | "
            f"{r['naslib_spearman']:.3f} | "
            f"{r['naslib_kendall']:.3f} | {r['subset_spearman_test_hwnas']:.3f} | "
            f"{r['subset_spearman_test_naslib']:.3f} |"
        )
    med, q25, q75 = timing["all"]
    lines += [
        "",
        f"## Time per architecture (one thread, first {args.timing_archs} sampled cells)",
        "",
        "Each proxy computed alone (network built and initialised each time), and all seven in "
        "one call (naswot + jacob_cov share one pass, snip + grad_norm another), seconds; "
        "sequential, one thread, on a machine shared with other developers' jobs (1-minute "
        f"load average {timing['load_before']:.1f} before, {timing['load_after']:.1f} after, "
        f"on {os.cpu_count()} cores), so these are upper bounds.",
        "",
        "| proxy | median s | q25 | q75 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['proxy']} | {r['seconds_median']:.3f} | {r['seconds_q25']:.3f} | "
            f"{r['seconds_q75']:.3f} |"
        )
    lines += [f"| all seven, one call | {med:.3f} | {q25:.3f} | {q75:.3f} |", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
