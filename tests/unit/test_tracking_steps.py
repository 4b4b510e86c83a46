"""Tracked steps through PBT exploits, restarts and resumes: steps only go up, every evaluation
is logged once, the config an exploit gave a trial is recorded; W&B offline continuation runs.

The callbacks are driven directly with :data:`~hftune.testing.tracking.PBT_RUN`, one PBT
member's results as ``run_trial`` reports them (no Ray)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hftune.testing.tracking import (
    BS16,
    BS32,
    KEYS,
    PBT_RUN,
    PBT_STEPS,
    feed,
    mlflow_history,
    mlflow_run,
    offline_runs,
    tb_scalars,
    trial_a,
    trial_b,
)
from hftune.tracking._mlflow import MlflowTracking
from hftune.tracking._steps import TrialTrack
from hftune.tracking._tensorboard import TensorboardTracking
from hftune.tracking._wandb import WandbTracking

pytestmark = pytest.mark.usefixtures("offline_tracking")


def test_pbt_trial_steps_increase_and_every_evaluation_is_logged_once(tmp_path) -> None:
    mlf = MlflowTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    tb = TensorboardTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    feed([mlf, tb], trial_b(), PBT_RUN)
    for cb in (mlf, tb):
        cb.on_trial_complete(2, [], trial_b())
    accuracy = [(step, r["accuracy"]) for step, r in zip(PBT_STEPS, PBT_RUN, strict=True)]
    assert mlflow_history(tmp_path, "accuracy") == accuracy
    assert tb_scalars(tmp_path, "accuracy") == accuracy
    # the global step and the epoch stay metrics
    assert [v for _, v in mlflow_history(tmp_path, "step")] == [r["step"] for r in PBT_RUN]
    assert [v for _, v in tb_scalars(tmp_path, "epoch")] == [r["epoch"] for r in PBT_RUN]
    _, run = mlflow_run(tmp_path)  # "latest" = the trial's last evaluation
    assert (run.data.metrics["accuracy"], run.data.metrics["step"]) == (0.67, 350.0)
    # 9: the config the exploit gave the trial (MLflow: a tag; TensorBoard: a text summary)
    assert run.data.params["per_device_train_batch_size"] == "16"  # immutable: the first
    assert json.loads(run.data.tags["hftune.config_after_exploit.1"]) == {
        "config": BS32, "from_trial": "a_00000", "epoch": 2.0, "step": 350}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard" / "b_00001"))
    events.Reload()
    (text,) = events.Tensors("hftune/config_after_exploit/text_summary")
    assert text.step == 350 and b'"per_device_train_batch_size": 32' in (
        text.tensor_proto.string_val[0])


def test_resume_after_an_exploit_logs_the_rest_once(tmp_path) -> None:
    """``hftune resume`` builds fresh callbacks with the records' highest step (300, from
    before the exploit); each target continues from its own state file."""
    def callbacks(logged: dict[str, int] | None = None) -> list[Any]:
        return [MlflowTracking("s", tmp_path, KEYS, frozenset({"accuracy"}),
                               logged_steps=logged),
                TensorboardTracking("s", tmp_path, KEYS, frozenset({"accuracy"}),
                                    logged_steps=logged)]

    first = callbacks()
    for cb in first:
        cb.setup()  # as Ray sets it up: its state is kept in <study>/tracking/
    feed(first, trial_b(), PBT_RUN[:5])  # up to epoch 4, after the exploit
    for cb in first:
        cb.on_experiment_end([])
    second = callbacks({"b_00001": 300})
    for cb in second:
        cb.setup()
    feed(second, trial_b(), [
        {"epoch": 5.0, "step": 250, "accuracy": 0.63, "worker_pid": 4,
         "restored_from": "b_00001", "restored_epoch": 4.0, "trial_config": BS32},
        {"epoch": 6.0, "step": 300, "accuracy": 0.66}])
    for cb in second:
        cb.on_trial_complete(2, [], trial_b())
    expected = [(100, 0.5), (200, 0.55), (300, 0.56), (350, 0.6), (400, 0.62), (450, 0.63),
                (500, 0.66)]
    assert mlflow_history(tmp_path, "accuracy") == expected
    assert tb_scalars(tmp_path, "accuracy") == expected
    state = json.loads((tmp_path / "tracking" / "tensorboard.json").read_text())
    assert state["trials"]["b_00001"]["last"] == 500


def test_exploit_retried_from_the_same_checkpoint_is_not_logged_again(tmp_path) -> None:
    """A trial that fails before it wrote a checkpoint of its own restarts from the donor's
    again: the same segment, its epochs already logged."""
    tb = TensorboardTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    feed([tb], trial_b(), [*PBT_RUN[:5],
                           {**PBT_RUN[3], "accuracy": 0.61, "worker_pid": 9},
                           {**PBT_RUN[4], "accuracy": 0.64}, PBT_RUN[5]])
    tb.on_trial_complete(2, [], trial_b())
    assert tb_scalars(tmp_path, "accuracy") == [(100, 0.5), (200, 0.55), (300, 0.56),
                                                (350, 0.6), (400, 0.62), (450, 0.63)]


@pytest.mark.parametrize("restart, new_segment", [
    ({}, False),                                                   # from scratch
    ({"restored_from": "b_00001", "restored_epoch": 2.0}, False),  # its own checkpoint
    ({"restored_from": "b_00001", "restored_epoch": 2.0, "trial_config": BS32}, True),
    ({"restored_from": "a_00000", "restored_epoch": 2.0}, True),   # an exploit
])
def test_what_begins_a_segment(restart, new_segment) -> None:
    track = TrialTrack(last=300, config=dict(BS16))
    begun = track.begin_run("b_00001", {"epoch": 3.0, "step": 150, **restart},
                            restart.get("trial_config", BS16))
    assert begun is new_segment
    assert track.tracking_step({"step": 150}) == (350 if new_segment else None)


@pytest.mark.parametrize("state_file", [True, False])
def test_offline_wandb_resume_writes_a_continuation_run(state_file, tmp_path) -> None:
    """Offline, W&B ignores ``resume``: a trial's second run gets its own id (``-r1``), its
    steps continue the first run's, and its config names the first run. Also for a study
    folder written before hftune kept its tracking state (``state_file=False``): then
    ``logged_steps`` from the records says the trial had a run."""
    def callback(logged: dict[str, int] | None = None) -> WandbTracking:
        return WandbTracking("s", tmp_path, ["learning_rate"], frozenset({"accuracy"}),
                             project="p", logged_steps=logged)

    trial = trial_a()
    first = callback()
    first.setup()
    feed([first], trial, [{"epoch": 1.0, "step": 100, "accuracy": 0.5, "worker_pid": 1},
                          {"epoch": 2.0, "step": 200, "accuracy": 0.6}])
    first.on_experiment_end([])  # interrupted
    if not state_file:
        (tmp_path / "tracking" / "wandb.json").unlink()
    second = callback({"a_00000": 200})  # as hftune resume builds it
    second.setup()
    feed([second], trial, [{"epoch": 3.0, "step": 300, "accuracy": 0.7, "worker_pid": 2,
                            "restored_from": "a_00000", "restored_epoch": 2.0}])
    second.on_trial_complete(2, [], trial)
    runs = {run.run_id: run for run in offline_runs(tmp_path)}
    assert sorted(runs) == ["s-a_00000", "s-a_00000-r1"]
    before, after = runs["s-a_00000"], runs["s-a_00000-r1"]
    assert [(h["_step"], h["accuracy"]) for h in before.history] == [(100, 0.5), (200, 0.6)]
    assert [(h["_step"], h["step"], h["accuracy"]) for h in after.history] == [(300, 300, 0.7)]
    assert (after.group, after.name, after.exit_code) == ("s", "a_00000", 0)
    assert after.config == {"learning_rate": 1e-3, "hftune.continues": "s-a_00000"}


def test_wandb_run_config_follows_the_exploits(tmp_path) -> None:
    cb = WandbTracking("s", tmp_path, KEYS, frozenset({"accuracy"}), project="p")
    feed([cb], trial_b(), PBT_RUN[:5])
    cb.on_trial_complete(2, [], trial_b())
    (run,) = offline_runs(tmp_path)
    assert run.config == {**BS32, "hftune.exploits": 1}
    assert [h["_step"] for h in run.history] == PBT_STEPS[:5]
