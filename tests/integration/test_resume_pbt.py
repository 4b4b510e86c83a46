"""PBT after a real ``kill -9``: every member finishes, from a checkpoint that exists.

``hftune run`` runs a PBT study (4 members, an exploit every epoch) on a slice of SST-2 in its
own process group; the test watches the study folder and kills the group with SIGKILL on the
Nth event written there (reports and exploits), N drawn from a seeded generator or "right after
the first exploit", never after a timed sleep. ``hftune resume`` then runs in this process. The
"snapshot behind" cases kill twice: once as soon as a Ray snapshot names a member's checkpoint,
then a resume whose Ray snapshots only its start (``TUNE_GLOBAL_CHECKPOINT_S`` of an hour),
killed once a member has checkpointed more than ``keep`` times since: the snapshot the last
resume reads names checkpoints older than the member's ``keep`` newest. What
must hold, at every ``checkpoints.keep`` tried: every member ``finished``, the study
``finished``, each evaluation recorded once per run (a run continues right after the checkpoint
it restored), the lineage matching the records, and the learning rate and weight decay in
effect after each restore those of the config in force.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from test_resume import HftuneProcess, read_records, wait_for

from hftune.study.store import StudyStore
from hftune.testing.cli import run_cli

pytestmark = pytest.mark.integration

EPOCHS = 6
BEHIND_EPOCHS = 10
POPULATION = 4
# events a whole study writes: a report per member and epoch (exploits add more)
STUDY_EVENTS = POPULATION * EPOCHS
KILL_AT = [random.Random(22).randint(2, STUDY_EVENTS - 2)]


def pbt_yaml(path: Path, out: Path, model: Path, data: Path, keep: int,
             epochs: int = EPOCHS) -> Path:
    cfg: dict[str, Any] = {
        "name": out.name, "output_dir": str(out), "model": str(model), "seed": 7,
        "task": {"name": "sst2", "data_dir": str(data), "max_train_samples": 1200,
                 "max_eval_samples": 64},
        "max_length": 48,
        "search_space": {"learning_rate": {"loguniform": [2.0e-4, 3.0e-3]},
                         "weight_decay": {"uniform": [0.0, 0.3]},
                         "per_device_train_batch_size": [16, 32],
                         "num_train_epochs": [epochs]},
        "strategy": {"name": "pbt", "population": POPULATION, "perturbation_interval": 1},
        "checkpoints": {"keep": keep},
        "resources": {"cpus_per_trial": 1},
    }
    path.write_text(json.dumps(cfg))
    return path


def events(out: Path) -> int:
    """Events written to the study folder so far: reports in the trial records, exploits."""
    reports = sum(len(r["reports"]) for r in read_records(out).values())
    try:
        exploits = (out / "lineage.jsonl").read_text().count("\n")
    except OSError:
        exploits = 0
    return reports + exploits


def snapshot_behind(out: Path, keep: int) -> bool:
    """Whether a member still training has reported (and so checkpointed) more than ``keep``
    times since Ray's newest experiment snapshot, which names a checkpoint of its own for it:
    that checkpoint is then older than the member's ``keep`` newest, the one a budget that
    ignored the snapshot deletes, and the one a resume restores it from."""
    from hftune._compat.ray import newest_snapshot, read_snapshot

    snapshot = newest_snapshot(out / "ray")
    if snapshot is None:
        return False
    try:
        named = {t.trial_id for t in read_snapshot(snapshot)
                 if t.checkpoint and t.folder and Path(t.checkpoint).parent == t.folder}
    except ValueError:  # being written
        return False
    written = snapshot.stat().st_mtime
    return any(sum(r["time"] > written for r in rec["reports"]) > keep
               for trial_id, rec in read_records(out).items()
               if trial_id in named and not rec["reports"][-1].get("trained_all"))


def snapshot_names_a_checkpoint(out: Path) -> bool:
    """Whether Ray's newest experiment snapshot names a checkpoint of a member's own."""
    from hftune._compat.ray import newest_snapshot, read_snapshot

    snapshot = newest_snapshot(out / "ray")
    if snapshot is None:
        return False
    try:
        return any(t.checkpoint and t.folder and Path(t.checkpoint).parent == t.folder
                   for t in read_snapshot(snapshot))
    except ValueError:  # being written
        return False


def exploits(out: Path) -> int:
    try:
        return (out / "lineage.jsonl").read_text().count("\n")
    except OSError:
        return 0


def runs_of(reports: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A record's reports split into runs (a run starts at a report with ``worker_pid``)."""
    runs: list[list[dict[str, Any]]] = []
    for report in reports:
        if not runs or "worker_pid" in report:
            runs.append([])
        runs[-1].append(report)
    return runs


