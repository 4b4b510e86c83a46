"""Check ``TrainingArguments`` values when the config is validated, before any trial runs.

The config's ``training`` section and ``search_space`` name ``transformers.TrainingArguments``
fields; a bad value (``optim: adamw``, ``lr_scheduler_type: cosin``,
``num_train_epochs: three``) would otherwise make every trial fail at run time. The checks:

* a field whose annotation is only ``int``, ``float`` or ``bool`` (optionally ``None``) takes a
  value of that type; an integer field takes an integral float only where hftune's trainable
  turns it into an int (``per_device_train_batch_size: 16.0``). Other annotations are not
  type-checked: transformers accepts more than they say (``fsdp: true`` on ``str | None``);
* such a number is finite and inside its field's :data:`ALLOWED` interval, where transformers
  accepts values that torch refuses or that make no sense (``learning_rate: -1``,
  ``adam_beta1: 2``, ``seed: -1``); ``num_train_epochs`` is above 0 unless ``max_steps`` is;
* one ``TrainingArguments`` is built the way a trial builds it
  (:func:`hftune.trial_arguments.training_arguments`: hftune's defaults < ``training`` <
  the trial's config, and the evaluation cadence) from the fixed ``training`` values, and
  again for each search-space value tried on its own: each value of a list or choice, the two
  ends of a range (the other dimensions at their defaults). Whatever transformers raises
  becomes one :class:`~hftune.errors.ConfigError` naming the key and the value;
* every pair of searched fields is built with every pair of their values (as above): two
  values accepted alone may not go together (``fp16`` and ``bf16``). A study already run with
  such a space still reopens (:class:`~hftune.errors.PolicyError`);
* an integer field cannot be searched over a domain that draws fractions (``uniform``,
  ``loguniform``, ``quniform`` with a fractional step).

Values that depend on the machine the trials run on (the GPU's architecture, an installed
DeepSpeed, a process group) are checked by type only (:data:`MACHINE_DEPENDENT`): the config
may be validated on a machine without the trials' GPUs. The arguments are built on the CPU.

Pushing to the Hugging Face Hub is refused (:func:`is_hub_argument`): every trial would push,
and ``hub_token`` would be written into ``study.yaml``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import tempfile
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hftune.config.schema import TrialContext
from hftune.errors import ConfigError, refuse_for_new_study
from hftune.space import Dimension, is_training_key
from hftune.trial_arguments import training_arguments

# Checked by type only: what TrainingArguments makes of them depends on the trials' machine.
MACHINE_DEPENDENT = frozenset({"use_cpu", "tf32", "ddp_backend", "deepspeed"})


@dataclass(frozen=True)
class Interval:
    """The values a numeric field takes: from ``low`` to ``high`` (``None``: no bound), each
    end included unless ``low_open``/``high_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """``at least 1``, ``above 0``, ``in [0, 1)``, ``in 0..4294967295``."""
        low, high = _plain(self.low), _plain(self.high)
        if high is None:
            return f"above {low}" if self.low_open else f"at least {low}"
        if low is None:
            return f"below {high}" if self.high_open else f"at most {high}"
        if not (self.low_open or self.high_open) and isinstance(low, int) \
                and isinstance(high, int):
            return f"in {low}..{high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


# Values that TrainingArguments accepts but that cannot train (torch refuses them when a trial
# builds its optimizer or data loader, or transformers' set_seed does), or that make no sense
# (a negative max_grad_norm flips the gradients). Every number field must also be finite.
# A learning rate of 0 is allowed: torch takes it, and a range may start there
# ({uniform: [0, 1e-4]}). num_train_epochs is checked with max_steps (_check_trains).
# (TrainingArguments itself refuses a negative warmup_steps.)
ALLOWED = {
    "per_device_train_batch_size": Interval(1),
    "per_device_eval_batch_size": Interval(1),
    "gradient_accumulation_steps": Interval(1),
    "learning_rate": Interval(0),
    "weight_decay": Interval(0),
    "adam_beta1": Interval(0, 1, high_open=True),
    "adam_beta2": Interval(0, 1, high_open=True),
    "adam_epsilon": Interval(0),
    "max_grad_norm": Interval(0),
    "label_smoothing_factor": Interval(0, 1, high_open=True),
    "dataloader_num_workers": Interval(0),
    "seed": Interval(0, 2**32 - 1),
}
_HUB_PREFIXES = ("hub_", "push_to_hub")
# Never created: TrainingArguments only records it.
# Most TrainingArguments built to check pairs of searched values (~0.1 ms each).
COMBINATION_BUILDS = 20_000
_OUTPUT_DIR = str(Path(tempfile.gettempdir()) / "hftune-validate-training-arguments")


