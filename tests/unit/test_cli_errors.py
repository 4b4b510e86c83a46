"""Bad input through the real command: exit code 2, one line naming the fix, no study folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hftune.errors import HftuneInputError
from hftune.study.records import StudyRecord
from hftune.study.store import StudyStore
from hftune.testing.cli import (
    Reached,
    check_refused,
    one_line,
    reached,
    run_cli,
    unwritable_folder,
)
from hftune.testing.splits import write_splits


def test_model_path_that_does_not_exist(write_study, monkeypatch, capsys, tmp_path) -> None:
    path, out = write_study(model=str(tmp_path / "no-such-model"))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "does not exist")


def test_model_folder_without_weights(write_study, monkeypatch, capsys, tmp_path) -> None:
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    path, out = write_study(model=str(folder))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "has no weights")


def test_data_without_declared_columns(write_study, monkeypatch, capsys, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "validation"):
        (data / f"{split}.jsonl").write_text(
            '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n')
    path, out = write_study(task={"name": "pairs", "data_dir": str(data),
                                  "text_fields": ["q", "a"], "label_field": "label"})
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "lacks the text columns q/a")


def test_max_length_over_model_limit(write_study, monkeypatch, capsys) -> None:
    path, out = write_study(max_length=4096)
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "max_length: 4096 is over the model's limit of 512")


def test_unknown_key_and_yaml_error(write_study, monkeypatch, capsys) -> None:
    path, out = write_study(searchspace={})
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "searchspace: unknown key")
    path, out = write_study(text="name: [oops\n")
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "YAML syntax error")


def test_bad_set_and_negative_budget(write_study, monkeypatch, capsys) -> None:
    path, out = write_study()
    code, _, err = run_cli(["run", str(path), "--set", "budget.num_samples"], monkeypatch, capsys)
    check_refused(code, err, out, "--set 'budget.num_samples': expected KEY=VALUE")
    code, _, err = run_cli(["run", str(path), "--set", "budget.num_samples=-1"], monkeypatch,
                           capsys)
    check_refused(code, err, out, "budget.num_samples: Input should be greater than 0")


def test_status_of_a_non_study(monkeypatch, capsys, tmp_path) -> None:
    code, _, err = run_cli(["status", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "not a study folder" in err


def _custom_data(folder: Path, train: str, validation: str | None = None) -> Path:
    folder.mkdir()
    (folder / "train.jsonl").write_text(train)
    (folder / "validation.jsonl").write_text(
        validation if validation is not None else '{"text": "a", "label": 0}\n'
                                                   '{"text": "b", "label": 1}\n')
    return folder


def _custom_task(data: Path) -> dict:
    return {"name": "mine", "data_dir": str(data), "text_fields": ["text"], "label_field": "label"}


def test_unreadable_data_file(write_study, monkeypatch, capsys, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_bytes(b'\xff\xfe{"text": broken\n\x00\x01')
    (data / "validation.jsonl").write_text('{"text": "a", "label": 0}\n')
    path, out = write_study(task=_custom_task(data))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "cannot read the data file")
    assert "train.jsonl" in err


def test_empty_dataset(write_study, monkeypatch, capsys, tmp_path) -> None:
    data = _custom_data(tmp_path / "data", train="")
    path, out = write_study(task=_custom_task(data))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    assert code == 2 and "train.jsonl" in err, err
    check_refused(code, err, out, "train.jsonl: ")


def test_dataset_with_one_class(write_study, monkeypatch, capsys, tmp_path) -> None:
    rows = "".join(f'{{"text": "row {i}", "label": "yes"}}\n' for i in range(8))
    data = _custom_data(tmp_path / "data", train=rows, validation=rows)
    path, out = write_study(task=_custom_task(data))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "the training split has a single class")


def test_unreachable_address_fails_fast(write_study, monkeypatch, capsys) -> None:
    """``ray.init`` retries an unreachable address for minutes: the address is tried once with
    a TCP connect of a few seconds at most, and refused before Ray is ever asked."""
    import socket

    import ray

    from hftune.study import ray_session

    connects: list[tuple[tuple[str, int], float | None]] = []
    real_connect = socket.create_connection

    def connect(address, timeout=None, *args, **kwargs):
        connects.append((address, timeout))
        return real_connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(ray_session.socket, "create_connection", connect)
    monkeypatch.setattr(ray, "init", reached)
    with socket.socket() as s:  # a port nothing listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        path, out = write_study()
        code, _, err = run_cli(["run", str(path), "-q", "--address", f"127.0.0.1:{port}"],
                               monkeypatch, capsys)
    check_refused(code, err, out, f"--address: no Ray cluster answers at 127.0.0.1:{port}")
    assert len(connects) == 1
    (address, timeout) = connects[0]
    assert address == ("127.0.0.1", port)
    assert timeout is not None and 0 < timeout <= 5
    code, _, err = run_cli(["run", str(path), "-q", "--address", "no-port-here"],
                           monkeypatch, capsys)
    check_refused(code, err, out, "--address: 'no-port-here' is not HOST:PORT")
    assert len(connects) == 1  # not HOST:PORT: refused without a connect


def test_resume_of_a_non_study_and_of_a_missing_folder(monkeypatch, capsys, tmp_path) -> None:
    code, _, err = run_cli(["resume", str(tmp_path), "-q"], monkeypatch, capsys)
    assert code == 2 and "not a study folder" in err, err
    code, _, err = run_cli(["resume", str(tmp_path / "nothing"), "-q"], monkeypatch, capsys)
    assert code == 2 and "not a study folder" in err, err
    assert not (tmp_path / "nothing").exists()


def test_trust_remote_code_is_off_unless_the_config_says_so() -> None:
    from hftune.study.loading import validate_study

    base = {"name": "x", "model": "m", "task": "rte"}
    assert validate_study(base).trust_remote_code is False
    assert validate_study({**base, "trust_remote_code": True}).trust_remote_code is True


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hftune run`` stops where it would connect to Ray."""
    from hftune.study import runner

    monkeypatch.setattr(runner, "fit_to_cluster", reached)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_out_of_range_is_one_line(seed: int, write_study, no_ray, monkeypatch,
                                         capsys) -> None:
    path, out = write_study(seed=seed)
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, "seed: Input should be")
    assert not out.exists()