def check_member(trial_id: str, rec: dict[str, Any], lineage: list[dict[str, Any]],
                 last_epoch: int = EPOCHS) -> None:
    """One member's record after the resume: finished, each evaluation once per run, its
    exploits in the lineage, the restored optimizer holding the config in force."""
    assert rec["state"] == "finished", (trial_id, rec.get("error"))
    reports = rec["reports"]
    assert reports[-1]["trained_all"] and reports[-1]["epoch"] == last_epoch
    history = rec["config_history"]
    into = [e for e in lineage if e["to_trial"] == trial_id]
    assert len(into) == max(len(history) - 1, 0)
    config = dict(history[0]["config"]) if history else dict(rec["config"])
    exploit_runs = 0
    previous: dict[str, Any] | None = None
    for run in runs_of(reports):
        first = run[0]
        source = first.get("restored_from")
        if source is None:  # the member's first run: from the start
            assert previous is None and first["epoch"] == 1.0, (trial_id, first)
        elif source == trial_id:  # continued its own checkpoint (a resume): right after it
            assert previous is not None and first["epoch"] == previous["epoch"] + 1
            assert first["restored_epoch"] == previous["epoch"]
        else:  # an exploit: the donor's checkpoint, then the new config
            event = into[exploit_runs]
            exploit_runs += 1
            assert (event["from_trial"], event["epoch"]) == (source, first["restored_epoch"])
            cloned_finished = first.get("trained") is False  # no training: its metrics
            assert first["epoch"] == first["restored_epoch"] + (0 if cloned_finished else 1)
            config = dict(event["new_config"])
            assert history[exploit_runs]["config"] == config
        if first.get("trained") is False:  # cloned a member that had finished: no training
            assert first["epoch"] == first["restored_epoch"] == last_epoch and len(run) == 1
        elif source is not None:
            assert first["restore_fallback"] is False, (trial_id, first)
            applied = first["applied"]  # read back from the restored optimizer
            assert applied["base_learning_rate"] == pytest.approx(config["learning_rate"])
            assert applied["weight_decay"] == pytest.approx(config["weight_decay"])
        epochs = [r["epoch"] for r in run]
        assert epochs == [first["epoch"] + i for i in range(len(run))], (trial_id, epochs)
        previous = run[-1]
    assert exploit_runs == len(into)
    assert rec["config"] == config


@pytest.mark.parametrize(("keep", "kill_at"), [(1, "exploit"), (2, "exploit"), (1, "behind"),
                                                (2, "behind"), (3, KILL_AT[0])],
                         ids=["keep1-after-exploit", "keep2-after-exploit",
                              "keep1-snapshot-behind", "keep2-snapshot-behind",
                              f"keep3-event{KILL_AT[0]}"])
def test_pbt_killed_with_sigkill_resumes_every_member(keep: int, kill_at: int | str,
                                                      ray_session, tiny_bert, shared_data,
                                                      tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "pbt"
    # the "behind" cases: members need epochs left after the resume to train past its
    # snapshot more than keep times (CI's faster machine had nearly finished them by the
    # first snapshot that named a checkpoint)
    epochs = BEHIND_EPOCHS if kill_at == "behind" else EPOCHS
    cfg = pbt_yaml(tmp_path / "study.yaml", out, tiny_bert, shared_data / "sst2", keep, epochs)
    # Ray snapshots every 12 s (a documented Ray Tune setting; its default adapts to how long
    # one takes): members train several epochs between two of them
    run = HftuneProcess(["run", str(cfg), "--quiet"], env={"TUNE_GLOBAL_CHECKPOINT_S": "12"})
    try:
        if kill_at == "exploit":
            wait_for(lambda: exploits(out) >= 1, "a first exploit", run, timeout=300)
        elif kill_at == "behind":
            wait_for(lambda: snapshot_names_a_checkpoint(out), "a snapshot naming a checkpoint",
                     run, timeout=300)
        else:
            wait_for(lambda: events(out) >= kill_at, f"event {kill_at}", run, timeout=300)
    finally:
        run.kill()
    assert not run.left_behind()
    if kill_at == "behind":
        # Ray snapshots a run at its first step; an hour's period leaves that one the newest
        resumed = HftuneProcess(["resume", str(out), "-q"],
                                env={"TUNE_GLOBAL_CHECKPOINT_S": "3600"})
        try:
            wait_for(lambda: snapshot_behind(out, keep), "a snapshot behind the checkpoints",
                     resumed, timeout=300)
        finally:
            resumed.kill()
        assert not resumed.left_behind()

    code, stdout, err = run_cli(["resume", str(out), "-q"], monkeypatch, capsys)
    assert code == 0, stdout + err
    # the checkpoints Ray's snapshot names were kept: no member needed a fallback
    assert "is gone" not in err, err
    store = StudyStore(out)
    study = store.read_study()
    assert study.status == "finished" and not study.unrestorable
    records = read_records(out)
    assert len(records) == POPULATION
    lineage = store.read_lineage()
    for trial_id, rec in records.items():
        check_member(trial_id, rec, lineage, epochs)
    assert all(e["to_trial"] in records and e["from_trial"] in records for e in lineage)
