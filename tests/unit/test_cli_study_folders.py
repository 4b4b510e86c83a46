"""Commands on a study folder (export, report, replay, rerun, status, resume): an output they
must not or cannot write, a damaged ``study.json`` or ``study.yaml``, a study another process
holds. Each is one line and exit code 2, before anything is written, prepared or loaded (the
step that would is replaced by one that raises :class:`Reached`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hftune.cli.main import main
from hftune.errors import StudyFolderError
from hftune.study.store import StudyStore
from hftune.testing.cli import one_line, reached, run_cli, unwritable_folder
from hftune.testing.records import checkpoint_meta, two_trial_study


# -- M4, M5, L1: export -o and report -o ----------------------------------------------------------
@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained",
                        reached)


@pytest.mark.parametrize("where", ["trials", "inside", "under-file", "unwritable"])
def test_export_refuses_an_output_inside_the_study_or_unwritable(
        where: str, no_model, monkeypatch, capsys, tmp_path: Path) -> None:
    store = two_trial_study(tmp_path / "study")
    checkpoint_meta(store.root / "ray/t_b/checkpoint_000000", "b", 1.0, 0.75)
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = {"trials": store.trials_dir, "inside": store.root / "models" / "best",
           "under-file": afile / "sub",
           "unwritable": unwritable_folder() if where == "unwritable" else None}[where]
    code, _, err = run_cli(["export", str(store.root), "-o", str(out), "--overwrite"],
                           monkeypatch, capsys)
    one_line(code, err, "-o: ")
    assert sorted(p.name for p in store.trials_dir.iterdir()) == ["a.json", "b.json"]


@pytest.mark.parametrize("where", ["study.json", "inside", "folder", "under-file",
                                   "unwritable"])
def test_report_refuses_an_output_it_cannot_or_must_not_write(
        where: str, monkeypatch, capsys, tmp_path: Path) -> None:
    from hftune.report import data, html

    store = two_trial_study(tmp_path / "study")
    before = (store.root / "study.json").read_text()
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = {"study.json": store.root / "study.json", "inside": store.root / "r" / "x.html",
           "folder": tmp_path, "under-file": afile / "r.html",
           "unwritable": unwritable_folder() / "r.html" if where == "unwritable" else None}[where]
    monkeypatch.setattr(html, "write_html", reached)  # refused before anything is written
    if where in ("folder", "under-file", "unwritable"):  # ... or read
        monkeypatch.setattr(data, "load_studies", reached)
    code, _, err = run_cli(["report", str(store.root), "-o", str(out)], monkeypatch, capsys)
    one_line(code, err, f"-o: {out}" if where != "under-file" and where != "unwritable"
             else f"-o: cannot write {out}")
    assert (store.root / "study.json").read_text() == before


def test_report_of_a_file_says_it_is_a_file(monkeypatch, capsys, tmp_path: Path) -> None:
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    code, _, err = run_cli(["report", str(afile), "-o", str(tmp_path / "r.html")], monkeypatch,
                           capsys)
    one_line(code, err, f"{afile}: is a file, not a study folder")


@pytest.mark.parametrize("text, needle", [("name: [oops\n", "cannot be read as YAML"),
                                          ("- a\n- b\n", "not a study config (a YAML list")])
def test_a_damaged_study_yaml_is_one_line(text: str, needle: str, monkeypatch, capsys,
                                          tmp_path: Path) -> None:
    from hftune.study import reopen

    store = two_trial_study(tmp_path / "study")
    (store.root / "study.yaml").write_text(text)
    with pytest.raises(StudyFolderError, match="study.yaml: " + needle.replace("(", r"\(")):
        store.read_config()
    monkeypatch.setattr(reopen, "prepare_study", reached)
    for command in (["replay", str(store.root)], ["rerun", str(store.root)]):
        code, _, err = run_cli(command, monkeypatch, capsys)
        one_line(code, err, f"{store.root / 'study.yaml'}: {needle}")


def test_replay_refuses_a_study_another_process_runs(monkeypatch, capsys,
                                                     tmp_path: Path) -> None:
    from hftune.study import reopen, replay

    store = two_trial_study(tmp_path / "study")
    monkeypatch.setattr(reopen, "prepare_again", reached)
    monkeypatch.setattr(replay, "train_schedule", reached)
    holder = StudyStore(store.root)
    holder.acquire_lock()  # its own open file: the lock conflicts as another process's would
    try:
        code, _, err = run_cli(["replay", str(store.root)], monkeypatch, capsys)
    finally:
        holder.release_lock()
    one_line(code, err, f"{store.root}: another hftune process is running this study")


@pytest.mark.parametrize(("text", "match"), [
    ('{"name": "x"', "study.json: cannot be read as JSON"),
    ('{"name": "x"}', "study.json: not a study record .missing status, strategy, metric, mode"),
    ("[1, 2]", "study.json: not a study record .a JSON list"),
])
def test_a_bad_study_json_is_one_line(tmp_path: Path, text: str, match: str,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "study.json").write_text(text, encoding="utf-8")
    with pytest.raises(StudyFolderError, match=match):
        StudyStore(tmp_path).read_study()
    for command in (["report", str(tmp_path), "-o", str(tmp_path / "r.html")],
                    ["status", str(tmp_path)], ["resume", str(tmp_path)]):
        monkeypatch.setattr(sys, "argv", ["hftune", *command])
        with pytest.raises(SystemExit) as info:
            main()
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2, (command, err)
        assert len(err) == 1 and err[0].startswith("error: ") and "study.json" in err[0]