def test_a_plan_error_leaves_no_study_folder(write_study, monkeypatch) -> None:
    from hftune.study import runner
    from hftune.study.loading import load_config

    real = runner.prepare_study

    def prepare(cfg, **kwargs):
        prepared = real(cfg, **kwargs)
        monkeypatch.setattr(prepared.strategy, "plan", reached)
        return prepared

    monkeypatch.setattr(runner, "prepare_study", prepare)
    monkeypatch.setattr(runner, "fit_to_cluster", lambda prepared, address: prepared)
    monkeypatch.setattr(runner, "study_trainable", reached)
    path, out = write_study()
    with pytest.raises(Reached):
        runner.run_study(load_config(path))
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under-file", "unwritable"])
def test_an_output_dir_that_cannot_be_a_folder_is_refused_up_front(
        where: str, write_study, no_ray, monkeypatch, capsys, tmp_path: Path) -> None:
    from hftune.study import runner

    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    out = {"file": afile, "under-file": afile / "sub",
           "unwritable": unwritable_folder() if where == "unwritable" else None}[where]
    monkeypatch.setattr(runner, "prepare_study", reached)  # refused before preparing
    path, _ = write_study(output_dir=str(out))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, f"output_dir: {out}")
    assert afile.read_text() == "x"


def test_an_interrupted_study_is_named_with_an(write_study, no_ray, monkeypatch,
                                               capsys) -> None:
    path, out = write_study()
    StudyStore(out).write_study(StudyRecord(name="fix", status="running", strategy="grid",
                                            metric="accuracy", mode="max"))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, "holds an interrupted study")


def test_rerun_checks_the_address_first(tmp_path: Path) -> None:
    from hftune.study.rerun import rerun_study

    with pytest.raises(HftuneInputError, match="^--address: 'no-port-here' is not HOST:PORT"):
        rerun_study(tmp_path / "nothing", address="no-port-here")



CONTEXT = "Ann lives in Rome."
BAD_INPUT = {  # a task section of each type whose data has one bad row, and what names it
    "tags of another length": (
        {"name": "ents", "type": "token_classification"},
        [{"tokens": ["Ann", "lives"], "ner_tags": ["B-P", "O"]},
         {"tokens": ["Bo", "ran"], "ner_tags": ["B-P"]}], "row 2"),
    "a tag not in task.labels": (
        {"name": "ents", "type": "token_classification", "labels": ["O", "B-P"]},
        [{"tokens": ["Ann", "lives"], "ner_tags": ["B-P", "O"]},
         {"tokens": ["Bo", "ran"], "ner_tags": ["B-X", "O"]}], "B-X"),
    "an answer_start off its text": (
        {"name": "qa", "type": "question_answering", "doc_stride": 16},
        [{"id": "q1", "question": "Where?", "context": CONTEXT,
          "answers": {"text": ["Rome"], "answer_start": [13]}},
         {"id": "q2", "question": "Who?", "context": CONTEXT,
          "answers": {"text": ["Ann"], "answer_start": [1]}}], "id q2"),
    "choices of another number": (
        {"name": "mc", "type": "multiple_choice", "context_field": "c",
         "choices_field": "o"},
        [{"c": "x", "o": ["a", "b"], "label": 0}, {"c": "y", "o": ["a", "b", "c"], "label": 1}],
        "row 2"),
    "a regression label that is not a number": (
        {"name": "sim", "type": "regression", "text_fields": ["t"], "label_field": "y"},
        [{"t": "a", "y": 1.5}, {"t": "b", "y": "high"}], "row 2"),
    "a field missing from the data": (
        {"name": "ents", "type": "token_classification", "tokens_field": "words"},
        [{"tokens": ["Ann"], "ner_tags": ["B-P"]}, {"tokens": ["Bo"], "ner_tags": ["O"]}],
        "words"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_rows_of_each_task_type_are_one_line_with_exit_2_and_no_study_folder(
        case: str, write_study, monkeypatch, capsys, tmp_path) -> None:
    task, rows, needle = BAD_INPUT[case]
    data = write_splits(tmp_path / "data", rows, rows)
    path, out = write_study(task={**task, "data_dir": str(data)}, max_length=64)
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, needle)
    assert "train.jsonl" in err


def test_an_unknown_task_type_lists_the_types(write_study, monkeypatch, capsys) -> None:
    from hftune.tasks import TASK_TYPES

    path, out = write_study(task={"name": "x", "type": "poems"})
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    check_refused(code, err, out, "poems")
    assert all(name in err for name in TASK_TYPES)
