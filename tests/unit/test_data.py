"""Task data: local folders (JSONL/CSV/TSV), field aliases, label mapping, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import find_data_dir, load_task_data, normalise, read_split_file
from hftune.data.tasks import resolve_task
from hftune.data.tokenize import tokenize_task
from hftune.errors import ConfigError, DataError
from hftune.testing.cli import one_line_error


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_rte_from_shared_data(shared_data: Path) -> None:
    task = resolve_task(TaskConfig(name="rte"))
    data = load_task_data(task, shared_data / "rte")
    raw = pd.read_json(shared_data / "rte" / "train.jsonl", lines=True)
    assert list(data.splits["train"].columns) == ["text_a", "text_b", "label"]
    assert data.splits["train"]["text_a"].tolist() == raw["premise"].tolist()
    assert data.splits["train"]["text_b"].tolist() == raw["hypothesis"].tolist()
    assert data.label_names == ("entailment", "not_entailment")
    assert len(data.splits["train"]) == 2490 and len(data.splits["validation"]) == 277
    # RTE validation: 146 entailment (0) / 131 not_entailment (1), as its README says.
    assert data.splits["validation"]["label"].value_counts().to_dict() == {0: 146, 1: 131}


def test_hftune_data_dir_root_is_used(shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("HFTUNE_DATA_DIR", str(shared_data))
    data = load_task_data(resolve_task(TaskConfig(name="sst2")))
    assert data.source.endswith("sst2")
    assert list(data.splits["train"].columns) == ["text_a", "label"]  # one text: sentence


def test_glue_tsv_with_string_labels(shared_data: Path, tmp_path: Path) -> None:
    # The original GLUE files: sentence1/sentence2 columns, string labels, unquoted TSV.
    folder = tmp_path / "rte"
    folder.mkdir()
    src = shared_data / "rte" / "original" / "glue"
    (folder / "train.tsv").write_bytes((src / "train.tsv").read_bytes())
    (folder / "validation.tsv").write_bytes((src / "dev.tsv").read_bytes())
    data = load_task_data(resolve_task(TaskConfig(name="rte")), folder)
    assert len(data.splits["train"]) == 2490
    tsv = pd.read_csv(folder / "train.tsv", sep="\t", quoting=3, dtype=str)
    assert data.splits["train"]["text_a"].tolist() == tsv["sentence1"].tolist()
    ref = load_task_data(resolve_task(TaskConfig(name="rte")), shared_data / "rte")
    assert data.splits["validation"]["label"].tolist() == ref.splits["validation"]["label"].tolist()


def test_custom_pair_task_with_string_labels(tmp_path: Path) -> None:
    rows = [{"q": f"question {i}", "a": f"answer {i}", "verdict": ["yes", "no", "maybe"][i % 3]}
            for i in range(12)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "dev.jsonl", rows[:6])
    cfg = TaskConfig(name="qa-verdict", text_fields=["q", "a"], label_field="verdict",
                     validation_split="dev")
    data = load_task_data(resolve_task(cfg), tmp_path)
    assert data.label_names == ("maybe", "no", "yes")  # sorted when not declared
    assert data.splits["dev"]["label"].tolist()[:3] == [2, 1, 0]


def test_integer_labels_not_from_zero_are_names_not_ids(tmp_path: Path) -> None:
    """Stars 1 and 2 (Yelp-polarity style) are two classes, not ids 0..2 with a phantom 0;
    2.0 read from a float column is the class "2"."""
    rows = [{"text": f"review {i}", "stars": [1, 2][i % 2]} for i in range(8)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", [{"text": "x", "stars": 2.0},
                                                {"text": "y", "stars": 1}])
    cfg = TaskConfig(name="stars", text_fields=["text"], label_field="stars")
    data = load_task_data(resolve_task(cfg), tmp_path)
    assert data.label_names == ("1", "2")
    assert data.splits["train"]["label"].tolist()[:2] == [0, 1]
    assert data.splits["validation"]["label"].tolist() == [1, 0]
    zero_based = [{"text": "a", "stars": 0}, {"text": "b", "stars": 2}]  # ids: class 1 unseen
    write_jsonl(tmp_path / "train.jsonl", zero_based)
    assert load_task_data(resolve_task(cfg), tmp_path).label_names == ("0", "1", "2")


def test_custom_task_needs_fields() -> None:
    with pytest.raises(ConfigError, match="custom task must declare task.text_fields"):
        resolve_task(TaskConfig(name="mine"))


def test_missing_text_columns(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}])
    write_jsonl(tmp_path / "validation.jsonl", [{"text": "a", "label": 0}])
    with pytest.raises(DataError, match="lacks the text columns sentence1/sentence2"):
        load_task_data(resolve_task(TaskConfig(name="rte")), tmp_path)


def test_label_outside_the_task(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"sentence": "a", "label": 0},
                                           {"sentence": "b", "label": 7}])
    write_jsonl(tmp_path / "validation.jsonl", [{"sentence": "a", "label": 0}])
    with pytest.raises(DataError, match=r"label 7 is not one of the task's labels"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)


def test_one_class_is_an_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"sentence": "a", "label": 1}] * 3)
    write_jsonl(tmp_path / "validation.jsonl", [{"sentence": "a", "label": 0}])
    with pytest.raises(DataError, match="single class"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("")
    write_jsonl(tmp_path / "validation.jsonl", [{"sentence": "a", "label": 0}])
    with pytest.raises(DataError, match="no rows|cannot read"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)
    (tmp_path / "train.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="cannot read the data file"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)


def test_missing_split_file_and_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"sentence": "a", "label": 0}])
    with pytest.raises(DataError, match="no file for split 'validation'"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path / "nope")


def test_tokenize_truncates_without_padding(shared_data: Path, tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    task = resolve_task(TaskConfig(name="rte"))
    data = load_task_data(task, shared_data / "rte")
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    frames = {"train": data.splits["train"].iloc[:50], "validation": data.splits["validation"]}
    out = tokenize_task(task.type, frames, tok, 32, data.label_names, "train")
    train = out.splits["train"].features
    assert len(train) == 50 and len(out.splits["validation"]) == 277
    lengths = {len(x) for x in train["input_ids"]}
    assert max(lengths) == 32 and len(lengths) > 1  # truncated, not padded
    assert train["length"] == [len(x) for x in train["input_ids"]]  # for length grouping
    assert train["labels"][:5] == data.splits["train"]["label"].tolist()[:5]


def test_missing_label_column(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"q": "a", "a": "b", "gold": 0},
                                           {"q": "c", "a": "d", "gold": 1}])
    write_jsonl(tmp_path / "validation.jsonl", [{"q": "a", "a": "b", "gold": 0}])
    cfg = TaskConfig(name="mine", text_fields=["q", "a"], label_field="verdict")
    with pytest.raises(DataError, match="no label column 'verdict'; columns found: q, a, gold"):
        load_task_data(resolve_task(cfg), tmp_path)


def test_a_hub_split_that_does_not_exist_is_one_line(monkeypatch) -> None:
    """validation_split: dev on GLUE/RTE names the splits there are (no KeyError traceback)."""
    import datasets

    from hftune.data.loading import _load_from_hub

    hub = datasets.DatasetDict({name: datasets.Dataset.from_dict({"label": [0]})
                                for name in ("train", "validation", "test")})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: hub)
    task = resolve_task(TaskConfig(name="rte", validation_split="dev"))
    with pytest.raises(DataError, match="has no split 'dev'; its splits: train, validation, test"):
        _load_from_hub(task, ["train", "dev"])


def test_unlabelled_rows_say_so(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"sentence": "a", "label": 0},
                                           {"sentence": "b", "label": 1}])
    write_jsonl(tmp_path / "validation.jsonl", [{"sentence": "a", "label": -1}])
    with pytest.raises(DataError, match="-1 marks an unlabelled row"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)


def test_a_row_limit_that_keeps_one_class_is_an_error(tmp_path: Path, tiny_bert: Path) -> None:
    """max_train_samples keeps the first rows: a file sorted by label would train on one
    class; the check runs on the rows the trials get."""
    from hftune.study.loading import validate_study
    from hftune.study.prepare import prepare_study

    rows = [{"sentence": f"s {i}", "label": int(i >= 6)} for i in range(8)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows[:4])
    cfg = validate_study({"name": "x", "model": str(tiny_bert), "max_length": 16,
                          "task": {"name": "sst2", "data_dir": str(tmp_path),
                                   "max_train_samples": 4},
                          "search_space": {"learning_rate": [1e-3]}})
    with pytest.raises(DataError, match="the first 4 training rows hold a single class"):
        prepare_study(cfg)


@pytest.mark.parametrize(("splits", "keys"), [
    ({"test_split": "validation"}, ("task.test_split", "task.validation_split")),
    ({"test_split": "train"}, ("task.test_split", "task.train_split")),
    ({"validation_split": "train"}, ("task.validation_split", "task.train_split")),
    ({"train_split": "validation"}, ("task.validation_split", "task.train_split")),
])
def test_overlapping_split_names_are_refused(splits: dict, keys: tuple[str, str]) -> None:
    """The same split under two roles trains on its own selection rows (leakage) or, as test
    split, is popped from the data the trials evaluate on; one line names both keys (the last:
    GLUE's default validation split is 'validation')."""
    with pytest.raises(ConfigError, match=rf"{keys[0]} and {keys[1]} both name the split"):
        resolve_task(TaskConfig(name="rte", **splits))


def test_test_split_equal_to_validation_points_at_holdout(tmp_path: Path) -> None:
    """Half of the dev set held out (the RTE reference) is evaluation.holdout; the message says
    so. A ResolvedTask made any other way is checked too."""
    import dataclasses

    with pytest.raises(ConfigError, match="set evaluation.holdout"):
        resolve_task(TaskConfig(name="mine", text_fields=["t"], test_split="validation"))
    task = resolve_task(TaskConfig(name="rte", test_split="test"))
    with pytest.raises(ConfigError, match="task.test_split and task.validation_split"):
        dataclasses.replace(task, test_split="validation")


def _write_table(path: Path, sep: str, rows: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{a}{sep}{b}\n" for a, b in [("sentence", "label"), *rows]))


@pytest.mark.parametrize(("suffix", "sep", "blank"), [(".csv", ",", ""), (".tsv", "\t", "  ")])
def test_an_empty_label_cell_is_missing_not_a_class(tmp_path: Path, suffix: str, sep: str,
                                                    blank: str) -> None:
    """A custom task without declared labels would otherwise get '' as a third class."""
    _write_table(tmp_path / f"train{suffix}", sep,
                 [("a", "pos"), ("b", "neg"), ("c", blank), ("d", "pos")])
    _write_table(tmp_path / f"validation{suffix}", sep, [("a", "pos"), ("b", "neg")])
    cfg = TaskConfig(name="mine", text_fields=["sentence"])
    with pytest.raises(DataError, match=rf"train\{suffix}: row 3 \(line 4\) has no label"):
        load_task_data(resolve_task(cfg), tmp_path)


def test_missing_labels_in_other_splits_and_json(tmp_path: Path) -> None:
    """Declared labels, an empty cell in the validation file; a JSON null in a JSONL file."""
    _write_table(tmp_path / "train.csv", ",", [("a", "0"), ("b", "1")])
    _write_table(tmp_path / "validation.csv", ",", [("a", "1"), ("b", "")])
    with pytest.raises(DataError, match=r"validation\.csv: row 2 \(line 3\) has no label"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)
    (tmp_path / "validation.csv").unlink()
    write_jsonl(tmp_path / "validation.jsonl", [{"sentence": "a", "label": None}])
    with pytest.raises(DataError, match=r"validation\.jsonl: row 1 has no label"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)


def test_a_json_file_in_json_lines_format(tmp_path: Path) -> None:
    """``Dataset.to_json`` writes JSON Lines to a .json file; a JSON array still reads."""
    import datasets

    rows = {"sentence": ["a", "b", "c"], "label": [0, 1, 0]}
    datasets.Dataset.from_dict(rows).to_json(tmp_path / "train.json")
    (tmp_path / "validation.json").write_text(json.dumps([{"sentence": "x", "label": 1},
                                                          {"sentence": "y", "label": 0}]))
    data = load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)
    assert data.splits["train"]["label"].tolist() == [0, 1, 0]
    assert data.splits["validation"]["text_a"].tolist() == ["x", "y"]
    (tmp_path / "train.json").write_text('{"sentence": "a", "label": 0}\n{oops\n')
    with pytest.raises(DataError, match=r"train\.json: cannot read the data file \(neither JSON "
                                        r"nor JSON Lines"):
        load_task_data(resolve_task(TaskConfig(name="sst2")), tmp_path)


def _custom(frame: pd.DataFrame, **task: Any) -> Any:
    resolved = resolve_task(TaskConfig(name="mine", text_fields=task.pop("text_fields", ["text"]),
                                       label_field=task.pop("label_field", "label"), **task))
    good = pd.DataFrame({"text": ["a", "b"], "label": ["neg", "pos"]})
    return normalise(resolved, {"train": frame, "validation": good}, "/d",
                     {"train": "/d/train.jsonl", "validation": "/d/validation.csv"})


@pytest.mark.parametrize(("cell", "message"), [
    (None, "/d/train.jsonl: row 2 has no text in column 'text' (missing or null)"),
    (float("nan"), "/d/train.jsonl: row 2 has no text in column 'text' (missing or null)"),
    (["a", "b"], "/d/train.jsonl: row 2 has ['a', 'b'] (a list) in the text column 'text', "
                 "not text"),
    (7, "/d/train.jsonl: row 2 has 7 (a int) in the text column 'text', not text"),
])
def test_a_text_cell_that_is_not_text_names_the_file_and_row(cell: Any, message: str) -> None:
    frame = pd.DataFrame({"text": ["fine", cell, "ok"], "label": ["neg", "pos", "neg"]})
    assert message in one_line_error(DataError, _custom, frame)


def test_a_jsonl_row_without_the_text_key_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": 0}\n{"label": 1}\n')
    text = one_line_error(DataError, _custom, read_split_file(path))
    assert "/d/train.jsonl: row 2 has no text in column 'text'" in text


@pytest.mark.parametrize("label", [{"a": 0}, [0, 1]])
def test_a_label_that_is_not_one_value_names_the_row(label: Any) -> None:
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["neg", label, "pos"]})
    text = one_line_error(DataError, _custom, frame)
    assert text.startswith(f"/d/train.jsonl: row 2 has the label {label!r} "
                           f"(a {type(label).__name__}) in column 'label'")


