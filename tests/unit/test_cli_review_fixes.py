"""The CLI review's findings (H1, H2, H4, M1, M4-M6, M8, M12, M13, L1, L6, L8, L9): each
mistake is one line and exit code 2, refused before anything is written, prepared or loaded.

Nothing here starts Ray or trains: the step that would (``fit_to_cluster``, ``connect_ray``,
``prepare_again``, model loading) is replaced by one that raises :class:`Reached`, so a check
that is missing shows as that exception, not as a run.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hftune.cli.main import main
from hftune.errors import ConfigError, HftuneInputError, StudyFolderError
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.store import StudyStore
from hftune.training.checkpoint import write_meta


class Reached(Exception):
    """Raised where the command would go on to Ray, training or model loading."""


def _reached(*args: object, **kwargs: object) -> None:
    raise Reached("went past the checks")


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["hftune", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def one_line(code: int, err: str, needle: str) -> str:
    """The single ``error:`` line of a refusal (exit code 2) that contains ``needle``."""
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hftune run`` stops where it would connect to Ray."""
    from hftune.study import runner

    monkeypatch.setattr(runner, "fit_to_cluster", _reached)


def _study(root: Path, *, best: str = "b", config: dict | None = None) -> StudyStore:
    """A finished two-trial study folder (trials a, b; b best), no checkpoints."""
    store = StudyStore(root)
    store.write_study(StudyRecord(name="toy", status="finished", strategy="grid",
                                  metric="accuracy", mode="max", label_names=["yes", "no"],
                                  best_trial_id=best, best_value=0.75))
    store.write_config(config or {"name": "toy", "model": "m", "task": {"name": "rte"}})
    for trial_id, value in (("a", 0.5), ("b", 0.75)):
        store.write_trial(TrialRecord(trial_id=trial_id, config={"learning_rate": 1e-3},
                                      state="finished",
                                      reports=[{"epoch": 1.0, "step": 10, "accuracy": value}]))
    return store


def _checkpoint(root: Path, trial_id: str = "b") -> Path:
    folder = root / "ray" / f"t_{trial_id}" / "checkpoint_000000"
    folder.mkdir(parents=True)
    write_meta(folder, trial_id=trial_id, epoch=1.0, global_step=10, config={},
               record={"epoch": 1.0, "step": 10, "accuracy": 0.75})
    return folder


def _unwritable() -> Path:
    """A folder nothing can be made in, even by root (a virtual file system)."""
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    return Path("/proc/hftune-no-such-folder")


# -- H1: usage errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["status"], ["frobnicate"], ["rerun", "x", "--top", "0"],
                                  ["run", "x.yaml", "--sett", "a=b"], ["export", "x"],
                                  ["rerun", "x", "--seeds", "five"]])
def test_usage_errors_are_clicks_usage_and_exit_2(args: list[str], monkeypatch, capsys) -> None:
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("Usage: ")
    assert [line for line in err.splitlines() if line.startswith("Error: ")], err


def test_bare_hftune_prints_the_help_and_exits_0(monkeypatch, capsys) -> None:
    code, out, err = run_cli([], monkeypatch, capsys)
    assert code == 0, err
    assert "Usage" in out and "run" in out and "Traceback" not in err


def test_usage_errors_of_typers_click_and_of_plain_click(monkeypatch, capsys) -> None:
    """typer's own (vendored) click error, and, under a typer that runs on the ``click``
    package, that package's: both are click's usage lines and exit code 2."""
    import click

    from hftune.cli import main as cli_main

    code, _, err = run_cli(["status"], monkeypatch, capsys)
    assert code == 2 and "Error: Missing argument" in err

    def usage(**kwargs: object) -> None:
        raise click.UsageError("No such command 'x'.")

    monkeypatch.setattr(cli_main, "app", usage)
    code, _, err = run_cli(["x"], monkeypatch, capsys)
    assert code == 2 and "Error: No such command 'x'." in err


