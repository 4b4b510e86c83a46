"""Usage errors of the ``hftune`` command: click's usage lines and exit code 2, no traceback;
a bare ``hftune`` prints the help."""

from __future__ import annotations

import pytest

from hftune.testing.cli import run_cli


@pytest.mark.parametrize("args", [["status"], ["frobnicate"], ["rerun", "x", "--top", "0"],
                                  ["run", "x.yaml", "--sett", "a=b"], ["export", "x"],
                                  ["rerun", "x", "--seeds", "five"]])
def test_usage_errors_are_clicks_usage_and_exit_2(args: list[str], monkeypatch, capsys) -> None:
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("Usage: ")
    assert [line for line in err.splitlines() if line.startswith("Error: ")], err


def test_bare_hftune_prints_the_help_and_exits_0(monkeypatch, capsys) -> None:
    code, out, err = run_cli([], monkeypatch, capsys)
    assert code == 0, err
    assert "Usage" in out and "run" in out and "Traceback" not in err


def test_usage_errors_of_typers_click_and_of_plain_click(monkeypatch, capsys) -> None:
    """typer's own (vendored) click error, and, under a typer that runs on the ``click``
    package, that package's: both are click's usage lines and exit code 2."""
    import click

    from hftune.cli import main as cli_main

    code, _, err = run_cli(["status"], monkeypatch, capsys)
    assert code == 2 and "Error: Missing argument" in err

    def usage(**kwargs: object) -> None:
        raise click.UsageError("No such command 'x'.")

    monkeypatch.setattr(cli_main, "app", usage)
    code, _, err = run_cli(["x"], monkeypatch, capsys)
    assert code == 2 and "Error: No such command 'x'." in err

