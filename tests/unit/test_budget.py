"""The checkpoint budget of strategies that clone trials (:mod:`hftune.study.budget`), on
folders written by hand (no Ray): what it keeps (the newest, the best, what Ray's newest
snapshot names) and when it deletes nothing."""

from __future__ import annotations

from pathlib import Path


def test_budget_keeps_the_newest_and_the_best(tmp_path) -> None:
    """keep=1: of five checkpoints the newest and the best-scoring one stay (earliest on
    ties); without a metric only the newest."""
    from types import SimpleNamespace

    from hftune.study.budget import CheckpointBudget
    from hftune.training.checkpoint import write_meta

    def trial_with(values: list[float]) -> SimpleNamespace:
        folder = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        for i, value in enumerate(values):
            ck = folder / f"checkpoint_{i:06d}"
            ck.mkdir(parents=True)
            write_meta(ck, trial_id=folder.name, epoch=i + 1.0, global_step=i + 1, config={},
                       record={"accuracy": value})
        return SimpleNamespace(path=str(folder), checkpoint=None, storage=staging)

    def left(trial: SimpleNamespace) -> list[str]:
        return sorted(p.name for p in Path(trial.path).glob("checkpoint_*"))

    staging = SimpleNamespace(experiment_driver_staging_path=str(tmp_path.parent / "staging"))
    peaked, falling = trial_with([0.5, 0.8, 0.6, 0.8, 0.7]), trial_with([0.5, 0.4, 0.3])
    assert CheckpointBudget(1, metric="accuracy", mode="max").prune([peaked, falling]) == 3 + 1
    assert left(peaked) == ["checkpoint_000001", "checkpoint_000004"]
    assert left(falling) == ["checkpoint_000000", "checkpoint_000002"]
    lowest = trial_with([0.5, 0.4, 0.3, 0.6])
    CheckpointBudget(1, metric="accuracy", mode="min").prune([lowest])
    assert left(lowest) == ["checkpoint_000002", "checkpoint_000003"]
    plain = trial_with([0.9, 0.1])
    CheckpointBudget(1).prune([plain])
    assert left(plain) == ["checkpoint_000001"]


def test_budget_keeps_what_rays_newest_snapshot_names(tmp_path) -> None:
    """A resume restores the checkpoints Ray's newest snapshot names, in the experiment folder
    or still in the driver's staging folder: the budget never deletes them, and deletes
    nothing while one of those files cannot be read (being written)."""
    from types import SimpleNamespace

    from hftune.study.budget import CheckpointBudget
    from hftune.testing.ray_snapshot import write_snapshot
    from hftune.training.checkpoint import write_meta

    experiment, staging = tmp_path / "ray", tmp_path / "staging"
    folder = experiment / "trial_a"
    for i in range(6):
        (folder / f"checkpoint_{i:06d}").mkdir(parents=True)
        write_meta(folder / f"checkpoint_{i:06d}", trial_id="a", epoch=i + 1.0,
                   global_step=i + 1, config={}, record={"accuracy": 0.1 * i})
    trial = SimpleNamespace(path=str(folder), checkpoint=None, storage=SimpleNamespace(
        experiment_driver_staging_path=str(staging)))
    old = write_snapshot(experiment, {"a": str(folder / "checkpoint_000000")}, "2026-12-01")
    write_snapshot(experiment, {"a": str(folder / "checkpoint_000001")})  # the newest
    write_snapshot(staging, {"a": str(folder / "checkpoint_000002")})  # not yet copied
    budget = CheckpointBudget(1, metric="accuracy", mode="max")
    assert budget.prune([trial]) == 3
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint_000001", "checkpoint_000002", "checkpoint_000005"]
    (staging / old.name.replace("2026-12-01", "2026-12-03")).write_text('{"trial_da')
    write_snapshot(staging, {"a": str(folder / "checkpoint_000005")}, "2026-12-02_10-00-00")
    assert budget.prune([trial]) == 0  # the staging folder's newest file is being written
    assert len(list(folder.iterdir())) == 3


