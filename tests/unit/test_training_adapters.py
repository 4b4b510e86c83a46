"""LoRA adapters (``peft:``, ``hftune.training.adapters``): a trial trains the adapter and the
head only, its checkpoints hold those weights and their optimizer state only, a restore (a PBT
exploit) takes the donor's weights and optimizer state and then the recipient's own
``lora_alpha`` and ``lora_dropout``; the settings are checked against peft before any trial;
PBT never explores keys that change the adapter's shapes."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import warnings
from pathlib import Path

import pytest

from hftune.config.loading import training_argument_fields
from hftune.errors import ConfigError, HftuneWarning
from hftune.space import parse_space
from hftune.strategies import build_strategy
from hftune.testing.configs import study_config
from hftune.training.adapters import adapter_settings
from hftune.training.trainable import TrialSetup, run_trial

PEFT = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["query", "value"]}


@pytest.fixture(scope="module")
def lora_setup(checkpointing_setup: TrialSetup) -> TrialSetup:
    return dataclasses.replace(checkpointing_setup, peft=dict(PEFT))


@pytest.fixture(scope="module")
def donor(lora_setup: TrialSetup, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint of a 1-epoch LoRA trial (lora_alpha 8, lora_dropout 0.0)."""
    keep = tmp_path_factory.mktemp("donor")
    kept: list[Path] = []

    def report(record: dict, folder: Path | None) -> None:
        if folder is not None:
            shutil.copytree(folder, keep / folder.name)
            kept.append(keep / folder.name)

    run_trial({"learning_rate": 1e-3, "num_train_epochs": 1, "per_device_train_batch_size": 16},
              lora_setup, report, str(tmp_path_factory.mktemp("donor-run")), trial_id="donor")
    return kept[-1]


def test_settings_are_the_defaults_under_the_config_under_the_trial() -> None:
    assert adapter_settings(None, {"peft.r": 4}) is None
    settings = adapter_settings({"r": 16, "lora_dropout": None},
                                {"peft.r": 4, "learning_rate": 1e-3})
    assert settings == {"method": "lora", "r": 4, "lora_alpha": 16, "lora_dropout": 0.05,
                        "target_modules": "all-linear"}


def test_a_checkpoint_holds_the_adapter_and_head_and_their_optimizer_state_only(
        donor: Path, tiny_bert: Path) -> None:
    import torch
    from safetensors import safe_open

    names = sorted(p.name for p in donor.iterdir())
    assert "adapter_model.safetensors" in names and "model.safetensors" not in names
    with safe_open(str(donor / "adapter_model.safetensors"), framework="pt") as fh:
        keys = list(fh.keys())
    assert keys and all("lora_" in k or "classifier" in k for k in keys), keys
    assert any("classifier" in k for k in keys) and any("lora_A" in k for k in keys)
    optimizer = torch.load(donor / "optimizer.pt", weights_only=True)
    assert len(optimizer["state"]) == len(keys)  # one moment pair per trained tensor
    full = (tiny_bert / "model.safetensors").stat().st_size
    assert (donor / "adapter_model.safetensors").stat().st_size < full / 10


