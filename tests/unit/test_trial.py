"""One trial without Ray: the report callback's records, stopping, threads, seeded heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hftune.testing.records import KeptRun
from hftune.training.callback import StopTrial
from hftune.training.checkpoint import read_meta
from hftune.training.model import build_model
from hftune.training.trainable import TrialSetup, run_trial


@pytest.fixture(scope="module")
def setup(rte_trial_setup: TrialSetup) -> TrialSetup:
    return rte_trial_setup


def test_reports_every_epoch(setup: TrialSetup, tmp_path: Path) -> None:
    events: list[dict] = []
    config = {"learning_rate": 1e-3, "weight_decay": 0.05, "num_train_epochs": 2,
              "per_device_train_batch_size": 16}
    run_trial(config, setup, lambda record, folder: events.append(record), str(tmp_path))
    assert [e["epoch"] for e in events] == [1.0, 2.0]
    assert [e["step"] for e in events] == [4, 8]
    assert [e["trained_all"] for e in events] == [False, True]
    assert all(0.0 <= e["accuracy"] <= 1.0 and e["loss"] > 0 for e in events)
    assert events[0]["weight_decay"] == 0.05
    assert 0 < events[0]["learning_rate"] < 1e-3  # linear decay, read from the optimizer
    assert events[0]["torch_threads"] == 1 and torch.get_num_threads() == 1
    assert events[1]["elapsed_s"] > events[0]["elapsed_s"] > 0


def test_stop_request_ends_training_at_once(setup: TrialSetup, tmp_path: Path) -> None:
    events: list[dict] = []

    def report(record: dict, folder) -> None:
        events.append(record)
        raise StopTrial

    run_trial({"num_train_epochs": 3, "per_device_train_batch_size": 16}, setup, report,
              str(tmp_path))
    assert len(events) == 1 and events[0]["epoch"] == 1.0


def test_model_config_overrides_and_seeded_head(setup: TrialSetup) -> None:
    a = build_model(setup.model_path, setup.label_names, {"hidden_dropout_prob": 0.3}, seed=1)
    b = build_model(setup.model_path, setup.label_names, {}, seed=1)
    c = build_model(setup.model_path, setup.label_names, {}, seed=2)
    assert a.config.hidden_dropout_prob == 0.3 and a.config.num_labels == 2
    assert a.config.id2label == {0: "entailment", 1: "not_entailment"}
    head = [k for k in a.state_dict() if k.startswith("classifier")][0]
    assert torch.equal(a.state_dict()[head], b.state_dict()[head])
    assert not torch.equal(b.state_dict()[head], c.state_dict()[head])
    body = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(b.state_dict()[body], c.state_dict()[body])  # pretrained, not re-drawn
    # the head is initialised as from_pretrained would (normal, std = initializer_range; zero
    # bias), and nothing is left uninitialised by the skipped init of the pretrained weights
    weight = c.classifier.weight.detach()
    assert abs(float(weight.std()) - c.config.initializer_range) < 0.5 * c.config.initializer_range
    assert float(c.classifier.bias.detach().abs().max()) == 0.0
    assert all(torch.isfinite(v).all() for v in c.state_dict().values())


def test_restore_applies_the_new_config(checkpointing_setup: TrialSetup, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Exploit + explore on the real HF path: right after the restore the model holds the
    donor's weights and the optimizer the donor's AdamW moments and step counts, parameter by
    parameter, while learning rate, weight decay and schedule are the new config's; epochs
    continue in steps of the new batch size."""
    import copy
    import json

    from hftune.training.checkpoint import ApplyConfigOnRestore

    setup = checkpointing_setup
    keep = KeptRun(tmp_path / "store")  # what Ray does: persist each folder elsewhere
    donor = {"learning_rate": 1e-3, "weight_decay": 0.0, "num_train_epochs": 3,
             "per_device_train_batch_size": 16}
    run_trial(donor, setup, keep, str(tmp_path / "donor"), trial_id="donor")
    kept = keep.checkpoints
    assert len(kept) == 3
    meta = json.loads((kept[0] / "hftune.json").read_text())
    assert meta["trial_id"] == "donor" and meta["epoch"] == 1.0 and meta["global_step"] == 4
    assert not (tmp_path / "donor" / "checkpoint-4").exists()  # the Trainer's copy is removed
    # read back as the model class reads it: transformers may store legacy names on disk
    # (LayerNorm gamma/beta at some versions) and map them on load
    donor_weights = type(build_model(setup.model_path, setup.label_names, {}, seed=3)) \
        .from_pretrained(str(kept[0])).state_dict()
    donor_optimizer = torch.load(kept[0] / "optimizer.pt", weights_only=True)
    # the donor trained: its weights are not the ones a fresh trial starts from
    fresh = build_model(setup.model_path, setup.label_names, {}, seed=3).state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in donor_weights.items())

    seen: dict[str, object] = {}
    real_begin = ApplyConfigOnRestore.on_train_begin

    def begin(self, args, state, control, **kwargs):  # what the first step will start from
        real_begin(self, args, state, control, **kwargs)
        seen["weights"] = {k: v.detach().clone() for k, v in kwargs["model"].state_dict().items()}
        seen["optimizer"] = copy.deepcopy(kwargs["optimizer"].state_dict())  # steps go on
        seen["groups"] = [dict(g) for g in kwargs["optimizer"].param_groups]
        seen["scheduler"] = kwargs["lr_scheduler"]
        seen["step"] = state.global_step

    monkeypatch.setattr(ApplyConfigOnRestore, "on_train_begin", begin)
    events: list[dict] = []
    new = {"learning_rate": 4e-4, "weight_decay": 0.2, "num_train_epochs": 3,
           "per_device_train_batch_size": 32}
    run_trial(new, setup, lambda r, f: events.append(r), str(tmp_path / "exploiter"),
              trial_id="exploiter", restore_from=kept[0])

    # the donor's weights, every tensor of the checkpoint
    weights = seen["weights"]
    assert set(donor_weights) <= set(weights)
    assert all(torch.equal(weights[k], v) for k, v in donor_weights.items())
    # the donor's AdamW state, parameter by parameter
    restored = seen["optimizer"]["state"]
    saved = donor_optimizer["state"]
    assert len(saved) > 0 and sorted(restored) == sorted(saved)
    for index, moments in saved.items():
        assert set(moments) == {"step", "exp_avg", "exp_avg_sq"}
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(restored[index][key], moments[key]), (index, key)
        assert float(moments["step"]) == 4.0  # the donor's 4 steps, not restarted
    # ... and the new config: its learning rate on its own linear schedule (6 steps of batch
    # 32, no warmup) continued at step 2, and its weight decay (the no-decay group keeps 0)
    assert seen["step"] == 2
    groups = seen["groups"]
    assert [g["lr"] for g in groups] == pytest.approx([4e-4 * (6 - 2) / 6] * len(groups))
    assert [g["weight_decay"] for g in groups] == [0.2, 0.0]
    scheduler = seen["scheduler"]
    assert scheduler.base_lrs == [4e-4] * len(groups)
    assert [lam(2) for lam in scheduler.lr_lambdas] == pytest.approx([4 / 6] * len(groups))
    assert [lam(6) for lam in scheduler.lr_lambdas] == [0.0] * len(groups)

    # continues after epoch 1 for the remaining 2 epochs, in steps of the new batch size (2/epoch)
    assert [e["epoch"] for e in events] == [2.0, 3.0]
    assert [e["step"] for e in events] == [4, 6]
    first = events[0]
    assert first["restored_from"] == "donor" and first["restored_epoch"] == 1.0
    assert first["weight_decay"] == 0.2  # still in force at the first evaluation
    assert first["learning_rate"] == pytest.approx(4e-4 * (6 - 4) / 6)


