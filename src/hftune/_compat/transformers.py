"""transformers internals hftune relies on (transformers >= 5.6, < 6), one hook per function.

Each hook names what it relies on and what breaks without it, and raises
:class:`~hftune.errors.LibraryInternalsError` when the internal is missing or changed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Callable
from typing import Any

from hftune._compat import internal_moved

TRANSFORMERS = "transformers"
# What the hook below takes the place of: Trainer's sampler factories (transformers 4.x-5.x).
SAMPLER_METHODS = ("_get_train_sampler", "_get_eval_sampler")
# What transformers print()s on import goes here (see import_trainer): a study prints hftune's
# lines only.
LOG = logging.getLogger("hftune.libraries")


@functools.cache
def length_list_trainer(train_hook: Callable[[Any], Any],
                        eval_hook: Callable[[Any], Any]) -> type:
    """transformers' ``Trainer`` whose training sampler passes through ``train_hook`` and whose
    evaluation sampler through ``eval_hook`` (hftune's: hold a length-grouped sampler's lengths
    as a list; or keep the evaluation rows in order).

    Relies on ``Trainer._get_train_sampler`` and ``Trainer._get_eval_sampler`` (the methods
    that build the DataLoaders' samplers, since transformers 4.0): ``datasets`` hands the
    ``length`` column over as a lazy column that reads one row from Arrow at each index, and the
    sampler indexes it once per row and epoch (0.4 s for RTE's 2,490 rows each time); without
    the hook length-grouped batches cost that per epoch and evaluation.
    """
    Trainer = import_trainer()  # noqa: N806

    for name in SAMPLER_METHODS:
        if not callable(getattr(Trainer, name, None)):
            raise internal_moved(TRANSFORMERS, f"Trainer.{name}",
                                 "give length-grouped samplers a list of lengths")

    class LengthListTrainer(Trainer):
        def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
            return train_hook(super()._get_train_sampler(*args, **kwargs))

        def _get_eval_sampler(self, *args: Any, **kwargs: Any) -> Any:
            return eval_hook(super()._get_eval_sampler(*args, **kwargs))

    return LengthListTrainer


@functools.cache
def import_integrations() -> None:
    """Import transformers' integrations module with the ``print`` calls it makes on import
    going to the ``hftune.libraries`` logger (the study's ``libraries.log``), not the terminal.

    Relies on ``transformers.integrations.integration_utils`` printing
    ``[INFO] Running in WANDB offline mode`` when it is first imported with
    ``WANDB_MODE=offline`` (transformers 5; the first ``TrainingArguments`` and ``Trainer``
    import it): the first import is made here, with ``sys.stdout`` captured. Without the hook
    every study prints that line, whether or not it tracks anything in W&B.
    """
    import importlib

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        try:
            importlib.import_module("transformers.integrations.integration_utils")
        except ImportError:
            raise internal_moved(TRANSFORMERS, "transformers.integrations.integration_utils",
                                 "import the Trainer's integrations without their print()s"
                                 ) from None
    for line in captured.getvalue().splitlines():
        LOG.info("%s", line)


def import_trainer() -> type:
    """transformers' ``Trainer`` class, its integrations imported quietly first
    (:func:`import_integrations`)."""
    import_integrations()
    from transformers import Trainer

    return Trainer


def auto_class_takes(auto_class: Any, config: Any) -> bool:
    """Whether transformers has a model of ``config``'s type for ``auto_class`` (an
    ``AutoModelFor…``): a model without that head is refused before any trial.

    Relies on ``auto_class._model_mapping`` (the ``_LazyAutoMapping`` from config classes to
    model classes behind every ``AutoModelFor…``, transformers 4.x-5.x), the one list of what
    an auto class can build; without it hftune cannot tell a missing head from another
    failure before the first trial crashes on it.
    """
    mapping = getattr(auto_class, "_model_mapping", None)
    if mapping is None or not hasattr(mapping, "__contains__"):
        raise internal_moved(TRANSFORMERS, f"{getattr(auto_class, '__name__', auto_class)}"
                             "._model_mapping", "check that a model has the task type's head")
    return type(config) in mapping