def test_a_label_field_that_is_also_a_text_field_is_refused() -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": [0, 1]})
    text = one_line_error(ConfigError, _custom, frame, text_fields=["label"])
    assert text.startswith("task.label_field: 'label' is also a text field (label)")


def test_a_csv_row_counts_from_the_header_line() -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["neg", "pos"]})
    bad = pd.DataFrame({"text": ["a", None], "label": ["neg", "pos"]})
    resolved = resolve_task(TaskConfig(name="mine", text_fields=["text"], label_field="label"))
    with pytest.raises(DataError, match=r"^/d/validation.csv: row 2 \(line 3\) has no text"):
        normalise(resolved, {"train": frame, "validation": bad}, "/d",
                  {"train": "/d/train.jsonl", "validation": "/d/validation.csv"})


@pytest.mark.parametrize(("name", "content", "line", "fields"), [
    ("train.tsv", "text\tlabel\na\tpos\tEXTRA\nb\tneg\n", 2, 3),
    ("train.tsv", "text\tlabel\na\tpos\tX\nb\tneg\tY\n", 2, 3),  # every row: was silent
    ("train.csv", "text,label\na,pos\nb\n", 3, 1),
    ("train.csv", 'text,label\n"a, b",pos\n"c\nd",neg\ne,pos,x\n', 5, 3),  # quoted line break
])
def test_a_row_of_another_width_names_its_line(tmp_path: Path, name: str, content: str,
                                               line: int, fields: int) -> None:
    path = tmp_path / name
    path.write_text(content)
    text = one_line_error(DataError, read_split_file, path)
    assert text.startswith(f"{path}: line {line} has {fields} fields, but the header has 2")


def test_quoted_commas_and_blank_lines_are_one_field_and_no_row(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"a, b",pos\n\nc,neg\n')
    frame = read_split_file(path)
    assert frame["text"].tolist() == ["a, b", "c"] and frame["label"].tolist() == ["pos", "neg"]
    path.write_text('text,label\n"a, b",pos\n\nc,neg,x\n')
    assert f"{path}: line 4 has 3 fields" in one_line_error(DataError, read_split_file, path)


def test_a_data_dir_that_is_a_file_says_so(shared_data: Path) -> None:
    data = shared_data / "rte" / "train.jsonl"
    task = resolve_task(TaskConfig(name="rte"))
    assert one_line_error(DataError, find_data_dir, task, data).startswith(
        f"task.data_dir: '{data}' is a file, not a folder; point task.data_dir (or --data-dir)")
