"""The README's per-type configs ("Each type on your own data"): each ``task:`` block, with
its comment's row as the data, prepares a study (rows checked, tokenized, the type's model
class and metric)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_blocks() -> list[tuple[str, dict, dict]]:
    """``(type, row, config)`` of each YAML block of that README part."""
    part = README.read_text().split("Each type on your own data", 1)[1].split("\n### ", 1)[0]
    out = []
    for block in re.findall(r"```yaml\n(.*?)```", part, flags=re.S):
        comment = "".join(line.lstrip("# ").strip() for line in block.splitlines()
                          if line.startswith("#"))
        config = yaml.safe_load(block)
        out.append((config["task"]["type"], json.loads(comment), config))
    return out


BLOCKS = readme_blocks()


def test_the_readme_has_a_block_for_every_new_type() -> None:
    assert sorted(kind for kind, _, _ in BLOCKS) == sorted(
        ["regression", "multi_label", "token_classification", "question_answering",
         "multiple_choice", "seq2seq", "causal_lm"])


# the model each type needs (the others: the tiny BERT)
MODELS = {"seq2seq": "tiny_t5", "causal_lm": "tiny_llama"}


@pytest.mark.parametrize(("kind", "row", "config"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_each_readme_block_prepares_a_study(kind: str, row: dict, config: dict, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    from hftune.study.loading import validate_study
    from hftune.study.prepare import prepare_study
    from hftune.testing.splits import write_splits

    rows = [row, *_variants(kind, row)]
    task = dict(config["task"])
    task["data_dir"] = str(write_splits(tmp_path / "data", rows, rows))
    cfg = validate_study({"name": "readme", "output_dir": str(tmp_path / "out"),
                          "model": str(request.getfixturevalue(MODELS.get(kind, "tiny_bert"))),
                          "task": task, "max_length": config.get("max_length", 64),
                          "evaluation": config.get("evaluation", {}),
                          "search_space": {"learning_rate": [1e-4]}})
    prepared = prepare_study(cfg)
    assert prepared.task.type.name == kind
    assert len(prepared.tokenized.splits["train"]) == len(rows)
    assert prepared.metric == prepared.task.type.metrics[0]


def _variants(kind: str, row: dict) -> list[dict]:
    """A second row where a type needs two classes in training (the README shows one)."""
    if kind == "multiple_choice":
        return [{**row, "label": 1 - row["label"]}]
    if kind == "multi_label":
        return [{**row, "tags": []}]
    return []
