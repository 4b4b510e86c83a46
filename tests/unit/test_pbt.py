"""PBT/PB2 on a checkpointable synthetic trainable (real Ray Tune, no HF): exploit copies the
state, explore stays in bounds with the right types, a tight checkpoint budget never fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hftune.config.schema import StrategyConfig
from hftune.errors import ConfigError
from hftune.space import parse_space
from hftune.strategies import build_strategy, validate_strategy
from hftune.strategies._pbt import clip_config
from hftune.study.checkpoints import best_checkpoint, scan_checkpoints
from hftune.study.loading import validate_study
from hftune.study.store import StudyStore
from hftune.testing.synthetic_pbt import checkpoints_on_disk, epoch_step, run_synthetic_pbt

FIELDS = {"learning_rate", "weight_decay", "per_device_train_batch_size", "num_train_epochs",
          "warmup_steps"}
SPACE = {"learning_rate": {"loguniform": [1e-6, 5e-5]}, "weight_decay": {"uniform": [0.0, 0.3]},
         "per_device_train_batch_size": [16, 32, 64], "warmup_steps": {"randint": [0, 500]},
         "num_train_epochs": [8]}


def test_clip_keeps_bounds_and_types() -> None:
    space = parse_space(SPACE, training_fields=FIELDS)
    out = clip_config({"learning_rate": 9e-5, "weight_decay": -0.1,
                       "per_device_train_batch_size": 48, "warmup_steps": 601.7}, space)
    assert out == {"learning_rate": 5e-5, "weight_decay": 0.0,
                   "per_device_train_batch_size": 16, "warmup_steps": 500}
    assert isinstance(out["warmup_steps"], int)


def test_pbt_options_are_validated() -> None:
    space = parse_space(SPACE, training_fields=FIELDS)
    with pytest.raises(ConfigError, match="strategy.population"):
        validate_strategy(StrategyConfig(name="pbt", population=1), space)
    with pytest.raises(ConfigError, match="takes no option 'grace_period'"):
        validate_strategy(StrategyConfig(name="pbt", grace_period=1), space)
    strategy = build_strategy(StrategyConfig(name="pbt", mutations={"seed": [1, 2]}), space,
                              "accuracy", "max", 0)
    with pytest.raises(ConfigError, match="strategy.mutations.seed: also declare it"):
        strategy.scheduler()


def test_reference_pbt_example_validates() -> None:

    from hftune.study.loading import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "rte-pbt.yaml")
    assert cfg.strategy.name == "pbt" and cfg.strategy.options["population"] == 8
    assert cfg.search_space["per_device_train_batch_size"] == [16, 32, 64]


def _pbt(tmp_path, name: str = "pbt", **options):
    cfg = validate_study({"name": "s", "model": "m", "task": "rte", "search_space": SPACE,
                          "strategy": {"name": name, **options}})
    space = parse_space(cfg.search_space, training_fields=FIELDS)
    return build_strategy(cfg.strategy, space, "accuracy", "max", seed=3), space


# Weight decay and warmup in ranges so narrow that every perturbation (x 1.2 or x 0.8, no
# resampling) leaves them: each explored value must come back clipped to an end, in the
# declared type. The learning rates differ enough for the trials to rank apart.
EDGES = {"learning_rate": {"loguniform": [1e-6, 5e-5]}, "weight_decay": {"uniform": [0.2, 0.22]},
         "per_device_train_batch_size": [16, 32, 64], "warmup_steps": {"randint": [400, 470]},
         "num_train_epochs": [8]}
AT_AN_END = ("weight_decay", "warmup_steps")
FACTORS = (1.2, 0.8)  # PBTOptions.perturbation_factors


def _ray_exploits(store: StudyStore) -> list[dict]:
    """Ray's own log of each exploit (``pbt_global.txt``): target and source trial ids (from
    the trial tags' index), the source's config and the explored one, in Ray's order."""
    by_index = {int(t.trial_id.rsplit("_", 1)[1]): t.trial_id for t in store.read_trials()}
    events = []
    for line in (store.ray_dir / "pbt_global.txt").read_text().splitlines():
        target, source, _, _, old, new = json.loads(line)
        events.append({"to": by_index[int(target.split("_", 1)[0])],
                       "from": by_index[int(source.split("_", 1)[0])], "old": old, "new": new})
    return events


def _donor_states(trials: list, trial_id: str, epoch: float, before: float) -> list[float]:
    """The states ``trial_id`` reported at ``epoch`` before ``before``: what a checkpoint of
    it taken at that epoch holds."""
    (donor,) = [t for t in trials if t.trial_id == trial_id]
    return [r["accuracy"] for r in donor.reports if r["epoch"] == epoch and r["time"] < before]


