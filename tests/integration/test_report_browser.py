"""The HTML report in a real headless Chromium: every plot renders, no console error.

Chromium is Debian's ``chromium`` (``scripts/install-chromium.sh``). Without it the test is
skipped on a developer's machine but fails under CI (``CI`` or ``HFTUNE_FAIL_ON_SKIP=1`` set,
as ``scripts/test.sh`` does; see ``tests/conftest.py``). The screenshot is kept as an
artifact in ``test-artifacts/report-browser.png`` (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from hftune.report.build import write_report
from hftune.testing.fixtures import build_report_fixtures, build_running_study

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


@dataclass
class PageResult:
    """What Chromium saw: the DOM after load, console errors, plots with an ``svg.main-svg``."""

    dom: str
    console_errors: list[str]
    plot_divs: int
    rendered_plots: int


def chromium() -> str:
    """The Chromium binary; skips the test without one, fails under CI."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") or os.environ.get("HFTUNE_FAIL_ON_SKIP") == "1":
        pytest.fail("chromium is missing under CI: run scripts/install-chromium.sh")
    pytest.skip("chromium is not installed (bash scripts/install-chromium.sh)")


def load_in_chromium(page: Path, profile: Path, screenshot: Path | None = None,
                     timeout_s: float = 120) -> PageResult:
    """Open ``page`` headless, dump the DOM (and a screenshot), parse the console log."""
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--password-store=basic", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=10000", "--window-size=1280,5200"]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        cmd.append(f"--screenshot={screenshot}")
    cmd += ["--dump-dom", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines()
              if "CONSOLE" in line and re.search(r"uncaught|error", line, re.IGNORECASE)]
    starts = [m.start() for m in re.finditer(r'<div[^>]*class="[^"]*plotly-graph-div', proc.stdout)]
    rendered = 0
    for i, at in enumerate(starts):
        segment = proc.stdout[at:starts[i + 1] if i + 1 < len(starts) else len(proc.stdout)]
        if re.search(r'<svg[^>]*class="main-svg"', segment):
            rendered += 1
    return PageResult(proc.stdout, errors, len(starts), rendered)


def test_console_error_detection_works(tmp_path: Path) -> None:
    """The checker itself: a page that throws is caught (so a clean report means something)."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><div class=\"plotly-graph-div\"></div>"
                    "<script>throw new Error('report-canary')</script></body></html>")
    result = load_in_chromium(page, tmp_path / "profile")
    assert any("report-canary" in line for line in result.console_errors)
    assert (result.plot_divs, result.rendered_plots) == (1, 0)


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    folders = build_report_fixtures(tmp_path / "studies")
    running = build_running_study(tmp_path / "studies" / "running")
    out = tmp_path / "report.html"
    result = write_report([folders["grid"], folders["asha"], folders["pbt"], running], out,
                          price_per_hour=0.5)
    assert result.n_plots == 12  # 2 shared + grid 3 + asha 3 + pbt 2 (curves, pbt) + running 2
    shot = ARTIFACTS / "report-browser.png"
    shot.unlink(missing_ok=True)
    page = load_in_chromium(out, tmp_path / "profile", screenshot=shot)
    assert page.console_errors == []
    assert page.plot_divs == 12
    assert page.rendered_plots == 12
    assert "asha-rte" in page.dom and "54.0 CPU-core-min" in page.dom
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000
