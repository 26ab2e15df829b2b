"""Helpers of the report tests: a small synthetic NB201-shaped study (complete, infeasible and
failed trials, repeats that cost nothing), its full reference table, and latency noise columns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import numpy as np
import pandas as pd

from hwnas.problem import Constraint, Objective
from hwnas.trial import Trial

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DEGENERATE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ACC = Objective("accuracy", "maximize")
LAT = Objective("latency_ms@raspi4", "minimize")
PAR = Objective("params_m", "minimize")
PIXEL_LE = Constraint("latency_ms@pixel3", le=25.0)
RASPI_LE = Constraint("latency_ms@raspi4", le=20.0)


@dataclass(frozen=True)
class Study:
    trials: list[Trial]
    reference: pd.DataFrame
    objectives: list[Objective]
    constraints: list[Constraint]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if not t.ok]


def nb201_like_table(n: int = 300, *, seed: int = 0) -> pd.DataFrame:
    """Accuracy 80-95 % rising with latency, and one degenerate all-``none`` cell: 10 %, fastest."""
    rng = np.random.default_rng(seed)
    archs: list[str] = []
    while len(archs) < n - 1:
        o = rng.choice(OPS, 6)
        s = f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"
        if s != DEGENERATE and s not in archs:
            archs.append(s)
    lat = rng.lognormal(2.5, 0.5, n - 1)
    acc = 95.0 - 25.0 / (1.0 + lat) - rng.gamma(2.0, 1.2, n - 1)
    table = pd.DataFrame(
        {
            "accuracy": np.r_[10.0, acc],
            "latency_ms@raspi4": np.r_[0.05, lat],
            "latency_ms@pixel3": np.r_[0.065, lat * rng.uniform(1.1, 1.5, n - 1)],
            "params_m": np.r_[0.01, rng.uniform(0.1, 1.5, n - 1)],
        },
        index=pd.Index([DEGENERATE, *archs], name="arch"),
    )
    return table


def make_study(
    objectives: list[Objective],
    constraints: list[Constraint],
    *,
    n: int = 60,
    seed: int = 0,
) -> Study:
    """``n`` trials over the first ``n`` table rows (the degenerate cell is trial 0); every 11th
    fails, every 13th is a repeat that costs nothing; tell order differs from ask order."""
    table = nb201_like_table(seed=seed)
    rng = np.random.default_rng(seed + 1)
    tell = rng.permutation(n)
    trials = []
    for i in range(n):
        arch = str(table.index[i])
        if i % 11 == 7:
            trials.append(
                Trial(
                    i,
                    arch,
                    {},
                    state="failed",
                    error=f"TimeoutError: trial {i} ran past timeout_s=30 <&>",
                    tell_seq=int(tell[i]),
                    attempts=3,
                )
            )
            continue
        metrics = {str(k): float(v) for k, v in table.iloc[i].items()}
        metrics["latency_iqr_ms@raspi4"] = 0.04 * metrics["latency_ms@raspi4"]
        metrics["latency_cv@raspi4"] = 0.01 + 0.001 * (i % 10)
        trials.append(Trial(i, arch, metrics, tell_seq=int(tell[i]), charged=i % 13 != 4))
    return Study(trials, table, objectives, constraints)


def study2() -> Study:
    """Accuracy vs raspi4 latency, constrained on pixel3 latency (not on an axis)."""
    return make_study([ACC, LAT], [PIXEL_LE])


def study3() -> Study:
    """Accuracy, raspi4 latency and params, constrained on raspi4 latency (on an axis)."""
    return make_study([ACC, LAT, PAR], [RASPI_LE])


class _Refs(HTMLParser):
    """Every attribute of a real tag (script contents are not tags) that could load something."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[str] = []
        self._in_style = False
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        if tag in ("link", "iframe", "object", "embed", "base"):
            self.refs.append(f"<{tag}>")
        for name, value in attrs:
            v = (value or "").strip()
            if name in ("src", "srcset", "data", "poster", "action", "background"):
                self.refs.append(f"<{tag} {name}={v!r}>")
            elif name == "href" and not v.startswith("#"):
                self.refs.append(f"<{tag} href={v!r}>")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def external_references(page: str) -> list[str]:
    """What in the page would fetch a resource: script/img ``src``, non-fragment ``href``, a
    ``<link>``, or ``url(...)`` / ``@import`` in a style block. Empty for a self-contained page."""
    parser = _Refs()
    parser.feed(page)
    parser.close()
    css = "".join(parser.styles)
    return parser.refs + re.findall(r"url\(|@import", css)