# -- H2: seed range; the plan before the study folder ---------------------------------------------
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
        monkeypatch.setattr(prepared.strategy, "plan", _reached)
        return prepared

    monkeypatch.setattr(runner, "prepare_study", prepare)
    monkeypatch.setattr(runner, "fit_to_cluster", lambda prepared, address: prepared)
    monkeypatch.setattr(runner, "study_trainable", _reached)
    path, out = write_study()
    with pytest.raises(Reached):
        runner.run_study(load_config(path))
    assert not out.exists()


# -- H4, L6, L9: output_dir -----------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "under-file", "unwritable"])
def test_an_output_dir_that_cannot_be_a_folder_is_refused_up_front(
        where: str, write_study, no_ray, monkeypatch, capsys, tmp_path: Path) -> None:
    from hftune.study import runner

    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    out = {"file": afile, "under-file": afile / "sub",
           "unwritable": _unwritable() if where == "unwritable" else None}[where]
    monkeypatch.setattr(runner, "prepare_study", _reached)  # refused before preparing
    path, _ = write_study(output_dir=str(out))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, f"output_dir: {out}")
    assert afile.read_text() == "x"


def test_output_dir_expands_home_and_refuses_empty(monkeypatch, tmp_path: Path) -> None:
    from hftune.study.loading import validate_study

    monkeypatch.setenv("HOME", str(tmp_path))
    base = {"name": "x", "model": "m", "task": "rte"}
    assert validate_study({**base, "output_dir": "~/runs/x"}).study_dir == tmp_path / "runs/x"
    with pytest.raises(ConfigError, match="^output_dir: empty"):
        validate_study({**base, "output_dir": ""})


def test_an_interrupted_study_is_named_with_an(write_study, no_ray, monkeypatch,
                                               capsys) -> None:
    path, out = write_study()
    StudyStore(out).write_study(StudyRecord(name="fix", status="running", strategy="grid",
                                            metric="accuracy", mode="max"))
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, "holds an interrupted study")


# -- M1: per-trial resources larger than the machine ----------------------------------------------
@pytest.fixture
def fit_check(monkeypatch: pytest.MonkeyPatch):
    """``fit_to_cluster`` on a config with ``resources``, on a machine of 2 CPUs and 1 GPU
    (local, before Ray: ``connect_ray`` raises :class:`Reached`)."""
    import ray

    from hftune.study import preflight, runner
    from hftune.study.loading import validate_study
    from hftune.study.prepare import default_resources

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(runner, "connect_ray", _reached)
    monkeypatch.setattr(preflight, "machine_shape", lambda: (2.0, 1))

    @dataclass
    class Prepared:  # the fields fit_to_cluster reads of a PreparedStudy
        config: Any
        resources: Any

    def fit(resources: dict, address: str | None = None) -> Any:
        cfg = validate_study({"name": "x", "model": "m", "task": "rte", "resources": resources})
        prepared = Prepared(cfg, default_resources(cfg, total_cpus=2.0, total_gpus=1))
        return runner.fit_to_cluster(prepared, address)

    return fit


def test_more_cpus_or_gpus_per_trial_than_the_machine_are_refused(fit_check) -> None:
    with pytest.raises(ConfigError, match=r"^resources\.cpus_per_trial: 64 CPUs per trial, "
                                          r"but this machine has 2;"):
        fit_check({"cpus_per_trial": 64})
    with pytest.raises(ConfigError, match=r"^resources\.gpus_per_trial: 8 GPUs per trial, "
                                          r"but this machine has 1;"):
        fit_check({"gpus_per_trial": 8})
    for fits in ({"cpus_per_trial": 2}, {"gpus_per_trial": 0.5}, {"gpus_per_trial": 1},
                 {}):
        with pytest.raises(Reached):  # checked, then on to Ray
            fit_check(fits)