def _trial(root: Path, name: str, values: list[float]):
    from types import SimpleNamespace

    from hftune.training.checkpoint import write_meta

    folder = root / name
    for i, value in enumerate(values):
        ck = folder / f"checkpoint_{i:06d}"
        ck.mkdir(parents=True)
        write_meta(ck, trial_id=name, epoch=i + 1.0, global_step=i + 1, config={},
                   record={"accuracy": value})
    staging = SimpleNamespace(experiment_driver_staging_path=str(root / "staging"))
    return SimpleNamespace(path=str(folder), checkpoint=None, storage=staging)


def _left(trial) -> list[str]:
    return sorted(p.name for p in Path(trial.path).glob("checkpoint_*"))


def test_a_trials_own_restore_checkpoint_is_kept(tmp_path: Path) -> None:
    """The checkpoint a trial will restore from (Ray's ``trial.checkpoint``) stays, however
    old and however it scored."""
    from types import SimpleNamespace

    from hftune.study.budget import CheckpointBudget

    trial = _trial(tmp_path, "a", [0.1, 0.2, 0.3, 0.4])
    trial.checkpoint = SimpleNamespace(path=str(Path(trial.path) / "checkpoint_000000"))
    assert CheckpointBudget(1, metric="accuracy").prune([trial]) == 2
    assert _left(trial) == ["checkpoint_000000", "checkpoint_000003"]


def test_fewer_checkpoints_than_keep_are_all_kept_and_deletions_add_up(tmp_path: Path) -> None:
    from hftune.study.budget import CheckpointBudget

    budget = CheckpointBudget(3)
    assert budget.deleted == 0
    few = _trial(tmp_path, "few", [0.5, 0.6])
    assert budget.prune([few]) == 0 and _left(few) == ["checkpoint_000000", "checkpoint_000001"]
    many = _trial(tmp_path, "many", [0.1] * 5)
    assert budget.prune([many]) == 2
    more = _trial(tmp_path, "more", [0.1] * 4)
    assert budget.prune([more]) == 1
    assert budget.deleted == 3


def test_the_best_under_min_is_the_earliest_of_equal_lowest(tmp_path: Path) -> None:
    from hftune.study.budget import CheckpointBudget

    trial = _trial(tmp_path, "m", [0.3, 0.3, 0.5, 0.6])
    CheckpointBudget(1, metric="accuracy", mode="min").prune([trial])
    assert _left(trial) == ["checkpoint_000000", "checkpoint_000003"]


def test_a_linked_checkpoint_is_unlinked_and_its_target_left(tmp_path: Path) -> None:
    """A resume stands a link in for a lost checkpoint; deleting it removes the link only."""
    from hftune.study.budget import CheckpointBudget

    trial = _trial(tmp_path, "l", [0.1, 0.2, 0.3])
    target = tmp_path / "elsewhere"
    (Path(trial.path) / "checkpoint_000000").rename(target)
    (Path(trial.path) / "checkpoint_000000").symlink_to(target, target_is_directory=True)
    assert CheckpointBudget(1).prune([trial]) == 2
    assert _left(trial) == ["checkpoint_000002"] and (target / "hftune.json").is_file()


def test_a_trial_without_a_folder_is_passed_over_and_the_default_mode_is_max(
        tmp_path: Path) -> None:
    """A trial that has no folder yet (first in the list) does not stop the others' pruning;
    without a mode the highest value is the best."""
    from types import SimpleNamespace

    from hftune.study.budget import CheckpointBudget

    trial = _trial(tmp_path, "d", [0.9, 0.1, 0.2])
    early = SimpleNamespace(path=None, checkpoint=None, storage=trial.storage)
    gone = SimpleNamespace(path=str(tmp_path / "gone"), checkpoint=None, storage=trial.storage)
    assert CheckpointBudget(1, metric="accuracy").prune([early, gone, trial]) == 1
    assert _left(trial) == ["checkpoint_000000", "checkpoint_000002"]
