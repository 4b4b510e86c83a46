"""Errors that hftune reports to a user as one line (exit code 2), never as a traceback."""

from __future__ import annotations


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
