"""Realistic study folders written without training, for report tests and demos.

Each builder writes a study folder the way ``hftune run`` leaves one (through
:class:`StudyStore` and the runner's own ``finalize``), with hand-chosen numbers so a test can
check a report against values worked out by hand:

* :func:`build_grid_study` — 9 finished trials (3 learning rates × 3 batch sizes, 3 epochs,
  2 CPU cores each); best accuracy 0.70; ``best_holdout`` 0.685 in ``study.json``.
* :func:`build_asha_study` — 10 trials on 2 CPU cores each: 3 finished (3 epochs), 6 stopped
  (five after epoch 1, one after epoch 2), 1 errored after 2 epochs; best accuracy 0.72 whose
  last report has ``holdout_accuracy`` 0.705.
* :func:`build_pbt_study` — 4 members × 6 epochs on 1 GPU each, 2 exploits in
  ``lineage.jsonl``; best accuracy 0.71; no held-out metric.
* :func:`build_running_study` — status ``running``: one finished trial, one running trial with
  one report, one running trial with none, one pending trial.

Every epoch takes :data:`EPOCH_S` seconds; the study starts at :data:`STARTED`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.runner import finalize
from hftune.study.store import StudyStore

STARTED = 1_700_000_000.0
EPOCH_S = 60.0
SETUP_S = 5.0  # tokenising before the first trial starts

GRID_LRS = (1e-5, 3e-5, 1e-4)
GRID_BATCH_SIZES = (16, 32, 64)
# final accuracy per (learning rate, batch size); each curve is final - 0.06, final - 0.02, final
GRID_FINAL = {
    (1e-5, 16): 0.62, (1e-5, 32): 0.60, (1e-5, 64): 0.58,
    (3e-5, 16): 0.68, (3e-5, 32): 0.70, (3e-5, 64): 0.66,
    (1e-4, 16): 0.64, (1e-4, 32): 0.61, (1e-4, 64): 0.55,
}

# (learning_rate, weight_decay, state, accuracy per epoch)
ASHA_TRIALS: tuple[tuple[float, float, str, tuple[float, ...]], ...] = (
    (2e-5, 0.01, "finished", (0.60, 0.66, 0.69)),
    (8e-5, 0.0, "stopped", (0.52,)),
    (5e-5, 0.1, "finished", (0.63, 0.70, 0.72)),
    (1e-5, 0.05, "stopped", (0.50,)),
    (3e-5, 0.0, "finished", (0.61, 0.65, 0.67)),
    (9e-6, 0.1, "stopped", (0.49,)),
    (1.5e-4, 0.01, "errored", (0.47, 0.45)),
    (6e-6, 0.0, "stopped", (0.51,)),
    (4e-5, 0.05, "stopped", (0.55, 0.60)),
    (1.2e-5, 0.02, "stopped", (0.53,)),
)

PBT_INITIAL = ({"learning_rate": 1e-5, "weight_decay": 0.0},
               {"learning_rate": 3e-5, "weight_decay": 0.01},
               {"learning_rate": 6e-5, "weight_decay": 0.05},
               {"learning_rate": 1e-4, "weight_decay": 0.1})
PBT_ACCURACY = ((0.55, 0.58, 0.60, 0.61, 0.67, 0.68),
                (0.60, 0.64, 0.67, 0.69, 0.70, 0.71),
                (0.58, 0.62, 0.64, 0.66, 0.67, 0.68),
                (0.50, 0.52, 0.66, 0.68, 0.69, 0.70))
# (epoch after which it happens, from member, to member, new config)
PBT_EXPLOITS = ((2, 1, 3, {"learning_rate": 3.6e-5, "weight_decay": 0.01}),
                (4, 1, 0, {"learning_rate": 2.4e-5, "weight_decay": 0.012}))


def _report(acc: float, epoch: int, steps_per_epoch: int, n_epochs: int, lr: float,
            wd: float, start: float, **extra: Any) -> dict[str, Any]:
    """One evaluation as the trainable's ``ReportCallback`` and the recorder write it."""
    return {"loss": round(1.2 - acc, 4), "accuracy": acc, "eval_s": 2.0,
            "epoch": float(epoch), "step": epoch * steps_per_epoch,
            "elapsed_s": epoch * EPOCH_S, "trained_all": epoch == n_epochs,
            "learning_rate": lr, "weight_decay": wd, "time": start + epoch * EPOCH_S, **extra}


