"""Parameter-efficient fine-tuning with ``peft`` (``peft:`` in a study config; LoRA first).

A trial's adapter settings are the config's ``peft:`` values under the trial's own ``peft.*``
hyperparameters (:func:`adapter_settings`). The trial's model is the task type's model with a
LoRA adapter on ``target_modules`` (:func:`add_adapter`); the task's head — the weights the
pretrained checkpoint lacks, initialised from the trial's seed — is trained in full
(``modules_to_save``). The optimizer then holds the adapter's and the head's parameters only,
and so do checkpoints (``adapter_model.safetensors``): a PBT exploit copies those weights and
their optimizer state, and the trial builds its adapter from its *own* config before the
``Trainer`` loads them, so explored ``lora_alpha`` and ``lora_dropout`` take effect after the
restore (from ``lora_dropout: 0.0`` too: the model is built with a dropout module). Keys that
change the adapter's weights' names or shapes are never explored
(:data:`hftune.space.EXPLORABLE_PEFT_KEYS` lists those that may be).

The settings are checked before any trial (:func:`check_adapter`): every key is a field of
peft's own config class (an unknown key is an error naming it), and ``target_modules`` must
match modules of the model (else the error lists the model's module names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from hftune.errors import ConfigError
from hftune.space import PEFT_PREFIX

METHODS = {"lora": "LoraConfig"}
# keys hftune sets itself: the rest of peft's config class is the user's
MANAGED = frozenset({"method", "task_type", "peft_type", "base_model_name_or_path", "revision",
                     "inference_mode", "auto_mapping", "peft_version"})
# hftune.tasks type -> peft's task type (its model class keeps generate() and the labels)
PEFT_TASK_TYPES = {"sequence_classification": "SEQ_CLS", "regression": "SEQ_CLS",
                   "multi_label": "SEQ_CLS", "token_classification": "TOKEN_CLS",
                   "question_answering": "QUESTION_ANS", "seq2seq": "SEQ_2_SEQ_LM",
                   "causal_lm": "CAUSAL_LM"}
# hftune's own keys of a peft: section (not the peft config class's): base weights loaded in
# 4 or 8 bits (QLoRA, bitsandbytes; CUDA GPUs only)
OWN_KEYS = frozenset({"method", "load_in"})
QUANTIZED = ("4bit", "8bit")
DEFAULTS: dict[str, Any] = {"method": "lora", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
                            "target_modules": "all-linear"}


def adapter_settings(peft: Mapping[str, Any] | None,
                     hyperparameters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trial's adapter settings: :data:`DEFAULTS` < the config's ``peft:`` < the trial's
    ``peft.*`` values; ``None`` without a ``peft:`` section (full fine-tuning)."""
    if peft is None:
        return None
    out = {**DEFAULTS, **{k: v for k, v in peft.items() if v is not None}}
    for key, value in hyperparameters.items():
        if key.startswith(PEFT_PREFIX):
            out[key[len(PEFT_PREFIX):]] = value
    return out


def peft_fields(method: str) -> set[str]:
    """The keys a ``peft:`` section of ``method`` takes (its peft config class's fields)."""
    import peft

    if method not in METHODS:
        raise ConfigError(f"peft.method: '{method}' is not supported; the methods: "
                          f"{', '.join(METHODS)}")
    cls = getattr(peft, METHODS[method])
    return {f.name for f in dataclasses.fields(cls)} - MANAGED


def check_keys(peft: Mapping[str, Any], searched: Iterable[str], *, gpus: float = 0.0) -> None:
    """peft is installed, every key of the ``peft:`` section and every searched ``peft.*``
    key is a field of the method's peft config class (or hftune's ``method``, ``load_in``),
    and ``load_in`` (4/8-bit base weights) comes with GPU trials (``gpus``: per trial); a
    :class:`ConfigError` names the first that is not."""
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise ConfigError("peft: adapters need the package peft (pip install 'hftune[peft]')")
    load_in = peft.get("load_in")
    if load_in is not None and load_in not in QUANTIZED:
        raise ConfigError(f"peft.load_in: {load_in!r}; 4bit or 8bit (QLoRA base weights)")
    if load_in is not None and not gpus:
        raise ConfigError(f"peft.load_in: {load_in} base weights (bitsandbytes) need CUDA GPU "
                          f"trials; this study's trials run on the CPU: remove load_in")
    method = str(peft.get("method") or "lora")
    fields = peft_fields(method)
    for key in peft:
        if key not in OWN_KEYS and key not in fields:
            raise ConfigError(f"peft.{key}: not a field of peft's {METHODS[method]}; "
                              f"see its fields (r, lora_alpha, lora_dropout, target_modules, "
                              f"...)")
    for name in searched:
        key = name[len(PEFT_PREFIX):]
        if key not in fields:
            raise ConfigError(f"search_space.{name}: not a field of peft's {METHODS[method]}")


