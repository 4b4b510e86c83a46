"""hftune._compat.transformers, .torch and .wandb: each hook does what hftune needs, and one whose
internal moved raises LibraryInternalsError naming the library, its version and the internal."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hftune.errors import LibraryInternalsError


def _names(error: pytest.ExceptionInfo, library: str, internal: str) -> None:
    text = str(error.value)
    assert text.startswith(f"{library} ") and internal in text, text


# -- transformers ----------------------------------------------------------------------------

def test_length_list_trainer_overrides_the_sampler_factories() -> None:
    from transformers import Trainer

    from hftune._compat.transformers import SAMPLER_METHODS, length_list_trainer

    seen: list[object] = []
    cls = length_list_trainer(lambda sampler: seen.append(sampler) or "as-list",
                              lambda sampler: sampler)
    assert issubclass(cls, Trainer)
    for name in SAMPLER_METHODS:
        assert getattr(cls, name) is not getattr(Trainer, name)


def test_length_list_trainer_fails_loudly_when_transformers_renames_a_sampler_method(
        monkeypatch) -> None:
    from transformers import Trainer

    from hftune._compat import transformers as compat

    monkeypatch.delattr(Trainer, "_get_eval_sampler")
    with pytest.raises(LibraryInternalsError) as error:
        compat.length_list_trainer.__wrapped__(lambda s: s, lambda s: s)
    _names(error, "transformers", "Trainer._get_eval_sampler")


def test_trainer_import_prints_nothing_with_wandb_offline() -> None:
    """transformers prints '[INFO] Running in WANDB offline mode' on import with WANDB_MODE set;
    through hftune's import nothing reaches stdout (the line goes to hftune's library log)."""
    code = textwrap.dedent("""
        import logging
        logging.basicConfig(level=logging.INFO, stream=open("/dev/null", "w"))
        from hftune._compat.transformers import import_trainer
        import_trainer()
        """)
    env = {"WANDB_MODE": "offline", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=180, check=True)
    assert done.stdout == ""
    bare = subprocess.run([sys.executable, "-c", "from transformers import Trainer"],
                          capture_output=True, text=True, env=env, timeout=180, check=True)
    assert "WANDB offline" in bare.stdout  # what the hook is for: transformers still prints it


# -- torch -----------------------------------------------------------------------------------

def _scheduler():
    import torch
    from transformers import get_linear_schedule_with_warmup

    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=100)


def test_lr_schedule_moves_to_the_new_rate_and_step() -> None:
    from hftune._compat.torch import move_lr_schedule

    scheduler = _scheduler()
    move_lr_schedule(scheduler, [5e-4], 40, [3e-4])
    assert scheduler.get_last_lr() == [3e-4]
    assert scheduler.base_lrs == [5e-4] and scheduler.last_epoch == 40
    scheduler.optimizer.step()
    scheduler.step()  # the schedule goes on from step 40 with the new base rate
    assert scheduler.get_last_lr()[0] == pytest.approx(5e-4 * (100 - 41) / 100)


def test_lr_schedule_hook_fails_loudly_when_torch_renames_its_state(monkeypatch) -> None:
    from hftune._compat.torch import move_lr_schedule

    scheduler = _scheduler()
    original = scheduler.state_dict
    monkeypatch.setattr(scheduler, "state_dict",
                        lambda: {k: v for k, v in original().items() if k != "_last_lr"})
    with pytest.raises(LibraryInternalsError) as error:
        move_lr_schedule(scheduler, [5e-4], 40, [3e-4])
    _names(error, "torch", "_last_lr")


# -- wandb -----------------------------------------------------------------------------------

def test_quiet_settings_turn_off_system_metrics() -> None:
    from hftune._compat.wandb import quiet_settings

    settings = quiet_settings(console="off", save_code=False)
    assert settings.x_disable_stats is True and settings.console == "off"


def test_quiet_settings_fail_loudly_when_wandb_drops_the_setting(monkeypatch) -> None:
    import wandb

    from hftune._compat.wandb import quiet_settings

    fields = {k: v for k, v in wandb.Settings.model_fields.items() if k != "x_disable_stats"}
    monkeypatch.setattr(wandb.Settings, "model_fields", fields)
    with pytest.raises(LibraryInternalsError) as error:
        quiet_settings()
    _names(error, "wandb", "x_disable_stats")


def test_offline_record_class_fails_loudly_without_wandbs_protocol(monkeypatch) -> None:
    from hftune._compat.wandb import record_class

    assert callable(record_class())
    monkeypatch.setitem(sys.modules, "wandb.proto.wandb_internal_pb2", None)
    with pytest.raises(LibraryInternalsError) as error:
        record_class()
    _names(error, "wandb", "wandb_internal_pb2")


def test_auto_class_takes_knows_which_models_have_a_head() -> None:
    import transformers

    from hftune._compat.transformers import auto_class_takes

    bert, gpt2 = transformers.BertConfig(), transformers.GPT2Config()
    assert auto_class_takes(transformers.AutoModelForMultipleChoice, bert)
    assert not auto_class_takes(transformers.AutoModelForMultipleChoice, gpt2)
    assert auto_class_takes(transformers.AutoModelForTokenClassification, gpt2)


def test_auto_class_takes_fails_loudly_without_the_auto_mapping(monkeypatch) -> None:
    import transformers

    from hftune._compat.transformers import auto_class_takes

    monkeypatch.delattr(transformers.AutoModelForMultipleChoice, "_model_mapping")
    with pytest.raises(LibraryInternalsError) as error:
        auto_class_takes(transformers.AutoModelForMultipleChoice, transformers.BertConfig())
    _names(error, "transformers", "AutoModelForMultipleChoice._model_mapping")