def test_an_exploit_takes_the_donors_weights_and_moments_then_its_own_alpha_and_dropout(
        donor: Path, lora_setup: TrialSetup, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the recipient's first step: its adapter and head are the donor's, its AdamW
    moments and step counts the donor's, its LoRA scaling the new lora_alpha / r and its
    dropout the new rate (from 0.0: peft had built no dropout module for the donor)."""
    import torch
    from safetensors.torch import load_file

    from hftune.training import checkpoint

    seen: dict = {}
    original = checkpoint.ApplyConfigOnRestore.on_train_begin

    def capture(self, args, state, control, **kwargs):
        original(self, args, state, control, **kwargs)
        from peft import get_peft_model_state_dict

        model = kwargs["model"]
        seen["weights"] = {k: v.detach().clone()
                           for k, v in get_peft_model_state_dict(model).items()}
        seen["optimizer"] = copy.deepcopy(kwargs["optimizer"].state_dict())  # steps follow
        seen["lora"] = [m for m in model.modules() if hasattr(m, "lora_A")]

    monkeypatch.setattr(checkpoint.ApplyConfigOnRestore, "on_train_begin", capture)
    reports: list[dict] = []
    run_trial({"learning_rate": 5e-4, "num_train_epochs": 2, "per_device_train_batch_size": 16,
               "peft.lora_alpha": 32, "peft.lora_dropout": 0.1}, lora_setup,
              lambda record, folder: reports.append(record), str(tmp_path),
              trial_id="recipient", restore_from=donor)
    assert reports[0]["adapter"] == {"r": 4.0, "lora_alpha": 32.0, "lora_dropout": 0.1}
    assert reports[0]["restored_from"] == "donor"
    saved = load_file(str(donor / "adapter_model.safetensors"))
    assert set(seen["weights"]) == set(saved)
    for key, tensor in saved.items():
        assert torch.equal(seen["weights"][key], tensor), key
    donor_state = torch.load(donor / "optimizer.pt", weights_only=True)["state"]
    for index, moments in donor_state.items():
        now = seen["optimizer"]["state"][index]
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(now[name]), torch.as_tensor(moments[name]))
    assert seen["lora"]
    for layer in seen["lora"]:
        assert layer.scaling["default"] == pytest.approx(32 / 4)
        dropout = layer.lora_dropout["default"]
        assert isinstance(dropout, torch.nn.Dropout) and dropout.p == pytest.approx(0.1)


def test_a_peft_key_of_no_field_is_refused_naming_it() -> None:
    from hftune.training.adapters import check_keys

    with pytest.raises(ConfigError, match="peft.rank: not a field of peft's LoraConfig"):
        check_keys({"rank": 8}, [])
    with pytest.raises(ConfigError, match="search_space.peft.alpha: not a field"):
        check_keys({"r": 8}, ["peft.alpha"])
    with pytest.raises(ConfigError, match="peft.method: 'ia3' is not supported"):
        check_keys({"method": "ia3"}, [])


def test_target_modules_that_match_nothing_list_the_models_modules(
        tiny_bert: Path, shared_data: Path, tmp_path: Path) -> None:
    from hftune.study.prepare import prepare_study

    def prepare(**top):
        return prepare_study(study_config(
            model=str(tiny_bert), output_dir=str(tmp_path / "s"), max_length=32,
            task={"name": "rte", "data_dir": str(shared_data / "rte"), "max_train_samples": 8,
                  "max_eval_samples": 8}, **top))

    with pytest.raises(ConfigError, match=r"peft.target_modules: \['q_proj'\] matches no "
                                          r"module.*query.*value"):
        prepare(peft={"target_modules": ["q_proj"]})
    with pytest.raises(ConfigError, match="search_space.peft.r: an adapter key, but the config "
                                          "has no peft: section"):
        prepare(search_space={"peft.r": [4, 8]})
    prepared = prepare(peft={"target_modules": ["query"]}, search_space={"peft.r": [4, 8]})
    assert prepared.config.peft == {"target_modules": ["query"]}


SPACE = {"learning_rate": {"loguniform": [1e-5, 1e-3]}, "peft.r": [4, 8],
         "peft.lora_alpha": {"uniform": [8.0, 32.0]}}


def _strategy(name: str, **options):
    space = parse_space(SPACE, training_fields=set(training_argument_fields()))
    cfg = study_config(search_space=SPACE, strategy={"name": name, **options})
    return build_strategy(cfg.strategy, space, "accuracy", "max", seed=3)


def test_pbt_explores_alpha_but_never_the_rank() -> None:
    strategy = _strategy("pbt", population=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy.check()
    assert set(strategy.mutation_space()) == {"learning_rate", "peft.lora_alpha"}
    assert any(issubclass(w.category, HftuneWarning) and "peft.r" in str(w.message)
               for w in caught)
    with pytest.raises(ConfigError, match="strategy.mutations.peft.r: changes the shape"):
        _strategy("pbt", population=2, mutations={"peft.r": [4, 8]}).mutation_space()


def test_pb2_bounds_leave_the_rank_out() -> None:
    assert set(_strategy("pb2", population=2).bounds()) == {"learning_rate",
                                                            "peft.lora_alpha"}


@pytest.mark.parametrize(("kind", "head"), [
    ("sequence_classification", "classifier"), ("multiple_choice", "classifier"),
    ("token_classification", "classifier"), ("question_answering", "qa_outputs")])
def test_every_head_trains_in_full_beside_the_adapter(kind: str, head: str,
                                                      tiny_bert: Path) -> None:
    """The weights the pretrained checkpoint lacks (the task's head) train in full, whether
    or not peft has a task type for the model (it has none for multiple choice)."""
    from hftune.tasks import TaskSettings, task_type
    from hftune.training.model import build_model

    model = build_model(str(tiny_bert), ("a", "b"), {}, 0,
                        task_type=task_type(kind, TaskSettings("t")), adapter=dict(PEFT))
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(head in n for n in trained) and any("lora_A" in n for n in trained)
    assert all("lora_" in n or head in n for n in trained), trained


def test_quantized_base_weights_need_gpu_trials_and_peft_must_be_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from hftune.training.adapters import check_keys

    with pytest.raises(ConfigError, match="peft.load_in: 4bit base weights .* need CUDA GPU"):
        check_keys({"load_in": "4bit"}, [], gpus=0.0)
    with pytest.raises(ConfigError, match="peft.load_in: '2bit'"):
        check_keys({"load_in": "2bit"}, [], gpus=1.0)
    check_keys({"load_in": "8bit", "r": 4}, ["peft.lora_alpha"], gpus=0.5)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'hftune\[peft\]'"):
        check_keys({"r": 4}, [])


@pytest.mark.parametrize("fixture", ["tiny_t5", "tiny_llama"])
def test_an_adapter_model_generates_at_evaluation(fixture: str,
                                                  request: pytest.FixtureRequest) -> None:
    """A seq2seq and a causal LM with a LoRA adapter (peft's model classes) go through the
    generation pass: the generated-text metrics come back with the loss and perplexity."""
    import math

    import pandas as pd
    from transformers import AutoTokenizer

    from hftune.config.schema import TaskConfig
    from hftune.data.tasks import resolve_task
    from hftune.study.checkpoints import evaluate_model
    from hftune.training.model import build_model

    folder = request.getfixturevalue(fixture)
    fields = {"type": "seq2seq"} if fixture == "tiny_t5" else {
        "type": "causal_lm", "prompt_template": "{document} =", "response_field": "summary"}
    kind = resolve_task(TaskConfig(name="g", **fields),
                        {"max_new_tokens": 4, "metrics": ["rougeL"]}).type
    tokenizer = AutoTokenizer.from_pretrained(folder)
    frames, _ = kind.normalise({"v": pd.DataFrame({"document": ["a b c", "d e"],
                                                   "summary": ["a", "d e f"]})}, "t", {})
    split = kind.tokenize(frames["v"], tokenizer, 32, (), training=False)
    model = build_model(str(folder), (), {}, 0, task_type=kind,
                        adapter={"r": 2, "target_modules": "all-linear"})
    out = evaluate_model(model, split, tokenizer=tokenizer, task_type=kind, use_cpu=True)
    assert set(out) == {"rougeL", "loss", "perplexity"}
    assert all(math.isfinite(v) for v in out.values())
