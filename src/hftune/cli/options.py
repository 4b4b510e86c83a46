"""Options several commands share, defined once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

VERBOSE = typer.Option(
    False, "--verbose", "-v",
    help="Also print what Ray, transformers and the trackers log (always kept in "
         "DIR/libraries.log).")


@contextlib.contextmanager
def libraries_logged(verbose: bool, study_dir: Path | None = None) -> Iterator[None]:
    """The command's body with the libraries' log lines kept out of the terminal
    (:func:`hftune.study.library_log.library_logs`), in ``study_dir``'s ``libraries.log``
    when it is a study folder (``hftune run`` names its folder once the checks pass)."""
    from hftune.study.library_log import library_logs
    from hftune.study.store import StudyStore

    with library_logs(verbose) as log:
        if study_dir is not None and StudyStore(study_dir).exists():
            log.attach(study_dir)
        yield