def test_restore_past_the_configs_epochs_trains_no_more(checkpointing_setup: TrialSetup,
                                                        tmp_path: Path) -> None:
    full = checkpointing_setup
    keep = KeptRun(tmp_path / "store")
    run_trial({"num_train_epochs": 2, "per_device_train_batch_size": 32}, full, keep,
              str(tmp_path / "a"), trial_id="a")
    kept = keep.checkpoints
    events: list[tuple[dict, dict | None]] = []

    def record(rec: dict, folder) -> None:
        events.append((rec, read_meta(folder).__dict__ if folder is not None else None))

    b_config = {"num_train_epochs": 1, "per_device_train_batch_size": 32}
    run_trial(b_config, full, record, str(tmp_path / "b"), trial_id="b", restore_from=kept[1])
    assert len(events) == 1
    rec, meta = events[0]
    assert rec["trained_all"] and not rec["trained"] and rec["epoch"] == 2.0
    # the cloned weights are b's checkpoint now, with the metrics b reports (what export takes)
    donor = read_meta(kept[1])
    assert meta is not None and meta["trial_id"] == "b" and meta["config"] == b_config
    assert meta["record"]["accuracy"] == rec["accuracy"] == donor.record["accuracy"]
    # max_steps, when set, is where training ends: epoch 1 of a at batch 32 is step 2
    events.clear()
    run_trial({"max_steps": 2, "per_device_train_batch_size": 32}, full, record,
              str(tmp_path / "c"), trial_id="c", restore_from=kept[0])
    assert len(events) == 1 and not events[0][0]["trained"] and events[0][0]["epoch"] == 1.0


