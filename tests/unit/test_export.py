"""Finding a study's kept checkpoints and exporting the best one (no Ray: a hand-made folder)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from hftune.errors import StudyFolderError
from hftune.study.checkpoints import best_checkpoint, scan_checkpoints
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.store import StudyStore
from hftune.testing.fixtures import STARTED
from hftune.testing.records import (
    KeptRun,
    checkpoint_meta,
    study_folder,
    trial_record,
    two_trial_study,
)
from hftune.training.trainable import run_trial


def test_scan_attributes_checkpoints_by_their_meta(tmp_path: Path) -> None:
    ray = tmp_path / "ray"
    checkpoint_meta(ray / "t_a_0/checkpoint_000000", "a", 1.0, 0.6)
    checkpoint_meta(ray / "t_a_0/checkpoint_000001", "a", 2.0, 0.8)  # PBT keeps several
    checkpoint_meta(ray / "t_a_0/checkpoint_000002", "a", 3.0, 0.7)
    checkpoint_meta(ray / "t_b_1/checkpoint_000004", "b", 2.0, 0.9)
    checkpoint_meta(ray / "t_c_2/checkpoint_000000", "c", 1.0, None)
    broken = ray / "t_d_3/checkpoint_000000"
    broken.mkdir(parents=True)
    (broken / "hftune.json").write_text("{half")
    (ray / "t_e_4/checkpoint_000000").mkdir(parents=True)  # no hftune.json: not a checkpoint
    found = scan_checkpoints(ray)
    assert sorted({c.trial_id for c in found}) == ["a", "b", "c"]
    best_a = best_checkpoint(found, "a", "accuracy", "max")
    assert best_a.path.name == "checkpoint_000001" and best_a.epoch == 2.0
    assert best_a.config == {"learning_rate": 2e-3}
    assert best_checkpoint(found, "a", "accuracy", "min").epoch == 1.0
    assert best_checkpoint(found, "a", "loss", "min").epoch == 1.0  # ties: earliest
    assert best_checkpoint(found, "c", "accuracy", "max") is None  # no value of the metric
    assert best_checkpoint(found, "zzz", "accuracy", "max") is None
    # strategy.score: last — the checkpoint of the trial's last evaluation, not its best
    assert best_checkpoint(found, "a", "accuracy", "max", "last").epoch == 3.0
    assert scan_checkpoints(tmp_path / "missing") == []


def test_a_checkpoint_no_recorded_evaluation_made_is_not_exported(tmp_path: Path) -> None:
    """A run killed after Ray's last snapshot left a better checkpoint at step 30; the resumed
    run trained that epoch again (its record says 0.7 at step 30 now, and its checkpoint went
    to a new folder). The leftover's weights belong to no recorded evaluation."""
    from hftune.study.checkpoints import recorded_checkpoint

    ray = tmp_path / "ray"
    checkpoint_meta(ray / "t_a/checkpoint_000001", "a", 2.0, 0.8)
    checkpoint_meta(ray / "t_a/checkpoint_000002", "a", 3.0, 0.95)  # the leftover
    found = scan_checkpoints(ray)
    record = TrialRecord(trial_id="a", config={}, reports=[
        {"epoch": 1.0, "step": 10, "accuracy": 0.5}, {"epoch": 2.0, "step": 20, "accuracy": 0.8},
        {"epoch": 3.0, "step": 35, "accuracy": 0.7}])
    assert best_checkpoint(found, "a", "accuracy", "max").epoch == 3.0
    assert recorded_checkpoint(found, record, "accuracy", "max").epoch == 2.0
    no_steps = TrialRecord(trial_id="a", config={}, reports=[{"epoch": 1.0, "accuracy": 0.5}])
    assert recorded_checkpoint(found, no_steps, "accuracy", "max").epoch == 3.0


def test_a_leftover_checkpoint_at_a_step_trained_again_is_not_exported(tmp_path: Path) -> None:
    """The leftover is at step 30, and the resumed run trained step 30 again to 0.7 without
    saving over it: its 0.95 is no recorded evaluation's value."""
    from hftune.study.checkpoints import recorded_checkpoint

    ray = tmp_path / "ray"
    checkpoint_meta(ray / "t_a/checkpoint_000001", "a", 2.0, 0.8)
    checkpoint_meta(ray / "t_a/checkpoint_000002", "a", 3.0, 0.95)  # the leftover, at step 30
    found = scan_checkpoints(ray)
    again = TrialRecord(trial_id="a", config={}, reports=[
        {"epoch": 2.0, "step": 20, "accuracy": 0.8}, {"epoch": 3.0, "step": 30, "accuracy": 0.7}])
    assert recorded_checkpoint(found, again, "accuracy", "max").epoch == 2.0
    same = TrialRecord(trial_id="a", config={}, reports=[
        {"epoch": 2.0, "step": 20, "accuracy": 0.8}, {"epoch": 3.0, "step": 30, "accuracy": 0.95}])
    assert recorded_checkpoint(found, same, "accuracy", "max").epoch == 3.0