def is_hub_argument(name: str) -> bool:
    """Whether ``name`` is a Hub-pushing argument (``push_to_hub*``, ``hub_*``)."""
    return name.startswith(_HUB_PREFIXES)


def hub_error(where: str) -> ConfigError:
    """The error for a Hub argument at ``where`` (e.g. ``training.hub_token``)."""
    return ConfigError(
        f"{where}: hftune does not push trials to the Hugging Face Hub; remove it, then push the "
        f"best model yourself from the folder 'hftune export STUDY -o DIR' writes")


@functools.cache
def _annotations() -> dict[str, Any]:
    from transformers import TrainingArguments

    try:
        hints = typing.get_type_hints(TrainingArguments)
    except Exception:  # an annotation that does not resolve here: use what the dataclass holds
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(TrainingArguments)}


def field_default(name: str) -> Any:
    """The default of a ``TrainingArguments`` field (e.g. ``num_train_epochs``: 3.0)."""
    from transformers import TrainingArguments

    for f in dataclasses.fields(TrainingArguments):
        if f.name == name:
            return f.default
    raise KeyError(name)


def scalar_types(name: str) -> tuple[frozenset[type], bool] | None:
    """``(types, optional)`` when the field's annotation is only ``int``/``float``/``bool``
    (and ``None``); ``None`` for any other annotation (not type-checked)."""
    tp = _annotations().get(name)
    union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    members = typing.get_args(tp) if union else (tp,)
    kinds = frozenset(m for m in members if m is not type(None))
    if not kinds or not kinds <= {int, float, bool}:
        return None
    return kinds, type(None) in members


def is_integer_field(name: str) -> bool:
    """Whether the field takes integers only (``per_device_train_batch_size``, ``seed``)."""
    scalar = scalar_types(name)
    return scalar is not None and scalar[0] == {int}


def _fits(value: Any, kinds: frozenset[type]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int):
        return bool(kinds & {int, float})
    return isinstance(value, float) and float in kinds


def _describe(kinds: frozenset[type]) -> str:
    if kinds == {bool}:
        return "true or false"
    return "an integer" if kinds == {int} else "a number"


def _build(context: TrialContext, hparams: Mapping[str, Any]) -> Any:
    """``TrainingArguments`` as a trial on the CPU builds them (machine-dependent keys left out)."""

    def portable(values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k not in MACHINE_DEPENDENT}

    return training_arguments(portable(context.training), portable(hparams), _OUTPUT_DIR,
                              seed=0, gpus_per_trial=0.0, eval_every=context.eval_every,
                              eval_steps=context.eval_steps)


