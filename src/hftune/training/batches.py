"""What a trial's model receives: its datasets cut to the model's inputs, padded per batch.

The tokenized splits carry a ``length`` column (tokens per row, :mod:`hftune.data.tokenize`) so
that length-grouped batches (``train_sampling_strategy: group_by_length``, hftune's default)
need not measure every row again in every trial and at every evaluation. ``Trainer`` reads the
lengths from that column, but only if the dataset it samples from still has it, and with
``remove_unused_columns`` (transformers' default) it first drops every column the model's
``forward`` does not take. hftune keeps the columns itself instead: :func:`model_inputs` selects
the model's inputs, the labels and ``length``; the trial turns ``remove_unused_columns`` off;
:class:`PaddingCollator` drops ``length`` before it pads a batch.

``datasets`` hands the column over as a lazy ``Column`` that reads one row from Arrow at each
index, and the sampler indexes it once per row and epoch (0.4 s for RTE's 2,490 rows, more
than measuring the rows): :func:`trainer_class` gives the ``Trainer`` subclass whose samplers
hold the lengths as a list, read from Arrow in one pass (under 1 ms). That is the only thing it
changes (a hook on transformers' sampler methods: :mod:`hftune._compat.transformers`).
"""

from __future__ import annotations

import inspect
from typing import Any

LENGTH_COLUMN = "length"
LABEL_COLUMNS = ("labels", "label", "label_ids")


def model_inputs(dataset: Any, model: Any) -> Any:
    """``dataset`` with only the columns ``model.forward`` takes, the labels and ``length``.

    Objects that are not a ``datasets.Dataset`` (no ``column_names``) are returned unchanged.
    """
    columns = getattr(dataset, "column_names", None)
    if columns is None:
        return dataset
    from hftune.training.adapters import base_model

    # a PeftModel's forward takes **kwargs and hands them to the transformers model's
    accepted = {*inspect.signature(base_model(model).forward).parameters, *LABEL_COLUMNS,
                LENGTH_COLUMN}
    keep = [c for c in columns if c in accepted]
    return dataset if len(keep) == len(columns) else dataset.select_columns(keep)


class PaddingCollator:
    """The task type's collator (:meth:`hftune.tasks.TaskType.collator`: pads a batch to its
    longest row), given the rows without ``length``."""

    def __init__(self, pad: Any) -> None:
        self._pad = pad

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return self._pad([{k: v for k, v in f.items() if k != LENGTH_COLUMN} for f in features])


def lengths_as_list(sampler: Any) -> Any:
    """``sampler`` with its ``lengths`` as a plain list when it is length-grouped."""
    lengths = getattr(sampler, "lengths", None)
    if lengths is not None and not isinstance(lengths, list):
        sampler.lengths = column_as_list(lengths)
    return sampler


def column_as_list(column: Any) -> list[Any]:
    """A ``datasets`` ``Column`` as a list, read from Arrow in one pass (any other sequence:
    ``list(column)``)."""
    source, name = getattr(column, "source", None), getattr(column, "column_name", None)
    if name is not None and callable(getattr(source, "with_format", None)):
        return source.with_format("arrow")[name].to_pylist()
    return list(column)


def trainer_class(ordered_eval: bool = False, extra_evaluations: bool = False,
                  scored: bool = False) -> type:
    """transformers' ``Trainer``, with length-grouped samplers that hold a list of lengths
    (:func:`hftune._compat.transformers.length_list_trainer`); with ``ordered_eval`` the
    evaluation rows go in their order (a task whose metrics match predictions to features by
    position: extractive QA), not in length groups. With ``extra_evaluations`` it has
    ``add_extra_evaluation(prefix, dataset, compute_metrics)``: every evaluation also scores
    that dataset, its metrics in the same record as ``eval_<prefix>_<metric>``
    (:func:`hftune._compat.transformers.extra_evaluations_trainer`). With ``scored`` it has
    ``set_scorer(scorer)``: every evaluation of the main dataset also runs
    ``scorer(model, batch_size)`` (a task type's :meth:`~hftune.tasks.TaskType.scorer`: the
    generated-text metrics), in the same record
    (:func:`hftune._compat.transformers.scored_evaluations_trainer`)."""
    from hftune._compat.transformers import (
        extra_evaluations_trainer,
        length_list_trainer,
        scored_evaluations_trainer,
    )

    cls = length_list_trainer(lengths_as_list, in_order if ordered_eval else lengths_as_list)
    if extra_evaluations:
        cls = extra_evaluations_trainer(cls)
    return scored_evaluations_trainer(cls) if scored else cls


def in_order(sampler: Any) -> Any:
    """A length-grouped *evaluation* sampler replaced by one in the dataset's order."""
    from torch.utils.data import SequentialSampler

    if getattr(sampler, "lengths", None) is None:
        return sampler
    return SequentialSampler(range(len(sampler.lengths)))