def test_a_later_steps_checkpoints_are_found(tmp_path: Path) -> None:
    """seeds-then-pbt runs its PBT step as its own experiment (``ray-pbt``): export and the
    held-out evaluation must find the checkpoints of that step's trials too."""
    from hftune.study.export import choose_export

    store = StudyStore(tmp_path / "study")
    store.write_study(StudyRecord(name="s", status="finished", strategy="seeds-then-pbt",
                                  metric="accuracy", mode="max", best_trial_id="p1"))
    for trial_id, phase in (("s1", "screen"), ("p1", "pbt")):
        store.write_trial(TrialRecord(trial_id=trial_id, config={}, state="finished",
                                      phase=phase, reports=[{"epoch": 1.0, "accuracy": 0.7}]))
    checkpoint_meta(store.root / "ray/t_s1/checkpoint_000000", "s1", 1.0, 0.6)
    checkpoint_meta(store.root / "ray-pbt/t_p1/checkpoint_000000", "p1", 1.0, 0.7)
    assert [p.name for p in store.experiment_dirs()] == ["ray", "ray-pbt"]
    _, trial, ck = choose_export(store)
    assert trial.trial_id == "p1" and ck.path.parent.parent.name == "ray-pbt"


@pytest.fixture(scope="module")
def trained_study(checkpointing_setup, tiny_bert: Path, tmp_path_factory) -> tuple[Path, Any]:
    """A study of two real trials (tiny BERT, 64 RTE rows, 2 epochs, a checkpoint at every
    evaluation), written as the recorder and Ray leave it: the reports as the trainable sent
    them, each checkpoint in its trial's Ray folder. Returns the folder and the setup."""
    setup = checkpointing_setup
    root = tmp_path_factory.mktemp("trained") / "study"
    records = []
    for trial_id, lr in (("slow", 1e-4), ("fast", 3e-3)):
        kept = KeptRun(root / "ray" / f"t_{trial_id}")
        config = {"learning_rate": lr, "num_train_epochs": 2, "per_device_train_batch_size": 16}
        run_trial(config, setup, kept, str(root.parent / f"work-{trial_id}"), trial_id=trial_id)
        reports = [{**r, "time": STARTED + i} for i, r in enumerate(kept.records)]
        records.append(trial_record(trial_id, config=config, reports=reports))
    study_folder(root, records, name="trained", model=str(tiny_bert), status="finished",
                 label_names=list(setup.label_names), config={"name": "trained"})
    return root, setup


def _rescore(folder: Path, dataset: Any) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of the model in ``folder`` on ``dataset``, computed
    here (plain forward passes, no Trainer) from the folder's own weights and tokenizer."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
    )

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    collate = DataCollatorWithPadding(AutoTokenizer.from_pretrained(folder))
    rows = [{k: r[k] for k in ("input_ids", "attention_mask", "token_type_ids", "labels")}
            for r in dataset]
    batch = collate(rows)
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    labels = batch["labels"]
    accuracy = float((logits.argmax(-1) == labels).float().mean())
    loss = float(torch.nn.functional.cross_entropy(logits, labels))
    return accuracy, loss