def _reason(exc: Exception) -> str:
    """The first line of what transformers raised (its messages run to several lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _refusal(where: str, name: str, value: Any, exc: Exception) -> ConfigError:
    return ConfigError(f"{where}: TrainingArguments refuses {name}={value!r}: {_reason(exc)}")


def _check_type(where: str, name: str, value: Any) -> bool:
    """Raise for a value of the wrong type, one that is not finite, or one outside the field's
    :data:`ALLOWED` interval; True when the value is an integral float for an integer field
    (fine only where the trainable turns it into an int)."""
    scalar = scalar_types(name)
    if scalar is None:
        return False
    kinds, optional = scalar
    if value is None and optional:
        return False
    coerced = kinds == {int} and isinstance(value, float) and value.is_integer()
    if not coerced and not _fits(value, kinds):
        raise ConfigError(f"{where}: expected {_describe(kinds)} for TrainingArguments.{name}, "
                          f"got {value!r}")
    if isinstance(value, bool):
        return coerced
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {name} must be a finite number, got {value!r}")
    allowed = ALLOWED.get(name)
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{where}: {name} must be {allowed.describe()}, got {value!r}")
    return coerced


def _plain(x: float | None) -> int | float | None:
    return int(x) if x is not None and float(x).is_integer() else x


def _check_trains(where: str, name: str, value: Any, max_steps: Iterable[Any]) -> None:
    """``num_train_epochs`` of 0 or less trains nothing (and never evaluates) unless the trial
    stops at ``max_steps`` instead: refused when any of the trials' ``max_steps`` values (the
    fixed one, or every searched one) is not above 0."""
    if name != "num_train_epochs" or not _fits(value, frozenset({float})) or value > 0:
        return
    if all(isinstance(steps, int | float) and steps > 0 for steps in max_steps):
        return
    raise ConfigError(f"{where}: num_train_epochs must be above 0 (or max_steps above 0), got "
                      f"{value!r}: the trial would train nothing and report no score")


def _max_steps(context: TrialContext, below: Mapping[str, Any] | None = None,
               space: Iterable[Dimension] = ()) -> tuple[Any, ...]:
    """The ``max_steps`` values trials can have: every searched one (edge values), else the
    one ``below`` or the fixed ``training`` sets, else the default (-1: train by epochs)."""
    for dim in space:
        if dim.name == "max_steps":
            return dim.edge_values()
    values = {**context.training, **(below or {})}
    return (values.get("max_steps", field_default("max_steps")),)


def _kept_integer(where: str, name: str, value: Any, args: Any) -> None:
    if not isinstance(getattr(args, name), int):
        raise ConfigError(f"{where}: expected an integer for TrainingArguments.{name}, "
                          f"got {value!r}")


def _check_evaluates(where: str, name: str, value: Any, context: TrialContext) -> None:
    """With ``evaluation.every: steps``, a trial of ``max_steps`` steps must reach
    ``eval_steps``: one that never evaluates reports no score at all."""
    if (name == "max_steps" and context.eval_every == "steps" and context.eval_steps
            and isinstance(value, int) and 0 < value < context.eval_steps):
        raise ConfigError(
            f"{where}: {value} steps never reach evaluation.eval_steps ({context.eval_steps}), "
            f"so the trial would report no score; raise max_steps or lower eval_steps")


def check_value(where: str, name: str, value: Any, context: TrialContext,
                base: Mapping[str, Any] | None = None, *,
                max_steps: Iterable[Any] | None = None) -> None:
    """Check one ``TrainingArguments`` value, set on top of the fixed ``training`` values.

    ``where`` is the config key reported (``search_space.optim``,
    ``strategy.screen_config.optim``); ``base`` holds searched values the fixed ones need to
    build at all (see :func:`check_fixed_training`), set under the value. ``max_steps``: the
    values of ``max_steps`` the value can meet in a trial (default: the fixed one), for
    ``num_train_epochs`` (see :func:`_check_trains`). Raises :class:`ConfigError`.
    """
    coerced = _check_type(where, name, value)
    _check_evaluates(where, name, value, context)
    below = {k: v for k, v in (base or {}).items() if k != name}
    _check_trains(where, name, value,
                  _max_steps(context, below) if max_steps is None else max_steps)
    if name in MACHINE_DEPENDENT:
        return
    try:
        args = _build(context, {**below, name: value})
    except Exception as exc:  # any refusal of transformers' becomes one line
        raise _refusal(where, name, value, exc) from None
    if coerced:
        _kept_integer(where, name, value, args)


def check_together(where: str, values: Mapping[str, Any], context: TrialContext) -> None:
    """Check a whole trial config (``values``, each already checked alone with
    :func:`check_value`) on top of the fixed ``training`` values; raise :class:`ConfigError`
    naming ``where`` when transformers refuses them together. ``model.*`` keys are skipped."""
    fields = {k: v for k, v in values.items()
              if is_training_key(k) and k not in MACHINE_DEPENDENT}
    try:
        _build(context, fields)
    except Exception as exc:  # any refusal of transformers' becomes one line
        shown = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        raise ConfigError(f"{where}: TrainingArguments refuses these values together ({shown}): "
                          f"{_reason(exc)}") from None


def check_fixed_training(context: TrialContext,
                         space: Iterable[Dimension] = ()) -> dict[str, Any]:
    """Check the config's ``training`` values: each one's type, then all of them together
    (a refusal names the value that, added to those before it, makes it fail).

    Together means as trials get them: with the searched values on top. Values that fail on
    their own but pass with every searched field at its first edge value, or every one at its
    last (``training.dataloader_prefetch_factor`` needs a searched ``dataloader_num_workers``),
    are accepted. Returns the searched values they needed (empty when they build alone): each
    searched value is then checked on top of them (:func:`check_dimension`).
    """
    space = list(space)
    coerced = {name: value for name, value in context.training.items()
               if _check_type(f"training.{name}", name, value)}
    for name, value in context.training.items():
        _check_evaluates(f"training.{name}", name, value, context)
        _check_trains(f"training.{name}", name, value, _max_steps(context, space=space))
    base: dict[str, Any] = {}
    try:
        args = _build(context, {})
    except Exception as exc:
        found = _build_with_searched(context, space)
        if found is None:
            raise _culprit(context, exc) from None
        args, base = found
    for name, value in coerced.items():
        if name not in MACHINE_DEPENDENT:
            _kept_integer(f"training.{name}", name, value, args)
    return base


def _searched_fields(space: Iterable[Dimension]) -> list[Dimension]:
    """The searched ``TrainingArguments`` fields that a build on this machine can check."""
    return [d for d in space if is_training_key(d.name)
            and d.name not in MACHINE_DEPENDENT and d.edge_values()]


def _build_with_searched(context: TrialContext,
                         space: Iterable[Dimension]) -> tuple[Any, dict[str, Any]] | None:
    """``TrainingArguments`` of the fixed values with every searched field at its first edge
    value, else at its last, and those values; ``None`` when both fail (or nothing is
    searched)."""
    dims = _searched_fields(space)
    for pick in (0, -1):
        if not dims:
            return None
        values = {d.name: d.edge_values()[pick] for d in dims}
        try:
            return _build(context, values), values
        except Exception:  # any refusal: try the other edge
            continue
    return None


def _culprit(context: TrialContext, exc: Exception) -> ConfigError:
    so_far: dict[str, Any] = {}
    for name, value in context.training.items():
        so_far[name] = value
        try:
            _build(dataclasses.replace(context, training=so_far), {})
        except Exception as first:
            return _refusal(f"training.{name}", name, value, first)
    return ConfigError(f"training: TrainingArguments refuses these values: {_reason(exc)}")


def check_dimension(dim: Dimension, context: TrialContext,
                    base: Mapping[str, Any] | None = None, *,
                    max_steps: Iterable[Any] | None = None) -> None:
    """Check a search-space dimension of a ``TrainingArguments`` field: its domain's type, and
    each value of a list or choice or both ends of a range (``model.*`` keys are skipped), on
    top of ``base``, meeting ``max_steps`` (see :func:`check_value`)."""
    if not is_training_key(dim.name):
        return
    where = f"search_space.{dim.name}"
    if is_integer_field(dim.name) and not dim.is_categorical and not dim.is_integer:
        raise ConfigError(
            f"{where}: TrainingArguments.{dim.name} takes integers, but {dim.kind} draws "
            f"fractions; use randint, quniform with integer lo, hi and q, or a list of integers")
    for value in dim.edge_values():
        check_value(where, dim.name, value, context, base, max_steps=max_steps)


def check_combinations(context: TrialContext, space: Iterable[Dimension],
                       base: Mapping[str, Any] | None = None) -> None:
    """Refuse two searched values that are each accepted but not together (``fp16`` and
    ``bf16`` both ``true``): a trial could draw both, and it would fail.

    Every pair of searched fields is built with every pair of their edge values, on top of
    ``base``; the other fields keep their fixed or default values, so a conflict that needs
    three searched fields at once is not seen. Only the first :data:`COMBINATION_BUILDS`
    builds are made (a space of many long lists is checked in part). Raises a
    :class:`~hftune.errors.PolicyError`: a study already run with such a space is reopened with
    a warning (its trials that drew both have failed).
    """
    dims = _searched_fields(space)
    builds = 0
    for i, first in enumerate(dims):
        for second in dims[i + 1:]:
            below = {k: v for k, v in (base or {}).items() if k not in (first.name, second.name)}
            for a, b in itertools.product(first.edge_values(), second.edge_values()):
                if builds >= COMBINATION_BUILDS:
                    return
                builds += 1
                try:
                    _build(context, {**below, first.name: a, second.name: b})
                except Exception as exc:  # any refusal of transformers'
                    refuse_for_new_study(
                        f"search_space: TrainingArguments refuses {first.name}={a!r} together "
                        f"with {second.name}={b!r}: {_reason(exc)}; a trial can draw both, "
                        f"so search only one of them or leave that pair out of their values")


def check_training(context: TrialContext, space: Iterable[Dimension]) -> None:
    """All of the above: the fixed ``training`` values, every search-space dimension, then
    pairs of searched values."""
    space = list(space)
    base = check_fixed_training(context, space)
    max_steps = _max_steps(context, space=space)
    for dim in space:
        check_dimension(dim, context, base, max_steps=max_steps)
    check_combinations(context, space, base)
