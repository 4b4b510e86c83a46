"""What the libraries say while hftune works goes to the study's log file, not the terminal.

A study prints hftune's own lines only. Inside :func:`library_logs`, the log records of Ray,
transformers, the trackers and the other libraries hftune drives (:data:`LIBRARY_LOGGERS`, and
the Python warnings they raise, logged as ``py.warnings``) are kept, and once the study folder
is known (:func:`attach_study_folder`, called when a command takes a study's folder) appended to
``<study>/libraries.log``; before that (the checks, the data) they are held in memory. With
``verbose`` they are also printed on stderr (``hftune run --verbose``). Outside the block the
loggers are as they were.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

LOG_FILE = "libraries.log"
# Logger names whose records (their children's too) the block takes.
LIBRARY_LOGGERS = ("ray", "transformers", "datasets", "huggingface_hub", "accelerate", "torch",
                   "mlflow", "wandb", "tensorboard", "optuna", "hpbandster", "urllib3",
                   "filelock", "py.warnings", "hftune.libraries")
# Records held before the study folder is known, at most (the oldest go first).
HELD = 10_000
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_active: list[LibraryLog] = []


class LibraryLog(logging.Handler):
    """Holds formatted records until :meth:`attach` names the study folder, then appends them
    (and every later one) to ``<folder>/libraries.log``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(FORMAT))
        self.held: collections.deque[str] = collections.deque(maxlen=HELD)
        self.file: TextIO | None = None
        self.path: Path | None = None
        self.routes: list[logging.Handler] = [self]  # this and, with verbose, stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a library's malformed record must not stop the study
            self.handleError(record)
            return
        if self.file is None:
            self.held.append(line)
        else:
            self.file.write(line + "\n")
            self.file.flush()

    def attach(self, folder: Path) -> None:
        """Write what is held, and from now on every record, to ``folder/libraries.log``."""
        path = Path(folder) / LOG_FILE
        if self.path == path:
            return
        if self.file is not None:
            self.file.close()
        self.path = path
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        for line in self.held:
            self.file.write(line + "\n")
        self.held.clear()
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        super().close()


def _configure_libraries() -> None:
    """Let the libraries set up their own logging now, not later inside the block (Ray does it
    when first imported, transformers at its first log call: either would put its handlers
    back), and import what prints on import (:func:`hftune._compat.transformers
    .import_integrations`; its lines are logged once the block has begun)."""
    import ray  # noqa: F401
    import transformers

    transformers.logging.get_verbosity()


def _library_loggers() -> list[logging.Logger]:
    """The library loggers and their children that have handlers of their own (Ray gives
    some children their own)."""
    names = set(LIBRARY_LOGGERS)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.handlers and any(
                name.startswith(root + ".") for root in LIBRARY_LOGGERS):
            names.add(name)
    return [logging.getLogger(name) for name in sorted(names)]


@contextlib.contextmanager
def library_logs(verbose: bool = False) -> Iterator[LibraryLog]:
    """Within the block, the libraries' log records (at each library's own level) go to a
    :class:`LibraryLog` (and to stderr with ``verbose``) instead of the handlers they had;
    after it, each logger has its handlers, level and ``propagate`` back."""
    _configure_libraries()
    handler = LibraryLog()
    handlers: list[logging.Handler] = [handler]
    if verbose:
        echo = logging.StreamHandler(sys.stderr)
        echo.setFormatter(logging.Formatter(FORMAT))
        handlers.append(echo)
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in _library_loggers()]
    handler.routes = handlers
    _route(handlers)
    logging.getLogger("hftune.libraries").setLevel(logging.INFO)
    _active.append(handler)
    try:
        from hftune._compat.transformers import import_integrations

        import_integrations()
        yield handler
    finally:
        _active.remove(handler)
        for logger, old_handlers, level, propagate in saved:
            logger.handlers = old_handlers
            logger.setLevel(level)
            logger.propagate = propagate
        handler.close()


def _route(handlers: list[logging.Handler]) -> None:
    for logger in _library_loggers():  # each library keeps its own level
        logger.handlers = list(handlers)
        logger.propagate = False


def reclaim() -> None:
    """Route the libraries' loggers to the active block again, after a library reset them
    (``ray.init`` removes the handlers of Ray's logger); nothing outside a block."""
    if _active:
        _route(_active[-1].routes)


def attach_study_folder(folder: Path) -> None:
    """Send the records of every active :func:`library_logs` block to ``folder``'s
    ``libraries.log`` (nothing happens outside such a block)."""
    for handler in _active:
        handler.attach(folder)