def _study(name: str, strategy: str, cpus: int, gpus: int, concurrent: int) -> StudyRecord:
    return StudyRecord(
        name=name, status="running", strategy=strategy, metric="accuracy", mode="max",
        score="best", started_at=STARTED, tokenize_s=SETUP_S, label_names=["entailment",
                                                                           "not_entailment"],
        data_source="fixture", model="fixture:tiny-bert",
        resources={"cpus_per_trial": cpus, "gpus_per_trial": gpus,
                   "max_concurrent": concurrent})


def _close(store: StudyStore, study: StudyRecord, wall_s: float) -> None:
    study.status = "finished"
    study.wall_s = wall_s
    study.ended_at = STARTED + wall_s
    finalize(store, study)


def build_grid_study(root: Path) -> Path:
    """9 sequential grid trials; 54 CPU-core-minutes, 27.5 wall minutes, best 0.70."""
    store = StudyStore(Path(root))
    study = _study("grid-rte", "grid", cpus=2, gpus=0, concurrent=1)
    store.write_study(study)
    i = 0
    for lr in GRID_LRS:
        for bs in GRID_BATCH_SIZES:
            final = GRID_FINAL[(lr, bs)]
            start = STARTED + SETUP_S + i * 3 * EPOCH_S
            reports = [_report(round(final - d, 4), e, 1000 // bs, 3, lr * (1 - e / 3), 0.01,
                               start) for e, d in ((1, 0.06), (2, 0.02), (3, 0.0))]
            store.write_trial(TrialRecord(
                trial_id=f"grid_{i:05d}", config={"learning_rate": lr,
                                                  "per_device_train_batch_size": bs},
                state="finished", reports=reports, node_id="10.0.0.1", started_at=start,
                ended_at=start + 3 * EPOCH_S))
            i += 1
    _close(store, study, wall_s=1650.0)
    raw = json.loads((store.root / "study.json").read_text(encoding="utf-8"))
    raw["best_holdout"] = 0.685
    (store.root / "study.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return store.root


def build_asha_study(root: Path) -> Path:
    """10 ASHA trials on 2 slots; 36 CPU-core-minutes, 620 s wall, best 0.72."""
    store = StudyStore(Path(root))
    study = _study("asha-rte", "asha", cpus=2, gpus=0, concurrent=2)
    store.write_study(study)
    slots = [0.0, 0.0]
    for i, (lr, wd, state, accs) in enumerate(ASHA_TRIALS):
        slot = slots.index(min(slots))
        start = STARTED + SETUP_S + slots[slot]
        slots[slot] += len(accs) * EPOCH_S
        reports = []
        for e, acc in enumerate(accs, start=1):
            extra = {"holdout_accuracy": 0.705} if (i == 2 and e == len(accs)) else {}
            reports.append(_report(acc, e, 60, 3, lr, wd, start, **extra))
        store.write_trial(TrialRecord(
            trial_id=f"asha_{i:05d}", config={"learning_rate": lr, "weight_decay": wd},
            state=state, reports=reports, node_id="10.0.0.1", started_at=start,
            ended_at=start + len(accs) * EPOCH_S,
            error=("Traceback (most recent call last):\n  ...\n"
                   "RuntimeError: loss is NaN" if state == "errored" else None)))
    _close(store, study, wall_s=620.0)
    return store.root


def build_pbt_study(root: Path) -> Path:
    """4 PBT members on 1 GPU each with 2 exploits; 24 GPU-minutes, 380 s wall, best 0.71."""
    store = StudyStore(Path(root))
    study = _study("pbt-rte", "pbt", cpus=4, gpus=1, concurrent=4)
    store.write_study(study)
    start = STARTED + SETUP_S
    configs = [dict(c) for c in PBT_INITIAL]
    reports: list[list[dict[str, Any]]] = [[] for _ in PBT_INITIAL]
    lineage = []
    for epoch in range(1, 7):
        for m, accs in enumerate(PBT_ACCURACY):
            cfg = configs[m]
            reports[m].append(_report(accs[epoch - 1], epoch, 60, 6, cfg["learning_rate"],
                                      cfg["weight_decay"], start))
        for at, src, dst, new in PBT_EXPLOITS:
            if at == epoch:
                lineage.append({"time": start + epoch * EPOCH_S + 1.0,
                                "from_trial": f"pbt_{src:05d}", "to_trial": f"pbt_{dst:05d}",
                                "old_config": dict(configs[dst]), "new_config": dict(new),
                                "epoch": float(epoch)})
                configs[dst] = dict(new)
    for m, initial in enumerate(PBT_INITIAL):
        # as the recorder leaves it: ``config`` is the latest config, the first one is kept in
        # ``config_history`` (where the record has that field) and in the lineage's old_config
        record = TrialRecord(
            trial_id=f"pbt_{m:05d}", config=dict(configs[m]), state="finished",
            reports=reports[m], node_id="10.0.0.2", started_at=start,
            ended_at=start + 6 * EPOCH_S)
        exploits = [e for e in lineage if e["to_trial"] == record.trial_id]
        if exploits and hasattr(record, "config_history"):
            record.config_history = [{"epoch": 0.0, "config": dict(initial)}] + [
                {"epoch": e["epoch"], "config": e["new_config"], "from_trial": e["from_trial"]}
                for e in exploits]
        store.write_trial(record)
    (store.root / "lineage.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in lineage), encoding="utf-8")
    _close(store, study, wall_s=380.0)
    return store.root


def build_running_study(root: Path) -> Path:
    """A study mid-run: status ``running``, no ``wall_s``, trials with and without reports."""
    store = StudyStore(Path(root))
    study = _study("random-rte", "random", cpus=2, gpus=0, concurrent=2)
    store.write_study(study)
    start = STARTED + SETUP_S
    store.write_trial(TrialRecord(
        trial_id="rand_00000", config={"learning_rate": 2e-5}, state="finished",
        reports=[_report(a, e, 60, 2, 2e-5, 0.0, start) for e, a in ((1, 0.6), (2, 0.65))],
        started_at=start, ended_at=start + 2 * EPOCH_S))
    store.write_trial(TrialRecord(
        trial_id="rand_00001", config={"learning_rate": 7e-5}, state="running",
        reports=[_report(0.58, 1, 60, 2, 7e-5, 0.0, start)], started_at=start))
    store.write_trial(TrialRecord(
        trial_id="rand_00002", config={"learning_rate": 1e-5}, state="running",
        started_at=start + 2 * EPOCH_S))
    store.write_trial(TrialRecord(trial_id="rand_00003", config={"learning_rate": 4e-5}))
    return store.root


def build_report_fixtures(base: Path) -> dict[str, Path]:
    """The grid, ASHA and PBT studies in ``base/<name>``; returns ``{name: folder}``."""
    base = Path(base)
    return {"grid": build_grid_study(base / "grid"), "asha": build_asha_study(base / "asha"),
            "pbt": build_pbt_study(base / "pbt")}


def tokenize_limited(task: Any, data: Any, tokenizer: Any, max_length: int,
                     limits: dict[str, int]) -> Any:
    """``data``'s splits (a :class:`~hftune.data.loading.TaskData` of ``task``), each cut to
    its first ``limits[split]`` rows, tokenized as a study does
    (:func:`hftune.data.tokenize.tokenize_task`)."""
    from hftune.data.tokenize import tokenize_task

    frames = {split: frame.iloc[:limits.get(split, len(frame))].reset_index(drop=True)
              for split, frame in data.splits.items()}
    return tokenize_task(task.type, frames, tokenizer, max_length, data.label_names,
                         task.train_split)