@pytest.mark.parametrize(("rows", "batch", "accumulation", "steps"), [
    (64, 16, 1, 4), (65, 16, 1, 5), (2490, 32, 4, 20), (2490, 32, 1, 78), (10, 32, 4, 1)])
def test_steps_per_epoch_as_the_trainer_counts_them(rows: int, batch: int, accumulation: int,
                                                     steps: int) -> None:
    """A restore re-expresses the step counter in these steps; Trainer counts a short last
    accumulation group as a step (78 batches, 4 per step: 20 steps, not 19)."""
    from hftune.training.checkpoint import optimizer_steps_per_epoch

    assert optimizer_steps_per_epoch(rows, batch, accumulation) == steps


def test_best_policy_saves_only_improvements_on_the_restored_best() -> None:
    """save_best: a resumed trial's checkpoint was its best so far; an evaluation below it must
    not save (nor replace it as the trial's checkpoint)."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from hftune.training.callback import ReportCallback

    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    sent: list[tuple[dict, object]] = []

    def saves(best: float | None, accuracy: float) -> bool:
        callback = ReportCallback(lambda r, f: sent.append((r, f)), checkpoints="best",
                                  metric="accuracy", mode="max", best=best)
        control = callback.on_evaluate(args, TrainerState(epoch=2.0, global_step=8),
                                       TrainerControl(), metrics={"eval_accuracy": accuracy})
        return bool(control.should_save)

    assert saves(None, 0.7)  # a fresh trial: its first evaluation is its best so far
    assert not saves(0.8, 0.7)  # resumed from a checkpoint at 0.8
    assert saves(0.8, 0.85)
    assert [r["accuracy"] for r, f in sent] == [0.7]  # reported now; the savers from on_save


def test_last_policy_saves_every_scored_evaluation() -> None:
    """strategy.score: last with save_best: the trial's checkpoint is its last evaluation's, so
    export and the held-out value use the weights its score came from."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from hftune.training.callback import ReportCallback

    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    callback = ReportCallback(lambda r, f: None, checkpoints="last", metric="accuracy",
                              mode="max")
    saved = []
    for step, metrics in ((4, {"eval_accuracy": 0.8}), (8, {"eval_accuracy": 0.6}),
                          (12, {"eval_loss": 0.3})):
        control = callback.on_evaluate(args, TrainerState(epoch=step / 4, global_step=step),
                                       TrainerControl(), metrics=metrics)
        saved.append(bool(control.should_save))
    assert saved == [True, True, False]  # a worse one too; none without the metric