def quantized_model(auto: Any, model_path: str, model_config: Mapping[str, Any],
                    load_in: str, trust_remote_code: bool = False) -> Any:
    """The task's model with its base weights in 4 or 8 bits on this process's GPU (QLoRA:
    bitsandbytes, NF4 with bf16 compute for 4 bits), made ready for adapter training
    (``peft.prepare_model_for_kbit_training``). CUDA only; not covered by the CPU test tiers."""
    import peft
    import torch
    from transformers import BitsAndBytesConfig

    if load_in == "4bit":
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_compute_dtype=torch.bfloat16)
    else:
        quantization = BitsAndBytesConfig(load_in_8bit=True)
    model = auto.from_pretrained(model_path, quantization_config=quantization,
                                 device_map={"": torch.cuda.current_device()},
                                 trust_remote_code=trust_remote_code, **model_config)
    return peft.prepare_model_for_kbit_training(model)


def lora_config(settings: Mapping[str, Any], task_type: str, head: Iterable[str]) -> Any:
    """peft's config for ``settings`` on a model of the hftune task type ``task_type``, whose
    freshly initialised modules ``head`` are trained in full."""
    import peft

    values = {k: v for k, v in settings.items() if k not in OWN_KEYS}
    if isinstance(values.get("target_modules"), tuple):
        values["target_modules"] = list(values["target_modules"])
    saved = sorted({*head, *(values.pop("modules_to_save", None) or ())})
    kind = PEFT_TASK_TYPES.get(task_type)
    return getattr(peft, METHODS[str(settings.get("method") or "lora")])(
        task_type=kind, modules_to_save=saved or None, **values)


def head_modules(fresh_keys: Iterable[str]) -> list[str]:
    """The modules holding the weights a pretrained checkpoint lacks (the task's head:
    ``classifier.weight`` → ``classifier``)."""
    return sorted({key.rsplit(".", 1)[0] for key in fresh_keys if "." in key})


def add_adapter(model: Any, settings: Mapping[str, Any], task_type: str,
                head: Iterable[str]) -> Any:
    """``model`` with the adapter of ``settings`` (a ``peft`` ``PeftModel``); modules that
    ``target_modules`` names but the model lacks are a :class:`ConfigError` listing the
    model's module names."""
    import peft

    try:
        return peft.get_peft_model(model, lora_config(settings, task_type, head))
    except ValueError as exc:
        if "target" not in str(exc).lower():
            raise
        raise ConfigError(f"peft.target_modules: {settings.get('target_modules')!r} matches no "
                          f"module of the model; its modules: "
                          f"{', '.join(module_names(model))}") from None


def module_names(model: Any) -> list[str]:
    """The distinct last names of the model's modules with weights (``query``, ``dense``,
    ...): what ``target_modules`` takes."""
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if name and getattr(module, "weight", None) is not None}
    return sorted(names)


def base_model(model: Any) -> Any:
    """The transformers model under a ``PeftModel`` (``model`` itself otherwise)."""
    getter = getattr(model, "get_base_model", None)
    return getter() if callable(getter) else model


ADAPTER_CONFIG = "adapter_config.json"


def is_adapter_folder(folder: Any) -> bool:
    """Whether a checkpoint or model folder holds a peft adapter (not a whole model)."""
    from pathlib import Path

    return (Path(folder) / ADAPTER_CONFIG).is_file()


def load_with_adapter(folder: Any, auto: Any, model_config: Mapping[str, Any],
                      trust_remote_code: bool = False, base: str | None = None) -> Any:
    """The model of an adapter ``folder``: its base model (``base``, else the adapter's
    ``base_model_name_or_path``) of class ``auto`` with the task's ``model_config`` values (the
    head's size), and the adapter (with the trained head) loaded on it: a ``PeftModel``."""
    import json
    from pathlib import Path

    import peft

    saved = json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    model = auto.from_pretrained(base or saved["base_model_name_or_path"],
                                 trust_remote_code=trust_remote_code, **model_config)
    return peft.PeftModel.from_pretrained(model, str(folder))


def adapter_in_force(model: Any) -> dict[str, float] | None:
    """What the model's first LoRA layer holds (``r``, ``lora_alpha`` = scaling × r,
    ``lora_dropout``), read back from the model for a trial's first report; ``None`` without
    one."""
    for module in model.modules():
        ranks = getattr(module, "r", None)
        if isinstance(ranks, dict) and "default" in ranks and hasattr(module, "lora_dropout"):
            r = ranks["default"]
            dropout = module.lora_dropout["default"]
            return {"r": float(r), "lora_alpha": float(module.scaling["default"] * r),
                    "lora_dropout": float(getattr(dropout, "p", 0.0))}
    return None
