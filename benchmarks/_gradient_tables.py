"""The markdown tables benchmarks/nb201_gradient.py writes beside its JSON rows."""

from __future__ import annotations

from typing import Any

import numpy as np


def groups(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    """``rows`` by their value of ``key``, in first-seen order."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def table_md(kind: str, rows: list[dict[str, Any]]) -> str:
    """The markdown table of a ``fidelity``, ``multitrial``, ``hardware`` or ``rescore`` run's
    rows: mean +- std over seeds per method (fidelity) or latency weight (hardware)."""

    def ms(values: list[float]) -> str:
        return f"{np.mean(values):.2f} ± {np.std(values):.2f}"

    lines = []
    if kind == "fidelity":
        lines.append("| method | CIFAR-10 | CIFAR-100 | ImageNet16-120 | parameter-free edges "
                     "| mixture's train acc. | wall s | cells (per seed) |")  # fmt: skip
        lines.append("|---|---|---|---|---|---|---|---|")
        for method, rs in groups(rows, "method").items():
            cells = " ".join(f"`{r['arch']}`" for r in rs)
            train = [r.get("search_train_accuracy") for r in rs]
            lines.append(
                f"| {method} | {ms([r['cifar10'] for r in rs])} | {ms([r['cifar100'] for r in rs])}"
                f" | {ms([r['ImageNet16-120'] for r in rs])} | "
                f"{ms([r['parameter_free_edges'] for r in rs])} | "
                f"{ms(train) if None not in train else 'not recorded'} | "
                f"{np.mean([r['wall_s'] for r in rs]):.0f} | {cells} |"
            )
    elif kind == "multitrial":
        lines.append("| seed | wall s | multi-trial evaluations | HV gradient | HV multi-trial |")
        lines.append("|---|---|---|---|---|")
        for r in rows:
            lines.append(
                f"| {r['seed']} | {r['wall_s']:.0f} | {r['evaluations']} | {r['hv_gradient']:.4f}"
                f" | {r['hv_multitrial']:.4f} |"
            )
    else:
        moved = any("argmax_cost" in r for r in rows)
        extra = " | argmax: table latency ms | argmax: CIFAR-10" if moved else ""
        lines.append("| latency weight | table latency ms | derived cost (fit) ms | CIFAR-10 "
                     f"| per seed latency{extra} |")  # fmt: skip
        lines.append("|---|---|---|---|---|" + ("---|---|" if moved else ""))
        for label, rs in groups(rows, "label").items():
            per = ", ".join(f"{r['latency_ms']:.2f}" for r in rs)
            cells = ""
            if moved:
                cells = (f" {ms([r['argmax_latency_ms'] for r in rs])} | "
                         f"{ms([r['argmax_cifar10'] for r in rs])} |")  # fmt: skip
            lines.append(
                f"| {label} | {ms([r['latency_ms'] for r in rs])} | "
                f"{ms([r['derived_cost'] for r in rs])} | {ms([r['cifar10'] for r in rs])} "
                f"| {per} |{cells}"
            )
        if any("chain" in r for r in rows):
            lines += ["", "| latency weight | seed | measured cells: table latency ms / CIFAR-10 "
                      "% | kept for the target |", "|---|---|---|---|"]  # fmt: skip
            for r in rows:
                chain = " -> ".join(f"{ms_:.2f} / {acc:.1f}" for ms_, acc
                                    in zip(r["chain_latency_ms"], r["chain_cifar10"]))  # fmt: skip
                lines.append(f"| {r['label']} | {r['seed']} | {chain} | "
                             f"{r['kept_latency_ms']:.2f} / {r['kept_cifar10']:.1f} |")  # fmt: skip
            lines += ["", "| latency weight | last measured: table latency ms | CIFAR-10 | kept: "
                      "table latency ms | CIFAR-10 |", "|---|---|---|---|---|"]  # fmt: skip
            for label, rs in groups(rows, "label").items():
                lines.append(
                    f"| {label} | {ms([r['final_latency_ms'] for r in rs])} | "
                    f"{ms([r['final_cifar10'] for r in rs])} | "
                    f"{ms([r['kept_latency_ms'] for r in rs])} | "
                    f"{ms([r['kept_cifar10'] for r in rs])} |"
                )
    return "\n".join(lines)
