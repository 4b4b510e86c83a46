"""The ``hftune`` command: one thin module per command, registered on one Typer app."""

from __future__ import annotations

import logging
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
    """hftune's own warnings as one ``warning:`` line on stderr; the libraries' to the
    ``py.warnings`` logger (the study's ``libraries.log`` while a command runs:
    :mod:`hftune.study.library_log`; stderr otherwise)."""
    if issubclass(category, HftuneWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        logging.getLogger("py.warnings").warning(
            "%s", warnings.formatwarning(message, category, filename, lineno, line).rstrip())


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The exception classes of a command-line usage error, whichever click typer runs on:
    typer >= 0.2x raises its vendored click's, which derive from the public
    ``typer.TyperException``; an older typer raises those of the ``click`` package."""
    types: list[type[Exception]] = []
    vendored = getattr(typer, "TyperException", None)
    if isinstance(vendored, type) and issubclass(vendored, Exception):
        types.append(vendored)
    try:
        import click
    except ImportError:  # typer with its own click only
        pass
    else:
        types.append(click.ClickException)
    return tuple(types)


def _show_usage_error(exc: Exception) -> int:
    """Print a usage error as click does (the usage, a hint, ``Error: ...``) on stderr; returns
    the exit code: 2, or 0 for a bare ``hftune`` (``no_args_is_help``), whose help goes to
    stdout as for ``hftune --help`` (typer's rich help is printed while the error is made, and
    then its message is empty)."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # typer itself tells it apart by name
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:
            typer.echo(message)
        return 0
    if hasattr(exc, "show"):
        exc.show()
    else:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"Error: {message}", err=True)
    return 2


def main() -> None:
    """Console entry point: bad input is one line on stderr and exit code 2 (a usage error of
    the command line, e.g. a missing argument or an unknown option: click's usage and
    ``Error:`` line, exit code 2); hftune's warnings are one line each. A bare ``hftune``
    prints the help and exits 0."""
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
    except Exception as exc:  # usage errors arrive here in standalone_mode=False
        if isinstance(exc, _usage_error_types()):
            sys.exit(_show_usage_error(exc))
        raise
