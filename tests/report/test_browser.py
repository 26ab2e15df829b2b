"""The report opened in headless Chromium: every Plotly figure renders, no script error occurs.

The page records uncaught errors and rejections into ``data-script-errors`` on ``<html>`` and
counts rendered figures in ``data-plots-rendered``; ``--dump-dom`` gives back the DOM after the
scripts ran. The report's recorder on a page with a planted error proves that it catches one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_support import Study, study2, study3

from hwnas.report import write_outputs

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1200,900",
    "--virtual-time-budget=15000",
    "--enable-logging=stderr",
    "--v=0",
)
PLANTED = "<script>window.setTimeout(function () { notDefinedAnywhere(); }, 0);</script>"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        pytest.fail(
            "the report's browser test needs headless Chromium: install Debian's `chromium` "
            "package (`apt-get install -y chromium`; the README's test command installs it)"
        )
    return path


class _Root(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html" and not self.attrs:
            self.attrs = {k: v or "" for k, v in attrs}


def root_attrs(dom: str) -> dict[str, str]:
    parser = _Root()
    parser.feed(dom[:5000])
    return parser.attrs


def report(tmp_path: Path, name: str, study: Study) -> tuple[Path, int]:
    out = tmp_path / name
    result = write_outputs(
        out,
        trials=study.trials,
        objectives=study.objectives,
        constraints=study.constraints,
        summary={"strategy": "nsga2"},
        diagnostics={"kendall tau": 0.5},
        notes=("a note",),
        reference=study.reference,
    )
    return out / "report.html", len(result.trials)


def test_report_renders_in_headless_chromium_without_script_errors(tmp_path: Path) -> None:
    exe = chromium()
    page2, n2 = report(tmp_path, "two", study2())
    page3, n3 = report(tmp_path, "three", study3())
    # The report's own <head> (CSS and error recorder) with a planted error and no plots.
    head = page2.read_text(encoding="utf-8").split("</head>", 1)[0]
    planted = tmp_path / "planted.html"
    planted.write_text(f"{head}</head><body>{PLANTED}</body></html>", encoding="utf-8")

    start = time.perf_counter()
    runs = {}
    for name, page in (("two", page2), ("three", page3), ("planted", planted)):
        profile = tmp_path / f"profile-{name}"
        profile.mkdir()
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()]
        runs[name] = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
        )
    dumps = {}
    for name, proc in runs.items():
        try:
            stdout, stderr = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"chromium did not finish the {name} page in 90 s")
        assert proc.returncode == 0, f"chromium failed on the {name} page:\n{stderr[-2000:]}"
        dumps[name] = (stdout, stderr)
    elapsed = time.perf_counter() - start

    for name, points in (("two", n2), ("three", 3 * n3)):
        dom, log = dumps[name]
        attrs = root_attrs(dom)
        assert attrs.get("data-script-errors") == "0", attrs.get("data-script-error-text")
        assert "Uncaught" not in log, log[-2000:]
        # Every figure (Pareto view, hypervolume, regret / HV gap) drawn by Plotly.
        assert attrs.get("data-plots-expected") == "3"
        assert attrs.get("data-plots-rendered") == "3"
        assert dom.count("js-plotly-plot") >= 3
        assert dom.count('class="main-svg"') >= 6
        view = dom[dom.index('id="fig-pareto"') : dom.index('<section id="front"')]
        # One marker path per completed trial in each panel.
        assert len(re.findall(r'<path class="point"', view)) >= points
        # The front's table fits a 1200 px window without a horizontal scroll bar.
        assert "data-wide-tables" in attrs and "pareto" not in attrs["data-wide-tables"].split()

    dom, log = dumps["planted"]
    attrs = root_attrs(dom)
    assert attrs.get("data-script-errors") == "1"
    assert "notDefinedAnywhere" in attrs.get("data-script-error-text", "")
    assert "Uncaught ReferenceError: notDefinedAnywhere" in log  # the console channel works too
    assert elapsed < 60, f"chromium took {elapsed:.1f} s"
