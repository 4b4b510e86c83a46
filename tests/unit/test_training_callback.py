"""The report callback: the record each evaluation reports (metrics without ``eval_``, progress
fields, what the optimizer holds), when it asks for a checkpoint (``best``: NaN never counts,
a tie is no improvement; ``last``; ``none``), and what ``on_save`` does with it."""

from __future__ import annotations

import math

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from hftune.training import callback as callback_module
from hftune.training.callback import ReportCallback, StopTrial, optimizer_hyperparameters


def _saves(callback: ReportCallback, values: list[float]) -> list[bool]:
    """Whether each evaluation (one per epoch, metric ``accuracy``) asks for a checkpoint."""
    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    out = []
    for epoch, value in enumerate(values, start=1):
        control = callback.on_evaluate(
            args,
            TrainerState(epoch=float(epoch), global_step=epoch),
            TrainerControl(),
            metrics={"eval_accuracy": value},
        )
        out.append(bool(control.should_save))
    return out


@pytest.mark.parametrize("mode", ["max", "min"])
def test_a_nan_first_evaluation_does_not_block_later_bests(mode: str) -> None:
    callback = ReportCallback(lambda r, f: None, checkpoints="best", metric="accuracy", mode=mode)
    later = [0.6, 0.7] if mode == "max" else [0.7, 0.6]
    assert _saves(callback, [math.nan, *later]) == [False, True, True]
    assert callback.best == later[-1]


def test_a_nan_evaluation_after_a_best_is_not_saved() -> None:
    callback = ReportCallback(lambda r, f: None, checkpoints="best", metric="accuracy", mode="max")
    assert _saves(callback, [0.6, math.nan, 0.5, 0.65]) == [True, False, False, True]
    assert callback.best == 0.65


def test_a_nan_restored_best_counts_as_none() -> None:
    callback = ReportCallback(
        lambda r, f: None, checkpoints="best", metric="accuracy", mode="max", best=math.nan
    )
    assert _saves(callback, [0.4]) == [True]


def test_last_policy_skips_a_nan_evaluation() -> None:
    """Under score: last a trial's score is its last evaluation with a number; a NaN one must
    not replace that evaluation's checkpoint (Ray keeps only the newest)."""
    callback = ReportCallback(lambda r, f: None, checkpoints="last", metric="accuracy", mode="max")
    assert _saves(callback, [0.6, 0.7, math.nan]) == [True, True, False]



def _args(tmp_path=None) -> TrainingArguments:
    return TrainingArguments(output_dir=str(tmp_path or "unused"), report_to=[], use_cpu=True)


class _Optimizer:
    def __init__(self, *groups: dict) -> None:
        self.param_groups = list(groups)


def test_each_record_has_the_metrics_without_prefix_and_the_progress_fields(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callback_module.time, "perf_counter", lambda: 1000.0)
    sent: list[dict] = []
    callback = ReportCallback(lambda record, folder: sent.append(record), started=400.0)
    metrics = {"eval_accuracy": 0.5, "eval_runtime": 1.5, "eval_samples_per_second": 30.0,
               "eval_steps_per_second": 2.0, "other": 7}
    for _ in range(2):
        callback.on_evaluate(_args(), TrainerState(epoch=None, global_step=3, max_steps=3),
                             TrainerControl(), metrics=dict(metrics))
    first, second = sent
    ids = first.pop("eval_id"), second.pop("eval_id")
    assert first == {"accuracy": 0.5, "eval_s": 1.5, "other": 7, "epoch": 0.0, "step": 3,
                     "elapsed_s": 600.0, "trained_all": True}
    assert ids[0] != ids[1] and all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert callback.reports == 2


def test_the_record_holds_what_the_optimizer_uses_from_the_start_or_the_evaluation() -> None:
    groups = ({"lr": 1.0}, {"lr": 2.0, "weight_decay": 0.1})
    sent: list[dict] = []
    began = ReportCallback(lambda record, folder: sent.append(record))
    began.on_train_begin(_args(), TrainerState(), TrainerControl(), optimizer=_Optimizer(*groups))
    began.on_evaluate(_args(), TrainerState(epoch=1.0), TrainerControl(), metrics={})
    late = ReportCallback(lambda record, folder: sent.append(record))
    late.on_evaluate(_args(), TrainerState(epoch=1.0), TrainerControl(), metrics={},
                     optimizer=_Optimizer(*groups))
    for record in sent:
        assert (record["learning_rate"], record["weight_decay"]) == (2.0, 0.1)


def test_the_first_decayed_group_is_the_one_reported() -> None:
    assert optimizer_hyperparameters(_Optimizer({"lr": 1.0, "weight_decay": 0.0},
                                                {"lr": 2.0, "weight_decay": 0.3})) == {
        "learning_rate": 2.0, "weight_decay": 0.3}
    assert optimizer_hyperparameters(_Optimizer({"lr": 3.0})) == {"learning_rate": 3.0,
                                                                  "weight_decay": 0.0}
    assert optimizer_hyperparameters(_Optimizer({"lr": 1.0, "weight_decay": 0.5},
                                                {"lr": 2.0, "weight_decay": 2.0})) == {
        "learning_rate": 1.0, "weight_decay": 0.5}
    assert optimizer_hyperparameters(object()) == {}
    assert optimizer_hyperparameters(None) == {} == optimizer_hyperparameters(_Optimizer())


def test_a_tie_is_no_improvement_and_the_default_mode_is_max() -> None:
    assert _saves(ReportCallback(lambda r, f: None, checkpoints="best", metric="accuracy"),
                  [0.5, 0.5, 0.7, 0.6]) == [True, False, True, False]
    assert _saves(ReportCallback(lambda r, f: None, checkpoints="best", metric="accuracy",
                                 mode="min"), [0.5, 0.5, 0.3]) == [True, False, True]


def test_no_checkpoint_is_asked_for_under_the_none_policy() -> None:
    assert _saves(ReportCallback(lambda r, f: None, checkpoints="none", metric="accuracy"),
                  [0.5, 0.7]) == [False, False]


def test_on_save_reports_the_pending_record_with_its_folder_and_removes_the_folder(
        tmp_path) -> None:
    sent: list[tuple] = []
    callback = ReportCallback(lambda record, folder: sent.append((record, folder)),
                              checkpoints="every")
    args = _args(tmp_path)
    state = TrainerState(epoch=1.0, global_step=4)
    callback.on_save(args, state, TrainerControl())  # nothing pending: nothing sent
    assert sent == []
    callback.on_evaluate(args, state, TrainerControl(), metrics={"eval_accuracy": 0.5})
    folder = tmp_path / "checkpoint-4"
    folder.mkdir()
    callback.on_save(args, state, TrainerControl())
    assert [(r["accuracy"], f) for r, f in sent] == [(0.5, folder)] and not folder.exists()
    callback.on_save(args, state, TrainerControl())  # the pending record went with it
    assert len(sent) == 1


def test_stop_trial_from_a_checkpointed_report_stops_training_even_without_the_folder(
        tmp_path) -> None:
    def stop(record: dict, folder: object) -> None:
        raise StopTrial

    callback = ReportCallback(stop, checkpoints="every")
    args, state = _args(tmp_path), TrainerState(epoch=1.0, global_step=2)
    callback.on_evaluate(args, state, TrainerControl(), metrics={"eval_accuracy": 0.5})
    control = callback.on_save(args, state, TrainerControl())  # checkpoint-2 was never written
    assert control.should_training_stop
