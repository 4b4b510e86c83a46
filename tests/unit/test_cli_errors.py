"""Bad input through the real command: exit code 2, one line naming the fix, no study folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hftune.cli.main import main


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["hftune", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def check_refused(code: int, err: str, out_dir: Path, needle: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err
    assert not out_dir.exists()


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
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        path, out = write_study()
        started = time.monotonic()
        code, _, err = run_cli(["run", str(path), "-q", "--address", f"127.0.0.1:{port}"],
                               monkeypatch, capsys)
    assert time.monotonic() - started < 10
    check_refused(code, err, out, f"--address: no Ray cluster answers at 127.0.0.1:{port}")
    code, _, err = run_cli(["run", str(path), "-q", "--address", "no-port-here"],
                           monkeypatch, capsys)
    check_refused(code, err, out, "--address: 'no-port-here' is not HOST:PORT")


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
