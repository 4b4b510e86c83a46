"""hftune: hyperparameter studies for Hugging Face fine-tuning on Ray Tune.

The Python API (:mod:`hftune.api`): :func:`run` a study, :func:`open` a study folder (a
:class:`Study`: status, trials, evaluations, best, report, export, resume, rerun). Importing
``hftune`` imports none of torch, transformers or Ray: each name loads when first used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["BestTrial", "ConfigError", "HftuneInputError", "Study", "open", "run",
           "study_config"]

_API = {"run", "open", "Study", "BestTrial", "study_config"}
_ERRORS = {"ConfigError", "HftuneInputError"}


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (``hftune.run``, ``hftune.ConfigError``)."""
    if name in _API:
        from hftune import api

        return getattr(api, name)
    if name in _ERRORS:
        from hftune import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'hftune' has no attribute {name!r}")