def test_export_rescores_the_recorded_value(trained_study, tmp_path: Path) -> None:
    """The exported model, evaluated again on the validation rows the trials saw, gives the
    score the study recorded for the exported trial (accuracy and loss): the
    weights are those of the evaluation that made the score, with the study's labels and a
    working tokenizer; the card states that score."""
    from transformers import AutoModelForSequenceClassification

    from hftune.study.export import export_best

    root, setup = trained_study
    trials = StudyStore(root).read_trials()
    best = max(trials, key=lambda t: t.score("accuracy", "max"))
    scored = best.best_report("accuracy", "max")
    out = tmp_path / "exported"
    result = export_best(root, out)
    assert result.trial_id == best.trial_id and result.value == scored["accuracy"]
    assert result.scored and result.checkpoint.global_step == scored["step"]
    accuracy, loss = _rescore(out, setup.eval_dataset)
    assert accuracy == scored["accuracy"]
    assert loss == pytest.approx(scored["loss"], rel=1e-6)
    # the weights of no other evaluation give that loss (each was scored on the same rows)
    others = [r["loss"] for t in trials for r in t.reports if r is not scored]
    assert all(abs(o - scored["loss"]) > 1e-4 for o in others), (scored["loss"], others)
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "entailment", 1: "not_entailment"}
    assert model.config.label2id == {"entailment": 0, "not_entailment": 1}
    card = (out / "README.md").read_text()
    assert f"Validation accuracy: **{scored['accuracy']:.4f}**" in card
    provenance = json.loads((out / "hftune_export.json").read_text())
    assert (provenance["trial_id"], provenance["value"]) == (best.trial_id, scored["accuracy"])


