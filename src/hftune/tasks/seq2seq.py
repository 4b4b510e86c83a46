"""``task.type: seq2seq``: text to text with an encoder-decoder (summarisation, translation).

A row has a source text (``source_field``, default ``document``) and a target text
(``target_field``, default ``summary``). Preprocessing follows transformers'
``run_summarization.py``: the source, after ``source_prefix`` (T5-style, e.g.
``"summarize: "``), is tokenized up to ``max_length`` tokens; the target, tokenized as the
tokenizer's text target, up to ``max_target_length`` (default 128) is the labels. The model is
``AutoModelForSeq2SeqLM``. Metrics: ``loss`` and ``perplexity`` (over target tokens), and with
``evaluation.generation`` the generated summaries' ROUGE (``rouge1``, ``rouge2``, ``rougeL`` by
default), BLEU or exact match (:mod:`hftune.tasks._generation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from hftune.tasks._generation import GenerativeTaskType, check_not_empty
from hftune.tasks._rows import check_columns, check_texts
from hftune.tasks.base import TokenizedSplit


class Seq2Seq(GenerativeTaskType):
    name = "seq2seq"
    fields: ClassVar[Mapping[str, Any]] = {
        "source_field": "document", "target_field": "summary", "source_prefix": "",
        "max_target_length": 128}
    model_class = "AutoModelForSeq2SeqLM"
    pipeline_tag = "text2text-generation"

    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Columns ``source`` and ``target``; a row without either text is refused, naming
        it."""
        source, target = str(self.options["source_field"]), str(self.options["target_field"])
        out = {}
        for split, frame in frames.items():
            origin = origins.get(split, split)
            check_columns(frame, [source, target], origin, split,
                          "set task.source_field and task.target_field")
            check_texts(frame[source], source, origin)
            check_texts(frame[target], target, origin)
            check_not_empty(frame[target], target, origin, "a target")
            out[split] = pd.DataFrame({"source": frame[source].tolist(),
                                       "target": frame[target].tolist()})
        return out, ()

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        import datasets

        prefix = str(self.options.get("source_prefix") or "")
        sources = [prefix + s for s in frame["source"].tolist()]
        targets = frame["target"].tolist()
        encoded = tokenizer(sources, max_length=max_length, truncation=True)
        labels = tokenizer(text_target=targets, truncation=True,
                           max_length=int(self.options.get("max_target_length") or 128))
        columns = {k: encoded[k] for k in ("input_ids", "attention_mask") if k in encoded}
        columns["labels"] = labels["input_ids"]
        columns["length"] = [len(ids) for ids in encoded["input_ids"]]
        references = None if training else {"prompts": encoded["input_ids"],
                                            "targets": targets}
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame), references)

    def end_token(self, tokenizer: Any) -> int | None:
        """The target's last token as the tokenizer's text target ends it (T5: ``</s>``; a
        BERT vocabulary: ``[SEP]``)."""
        ids = tokenizer(text_target="a")["input_ids"]
        special = set(getattr(tokenizer, "all_special_ids", ()))
        return ids[-1] if ids and ids[-1] in special else super().end_token(tokenizer)

    def describe(self, label_names: tuple[str, ...]) -> str:
        return "sequence to sequence (a target text per source text)"
