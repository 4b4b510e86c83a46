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
