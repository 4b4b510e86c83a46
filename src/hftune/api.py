"""hftune from Python: run or open a study, read its trials, report, export, resume, rerun.

```python
import hftune

study = hftune.run("study.yaml", overrides={"budget.num_samples": 20})
study = hftune.open("runs/rte-grid")
study.status, study.trials, study.evaluations, study.best
study.report("report.html", others=["runs/rte-pbt"])
study.export("best-model")
```

Each call is the command line's own implementation (the ``hftune.study`` and
``hftune.report`` functions the commands call); errors are the same exceptions, with the same
one-line messages (:class:`~hftune.errors.ConfigError`, :class:`~hftune.errors.HftuneInputError`
and their kind), and nothing here exits the interpreter. Reading a study folder works while the
study runs, in this process or another.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from hftune.config.schema import StudyConfig
    from hftune.study.records import StudyRecord


@dataclass(frozen=True)
class BestTrial:
    """The trial a study selects: its id, the config in effect at the evaluation that gives
    it its score (a PBT member's config of that moment), the value (best or last evaluation,
    per ``strategy.score``), that evaluation's epoch, and the checkpoint ``hftune export``
    takes (``None`` when it kept none)."""

    trial_id: str
    config: dict[str, Any]
    value: float | None
    epoch: float | None
    checkpoint: Path | None


class Study:
    """A study folder, read afresh at each access (a running study's values move)."""

    def __init__(self, root: str | Path) -> None:
        from hftune.study.store import StudyStore

        store = StudyStore(Path(root))
        store.read_study()  # a StudyFolderError, naming the folder, when it holds no study
        self.root = store.root

    def __repr__(self) -> str:
        return f"hftune.Study({str(self.root)!r}, status={self.status!r})"

    @property
    def record(self) -> StudyRecord:
        """``study.json`` (:class:`~hftune.study.records.StudyRecord`)."""
        from hftune.study.store import StudyStore

        return StudyStore(self.root).read_study()

    @property
    def status(self) -> str:
        """As ``hftune status`` says: ``running`` (a process holds the study), ``interrupted``
        (it says running, no process does), ``finished``, ..."""
        from hftune.study.status import study_status

        return str(study_status(self.root)["status"])

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: ``trial_id``, ``state``, the searched values in effect at its
        scored evaluation, ``score``, ``score_epoch``, ``epochs``, ``evaluations``,
        ``compute_s``, its compute in the study's unit, and ``node`` (the Ray node of its
        latest run; missing before it reported)."""
        from hftune.report.data import load_study, trials_frame

        data = load_study(self.root)
        frame = trials_frame(data)
        nodes = {t.trial_id: next((r["ray_node_id"] for r in reversed(t.reports)
                                   if r.get("ray_node_id")), None) for t in data.trials}
        if not frame.empty:
            frame["node"] = frame["trial_id"].map(nodes)
        return frame

    @property
    def evaluations(self) -> pd.DataFrame:
        """One row per evaluation of every trial: ``trial_id``, ``state`` and every field the
        trial reported (``epoch``, ``step``, the metrics, ``learning_rate``, ...), in the
        order each trial reported them."""
        import pandas as pd

        from hftune.study.store import StudyStore

        rows = [{"trial_id": t.trial_id, "state": t.state, **report}
                for t in StudyStore(self.root).read_trials() for report in t.reports]
        return pd.DataFrame(rows)

    @property
    def best(self) -> BestTrial | None:
        """The selected trial (:class:`BestTrial`), ``None`` before any trial has a score."""
        from hftune.errors import StudyFolderError
        from hftune.study.effective_config import scored_config
        from hftune.study.export import choose_export
        from hftune.study.records import select_best
        from hftune.study.store import StudyStore

        store = StudyStore(self.root)
        study = store.read_study()
        trial = select_best(study, store.read_trials())
        if trial is None:
            return None
        try:
            checkpoint: Path | None = choose_export(store, trial.trial_id)[2].path
        except StudyFolderError:  # it kept no checkpoint
            checkpoint = None
        report = trial.scored_report(study.metric, study.mode, study.score)
        return BestTrial(trial.trial_id, dict(scored_config(trial, study.metric, study.mode,
                                                            study.score)),
                         trial.score(study.metric, study.mode, study.score),
                         report.get("epoch") if report else None, checkpoint)

    def report(self, output: str | Path = "report.html", *, others: Iterable[str | Path] = (),
               fmt: str | None = None, price_per_hour: float | None = None,
               title: str | None = None) -> Path:
        """Write ``hftune report`` of this study and ``others`` to ``output`` (the format
        from its suffix, ``.md`` Markdown + PNGs, else HTML, unless ``fmt`` says); returns
        the path."""
        from hftune.report.build import write_report

        output = Path(output)
        fmt = fmt or ("md" if output.suffix == ".md" else "html")
        result = write_report([self.root, *map(Path, others)], output, fmt=fmt,
                              price_per_hour=price_per_hour, title=title)
        return Path(result.path)

    def export(self, output: str | Path, *, trial: str | None = None,
               overwrite: bool = False, merge: bool = False) -> Path:
        """``hftune export``: the best trial's (or ``trial``'s) checkpoint, tokenizer and
        model card as a loadable folder; returns it. ``merge``: a peft study's adapter merged
        into a whole model (``hftune export --merge``)."""
        from hftune.study.export import export_best

        return Path(export_best(self.root, Path(output), trial_id=trial,
                                overwrite=overwrite, merge=merge).out)

    def resume(self, *, address: str | None = None) -> Study:
        """``hftune resume``: finish the study (ended trials stay, interrupted ones go on)."""
        from hftune.study.resume import resume_study

        resume_study(self.root, address=address)
        return self

    def evaluate_holdout(self, top_k: int | None = None) -> dict[str, Any]:
        """``hftune evaluate --split holdout``: score the top trials' checkpoints on the
        held-out rows and record it; returns the summary ``hftune evaluate --json`` prints."""
        from hftune.errors import StudyFolderError
        from hftune.study.holdout import evaluate_holdout, holdout_summary
        from hftune.study.store import StudyStore

        store = StudyStore(self.root)
        if store.is_locked():
            raise StudyFolderError(f"{store.root}: the study is running; evaluate it when it "
                                   f"ends")
        return holdout_summary(evaluate_holdout(store, top_k=top_k))

    def rerun(self, top: int = 3, seeds: int = 5, *, address: str | None = None
              ) -> dict[str, Any]:
        """``hftune rerun``: retrain the ``top`` configs with ``seeds`` new seeds each;
        returns the summary (per config: the values, mean and std)."""
        from hftune.study.rerun import rerun_study

        return rerun_study(self.root, top=top, seeds=seeds, address=address)


def study_config(config: str | Path | Mapping[str, Any] | StudyConfig,
                 overrides: Mapping[str, Any] | None = None, *,
                 data_dir: str | Path | None = None) -> StudyConfig:
    """A validated study config from a YAML path, a mapping (as the YAML would hold) or a
    :class:`~hftune.config.schema.StudyConfig`, with ``overrides`` (``{"budget.num_samples":
    20}``: ``--set`` keys, any JSON-able value) and ``data_dir`` (``--data-dir``) on top."""
    from hftune.config.loading import apply_overrides
    from hftune.config.schema import StudyConfig
    from hftune.study.loading import load_config, validate_study

    items = [f"{key}={json.dumps(value)}" for key, value in (overrides or {}).items()]
    folder = Path(data_dir) if data_dir is not None else None
    if isinstance(config, str | Path):
        return load_config(Path(config), items, data_dir=folder)
    data = config.model_dump(mode="json") if isinstance(config, StudyConfig) \
        else copy.deepcopy(dict(config))
    if folder is not None:
        items.append(f"task.data_dir={json.dumps(str(folder))}")
    return validate_study(apply_overrides(data, items))


def run(config: str | Path | Mapping[str, Any] | StudyConfig,
        overrides: Mapping[str, Any] | None = None, *, data_dir: str | Path | None = None,
        address: str | None = None, overwrite: bool = False, progress: bool = True) -> Study:
    """Run a study (``hftune run``) and return it once it ended. ``config``, ``overrides``
    and ``data_dir``: :func:`study_config`; ``address``: a Ray cluster to join; ``overwrite``:
    replace a finished study in the same folder; ``progress``: the live view on stderr
    (:mod:`hftune.study.progress`: a table in a terminal or Jupyter, one line per event
    elsewhere)."""
    from hftune.study.runner import run_study

    cfg = study_config(config, overrides, data_dir=data_dir)
    if not progress:
        return Study(run_study(cfg, address=address, overwrite=overwrite).root)
    from hftune.study.progress import LiveProgress

    with LiveProgress.for_study(cfg) as view:
        result = run_study(cfg, address=address, overwrite=overwrite, on_change=view.update)
    return Study(result.root)


def open(root: str | Path) -> Study:  # noqa: A001 - hftune.open mirrors the built-in's role
    """The study in folder ``root``, running or ended (:class:`Study`)."""
    return Study(root)
