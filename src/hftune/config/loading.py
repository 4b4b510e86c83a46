"""Read a study config: YAML (safe loader) → ``--set`` overrides → typed, cross-checked config.

:func:`read_config` gives the mapping (YAML and overrides), :func:`validate_config` the typed
config with every check the config can make alone: the schema, ``TrainingArguments`` fields and
values, the search space. The strategy's own options are checked by the strategy, which builds
on the config: :func:`hftune.study.loading.load_config` joins the two (the config never imports
:mod:`hftune.strategies`).

Every failure raises :class:`hftune.errors.ConfigError` with one line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hftune import space as space_mod
from hftune.config.schema import StudyConfig
from hftune.errors import ConfigError, refuse_for_new_study

# Arguments hftune sets itself for every trial; a config that sets them would break reporting.
# (Hub arguments, push_to_hub and hub_*, are refused too: hftune.config.training_args.)
MANAGED_TRAINING_ARGS = frozenset(
    {"output_dir", "eval_strategy", "evaluation_strategy", "save_strategy", "report_to",
     "load_best_model_at_end", "do_train", "do_eval", "disable_tqdm", "remove_unused_columns",
     "save_only_model"}
)
# TrainingArguments fields that hftune sets from another section of the config.
CONFIG_SECTION_OF = {"eval_steps": "evaluation.eval_steps (with evaluation.every: steps)"}
# TrainingArguments fields hftune cannot honour, with the reason the error gives.
UNSUPPORTED_TRAINING_ARGS = {
    "dataloader_drop_last": "Trainer would also drop the last validation batch, so a score "
                            "would not be measured on the whole validation set",
}


_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConfigError, yaml.YAMLError):
    """A mapping that gives one key twice (YAML keeps the last silently): one line naming the
    key and both lines. A :class:`ConfigError`, and a ``yaml.YAMLError`` for code that catches
    those."""


class _Loader(yaml.SafeLoader):
    """The safe loader, with three changes:

    * ``1e-5`` is a float (YAML 1.1 wants ``1.0e-5``);
    * only ``true`` and ``false`` (any case) are booleans, as in YAML 1.2: ``yes``, ``no``,
      ``on``, ``off``, ``y`` and ``n`` stay text, so ``labels: [no, yes]`` means two labels,
      not ``[false, true]``. Pydantic still reads ``yes``/``no`` as booleans for the config's
      own boolean keys; a ``TrainingArguments`` boolean (``fp16: yes``) is refused with
      "expected true or false";
    * a key given twice in one mapping is a :class:`DuplicateKeyError` (merge keys, ``<<``,
      may be overridden, as YAML intends).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(self, node)
        return super().construct_mapping(node, deep=deep)


def _refuse_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> None:
    """Raise :class:`DuplicateKeyError` at the second of two equal scalar keys of ``node``."""
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        try:
            earlier = first_line.get(key)
        except TypeError:  # unhashable: the constructor refuses it with its own message
            continue
        first_line.setdefault(key, line)
        if earlier is not None:
            where = "the same line" if earlier == line else f"line {earlier}"
            raise DuplicateKeyError(
                f"line {line}: key '{key}' is given twice (first on {where}); YAML would keep "
                f"only the last one, so merge them into one")


# YAML 1.2 booleans only (see _Loader): drop YAML 1.1's yes/no/on/off resolver, add true/false.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Parse YAML text safely (no Python object tags), with ``1e-5`` as a float, only
    ``true``/``false`` as booleans, and a key given twice refused (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


@functools.cache
def training_argument_fields() -> frozenset[str]:
    """Names of the real ``transformers.TrainingArguments`` fields."""
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments) if f.init)


def config_space(cfg: StudyConfig) -> dict[str, space_mod.Dimension]:
    """The config's ``search_space`` as typed dimensions (each key a ``TrainingArguments``
    field or ``model.<config key>``)."""
    return space_mod.parse_space(cfg.search_space, training_fields=set(training_argument_fields()))


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no Python object tags)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        data = parse_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping of keys (name, model, task, ...)")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides; the value is parsed as YAML (``1e-5``, ``[16, 32]``)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or any(not p for p in key.strip().split(".")):
            raise ConfigError(
                f"--set {item!r}: expected KEY=VALUE, e.g. --set budget.num_samples=8")
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except DuplicateKeyError as exc:
            raise ConfigError(f"--set {item!r}: {exc}") from None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        _set_path(data, key.strip(), value)
    return data


# Mappings keyed by TrainingArguments / search-space names, which may contain dots
# (model.hidden_dropout_prob): the rest of an override key after one of these paths is one key.
_NAME_KEYED_PATHS = (
    ("search_space",),
    ("training",),
    ("strategy", "mutations"),
    ("strategy", "bounds"),
    ("strategy", "screen_config"),
)


