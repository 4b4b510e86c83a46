"""Known task names: what ``task: rte`` (or ``task: {name: wnut17}``) fills in.

A known task gives its type, the type's options (text columns with the names the Hub and common
copies use, ...), its label names, its metrics (the first is the one a study optimises unless
``strategy.metric`` says otherwise), its validation split and where the Hub keeps it. The
config's own values win over these defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KnownTask:
    """One known task. ``hub``: ``(dataset id, config name or None)`` for ``load_dataset``."""

    name: str
    type: str
    hub: tuple[str, str | None]
    options: Mapping[str, Any] = field(default_factory=dict)
    label_names: tuple[str, ...] | None = None
    metrics: tuple[str, ...] = ()
    validation_split: str = "validation"
    # evaluated with the validation split at every evaluation and reported, not selected on
    extra_validation_splits: tuple[str, ...] = ()


def _glue(name: str, fields: tuple[tuple[str, ...], ...], labels: tuple[str, ...] | None,
          metrics: tuple[str, ...] = ("accuracy",), **extra: Any) -> KnownTask:
    kind = extra.pop("type", "sequence_classification")
    return KnownTask(name, kind, ("nyu-mll/glue", name), {"text_fields": fields}, labels,
                     metrics, **extra)


CONLL_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
WNUT_TAGS = ("O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work",
             "B-group", "I-group", "B-location", "I-location", "B-person", "I-person",
             "B-product", "I-product")

KNOWN_TASKS: dict[str, KnownTask] = {t.name: t for t in (
    _glue("rte", (("sentence1", "sentence2"), ("premise", "hypothesis")),
          ("entailment", "not_entailment")),
    _glue("sst2", (("sentence",), ("text",)), ("negative", "positive")),
    _glue("mrpc", (("sentence1", "sentence2"),), ("not_equivalent", "equivalent"),
          ("f1", "accuracy")),
    _glue("cola", (("sentence",),), ("unacceptable", "acceptable"),
          ("matthews_correlation", "accuracy")),
    _glue("qnli", (("question", "sentence"),), ("entailment", "not_entailment")),
    _glue("qqp", (("question1", "question2"),), ("not_duplicate", "duplicate"),
          ("accuracy", "f1")),
    _glue("wnli", (("sentence1", "sentence2"),), ("not_entailment", "entailment")),
    _glue("mnli", (("premise", "hypothesis"),), ("entailment", "neutral", "contradiction"),
          validation_split="validation_matched",
          extra_validation_splits=("validation_mismatched",)),
    _glue("stsb", (("sentence1", "sentence2"),), None, ("pearson", "spearman", "mse"),
          type="regression"),
    KnownTask("boolq", "sequence_classification", ("aps/super_glue", "boolq"),
              {"text_fields": (("question", "passage"),)}, ("False", "True"), ("accuracy",)),
    KnownTask("cb", "sequence_classification", ("aps/super_glue", "cb"),
              {"text_fields": (("premise", "hypothesis"),)},
              ("entailment", "contradiction", "neutral"), ("accuracy", "macro_f1")),
    KnownTask("copa", "multiple_choice", ("aps/super_glue", "copa"),
              {"context_field": "premise", "question_field": "question",
               "choices_fields": ("choice1", "choice2")}, None, ("accuracy",)),
    KnownTask("swag", "multiple_choice", ("allenai/swag", "regular"),
              {"context_field": "sent1", "question_field": "sent2",
               "choices_fields": ("ending0", "ending1", "ending2", "ending3")}, None,
              ("accuracy",)),
    KnownTask("conll2003", "token_classification", ("eriktks/conll2003", None),
              {"tokens_field": "tokens", "tags_field": "ner_tags"}, CONLL_TAGS),
    KnownTask("wnut17", "token_classification", ("leondz/wnut_17", None),
              {"tokens_field": "tokens", "tags_field": "ner_tags"}, WNUT_TAGS),
    KnownTask("squad", "question_answering", ("rajpurkar/squad", None)),
    KnownTask("squad_v2", "question_answering", ("rajpurkar/squad_v2", None),
              {"version_2": True}),
)}
