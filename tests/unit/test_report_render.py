"""``hftune report`` writers: the HTML page, the Markdown + PNG pair, and the command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hftune.cli.main import app
from hftune.errors import HftuneInputError
from hftune.report.build import write_report
from hftune.report.data import load_study
from hftune.report.markdown import image_markdown
from hftune.report.plan import plan_report
from hftune.report.tables import fmt, trial_table
from hftune.study.records import TrialRecord
from hftune.testing.records import evaluation, study_folder, trials_with

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


def test_the_pbt_plot_marks_each_exploit_at_its_new_values(folders: dict[str, Path]) -> None:
    """One ``x`` per exploit of the fixture (PBT_EXPLOITS: after epochs 2 and 4), at the
    minute it happened and the value the exploit set, in each hyperparameter's row."""
    from hftune.report.data import load_study
    from hftune.report.figures import pbt_figure
    from hftune.testing.fixtures import EPOCH_S, PBT_EXPLOITS, SETUP_S

    fig = pbt_figure(load_study(folders["pbt"]))
    marks = [t for t in fig.data if t.name == "exploit"]
    assert len(marks) == 2  # learning_rate and weight_decay
    minutes = [(SETUP_S + at * EPOCH_S + 1.0) / 60 for at, _, _, _ in PBT_EXPLOITS]
    for trace, key in zip(marks, ("learning_rate", "weight_decay"), strict=True):
        assert list(trace.x) == pytest.approx(minutes)
        assert list(trace.y) == [new[key] for _, _, _, new in PBT_EXPLOITS]


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


def test_markdown_with_png_plots(folders: dict[str, Path], tmp_path: Path,
                                matplotlib_installed: None) -> None:
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


def test_markdown_images_render_with_spaces_and_brackets(tmp_path: Path,
                                                         matplotlib_installed: None) -> None:
    import markdown_it  # rich's dependency: always installed with typer

    render = markdown_it.MarkdownIt("commonmark").render
    html = render(image_markdown("rte [v2: a\\b", "my report_plots/00-x.png"))
    assert re.findall(r'<img src="([^"]+)" alt="([^"]*)"', html) == [
        ("my%20report_plots/00-x.png", "rte [v2: a\\b")]
    root = study_folder(tmp_path / "rte ]x[", trials_with([[0.5, 0.6], [0.55, 0.58]]))
    result = write_report([root], tmp_path / "out dir" / "my report.md", fmt="md")
    page = render((tmp_path / "out dir" / "my report.md").read_text(encoding="utf-8"))
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(result.pngs) > 0
    assert all(s.startswith("my%20report_plots/") for s in sources)


def test_hyperparameters_keep_every_digit(tmp_path: Path) -> None:
    trials = [TrialRecord("s1", {"seed": 1234567, "learning_rate": 2e-5}, state="finished",
                          reports=[evaluation(1, 0.6)]),
              TrialRecord("s2", {"seed": 1234568, "learning_rate": 2.00001e-5},
                          state="finished", reports=[evaluation(1, 0.61)]),
              TrialRecord("p1", {"learning_rate": 2e-5, "max_steps": 20000},
                          state="finished", reports=[evaluation(1, 0.7)])]
    headers, rows = trial_table(load_study(study_folder(tmp_path / "s", trials)))
    cells = {r[0]: dict(zip(headers, r, strict=True)) for r in rows}
    assert (cells["s1"]["seed"], cells["s2"]["seed"]) == ("1234567", "1234568")
    assert cells["p1 *"]["max_steps"] == "20000"
    assert cells["s1"]["learning_rate"] == "2e-05"
    assert cells["s2"]["learning_rate"] == "2.00001e-05"
    assert fmt(3.0, 3) == "3" and fmt(0.123456) == "0.1235"


def test_nan_only_study_gets_no_curves_plot(tmp_path: Path) -> None:
    nan = float("nan")
    root = study_folder(tmp_path / "nan", trials_with([[nan, nan], [nan, nan]]))
    plan = plan_report([load_study(root)])
    assert plan.plots == []
    assert any("no trial reported a finite value of the metric accuracy (4 evaluations: "
               "4 NaN" in n for n in plan.notes)
    assert not any("has reported" in n for n in plan.notes)


def test_a_folder_given_twice_is_reported_once(tmp_path: Path) -> None:
    root = study_folder(tmp_path / "s", trials_with([[0.6]]))
    out = tmp_path / "r.html"
    result = write_report([root, Path(f"{root}/"), root / ".." / "s"], out)
    assert result.duplicates == [root, root / ".." / "s"]
    assert out.read_text(encoding="utf-8").count("<td>s</td>") == 1
    cli = CliRunner().invoke(app, ["report", str(root), str(root), "-o", str(out)])
    assert cli.exit_code == 0 and "reported once" in cli.output