def _set_path(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            # Shorthands are expanded: `task: rte` → {name: rte}; `tracking: [mlflow]` →
            # {mlflow: null}; an empty section (`training:`, read as null) or any other
            # scalar becomes a mapping.
            if part == "task" and isinstance(child, str):
                child = {"name": child}
            elif part == "tracking" and isinstance(child, (list, str)):
                child = {name: None for name in ([child] if isinstance(child, str) else child)}
            else:
                child = {}
            node[part] = child
        node = child
        if tuple(parts[: i + 1]) in _NAME_KEYED_PATHS:
            node[".".join(parts[i + 1 :])] = value
            return
    node[parts[-1]] = value


def read_config(
    path: Path,
    overrides: Iterable[str] = (),
    *,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """The config file's mapping with the ``--set`` overrides applied and, given ``data_dir``,
    ``task.data_dir`` set to it (``task: rte`` becomes ``task: {name: rte, ...}``). Not yet
    validated: :func:`validate_config`."""
    data = apply_overrides(read_yaml(path), overrides)
    if data_dir is not None:
        task = data.get("task")
        data["task"] = {"name": task} if isinstance(task, str) else dict(task or {})
        data["task"]["data_dir"] = str(data_dir)
    return data


def validate_config(data: Mapping[str, Any]) -> StudyConfig:
    """Build a :class:`StudyConfig` from a mapping and check what pydantic cannot: field names
    and values of ``TrainingArguments`` (:mod:`hftune.config.training_args`) and the search
    space. The strategy's options are not checked here
    (:func:`hftune.study.loading.validate_study` checks them too)."""
    from hftune.config.training_args import (
        check_training,
        field_default,
        hub_error,
        is_hub_argument,
    )

    try:
        cfg = StudyConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    fields = training_argument_fields()
    for key in cfg.training:
        if key not in fields:
            raise ConfigError(
                f"training.{key}: not a TrainingArguments field; check the spelling "
                f"(transformers.TrainingArguments lists the valid ones)"
            )
        if is_hub_argument(key) and cfg.training[key] not in (None, False, field_default(key)):
            raise hub_error(f"training.{key}")  # push_to_hub: false and the like are harmless
        if key in MANAGED_TRAINING_ARGS:
            raise ConfigError(f"training.{key}: set by hftune itself; remove it from the config")
        if key in CONFIG_SECTION_OF:
            raise ConfigError(f"training.{key}: set it as {CONFIG_SECTION_OF[key]}")
        if key in UNSUPPORTED_TRAINING_ARGS and cfg.training[key] not in (False, None):
            refuse_for_new_study(
                f"training.{key}: not supported: {UNSUPPORTED_TRAINING_ARGS[key]}")
    space = config_space(cfg)
    for key in space:
        if is_hub_argument(key):
            raise hub_error(f"search_space.{key}")
        if key in MANAGED_TRAINING_ARGS or key in CONFIG_SECTION_OF:
            raise ConfigError(f"search_space.{key}: set by hftune itself; it cannot be searched")
        if key in UNSUPPORTED_TRAINING_ARGS:
            refuse_for_new_study(
                f"search_space.{key}: not supported: {UNSUPPORTED_TRAINING_ARGS[key]}")
        if key in cfg.training:
            raise ConfigError(f"search_space.{key}: also set in training; the searched value "
                              f"would win, so set it in one place")
    check_training(cfg.strategy.trial_context, space.values())
    return cfg


def format_validation_error(exc: ValidationError) -> str:
    """One line for the first pydantic error: the dotted key, what is wrong, and the fix.

    The key is the config's own: pydantic's names for the members of a union
    (``constrained-float``, ``literal['auto']``) are left out of it. A value that fits no
    member of a union gets what each member wants, e.g. ``resources.gpus_per_trial: Input
    should be a valid number or 'auto' (got 'lots')``.
    """
    errors = exc.errors()
    err = errors[0]
    loc, branch = _config_loc(err["loc"])
    where = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        parent = _model_at(StudyConfig, err["loc"][:-1])
        valid = ", ".join(parent.model_fields) if parent else ""
        return f"{where}: unknown key; valid keys here: {valid}"
    if err["type"] == "missing":
        return f"{where}: required key is missing"
    if err["type"] == "task_field":  # names its own key: task.<field>
        return str(err["msg"])
    message = err["msg"]
    if branch:  # the other members of the union were tried too: say what each wants
        wants = [e["msg"].split(", ")[0] for e in errors if _config_loc(e["loc"]) == (loc, True)]
        prefix = "Input should be "
        message = " or ".join([wants[0], *(w.removeprefix(prefix) for w in wants[1:])])
    value = err.get("input")
    return f"{where}: {message} (got {value!r})"


def _config_loc(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], bool]:
    """``loc`` without pydantic's union-member tags, and whether it had one.

    Walks :class:`StudyConfig`'s annotations along ``loc``: a part met where the annotation is
    a union of two or more members (``None`` aside) is the tag of the member tried, not a key.
    """
    out: list[Any] = []
    branch = False
    annotation: Any = StudyConfig
    for part in loc:
        annotation = _unwrap(annotation)
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(members) > 1:
            branch = True
            annotation = None  # which member's keys follow is not known here
            continue
        out.append(part)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            annotation = field.annotation if field is not None else None
        elif typing.get_origin(annotation) in (list, tuple, set, frozenset, dict):
            annotation = typing.get_args(annotation)[-1] if typing.get_args(annotation) else None
        else:
            annotation = None
    return tuple(out), branch


def _unwrap(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and ``X | None`` around a single member."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