def test_exploit_copies_state_and_explore_stays_in_bounds(ray_session, tmp_path) -> None:
    """Exploit: the exploiting trial continues from a state its source reported. Explore: each
    value is the source's value perturbed by a factor and clipped back into its range (every
    perturbation here leaves it), a list value moves to a neighbour; integers stay integers,
    floats floats. The lineage records the config Ray explored, and it is what trained next."""
    cfg = validate_study({"name": "s", "model": "m", "task": "rte", "search_space": EDGES,
                          "strategy": {"name": "pbt", "population": 4, "perturbation_interval": 1,
                                       "quantile_fraction": 0.25, "resample_probability": 0.0}})
    space = parse_space(cfg.search_space, training_fields=FIELDS)
    strategy = build_strategy(cfg.strategy, space, "accuracy", "max", seed=3)
    store = StudyStore(tmp_path / "study")
    trials = run_synthetic_pbt(strategy, store, keep=1)
    assert len(trials) == 4 and not [t.error for t in trials if t.state == "errored"]

    ray_events = _ray_exploits(store)
    assert len(ray_events) >= 2, "expected several exploits over 8 epochs"
    lists = {"per_device_train_batch_size": [16, 32, 64]}
    for event in ray_events:
        old, new = event["old"], event["new"]
        for name in ("learning_rate", "weight_decay", "warmup_steps"):
            dim = space[name]
            assert any(new[name] == dim.clip(old[name] * f) for f in FACTORS), (name, old, new)
            assert dim.contains(new[name]), (name, new)
        for name in AT_AN_END:
            dim = space[name]
            assert new[name] in (dim.clip(dim.low), dim.clip(dim.high)), (name, old, new)
            assert all(not dim.low <= old[name] * f <= dim.high for f in FACTORS)
        for name, values in lists.items():
            at = values.index(old[name])
            assert new[name] in {values[max(at - 1, 0)], values[min(at + 1, len(values) - 1)]}
        assert new["num_train_epochs"] == 8
        assert {name: type(new[name]) for name in EDGES} == {
            "learning_rate": float, "weight_decay": float, "per_device_train_batch_size": int,
            "warmup_steps": int, "num_train_epochs": int}

    lineage = store.read_lineage()
    for trial in trials:  # what the study recorded is what Ray did, exploit by exploit
        by_ray = [e for e in ray_events if e["to"] == trial.trial_id]
        recorded = [e for e in lineage if e["to_trial"] == trial.trial_id]
        assert [e["new_config"] for e in recorded] == [
            {k: e["new"][k] for k in EDGES} for e in by_ray], trial.trial_id
        for ours, ray in zip(recorded, by_ray, strict=True):
            # the checkpoint came from the trial Ray cloned (or, when that one had just been
            # exploited itself and not reported since, from the trial it had cloned)
            earlier = {e["from"] for e in ray_events if e["to"] == ray["from"]}
            assert ours["from_trial"] == ray["from"] or ours["from_trial"] in earlier, (
                ours, ray)
    by_id = {t.trial_id: t for t in trials}
    for event in lineage:
        first = next(r for r in by_id[event["to_trial"]].reports if r["time"] == event["time"])
        # the state it continued from is one its source reported at that epoch ...
        assert event["from_trial"] != event["to_trial"]
        assert first["restored_w"] in _donor_states(trials, event["from_trial"],
                                                    first["restored_epoch"], event["time"])
        # ... and the explored config trained the next epoch (a clone of a trial that had
        # finished all its epochs trains no more and reports the cloned state)
        trained = first["epoch"] > first["restored_epoch"]
        expected = epoch_step(first["restored_w"], event["new_config"]) if trained else (
            first["restored_w"])
        assert first["accuracy"] == pytest.approx(expected)


def test_quantile_selection_weak_copy_strong(ray_session, tmp_path) -> None:
    """At each exploit the exploiting trial's own score (its last report before the exploit)
    is below the score of the state it copies (the source's report at that checkpoint)."""
    strategy, _ = _pbt(tmp_path, population=4, perturbation_interval=2, quantile_fraction=0.25,
                       resample_probability=0.0)
    store = StudyStore(tmp_path / "study")
    trials = run_synthetic_pbt(strategy, store, keep=2)
    lineage = store.read_lineage()
    assert lineage
    by_id = {t.trial_id: t for t in trials}
    for event in lineage:
        reports = by_id[event["to_trial"]].reports
        first = next(r for r in reports if r["time"] == event["time"])
        weak = [r["accuracy"] for r in reports if r["time"] < event["time"]][-1]
        strong = first["restored_w"]
        assert strong in _donor_states(trials, event["from_trial"], first["restored_epoch"],
                                       event["time"])
        assert weak < strong, (event, weak, strong)


def test_tight_checkpoint_budget_never_fails(ray_session, tmp_path) -> None:
    """keep=1 while 6 trials perturb every epoch for 8 epochs with 2 running at once: a source
    checkpoint can be gone when its exploiter starts; the newest one beside it is used."""
    strategy, _ = _pbt(tmp_path, population=6, perturbation_interval=1, quantile_fraction=0.5)
    store = StudyStore(tmp_path / "study")
    trials = run_synthetic_pbt(strategy, store, keep=1)
    assert len(trials) == 6
    assert [t.error for t in trials if t.state == "errored"] == []
    assert {t.state for t in trials} == {"finished"}
    assert len(store.read_lineage()) >= 3
    # the budget held: at the end every trial keeps at most `keep` checkpoints plus those still
    # referenced (its own latest and an exploit source), never all 8
    counts = checkpoints_on_disk(store)
    assert len(counts) == 6 and max(counts.values()) <= 4 and sum(counts.values()) < 6 * 8
    # and each trial's best evaluation is still on disk: export takes the reported weights
    checkpoints = scan_checkpoints(store.ray_dir)
    for trial in trials:
        best = max(r["accuracy"] for r in trial.reports)
        kept = best_checkpoint(checkpoints, trial.trial_id, "accuracy", "max")
        assert kept is not None and kept.value("accuracy") == pytest.approx(best)


def test_pb2_explores_inside_its_bounds(ray_session, tmp_path) -> None:
    strategy, space = _pbt(tmp_path, name="pb2", population=4, perturbation_interval=1,
                           bounds={"learning_rate": [1e-6, 5e-5], "weight_decay": [0.0, 0.3]})
    store = StudyStore(tmp_path / "study")
    trials = run_synthetic_pbt(strategy, store, keep=1)
    lineage = store.read_lineage()
    assert len(trials) == 4 and not [t.error for t in trials if t.state == "errored"]
    assert lineage
    for event in lineage:
        assert 1e-6 <= event["new_config"]["learning_rate"] <= 5e-5
        assert 0.0 <= event["new_config"]["weight_decay"] <= 0.3
