"""The found-front-vs-family replicates together: the mean hypervolume ratio and its bootstrap
interval over the shared test images.

Every replicate of ``front_vs_family.py`` with the same config scores its networks on the same
1,000 test images (the data split's seed is the config's), so one resample of the images
applies to all of them at once: the interval says how far the test images alone move the
mean ratio over the replicates. Replicates run before per-image hits were kept (no
``.hits.npz``) are listed with their ratio and left out of the interval.

    python benchmarks/front_vs_family_pool.py benchmarks/results/front_vs_family_elastic12*.json \\
        --out benchmarks/results/front_vs_family_elastic12_pool.md
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np

from front_vs_family import pooled_bootstrap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, nargs="+", help="front_vs_family.py .json files")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    lines = ["| replicate | HV ratio | per-image hits |", "|---|---:|---|"]
    ratios, pooled, pooled_ratios = [], [], []
    for path in args.results:
        data = json.loads(path.read_text())
        ratio = data["hv"]["found"] / data["hv"]["family"]
        ratios.append(ratio)
        hits = path.with_suffix(".hits.npz")
        kept = hits.is_file()
        if kept:
            pooled.append(([tuple(r) for r in data["rows"]], np.load(hits)["correct"]))
            pooled_ratios.append(ratio)
        lines.append(f"| `{path.name}` | {ratio:.2f} | {'yes' if kept else 'no'} |")
    mean, std = float(np.mean(ratios)), float(np.std(ratios))
    lines += ["", f"Mean over {len(ratios)} replicates: **{mean:.2f} ± {std:.2f}** (goal >= 1.1)."]
    if pooled:
        boot = pooled_bootstrap(pooled, draws=args.draws)
        lines += [
            "",
            f"Mean ratio of the {len(pooled)} replicates with per-image hits: "
            f"{np.mean(pooled_ratios):.2f}; "
            f"over {args.draws} resamples of their shared test images, 95 % interval "
            f"{np.quantile(boot, 0.025):.2f}-{np.quantile(boot, 0.975):.2f}, "
            f"{100 * np.mean(boot >= 1.1):.0f} % of draws reach 1.1.",
        ]
    text = f"# Front vs family, replicates pooled ({datetime.date.today()})\n\n" + "\n".join(lines)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
