"""``task.type: question_answering``: windows over long contexts, answer positions, n-best
post-processing over the windows, and SQuAD's exact match and F1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data, normalise
from hftune.data.tasks import resolve_task
from hftune.errors import ConfigError, DataError
from hftune.tasks._squad import Windows, best_answers, normalize_answer, squad_scores, token_f1


@pytest.fixture(scope="module")
def tokenizer(tiny_bert: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bert))


@pytest.fixture(scope="module")
def squad(shared_data: Path):
    task = resolve_task(TaskConfig(name="squad"))
    return task, load_task_data(task, shared_data / "squad")


@pytest.fixture(scope="module")
def short_windows():
    """SQuAD with windows of 96 tokens overlapping by 32 (many contexts need several)."""
    return resolve_task(TaskConfig(name="squad", doc_stride=32))


def test_normalisation_and_scores_follow_the_official_script() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    # best over the gold answers; F1 on token overlap: 1 common of 2 and 2 → 0.5
    assert token_f1("Broncos won", "Denver Broncos") == pytest.approx(0.5)
    scores = squad_scores(["the Denver Broncos", "Broncos won"],
                          [["Denver Broncos"], ["Carolina", "Denver Broncos"]])
    assert scores == pytest.approx({"exact_match": 50.0, "f1": 75.0})
    # a question without an answer (v2): right only when the prediction is empty
    assert squad_scores(["", "1990"], [[], []]) == pytest.approx({"exact_match": 50.0,
                                                                 "f1": 50.0})


def test_squad_rows_are_read_with_their_answers(squad, shared_data: Path) -> None:
    task, data = squad
    assert task.type.name == "question_answering" and task.primary_metric == "f1"
    first = json.loads((shared_data / "squad" / "validation.jsonl").open().readline())
    row = data.splits["validation"].iloc[0]
    assert row["question"] == first["question"] and row["context"] == first["context"]
    assert list(row["texts"]) == first["answers"]["text"]
    assert len(data.splits["train"]) == 2001 and len(data.splits["validation"]) == 500


def test_an_answer_not_at_its_start_is_refused_naming_the_row_and_id(squad) -> None:
    task, data = squad
    frame = data.splits["train"].head(3)
    raw = {"id": ["a", "b", "c"], "question": frame["question"].tolist(),
           "context": frame["context"].tolist(),
           "answers": [{"text": list(t), "answer_start": list(s)}
                       for t, s in zip(frame["texts"], frame["starts"], strict=True)]}
    import pandas as pd

    raw["answers"][1] = {"text": raw["answers"][1]["text"],
                         "answer_start": [s + 1 for s in raw["answers"][1]["answer_start"]]}
    with pytest.raises(DataError) as info:
        normalise(task, {"train": pd.DataFrame(raw), "validation": pd.DataFrame(raw)}, "mem")
    assert "row 2" in str(info.value) and "id b" in str(info.value)


def test_every_window_label_is_the_answer_or_cls(squad, short_windows, tokenizer) -> None:
    """On real rows cut into short windows: a window whose labels are not CLS spans exactly
    the first gold answer's characters; a window is CLS only when it lacks the whole answer;
    every question keeps at least one window with its answer (the stride overlaps)."""
    task, data = squad
    frame = data.splits["train"].head(40)
    split = short_windows.type.tokenize(frame, tokenizer, 96, (), training=False)
    windows = split.references["windows"]
    seen = set()
    assert len(split.features) > len(frame)  # long contexts make several windows
    for i, feature in enumerate(split.features):
        row = frame.iloc[windows.example[i]]
        offsets = windows.offsets[i]
        s, e = feature["start_positions"], feature["end_positions"]
        begin = row["starts"][0]
        end = begin + len(row["texts"][0])
        spans = [o for o in offsets if o is not None]
        inside = spans[0][0] <= begin and spans[-1][1] >= end
        if (s, e) == (0, 0):
            assert not inside
        else:
            assert inside and offsets[s][0] <= begin < offsets[s][1]
            assert offsets[e][0] < end <= offsets[e][1]
            piece = row["context"][offsets[s][0]:offsets[e][1]]
            assert normalize_answer(row["texts"][0]) in normalize_answer(piece)
            seen.add(windows.example[i])
    assert seen == set(range(len(frame)))


def test_the_right_logits_give_the_gold_answers_through_every_window(squad, short_windows,
                                                                   tokenizer) -> None:
    """Logits that point at each window's labelled answer (and nowhere in the windows without
    it) come back as the gold answers: F1 100, after taking the best over all windows."""
    from transformers import EvalPrediction

    task, data = squad
    frame = data.splits["validation"].head(30)
    split = short_windows.type.tokenize(frame, tokenizer, 96, (), training=False)
    width = max(len(ids) for ids in split.features["input_ids"])
    starts = np.full((len(split.features), width), -10.0)
    ends = np.full((len(split.features), width), -10.0)
    for i, f in enumerate(split.features):
        if (f["start_positions"], f["end_positions"]) != (0, 0):
            starts[i, f["start_positions"]] = ends[i, f["end_positions"]] = 10.0
    compute = short_windows.type.compute_metrics(split, ())
    scores = compute(EvalPrediction((starts, ends), None))
    assert scores["f1"] == pytest.approx(100.0)


def test_the_best_span_over_two_windows_and_the_null_answer() -> None:
    context = "alpha beta gamma delta"
    #            0     6    11    17
    offsets = [None, (0, 5), (6, 10), (11, 16), None]   # window 1: alpha beta gamma
    offsets2 = [None, (6, 10), (11, 16), (17, 22), None]  # window 2: beta gamma delta
    windows = Windows([0, 0], [offsets, offsets2])
    s1 = np.array([0.0, 2.0, 0.0, 0.0, 0.0])
    e1 = np.array([0.0, 2.0, 0.0, 0.0, 0.0])        # window 1: "alpha" scores 4
    s2 = np.array([0.0, 0.0, 3.0, 0.0, 9.0])        # position 4 is not context: skipped
    e2 = np.array([0.0, 0.0, 0.0, 3.0, 0.0])        # window 2: "gamma delta" scores 6
    answers = best_answers(np.stack([s1, s2]), np.stack([e1, e2]), windows, [context],
                           version_2=False)
    assert answers == ["gamma delta"]
    # a span longer than max_answer_length is not an answer ("gamma" alone scores 3)
    short = best_answers(np.stack([s1, s2]), np.stack([e1, e2]), windows, [context],
                         version_2=False, max_answer_length=1)
    assert short == ["alpha"]
    # v2: the null answer wins when the lowest CLS score beats the best span by > threshold
    cls = np.stack([s1, s2]).copy()
    cls[:, 0] = 5.0  # CLS scores 5 + 0 on both windows; best span 6: the span stays
    assert best_answers(cls, np.stack([e1, e2]), windows, [context], version_2=True) == \
        ["gamma delta"]
    cls[:, 0] = 7.0  # CLS 7 > 6: no answer
    assert best_answers(cls, np.stack([e1, e2]), windows, [context], version_2=True) == [""]
    assert best_answers(cls, np.stack([e1, e2]), windows, [context], version_2=True,
                        null_threshold=2.0) == ["gamma delta"]


def test_a_stride_that_leaves_no_room_is_refused() -> None:
    task = resolve_task(TaskConfig(name="squad", doc_stride=200))
    task.type.check_settings(384)
    with pytest.raises(ConfigError, match="doc_stride"):
        task.type.check_settings(128)


def test_question_answering_defaults_to_windows_of_384_tokens() -> None:
    from hftune.testing.configs import study_config

    assert study_config(task="squad").max_length == 384
    assert study_config(task="squad", max_length=256).max_length == 256
    assert study_config(task="rte").max_length == 128


def test_the_model_has_a_span_head(tiny_bert: Path) -> None:
    from hftune.training.model import build_model

    task = resolve_task(TaskConfig(name="squad"))
    model = build_model(str(tiny_bert), (), {}, seed=1, task_type=task.type)
    assert type(model).__name__ == "BertForQuestionAnswering"
