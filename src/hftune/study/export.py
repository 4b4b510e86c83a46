"""``hftune export``: the study's best model as a plain Hugging Face model folder.

The best trial is the one selection picks from the trial records (as ``study.json``
``best_trial_id`` says once a run has ended; the records win where a killed run left it stale);
its weights are the checkpoint of the evaluation that gives it its score (the ``best`` policy
keeps exactly that one; a PBT trial keeps several). Where that checkpoint is gone, the trial's
next kept one is exported, and the command, the model card and ``hftune_export.json`` say so.
The output folder holds the weights (safetensors), ``config.json`` with the study's label
names, the tokenizer of the study's model, a model card (``README.md``) and
``hftune_export.json`` (where the weights came from), and loads with the task type's class
(``AutoModelForSequenceClassification.from_pretrained(OUT)`` for sequence classification,
regression and multi-label; ``study.json`` ``task_type`` says which).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hftune.errors import ConfigError, StudyFolderError
from hftune.study.checkpoints import (
    CheckpointMeta,
    recorded_checkpoint,
    scan_checkpoints,
    scored_evaluation_kept,
)
from hftune.study.preflight import folder_problem
from hftune.study.records import StudyRecord, TrialRecord, select_best
from hftune.study.store import StudyStore, current_umask

# Settings whose values are credentials: never written into a model card (which gets published).
_SECRET = re.compile(r"token|secret|password|api_key|credential", re.IGNORECASE)


@dataclass
class ExportResult:
    """What was exported: the folder, the trial and the checkpoint its weights came from.
    ``scored``: the checkpoint is that of the trial's scored evaluation (``False``: that one
    was gone; ``scored_value`` is the trial's recorded score, ``value`` this checkpoint's)."""

    out: Path
    trial_id: str
    checkpoint: CheckpointMeta
    value: float | None
    scored: bool = True
    scored_value: float | None = None


def choose_export(store: StudyStore, trial_id: str | None = None
                  ) -> tuple[StudyRecord, TrialRecord, CheckpointMeta]:
    """The study, the trial to export (default: the best, selected from the records:
    :func:`~hftune.study.records.select_best`) and its checkpoint
    (:func:`~hftune.study.checkpoints.recorded_checkpoint`).

    Raises :class:`StudyFolderError` when the trial is unknown or kept no checkpoint.
    """
    study = store.read_study()
    trials = store.read_trials()
    best = select_best(study, trials)  # in memory: study.json is left as it is
    if trial_id is None:
        if best is None:
            raise StudyFolderError(f"{store.root}: no trial reported {study.metric}; "
                                   f"nothing to export")
        trial_id = best.trial_id
    trial = next((t for t in trials if t.trial_id == trial_id), None)
    if trial is None:
        raise StudyFolderError(f"{store.root}: no trial '{trial_id}' (see hftune status)")
    ck = recorded_checkpoint(scan_checkpoints(*store.experiment_dirs()), trial, study.metric,
                             study.mode, study.score)
    if ck is None:
        raise StudyFolderError(
            f"{store.root}: trial {trial_id} kept no checkpoint (the study ran with "
            f"checkpoints.save_best off?); nothing to export")
    return study, trial, ck


def export_best(root: Path, out: Path, *, trial_id: str | None = None,
                overwrite: bool = False, merge: bool = False) -> ExportResult:
    """Write the best trial's best checkpoint to ``out`` as a loadable model folder.

    ``out`` must not exist or be empty unless ``overwrite``, and must not be the study folder,
    lie inside it, or contain it (:func:`check_export_folder`). The model is written to a new
    folder next to ``out`` and takes its place only once complete, so a failed export leaves an
    earlier one as it was. The model's ``id2label`` and ``label2id`` are set from ``study.json``
    ``label_names``; the tokenizer is loaded from the study's ``model``.

    A study with a ``peft:`` adapter writes the adapter (and its trained head:
    ``PeftModel.from_pretrained(base, OUT)``); with ``merge`` the adapter merged into the base
    weights, a whole model for the plain ``AutoModelFor…`` class (``merge`` without an adapter
    is a :class:`ConfigError`).
    """
    import transformers
    from transformers import AutoTokenizer

    from hftune.tasks import TaskSettings, task_type_class
    from hftune.training.adapters import is_adapter_folder, load_with_adapter
    from hftune.training.model import resolve_model_ref

    store = StudyStore(Path(root))
    by_hand = trial_id is not None
    study, trial, ck = choose_export(store, trial_id)
    scored = scored_evaluation_kept(ck, trial, study.metric, study.mode, study.score)
    scored_value = trial.score(study.metric, study.mode, study.score)
    out = Path(out)
    check_export_folder(store.root, out, overwrite)
    if not study.model:
        raise StudyFolderError(f"{store.root}: study.json names no model to take the "
                               f"tokenizer from")
    config = store.read_config() if (store.root / "study.yaml").is_file() else {}
    remote = bool(config.get("trust_remote_code", False))
    kind = task_type_class(study.task_type)(TaskSettings(study.name))
    auto = getattr(transformers, kind.model_class)
    if is_adapter_folder(ck.path):
        model = load_with_adapter(ck.path, auto, kind.model_config(tuple(study.label_names)),
                                  remote, base=resolve_model_ref(study.model))
        if merge:
            model = model.merge_and_unload()
    elif merge:
        raise ConfigError("export --merge: the study trained no adapter (no peft: section); "
                          "its checkpoints are whole models already")
    else:
        model = auto.from_pretrained(str(ck.path), trust_remote_code=remote)
    if study.label_names:
        model.config.id2label = dict(enumerate(study.label_names))
        model.config.label2id = {name: i for i, name in enumerate(study.label_names)}
    target = out.resolve()  # a symlinked -o: the folder it points to receives the export
    mount = target.is_dir() and os.path.ismount(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-",
                                    dir=target if mount else target.parent))
    try:
        model.save_pretrained(str(staging))
        AutoTokenizer.from_pretrained(study.model, trust_remote_code=remote).save_pretrained(
            str(staging))
        (staging / "README.md").write_text(
            model_card(study, trial, ck, config, n_trials=len(store.read_trials()),
                       adapter=is_adapter_folder(ck.path) and not merge,
                       by_hand=by_hand, scored=scored), encoding="utf-8")
        provenance = {"study": study.name, "study_dir": str(store.root.resolve()),
                      "trial_id": trial.trial_id, "chosen": "by hand" if by_hand else "best",
                      "checkpoint": str(ck.path.resolve()), "epoch": ck.epoch,
                      "global_step": ck.global_step, "config": ck.config,
                      "metric": study.metric, "value": ck.value(study.metric),
                      "scored_evaluation": scored, "trial_score": scored_value,
                      "score_rule": study.score, "record": ck.record}
        (staging / "hftune_export.json").write_text(
            json.dumps(provenance, indent=1, default=str), encoding="utf-8")
        _plain_modes(staging)
        _install(staging, target, mount)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, trial.trial_id, ck, ck.value(study.metric), scored, scored_value)


def _plain_modes(folder: Path) -> None:
    """Give ``folder`` and everything in it the modes a plain ``mkdir`` and ``open`` give under
    the process umask (``0o777``/``0o666`` less it): ``mkdtemp`` makes the folder ``0700``, and
    some writers (safetensors) make their files ``0600``, which would keep a teammate or a
    serving account from reading the export."""
    umask = current_umask()
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.rglob("*"):
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _install(staging: Path, target: Path, mount: bool) -> None:
    """Put the finished export in ``staging`` at ``target``, replacing what was there.

    The old folder is renamed aside before the new one is renamed in, and deleted only after:
    a failure leaves either export whole. A mount point cannot be renamed: its old entries are
    deleted and the staged ones (staged inside it) moved in.
    """
    if mount:
        for child in target.iterdir():
            if child != staging:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        for child in staging.iterdir():
            os.replace(child, target / child.name)
        return
    backup = None
    if target.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.replace(target, backup / target.name)
    try:
        os.replace(staging, target)
    except OSError:
        if backup is not None:
            os.replace(backup / target.name, target)
        raise
    finally:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)


def check_export_folder(study_dir: Path, out: Path, overwrite: bool) -> None:
    """Raise :class:`StudyFolderError` (one line) unless ``out`` may receive an export: empty
    or missing (or ``overwrite``); not the study folder, a folder that contains the study
    (``--overwrite`` would delete it), nor anywhere inside the study folder (its trial
    records, its checkpoints); and a folder that can be made where it is, next to which the
    export can be staged (:func:`~hftune.study.preflight.folder_problem`: not under a file,
    writable). Checked before any model is loaded."""
    study, target = study_dir.resolve(), out.resolve()
    outside = Path(f"{study_dir}-model")
    if target == study or study.is_relative_to(target):
        raise StudyFolderError(f"{out}: this folder holds the study itself; export to a new "
                               f"folder (e.g. {outside})")
    if any(target.is_relative_to(d.resolve()) for d in StudyStore(study).experiment_dirs()):
        raise StudyFolderError(f"{out}: inside the study's checkpoints; export to a new folder")
    if target.is_relative_to(study):
        raise StudyFolderError(f"-o: {out} is inside the study folder {study_dir}; export to "
                               f"a folder outside it (e.g. {outside})")
    if out.exists() and not out.is_dir():
        raise StudyFolderError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise StudyFolderError(f"{out}: the folder is not empty; use --overwrite to replace "
                               f"it or choose another -o")
    # the export is staged next to the folder (inside a mount point, which cannot be renamed)
    place = target if target.is_dir() and os.path.ismount(target) else target.parent
    problem = folder_problem(place)
    if problem is not None:
        raise StudyFolderError(f"-o: cannot export to {out}: {place} {problem}")


def model_card(study: StudyRecord, trial: TrialRecord, ck: CheckpointMeta,
               config: dict[str, Any], *, n_trials: int, by_hand: bool = False,
               scored: bool = True, adapter: bool = False) -> str:
    """The model card: task, metric, hyperparameters, the study, and how the model was chosen:
    the best trial or one chosen by hand (``by_hand``), at the evaluation that gives it its
    score (best or last, per the study's rule) or, when that checkpoint was gone (``scored``
    false), at its next kept one. ``adapter``: the folder holds a peft adapter (its card says
    how to load it on the base model)."""
    task = config.get("task") or {}
    task_name = task.get("name") if isinstance(task, dict) else task
    value = ck.value(study.metric)
    rows = [f"| `{k}` | `{v}` |" for k, v in sorted(ck.config.items()) if not _SECRET.search(k)]
    rows += [f"| `{k}` (fixed) | `{v}` |" for k, v in sorted((config.get("training") or {}).items())
             if k not in ck.config and not _SECRET.search(k)]
    seed = ck.config.get("seed", config.get("seed"))
    base = study.model or ""
    from hftune.tasks import task_type_class

    kind = task_type_class(study.task_type)
    auto = kind.model_class
    front = ["---", f"library_name: {'peft' if adapter else 'transformers'}",
             f"pipeline_tag: {kind.pipeline_tag}",
             f"tags: [hftune, {kind.pipeline_tag}]"]
    if base and not base.startswith("/") and not Path(base).exists():
        front.append(f"base_model: {base}")
    front.append("---")
    holdout = ""
    info = trial.holdout or {}
    held = (info.get("metrics") or {}).get(study.metric)
    if isinstance(held, int | float) and info.get("step") == ck.global_step:
        holdout = (f"\nHeld-out {study.metric}: **{held:.4f}** on {info.get('rows', '?')} rows "
                   f"(`{info.get('source', '?')}`) that selection never saw.\n")
    evaluation = "best evaluation" if study.score == "best" else "last evaluation"
    best_word = "highest" if study.mode == "max" else "lowest"
    if by_hand and trial.trial_id != study.best_trial_id:
        chosen = (f"Trial {trial.trial_id}, chosen by hand (`hftune export --trial`); the "
                  f"study's best trial is {study.best_trial_id or 'none'}.")
        title = f"trial {trial.trial_id}"
    else:
        chosen = (f"The trial with the {best_word} score ({study.score} validation "
                  f"{study.metric} of each trial) among the study's trials.")
        title = f"best trial {trial.trial_id}"
    if scored:
        weights = (f"These are the weights of that trial's {evaluation} (the checkpoint taken "
                   f"at it).")
        metric_note = ("the value recorded for these weights during the study"
                       + ("" if title.startswith("trial") else
                          f"; it is the value selection "
                          f"{'maximised' if study.mode == 'max' else 'minimised'}, so it is an "
                          f"optimistic estimate") + ".")
    else:
        weights = (f"The checkpoint of that trial's {evaluation} (its score, "
                   f"{_fmt(trial.score(study.metric, study.mode, study.score))}) was no longer "
                   f"kept: these are the weights of its next kept checkpoint.")
        metric_note = ("the value recorded for these weights during the study; **not** the "
                       "trial's score, whose checkpoint was no longer kept.")
    return "\n".join([
        *front, "",
        f"# {study.name}: {task_name}, {title}", "",
        f"A model fine-tuned from `{base}` on **{task_name}**, task type "
        f"{_task_line(study)}, from an hftune hyperparameter study.", "",
        "## Metric", "",
        f"Validation {study.metric}: **{_fmt(value)}** (epoch {ck.epoch:g}, step "
        f"{ck.global_step}), {metric_note}", holdout,
        "## Hyperparameters", "",
        "| name | value |", "| --- | --- |", *rows, "",
        f"Max sequence length: {config.get('max_length', '?')}; seed: {seed}.", "",
        "## The study", "",
        f"Study `{study.name}`: strategy `{study.strategy}`, {n_trials} trials, objective "
        f"{study.metric} ({study.mode}), data `{study.data_source}`.", "",
        "## How it was selected", "",
        f"{chosen} {weights}", "",
        "```python",
        *(["from peft import PeftModel",
           f"from transformers import {auto}, AutoTokenizer",
           f'base = {auto}.from_pretrained("{base}"'
           + (f", num_labels={len(study.label_names)})" if study.label_names else ")"),
           'model = PeftModel.from_pretrained(base, "<this folder>")'] if adapter else
          [f"from transformers import {auto}, AutoTokenizer",
           f'model = {auto}.from_pretrained("<this folder>")']),
        'tokenizer = AutoTokenizer.from_pretrained("<this folder>")',
        "```", ""])


def _task_line(study: StudyRecord) -> str:
    """The task type and what it predicts, as the task type says it."""
    from hftune.tasks import TaskSettings, task_type

    return task_type(study.task_type, TaskSettings(study.name)).describe(
        tuple(study.label_names))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
