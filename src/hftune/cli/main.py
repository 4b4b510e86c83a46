"""The ``hftune`` command: one thin module per command, registered on one Typer app."""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

import typer

from hftune.errors import HftuneInputError, HftuneWarning

app = typer.Typer(
    name="hftune",
    help="Hyperparameter studies for Hugging Face fine-tuning on Ray Tune.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from hftune.cli import run as run_cmd
    from hftune.cli import status as status_cmd

    app.command("run")(run_cmd.run)
    app.command("status")(status_cmd.status)
    for optional in ("report", "export", "resume", "replay", "rerun", "evaluate"):
        try:
            module = __import__(f"hftune.cli.{optional}", fromlist=[optional])
        except ModuleNotFoundError as exc:
            if exc.name != f"hftune.cli.{optional}":
                raise
            continue
        app.command(optional)(getattr(module, optional))


_register()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """hftune's own warnings as one ``warning:`` line on stderr; others as Python shows them."""
    if issubclass(category, HftuneWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main() -> None:
    """Console entry point: bad input is one line on stderr and exit code 2; hftune's warnings
    are one line each."""
    warnings.showwarning = _show_warning
    try:
        code = app(standalone_mode=False)
        # Typer returns (does not raise) the exit code of typer.Exit and of Ctrl-C (130) here.
        if isinstance(code, int) and code:
            sys.exit(code)
    except HftuneInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        raise