def test_missing_checkpoint_falls_back_to_the_newest_one_before_it(tmp_path: Path) -> None:
    """A gone checkpoint: the trial's newest kept one at or before it (never a later state);
    a resume's link in its place: the linked one; both flagged as a fallback."""
    from hftune.training.checkpoint import find_checkpoint

    for i in (3, 5, 7):
        (tmp_path / f"checkpoint_{i:06d}").mkdir()
        (tmp_path / f"checkpoint_{i:06d}" / "hftune.json").write_text("{}")
    assert find_checkpoint(tmp_path / "checkpoint_000003") == (
        tmp_path / "checkpoint_000003", False)
    assert find_checkpoint(tmp_path / "checkpoint_000006") == (
        tmp_path / "checkpoint_000005", True)
    with pytest.raises(FileNotFoundError, match="checkpoint_000001 is gone"):
        find_checkpoint(tmp_path / "checkpoint_000001")
    (tmp_path / "checkpoint_000004").symlink_to("checkpoint_000003")
    assert find_checkpoint(tmp_path / "checkpoint_000004") == (
        (tmp_path / "checkpoint_000003").resolve(), True)


def test_base_weights_are_read_once_per_process(setup: TrialSetup, monkeypatch) -> None:
    from transformers import AutoModelForSequenceClassification

    from hftune.training import model as model_mod

    model_mod._base_weights.clear()
    calls = []
    real = AutoModelForSequenceClassification.from_pretrained

    def counting(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("pretrained_model_name_or_path"))
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", counting)
    for seed in (1, 2, 3):
        build_model(setup.model_path, setup.label_names, {}, seed=seed)
    assert calls == [setup.model_path]


def test_a_trained_model_leaves_the_next_trials_weights_alone(setup: TrialSetup,
                                                              tmp_path: Path) -> None:
    """A worker runs trial after trial (reuse_actors): a trial trains its own copy of the
    cached pretrained weights, so the next trial in the process starts from the pretrained
    ones, not from what the last one learnt."""
    import torch
    from safetensors.torch import load_file

    run_trial({"num_train_epochs": 1, "learning_rate": 1e-2}, setup, lambda r, f: None,
              str(tmp_path))
    model = build_model(setup.model_path, setup.label_names, {}, seed=1)
    pretrained = load_file(str(Path(setup.model_path) / "model.safetensors"))
    weights = model.state_dict()
    assert all(torch.equal(weights[f"bert.{k}"], v) for k, v in pretrained.items())


def test_evaluation_every_n_steps(setup: TrialSetup, tmp_path: Path) -> None:
    import dataclasses

    events: list[dict] = []
    steps = dataclasses.replace(setup, eval_every="steps", eval_steps=3)
    run_trial({"num_train_epochs": 2, "per_device_train_batch_size": 16}, steps,
              lambda r, f: events.append(r), str(tmp_path))
    # 4 steps per epoch, 8 in all: every 3 steps, and once more at the end of training
    assert [e["step"] for e in events] == [3, 6, 8]
    assert events[0]["epoch"] == pytest.approx(0.75)
    assert [e["trained_all"] for e in events] == [False, False, True]


@pytest.mark.parametrize("clones, save_best, score, policy, ray_keeps_by_score", [
    (True, True, "best", "every", None),
    (False, True, "best", "best", True),
    (False, True, "last", "last", False),
    (False, False, "last", "none", True),
])
def test_checkpoint_policy_follows_the_score_rule(clones, save_best, score, policy,
                                                  ray_keeps_by_score) -> None:
    from types import SimpleNamespace

    from hftune.study.runner import checkpoint_policy, ray_checkpoint_config

    prepared = SimpleNamespace(
        strategy=SimpleNamespace(needs_checkpoints=clones), metric="accuracy", mode="max",
        config=SimpleNamespace(checkpoints=SimpleNamespace(save_best=save_best),
                               strategy=SimpleNamespace(score=score)))
    assert checkpoint_policy(prepared) == policy
    kept = ray_checkpoint_config(prepared)
    if ray_keeps_by_score is not None:
        assert kept.num_to_keep == 1
        assert (kept.checkpoint_score_attribute == "accuracy") is ray_keeps_by_score
