"""The arithmetic of ``resources.gpus_per_trial: auto`` (no GPU needed)."""

from __future__ import annotations

import pytest

from hftune.study.gpu_packing import (
    cpus_per_packed_trial,
    largest_batch,
    pack_fraction,
    resolve_auto,
    trials_per_gpu,
)
from hftune.trial_arguments import precision_defaults

GiB = 2**30


@pytest.mark.parametrize(("trial_gib", "gpu_gib", "expected"), [
    (1.0, 80.0, 8),     # tiny model: capped at MAX_PER_GPU
    (10.0, 80.0, 7),    # 72 GiB usable → 7
    (20.0, 80.0, 3),
    (36.0, 80.0, 2),
    (40.0, 80.0, 1),    # two would need all 80 GiB: no headroom left
    (100.0, 80.0, 1),   # does not fit: one per GPU, as without packing
])
def test_trials_per_gpu(trial_gib: float, gpu_gib: float, expected: int) -> None:
    assert trials_per_gpu(int(trial_gib * GiB), int(gpu_gib * GiB)) == expected


def test_fraction_rounds_down_so_that_k_trials_fit() -> None:
    fraction = pack_fraction(20 * GiB, 80 * GiB)  # 3 per GPU
    assert fraction == 0.3333
    assert 3 * fraction <= 1.0 and 4 * fraction > 1.0
    assert pack_fraction(30 * GiB, 80 * GiB) == 0.5
    assert pack_fraction(50 * GiB, 80 * GiB) == 1.0


def test_headroom_and_cap_are_parameters() -> None:
    assert trials_per_gpu(10 * GiB, 80 * GiB, headroom=1.0) == 8
    assert trials_per_gpu(1 * GiB, 80 * GiB, max_per_gpu=4) == 4
    with pytest.raises(ValueError):
        trials_per_gpu(0, 80 * GiB)


def test_cpus_are_shared_among_packed_trials() -> None:
    assert cpus_per_packed_trial(16, 1, 0.25) == 4.0
    assert cpus_per_packed_trial(16, 2, 0.3333) == 2.0   # 6 slots
    assert cpus_per_packed_trial(2, 1, 0.125) == 1.0     # never below one CPU
    assert cpus_per_packed_trial(8, 0, 0.0) == 1.0
    assert cpus_per_packed_trial(16, 4, 2.0) == 8.0      # two GPUs per trial: 2 slots


@pytest.mark.parametrize(("resources", "cpus", "gpus", "expected"), [
    ({}, 16, 1, (16.0, 1.0)),                           # one trial per GPU, all the CPUs
    ({}, 2, 0, (1.0, 0.0)),                             # CPU trials: one core each
    ({"gpus_per_trial": 0.5}, 16, 1, (8.0, 0.5)),       # two packed trials fit the CPUs
    ({"gpus_per_trial": 0.25}, 16, 2, (2.0, 0.25)),
    ({"gpus_per_trial": 2}, 16, 4, (8.0, 2.0)),
    ({"gpus_per_trial": 0.5, "cpus_per_trial": 3}, 16, 1, (3.0, 0.5)),  # set: kept
])
def test_default_resources_let_packed_trials_fill_the_gpus(resources: dict, cpus: int,
                                                            gpus: int, expected: tuple) -> None:
    from hftune.study.loading import validate_study
    from hftune.study.prepare import default_resources

    cfg = validate_study({"name": "x", "model": "m", "task": "rte", "resources": resources})
    res = default_resources(cfg, total_cpus=cpus, total_gpus=gpus)
    assert (res.cpus_per_trial, res.gpus_per_trial) == expected


@pytest.mark.parametrize(("training", "space", "expected"), [
    ({}, {}, 8),
    ({"per_device_train_batch_size": 64}, {}, 64),
    ({}, {"per_device_train_batch_size": [16, 32]}, 32),
    ({}, {"per_device_train_batch_size": {"choice": [8, 48, 16]}}, 48),
    ({}, {"per_device_train_batch_size": {"randint": [4, 24]}}, 24),
    ({}, {"per_device_train_batch_size": {"quniform": [8, 64, 8]}}, 64),
])
def test_largest_batch(training: dict, space: dict, expected: int) -> None:
    assert largest_batch(training, space) == expected


def test_precision_defaults() -> None:
    assert precision_defaults(False, False, None) == {}
    assert precision_defaults(True, True, (9, 0)) == {"bf16": True, "tf32": True}
    assert precision_defaults(True, False, (7, 0)) == {}  # V100: neither


def test_auto_without_gpus_is_cpu_trials() -> None:
    assert resolve_auto(object(), total_gpus=0) == 0.0


def test_config_accepts_auto_and_numbers_only() -> None:
    from hftune.errors import HftuneInputError
    from hftune.study.loading import validate_study
    from hftune.study.prepare import default_resources

    base = {"name": "x", "model": "m", "task": "rte"}
    cfg = validate_study({**base, "resources": {"gpus_per_trial": "auto"}})
    assert cfg.resources.gpus_per_trial == "auto"
    assert default_resources(cfg, total_cpus=2, total_gpus=0).gpus_per_trial == 0.0
    assert validate_study({**base, "resources": {"gpus_per_trial": 0.5}}
                          ).resources.gpus_per_trial == 0.5
    for bad in (-1, "half"):
        with pytest.raises(HftuneInputError):
            validate_study({**base, "resources": {"gpus_per_trial": bad}})


def test_a_lora_study_is_probed_with_its_largest_adapter() -> None:
    from hftune.study.gpu_packing import largest_adapter

    assert largest_adapter(None, {"peft.r": [4, 8]}) is None
    assert largest_adapter({"target_modules": ["query"]}, {})["r"] == 8  # the default rank
    assert largest_adapter({"r": 2}, {"peft.r": {"choice": [4, 16, 8]}})["r"] == 16
    assert largest_adapter({"r": 2}, {"peft.r": {"randint": [2, 32]}})["target_modules"] == \
        "all-linear"