def test_on_a_cluster_a_trial_must_fit_one_node(fit_check, monkeypatch) -> None:
    import ray

    from hftune.study import ray_session, runner

    nodes = [{"Alive": True, "Resources": {"CPU": 64.0}},
             {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}},
             {"Alive": False, "Resources": {"CPU": 256.0, "GPU": 8.0}}]
    monkeypatch.setattr(runner, "connect_ray", lambda address: None)
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    monkeypatch.setattr(ray_session, "cluster_node_shape", lambda: (16.0, 2))
    fitted = fit_check({"cpus_per_trial": 32, "gpus_per_trial": 0}, "head:6379")
    assert fitted.resources.cpus_per_trial == 32  # the 64-CPU node takes it
    with pytest.raises(ConfigError, match=r"^resources\.cpus_per_trial: 128 CPUs per trial, "
                                          r"but the largest node of the Ray cluster at "
                                          r"head:6379 has 64;"):
        fit_check({"cpus_per_trial": 128}, "head:6379")
    with pytest.raises(ConfigError, match=r"no node of the Ray cluster at head:6379 has 32 "
                                          r"CPUs and 1 GPUs together"):
        fit_check({"cpus_per_trial": 32, "gpus_per_trial": 1}, "head:6379")


def test_resources_over_the_machine_through_the_cli(write_study, monkeypatch, capsys) -> None:
    import ray

    from hftune.study import runner

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(runner, "connect_ray", _reached)
    path, out = write_study(resources={"cpus_per_trial": 100_000})
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, "resources.cpus_per_trial: 100000 CPUs per trial, but this machine has")
    assert not out.exists()
    path, out = write_study(resources={"gpus_per_trial": 1.5})
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, "resources.gpus_per_trial: a trial takes a share of one GPU")


# -- M4, M5, L1: export -o and report -o ----------------------------------------------------------
@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained",
                        _reached)


@pytest.mark.parametrize("where", ["trials", "inside", "under-file", "unwritable"])
def test_export_refuses_an_output_inside_the_study_or_unwritable(
        where: str, no_model, monkeypatch, capsys, tmp_path: Path) -> None:
    store = _study(tmp_path / "study")
    _checkpoint(store.root)
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = {"trials": store.trials_dir, "inside": store.root / "models" / "best",
           "under-file": afile / "sub",
           "unwritable": _unwritable() if where == "unwritable" else None}[where]
    code, _, err = run_cli(["export", str(store.root), "-o", str(out), "--overwrite"],
                           monkeypatch, capsys)
    one_line(code, err, "-o: ")
    assert sorted(p.name for p in store.trials_dir.iterdir()) == ["a.json", "b.json"]


@pytest.mark.parametrize("where", ["study.json", "inside", "folder", "under-file",
                                   "unwritable"])
def test_report_refuses_an_output_it_cannot_or_must_not_write(
        where: str, monkeypatch, capsys, tmp_path: Path) -> None:
    from hftune.report import data, html

    store = _study(tmp_path / "study")
    before = (store.root / "study.json").read_text()
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = {"study.json": store.root / "study.json", "inside": store.root / "r" / "x.html",
           "folder": tmp_path, "under-file": afile / "r.html",
           "unwritable": _unwritable() / "r.html" if where == "unwritable" else None}[where]
    monkeypatch.setattr(html, "write_html", _reached)  # refused before anything is written
    if where in ("folder", "under-file", "unwritable"):  # ... or read
        monkeypatch.setattr(data, "load_studies", _reached)
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


# -- M6: a damaged study.yaml or lineage.jsonl ----------------------------------------------------
@pytest.mark.parametrize("text, needle", [("name: [oops\n", "cannot be read as YAML"),
                                          ("- a\n- b\n", "not a study config (a YAML list")])
def test_a_damaged_study_yaml_is_one_line(text: str, needle: str, monkeypatch, capsys,
                                          tmp_path: Path) -> None:
    from hftune.study import reopen

    store = _study(tmp_path / "study")
    (store.root / "study.yaml").write_text(text)
    with pytest.raises(StudyFolderError, match="study.yaml: " + needle.replace("(", r"\(")):
        store.read_config()
    monkeypatch.setattr(reopen, "prepare_study", _reached)
    for command in (["replay", str(store.root)], ["rerun", str(store.root)]):
        code, _, err = run_cli(command, monkeypatch, capsys)
        one_line(code, err, f"{store.root / 'study.yaml'}: {needle}")


