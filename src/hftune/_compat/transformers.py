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


def extra_evaluations_trainer(base: type) -> type:
    """``base`` (a ``Trainer`` class) whose every evaluation also scores the datasets given to
    ``add_extra_evaluation(prefix, dataset, compute_metrics)``, each with its own metrics
    function, their metrics added to the evaluation's as ``eval_<prefix>_<name>`` *before* the
    callbacks' ``on_evaluate`` sees them (one record per evaluation; what the strategy ranks by
    stays the main dataset's). ``eval_runtime`` then covers every dataset scored.

    Relies on ``Trainer.evaluate`` calling ``Trainer.evaluation_loop(dataloader, description,
    prediction_loss_only, ignore_keys, metric_key_prefix)`` once and then the callbacks with
    the loop's ``metrics`` dict, on the loop calling ``self.compute_metrics``, and on
    ``Trainer._get_dataloader(dataset, description, batch_size, sampler_fn, dataloader_key)``
    (transformers 5; ``get_eval_dataloader(dataset)`` would hand back the main dataset's
    loader when workers persist). ``Trainer(eval_dataset={...})`` is not used: it calls
    ``on_evaluate`` once per dataset, and each call would be a report.
    """
    for name in ("evaluation_loop", "_get_dataloader", "_get_eval_sampler"):
        if not callable(getattr(base, name, None)):
            raise internal_moved(TRANSFORMERS, f"Trainer.{name}",
                                 "score more validation splits at each evaluation")

    class ExtraEvaluationsTrainer(base):  # type: ignore[misc, valid-type]
        def add_extra_evaluation(self, prefix: str, dataset: Any,
                                 compute_metrics: Callable[[Any], dict[str, float]]) -> None:
            if not hasattr(self, "_hftune_extra"):
                self._hftune_extra: dict[str, tuple[Any, Any]] = {}
            self._hftune_extra[prefix] = (dataset, compute_metrics)

        def evaluation_loop(self, dataloader: Any, description: str,
                            prediction_loss_only: bool | None = None,
                            ignore_keys: list[str] | None = None,
                            metric_key_prefix: str = "eval") -> Any:
            output = super().evaluation_loop(dataloader, description, prediction_loss_only,
                                             ignore_keys, metric_key_prefix)
            if metric_key_prefix != "eval":
                return output
            main_metrics = self.compute_metrics
            try:
                for prefix, (dataset, metrics_fn) in getattr(self, "_hftune_extra", {}).items():
                    self.compute_metrics = metrics_fn
                    loader = self._get_dataloader(
                        dataset=dataset, description="Evaluation",
                        batch_size=self.args.eval_batch_size,
                        sampler_fn=self._get_eval_sampler, dataloader_key=f"eval_{prefix}")
                    extra = super().evaluation_loop(
                        loader, f"{description} ({prefix})",
                        prediction_loss_only, ignore_keys, f"eval_{prefix}")
                    output.metrics.update(extra.metrics)
            finally:
                self.compute_metrics = main_metrics
            return output

    return ExtraEvaluationsTrainer


def scored_evaluations_trainer(base: type) -> type:
    """``base`` (a ``Trainer`` class) whose every evaluation of the main dataset also runs the
    scorer given to ``set_scorer(scorer)``: ``scorer(model, batch_size) -> {name: value}``
    (text generation and its metrics), added to the evaluation's metrics as ``eval_<name>``
    *before* the callbacks' ``on_evaluate`` sees them (one record per evaluation).
    ``eval_runtime`` then includes the scorer's time.

    Relies on ``Trainer.evaluate`` calling ``Trainer.evaluation_loop(dataloader, description,
    prediction_loss_only, ignore_keys, metric_key_prefix)`` and then the callbacks with the
    loop's ``metrics`` (transformers 4-5); the extra validation splits' loops
    (:func:`extra_evaluations_trainer`, ``metric_key_prefix`` other than ``eval``) are not
    scored.
    """
    if not callable(getattr(base, "evaluation_loop", None)):
        raise internal_moved(TRANSFORMERS, "Trainer.evaluation_loop",
                             "generate text at each evaluation")

    class ScoredEvaluationsTrainer(base):  # type: ignore[misc, valid-type]
        def set_scorer(self, scorer: Callable[[Any, int], dict[str, float]]) -> None:
            self._hftune_scorer = scorer

        def evaluation_loop(self, dataloader: Any, description: str,
                            prediction_loss_only: bool | None = None,
                            ignore_keys: list[str] | None = None,
                            metric_key_prefix: str = "eval") -> Any:
            output = super().evaluation_loop(dataloader, description, prediction_loss_only,
                                             ignore_keys, metric_key_prefix)
            scorer = getattr(self, "_hftune_scorer", None)
            if scorer is not None and metric_key_prefix == "eval":
                scores = scorer(self.model, self.args.eval_batch_size)
                output.metrics.update({f"eval_{k}": v for k, v in scores.items()})
            return output

    return ScoredEvaluationsTrainer


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
