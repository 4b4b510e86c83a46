"""``hftune report`` writers: the HTML page, the Markdown + PNG pair, and the command."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hftune.cli.main import app
from hftune.errors import HftuneInputError
from hftune.report.build import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def html_page(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = write_report([folders[k] for k in ("grid", "asha", "pbt", "running")], out,
                          price_per_hour=0.5)
    assert result.n_plots == 12  # PBT study: no per-config plots
    return out.read_text(encoding="utf-8")


def test_html_is_self_contained(html_page: str) -> None:
    assert not re.search(r"<script[^>]+src=", html_page)
    # nothing is fetched: no external script, stylesheet or image
    assert "<link" not in html_page and 'src="http' not in html_page
    assert "Plotly.newPlot" in html_page
    # plotly.js itself is inlined exactly once
    from plotly.offline import get_plotlyjs

    assert html_page.count(get_plotlyjs()[-2000:]) == 1
    assert len(html_page) > 3_000_000


def test_html_plots_and_table_values(html_page: str) -> None:
    assert len(re.findall(r'class="plotly-graph-div"', html_page)) == 12
    comparison = html_page.split('<table class="comparison">')[1].split("</table>")[0]
    cells = re.findall(r"<td>(.*?)</td>", comparison)
    assert cells[:11] == ["grid-rte", "grid", "finished", "9 (9 / 0 / 0)", "accuracy (max)",
                          "0.7000", "grid_00004 (3)", "0.6850", "54.0 CPU-core-min", "27.5",
                          "-"]
    assert cells[11:22] == ["asha-rte", "asha", "finished", "10 (3 / 6 / 1)", "accuracy (max)",
                            "0.7200", "asha_00002 (3)", "0.7050", "36.0 CPU-core-min", "10.3",
                            "-"]
    assert cells[22:33] == ["pbt-rte", "pbt", "finished", "4 (4 / 0 / 0)", "accuracy (max)",
                            "0.7100", "pbt_00001 (6)", "-", "24.0 GPU-min", "6.3", "-"]
    assert cells[33:36] == ["random-rte", "random", "interrupted"]  # no process holds it
    assert "Cost at 0.5/h" in comparison
    # CPU-core-hours and GPU-hours in one comparison: one price cannot price both
    assert "No cost shown: one price (0.5/h) cannot price both GPU-hours and" in html_page
    # stopped and errored learning curves are drawn dashed and dotted
    assert '"dash":"dash"' in html_page and '"dash":"dot"' in html_page
    assert "exploit" in html_page


def test_cli_writes_html(folders: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "cmp.html"
    result = CliRunner().invoke(app, ["report", str(folders["grid"]), str(folders["asha"]),
                                      str(folders["pbt"]), "-o", str(out),
                                      "--price-per-hour", "1.5", "--title", "RTE strategies"])
    assert result.exit_code == 0, result.output
    assert "10 plots" in result.output
    page = out.read_text(encoding="utf-8")
    assert "<title>RTE strategies</title>" in page and "Cost at 1.5/h" in page
    assert len(re.findall(r'class="plotly-graph-div"', page)) == 10


def test_bad_input_is_one_clear_error(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(HftuneInputError, match="not a study folder"):
        write_report([tmp_path], tmp_path / "r.html")
    with pytest.raises(HftuneInputError, match="--format"):
        write_report([folders["grid"]], tmp_path / "r.pdf", fmt="pdf")
    with pytest.raises(HftuneInputError, match="--price-per-hour"):
        write_report([folders["grid"]], tmp_path / "r.html", price_per_hour=-1)
    assert not (tmp_path / "r.html").exists()


def test_markdown_tables_without_plots(folders: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    result = write_report([folders["grid"], folders["asha"], folders["running"]], out,
                          fmt="md", price_per_hour=0.5, plots=False)
    assert result.pngs == []
    text = out.read_text(encoding="utf-8")
    assert ("| grid-rte | grid | finished | 9 (9 / 0 / 0) | accuracy (max) | 0.7000 | "
            "grid_00004 (3) | 0.6850 | 54.0 CPU-core-min | 27.5 | 0.45 |") in text
    assert "| asha_00006 | errored | 0.00015 | 0.01 | 0.4700 | 1 | 2 | 2 | 4.00 |" in text
    assert "+ 2 running, 1 pending" in text
    assert "![" not in text and not (tmp_path / "report_plots").exists()


def test_markdown_without_matplotlib_says_how_to_install(
        folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hftune.report.png as png

    monkeypatch.setattr(png, "have_matplotlib", lambda: False)
    with pytest.raises(HftuneInputError, match=r"hftune\[report-png\]"):
        write_report([folders["grid"]], tmp_path / "r.md", fmt="md")
    assert not (tmp_path / "r.md").exists()


def test_markdown_with_png_plots(folders: dict[str, Path], tmp_path: Path) -> None:
    from hftune.report.png import have_matplotlib

    if not have_matplotlib():
        if os.environ.get("CI"):
            pytest.fail("matplotlib is missing under CI: install hftune[report-png]")
        pytest.skip("matplotlib is not installed (pip install 'hftune[report-png]')")
    out = tmp_path / "report.md"
    result = CliRunner().invoke(app, ["report", str(folders["grid"]), str(folders["asha"]),
                                      str(folders["pbt"]), "--format", "md", "-o", str(out)])
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "report_plots").glob("*.png"))
    assert len(pngs) == 10
    text = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(<([^>]+)>\)", text)
    assert sorted(links) == sorted(f"report_plots/{p.name}" for p in pngs)
    for p in pngs:
        head = p.read_bytes()[:8]
        assert head == PNG_SIGNATURE, p
        assert p.stat().st_size > 5_000, p
    assert any("pbt-pbt-rte" in p.name for p in pngs)