def test_lineage_skips_a_cut_last_line_and_refuses_a_bad_one_before(tmp_path: Path) -> None:
    store = _study(tmp_path / "study")
    event = {"time": 1.0, "from_trial": "a", "to_trial": "b", "epoch": 1.0, "new_config": {}}
    path = store.root / "lineage.jsonl"
    path.write_text(json.dumps(event) + "\n" + '{"time": 2.0, "from_tri')
    assert store.read_lineage() == [event]
    path.write_text('{"time": 2.0, "from_tri\n' + json.dumps(event) + "\n")
    with pytest.raises(StudyFolderError, match=r"lineage.jsonl: line 1 is not a JSON object"):
        store.read_lineage()


@pytest.mark.parametrize("event, needle", [
    ({"to_trial": "b", "epoch": 1.0, "new_config": {}}, "lacks time, from_trial"),
    ({"time": 1.0, "from_trial": "a", "to_trial": "b"}, "lacks epoch, new_config"),
    ({"time": "x", "from_trial": "a", "to_trial": "b", "epoch": 1.0, "new_config": {}},
     "time is not a number"),
    ({"time": 1.0, "from_trial": "zz", "to_trial": "b", "epoch": 1.0, "new_config": {}},
     "copies trial 'zz', which has no record")])
def test_pbt_schedule_refuses_an_event_it_cannot_follow(event: dict, needle: str) -> None:
    from hftune.study.replay import pbt_schedule

    trials = [TrialRecord(trial_id=t, config={"lr": 1}) for t in ("a", "b")]
    with pytest.raises(StudyFolderError, match=needle):
        pbt_schedule(trials, [event], "b")


# -- M8: checkpoint metadata of the wrong shape ---------------------------------------------------
@pytest.mark.parametrize("meta", [{"epoch": "three"}, [1, 2],
                                  {"trial_id": "b", "epoch": "three", "global_step": 1},
                                  {"trial_id": "b", "epoch": 1.0, "global_step": [1]},
                                  {"trial_id": "b", "epoch": 1.0, "global_step": 1,
                                   "config": "abc"}])
def test_scan_skips_a_checkpoint_whose_meta_is_not_hftunes(meta: object,
                                                           tmp_path: Path) -> None:
    from hftune.study.checkpoints import scan_checkpoints

    good = _checkpoint(tmp_path, "a")
    bad = tmp_path / "ray" / "t_b" / "checkpoint_000000"
    bad.mkdir(parents=True)
    (bad / "hftune.json").write_text(json.dumps(meta))
    assert [c.path for c in scan_checkpoints(tmp_path / "ray")] == [good]


# -- M12, M13: rerun's address, replay of a running study -----------------------------------------
def test_rerun_checks_the_address_first(tmp_path: Path) -> None:
    from hftune.study.rerun import rerun_study

    with pytest.raises(HftuneInputError, match="^--address: 'no-port-here' is not HOST:PORT"):
        rerun_study(tmp_path / "nothing", address="no-port-here")


def test_replay_refuses_a_study_another_process_runs(monkeypatch, capsys,
                                                     tmp_path: Path) -> None:
    from hftune.study import reopen, replay

    store = _study(tmp_path / "study")
    monkeypatch.setattr(reopen, "prepare_again", _reached)
    monkeypatch.setattr(replay, "train_schedule", _reached)
    holder = StudyStore(store.root)
    holder.acquire_lock()  # its own open file: the lock conflicts as another process's would
    try:
        code, _, err = run_cli(["replay", str(store.root)], monkeypatch, capsys)
    finally:
        holder.release_lock()
    one_line(code, err, f"{store.root}: another hftune process is running this study")


# -- L8: file modes -------------------------------------------------------------------------------
def test_study_files_get_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        store = _study(tmp_path / "study")
    finally:
        os.umask(old)
    for path in (store.root / "study.json", store.root / "study.yaml",
                 store.trials_dir / "a.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_the_export_gets_the_umask_modes(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from hftune.study.export import export_best

    store = _study(tmp_path / "study")
    study = store.read_study()
    study.model = str(tiny_bert)
    store.write_study(study)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    model.save_pretrained(str(_checkpoint(store.root)))
    out = tmp_path / "exported"
    old = os.umask(0o022)
    try:
        export_best(store.root, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o644}, modes
