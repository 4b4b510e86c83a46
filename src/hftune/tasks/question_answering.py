"""``task.type: question_answering``: extractive QA in SQuAD's layout (SQuAD v1.1 and v2.0).

A row has a question (``question_field``), a context (``context_field``) and its answers
(``answers_field``: ``{"text": [...], "answer_start": [...]}``, empty lists for a question
without an answer, as in SQuAD v2.0). Preprocessing follows transformers' ``run_qa.py``: the
question and the context are tokenized as a pair, the context cut into windows of
``max_length`` tokens (default 384) overlapping by ``doc_stride`` (default 128); a window's
labels are the answer's first and last token, or the CLS token when the answer is not wholly
inside it. Evaluation runs the windows in order and turns their start and end logits into one
answer per question (:func:`hftune.tasks._squad.best_answers`); metrics, in percent as the
official scripts give them: ``f1`` (the standard one) and ``exact_match``. No-answer handling
(v2) is on when ``version_2`` is set (``squad_v2``) or the split has a question without an
answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from hftune.errors import ConfigError, DataError
from hftune.tasks._rows import check_columns, check_texts, row_name
from hftune.tasks._squad import Windows, best_answers, squad_scores
from hftune.tasks.base import Metrics, TaskType, TokenizedSplit

# tokens a (question, context) pair spends on special tokens: [CLS] q [SEP] c [SEP]
_SPECIAL = 3


def _answers(value: Any, where: str, column: str) -> tuple[list[str], list[int]]:
    if isinstance(value, Mapping):
        texts, starts = value.get("text"), value.get("answer_start")
        texts = texts.tolist() if isinstance(texts, np.ndarray) else texts
        starts = starts.tolist() if isinstance(starts, np.ndarray) else starts
        if isinstance(texts, list) and isinstance(starts, list) and len(texts) == len(starts) \
                and all(isinstance(t, str) for t in texts) \
                and all(isinstance(s, int) and not isinstance(s, bool) for s in starts):
            return texts, starts
    raise DataError(f"{where} has {value!r} in column '{column}'; answers are "
                    f'{{"text": [...], "answer_start": [...]}} with one start per text '
                    f"(empty lists: no answer)")


class QuestionAnswering(TaskType):
    name = "question_answering"
    fields: ClassVar[Mapping[str, Any]] = {
        "question_field": "question", "context_field": "context", "answers_field": "answers",
        "doc_stride": 128, "max_answer_length": 30, "version_2": None}
    model_class = "AutoModelForQuestionAnswering"
    metric_names = ("f1", "exact_match")
    pipeline_tag = "question-answering"
    with_labels = False
    ordered_eval = True
    default_max_length = 384

    def check_settings(self, max_length: int) -> None:
        stride = int(self.options.get("doc_stride") or 128)
        if stride >= max_length - _SPECIAL:
            raise ConfigError(f"task.doc_stride: {stride} leaves no room in a window of "
                              f"max_length {max_length} tokens for the question and new "
                              f"context; set doc_stride well under max_length (run_qa.py: "
                              f"128 of 384)")

    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Columns ``question``, ``context``, ``texts`` and ``starts`` (the gold answers). An
        answer whose ``answer_start`` does not point at its text in the context is refused,
        naming the row and its ``id`` where the data has one."""
        q, c, a = (str(self.options[k]) for k in ("question_field", "context_field",
                                                  "answers_field"))
        out = {}
        for split, frame in frames.items():
            origin = origins.get(split, split)
            check_columns(frame, [q, c, a], origin, split, "set task.question_field, "
                          "task.context_field, task.answers_field")
            check_texts(frame[q], q, origin)
            check_texts(frame[c], c, origin)
            ids = frame["id"].tolist() if "id" in frame.columns else None
            texts, starts = [], []
            for i, (context, value) in enumerate(zip(frame[c].tolist(), frame[a].tolist(),
                                                     strict=True)):
                where = f"{origin}: {row_name(i, origin)}" + (f" (id {ids[i]})" if ids else "")
                row_texts, row_starts = _answers(value, where, a)
                for text, start in zip(row_texts, row_starts, strict=True):
                    if context[start:start + len(text)] != text:
                        raise DataError(f"{where}: the answer {text!r} is not at answer_start "
                                        f"{start} of the context (found "
                                        f"{context[start:start + len(text)]!r}); fix the "
                                        f"offset (characters, from 0)")
                texts.append(row_texts)
                starts.append(row_starts)
            out[split] = pd.DataFrame({"question": frame[q].tolist(),
                                       "context": frame[c].tolist(),
                                       "texts": texts, "starts": starts})
        return out, ()

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        """The windows of every question, with their start and end positions (so that an
        evaluation has a loss too); an evaluation split keeps each window's question and
        context offsets in :attr:`TokenizedSplit.references`."""
        import datasets

        stride = int(self.options.get("doc_stride") or 128)
        questions = [q.lstrip() for q in frame["question"].tolist()]  # run_qa.py does too
        self._check_room(questions, tokenizer, max_length, stride)
        right = getattr(tokenizer, "padding_side", "right") == "right"
        encoded = tokenizer(questions if right else frame["context"].tolist(),
                            frame["context"].tolist() if right else questions,
                            truncation="only_second" if right else "only_first",
                            max_length=max_length, stride=stride,
                            return_overflowing_tokens=True, return_offsets_mapping=True)
        context_id = 1 if right else 0
        sample = encoded["overflow_to_sample_mapping"]
        starts_col, texts_col = frame["starts"].tolist(), frame["texts"].tolist()
        columns = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                   if k in encoded}
        start_positions, end_positions, offsets = [], [], []
        for i, spans in enumerate(encoded["offset_mapping"]):
            sequence = encoded.sequence_ids(i)
            in_context = [tuple(o) if sequence[k] == context_id else None
                          for k, o in enumerate(spans)]
            row = sample[i]
            s, e = self._positions(in_context, starts_col[row], texts_col[row])
            start_positions.append(s)
            end_positions.append(e)
            offsets.append(in_context)
        columns["start_positions"] = start_positions
        columns["end_positions"] = end_positions
        columns["length"] = [len(ids) for ids in encoded["input_ids"]]
        references = None if training else {
            "windows": Windows(list(sample), offsets),
            "contexts": frame["context"].tolist(), "answers": texts_col}
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame), references)

    @staticmethod
    def _check_room(questions: list[str], tokenizer: Any, max_length: int, stride: int) -> None:
        lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
        for i, n in enumerate(lengths):
            if n + _SPECIAL + stride >= max_length:
                raise DataError(f"question {i + 1} is {n} tokens: with doc_stride {stride} a "
                                f"window of max_length {max_length} has no room for new "
                                f"context; raise max_length or lower task.doc_stride")

    @staticmethod
    def _positions(offsets: list[tuple[int, int] | None], starts: list[int],
                   texts: list[str]) -> tuple[int, int]:
        """The first and last token of the first gold answer in this window; ``(0, 0)``
        (CLS) without an answer or when the answer is not wholly inside the window."""
        if not starts:
            return 0, 0
        begin, end = starts[0], starts[0] + len(texts[0])
        tokens = [k for k, o in enumerate(offsets) if o is not None]
        if not tokens or offsets[tokens[0]][0] > begin or offsets[tokens[-1]][1] < end:
            return 0, 0
        first = next(k for k in tokens if offsets[k][1] > begin)
        last = next(k for k in reversed(tokens) if offsets[k][0] < end)
        return first, last

    def model_config(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        return {}

    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Metrics:
        names, refs = self.metrics, split.references
        option = self.options.get("version_2")
        version_2 = bool(option) if option is not None else any(
            not a for a in refs["answers"])
        max_answer = int(self.options.get("max_answer_length") or 30)

        def compute(eval_pred: Any) -> dict[str, float]:
            start_logits, end_logits = eval_pred.predictions[:2]
            answers = best_answers(np.asarray(start_logits), np.asarray(end_logits),
                                   refs["windows"], refs["contexts"], version_2=version_2,
                                   max_answer_length=max_answer)
            scores = squad_scores(answers, refs["answers"])
            return {name: scores[name] for name in names}

        return compute

    def describe(self, label_names: tuple[str, ...]) -> str:
        return "extractive question answering (an answer span of the context per question)"