def test_export_writes_a_loadable_model_with_labels_and_card(study_dir: Path,
                                                             tmp_path: Path) -> None:
    """What export writes besides the weights (their numbers: the test above): the labels of
    study.json, the study model's tokenizer, a card that says how the model was chosen."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hftune.study.export import export_best

    out = tmp_path / "exported"
    result = export_best(study_dir, out)
    assert result.trial_id == "b" and result.value == 0.75
    assert (out / "model.safetensors").is_file()
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "yes", 1: "no"}
    assert model.config.label2id == {"yes": 0, "no": 1}
    assert AutoTokenizer.from_pretrained(out)("hello world")["input_ids"]
    card = (out / "README.md").read_text()
    for text in ("best trial b", "Validation accuracy: **0.7500**", "epoch 1",
                 "`learning_rate`", "`weight_decay` (fixed)", "seed: 7", "strategy `grid`",
                 "2 trials", "Held-out accuracy: **0.6250**", "validation[8:16]",
                 "How it was selected"):
        assert text in card, text
    provenance = json.loads((out / "hftune_export.json").read_text())
    assert provenance["trial_id"] == "b" and provenance["epoch"] == 1.0


def test_export_refuses_what_it_cannot_do(study_dir: Path, tmp_path: Path) -> None:
    from hftune.study.export import export_best

    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(StudyFolderError, match="--overwrite"):
        export_best(study_dir, out)
    assert (out / "keep.txt").is_file()
    export_best(study_dir, out, overwrite=True)
    assert not (out / "keep.txt").exists()
    with pytest.raises(StudyFolderError, match="kept no checkpoint"):
        export_best(study_dir, tmp_path / "a", trial_id="a")
    with pytest.raises(StudyFolderError, match="no trial 'nope'"):
        export_best(study_dir, tmp_path / "n", trial_id="nope")
    with pytest.raises(StudyFolderError, match="not a study folder"):
        export_best(tmp_path / "nothing", tmp_path / "x")


@pytest.mark.parametrize("where", ["study", "parent", "checkpoints"])
def test_export_never_overwrites_the_study(study_dir: Path, where: str) -> None:
    from hftune.study.export import export_best

    out = {"study": study_dir, "parent": study_dir.parent,
           "checkpoints": study_dir / "ray" / "t_b" / "out"}[where]
    with pytest.raises(StudyFolderError, match="holds the study itself|study's checkpoints"):
        export_best(study_dir, out, overwrite=True)
    assert (study_dir / "study.json").is_file()
    assert (study_dir / "ray/t_b/checkpoint_000000/model.safetensors").is_file()


def test_failed_export_leaves_the_earlier_one(study_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from hftune.study import export

    out = tmp_path / "exported"
    export.export_best(study_dir, out)
    before = sorted(p.name for p in out.iterdir())

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "model_card", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_best(study_dir, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".exported")] == []


def test_export_through_a_symlink_replaces_the_folder_it_points_to(study_dir: Path,
                                                                   tmp_path: Path) -> None:
    """-o models/latest -> models/v1: v1 receives the export (the old one is replaced, the
    link stays), and no staging or backup folder is left behind."""
    from hftune.study.export import export_best

    real = tmp_path / "models" / "v1"
    real.mkdir(parents=True)
    (real / "old.txt").write_text("x")
    link = tmp_path / "models" / "latest"
    link.symlink_to(real, target_is_directory=True)
    export_best(study_dir, link, overwrite=True)
    assert link.is_symlink() and (real / "model.safetensors").is_file()
    assert not (real / "old.txt").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["latest", "v1"]


def test_install_into_a_mount_point_replaces_its_entries(tmp_path: Path) -> None:
    """A mount point cannot be renamed: its entries are replaced by the staged ones (staged
    inside it)."""
    from hftune.study.export import _install

    mount = tmp_path / "mnt"
    (mount / "old_dir").mkdir(parents=True)
    (mount / "old.txt").write_text("x")
    staging = mount / ".mnt-stage"
    staging.mkdir()
    (staging / "model.safetensors").write_text("w")
    _install(staging, mount, mount=True)
    assert sorted(p.name for p in mount.iterdir()) == [".mnt-stage", "model.safetensors"]
    assert list(staging.iterdir()) == []  # export_best removes the emptied staging folder


def test_model_card_leaves_credentials_out(study_dir: Path) -> None:
    from hftune.study.export import choose_export, model_card

    store = StudyStore(study_dir)
    study, trial, ck = choose_export(store)
    config = {"training": {"weight_decay": 0.01, "hub_token": "hf_SECRETabc123"}}
    card = model_card(study, trial, ck, config, n_trials=2)
    assert "hf_SECRETabc123" not in card and "`weight_decay` (fixed)" in card


def test_summarize_reruns_mean_std_and_pooled_std() -> None:
    import math
    import statistics

    from hftune.study.rerun import summarize_reruns

    def run(index: int, seed: int, value: float | None) -> TrialRecord:
        reports = [] if value is None else [{"epoch": 1.0, "accuracy": value}]
        return TrialRecord(trial_id=f"r{index}{seed}", config={"config_index": index,
                                                               "seed": seed}, reports=reports)

    configs = [{"learning_rate": 1e-3}, {"learning_rate": 1e-4}, {"learning_rate": 1e-5}]
    sources = [TrialRecord(trial_id=t, config=c, reports=[{"accuracy": v}])
               for t, c, v in zip("xyz", configs, (0.9, 0.8, 0.7), strict=True)]
    runs = [run(0, 44, 0.70), run(0, 43, 0.60), run(0, 45, 0.80),
            run(1, 43, 0.50), run(1, 44, 0.55), run(2, 43, 0.4), run(2, 44, None)]
    out = summarize_reruns(runs, configs, sources, "accuracy", "max")
    first, second, third = out["configs"]
    assert first["seeds"] == [43, 44, 45] and first["values"] == [0.60, 0.70, 0.80]
    assert first["trial_id"] == "x" and first["study_score"] == 0.9 and first["rank"] == 1
    assert math.isclose(first["mean"], 0.70) and math.isclose(first["std"], 0.10)
    assert second["n"] == 2 and math.isclose(second["std"], statistics.stdev([0.5, 0.55]))
    assert third["n"] == 1 and third["std"] is None and third["mean"] == 0.4
    pooled = math.sqrt((0.10 ** 2 + statistics.stdev([0.5, 0.55]) ** 2) / 2)
    assert math.isclose(out["seed_std"], pooled)


@pytest.mark.parametrize("meta", [{"epoch": "three"}, [1, 2],
                                  {"trial_id": "b", "epoch": "three", "global_step": 1},
                                  {"trial_id": "b", "epoch": 1.0, "global_step": [1]},
                                  {"trial_id": "b", "epoch": 1.0, "global_step": 1,
                                   "config": "abc"}])
def test_scan_skips_a_checkpoint_whose_meta_is_not_hftunes(meta: object,
                                                           tmp_path: Path) -> None:
    from hftune.study.checkpoints import scan_checkpoints

    good = checkpoint_meta(tmp_path / "ray/t_a/checkpoint_000000", "a", 1.0, 0.75)
    bad = tmp_path / "ray" / "t_b" / "checkpoint_000000"
    bad.mkdir(parents=True)
    (bad / "hftune.json").write_text(json.dumps(meta))
    assert [c.path for c in scan_checkpoints(tmp_path / "ray")] == [good]


def test_the_export_gets_the_umask_modes(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from hftune.study.export import export_best

    store = two_trial_study(tmp_path / "study")
    study = store.read_study()
    study.model = str(tiny_bert)
    store.write_study(study)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    folder = checkpoint_meta(store.root / "ray/t_b/checkpoint_000000", "b", 1.0, 0.75)
    model.save_pretrained(str(folder))
    out = tmp_path / "exported"
    old = os.umask(0o022)
    try:
        export_best(store.root, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o644}, modes
