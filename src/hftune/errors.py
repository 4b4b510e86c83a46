"""Errors that hftune reports to a user as one line (exit code 2), never as a traceback, and
the warning category the CLI prints as one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class HftuneInputError(Exception):
    """Bad input: a config, data, model or command-line value that cannot work.

    The message is one line that names the offending key or path and says how to fix it.
    The CLI prints it and exits with code 2; nothing is written to the study folder.
    """

    exit_code = 2


class ConfigError(HftuneInputError):
    """A study config that does not validate."""


class DataError(HftuneInputError):
    """Task data that cannot be read or does not match the task's declaration."""


class ModelError(HftuneInputError):
    """A model reference that cannot be loaded."""


class StudyFolderError(HftuneInputError):
    """A study folder that is locked, already finished, or not a study."""


class PolicyError(ConfigError):
    """A setting that would run, but that hftune refuses for a new study: its scores would
    mislead (``dataloader_drop_last``), or some of its trials would fail (two searched values
    that do not go together). Raised through :func:`refuse_for_new_study`, so that a study
    already run with the setting can still be reopened (:func:`waiving_policy`)."""


class LibraryInternalsError(HftuneInputError):
    """An internal of a third-party library that hftune relies on (one of the hooks in
    :mod:`hftune._compat`) is missing or changed in the installed version: the message names
    the library, its version, the internal and what would break, and how to fix it."""


class HftuneWarning(UserWarning):
    """Something a user should know that does not stop the command; the CLI prints it as one
    ``warning:`` line."""


_waived: ContextVar[list[str] | None] = ContextVar("hftune_waived_policy", default=None)


def refuse_for_new_study(message: str) -> None:
    """Raise :class:`PolicyError` with ``message``; inside :func:`waiving_policy`, record the
    message and return instead (the caller's checks go on)."""
    waived = _waived.get()
    if waived is None:
        raise PolicyError(message)
    waived.append(message)


@contextmanager
def waiving_policy() -> Iterator[list[str]]:
    """Within the block, :func:`refuse_for_new_study` records its message instead of raising;
    yields the list of recorded messages. For configs of studies that already ran: an earlier
    hftune may have accepted what this one refuses, and the study must still open."""
    token = _waived.set([])
    try:
        waived = _waived.get()
        assert waived is not None
        yield waived
    finally:
        _waived.reset(token)
