"""The example configs in ``examples/``: each one validates, with the task type it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from hftune.study.loading import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
TYPES = {"stsb-regression": "regression", "wnut17-ner": "token_classification",
         "swag-multiple-choice": "multiple_choice", "squad-qa": "question_answering",
         "summ-seq2seq": "seq2seq", "summ-lora": "seq2seq", "sft-lora": "causal_lm"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_validates_with_its_task_type(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.task.task_type == TYPES.get(path.stem, "sequence_classification")
