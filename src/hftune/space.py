"""The one place that turns a config's ``search_space`` into typed dimensions and Ray Tune domains.

Config syntax (one key per hyperparameter; keys are ``TrainingArguments`` fields, or model-config
fields under ``model.``):

* a list ``[a, b, c]``: a grid axis (every value is tried, crossed with the other grid axes);
* ``{choice: [a, b]}``: a categorical value sampled by the strategy;
* ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``: floats in ``[lo, hi]``;
* ``{randint: [lo, hi]}``: integers in ``[lo, hi]`` (both ends included);
* ``{quniform: [lo, hi, q]}``: floats in ``[lo, hi]`` rounded to a multiple of ``q``
  (integers when ``lo``, ``hi`` and ``q`` are all integers).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hftune.errors import ConfigError

MODEL_PREFIX = "model."
PEFT_PREFIX = "peft."  # adapter settings (hftune.training.adapters), checked against peft
# the adapter keys PBT may explore: the others change the adapter's weights' names or shapes
# (``peft.r``, ``peft.target_modules``), so a checkpoint of one value does not load into another
EXPLORABLE_PEFT_KEYS = frozenset({"lora_alpha", "lora_dropout", "alpha_pattern"})
# search-space keys that are not TrainingArguments fields
NON_TRAINING_PREFIXES = (MODEL_PREFIX, PEFT_PREFIX)


def unexplorable(names: Any) -> list[str]:
    """The ``peft.*`` keys of ``names`` that PBT may not explore (all but
    :data:`EXPLORABLE_PEFT_KEYS`)."""
    return [n for n in names if n.startswith(PEFT_PREFIX)
            and n[len(PEFT_PREFIX):] not in EXPLORABLE_PEFT_KEYS]


def is_training_key(name: str) -> bool:
    """Whether a search-space key is a ``TrainingArguments`` field (not ``model.*`` or
    ``peft.*``)."""
    return not name.startswith(NON_TRAINING_PREFIXES)


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter's domain. ``kind`` is one of :data:`KINDS`."""

    name: str
    kind: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    q: float | None = None

    @property
    def is_grid(self) -> bool:
        return self.kind == "grid"

    @property
    def is_categorical(self) -> bool:
        return self.kind in ("grid", "choice")

    @property
    def is_integer(self) -> bool:
        """Whether every value of this dimension is an integer."""
        if self.is_categorical:
            return all(isinstance(v, int) and not isinstance(v, bool) for v in self.values)
        if self.kind == "randint":
            return True
        if self.kind == "quniform":
            return all(float(x).is_integer() for x in (self.low, self.high, self.q))
        return False

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this domain with a fitting type: one of the listed values
        (``True`` is not ``1``), or a finite number inside the range (an integral one for
        integer domains). Text, ``None`` and booleans are never inside a range."""
        value = python_value(value)
        if self.is_categorical:
            return self._listed(value) is not None
        if not _is_number(value):
            return False
        if self.is_integer and not float(value).is_integer():
            return False
        return self.low - 1e-12 <= float(value) <= self.high + 1e-12

    def _listed(self, value: Any) -> tuple[Any] | None:
        """The listed value equal to ``value`` (boxed, as it may itself be ``None``)."""
        for listed in self.values:
            if listed == value and isinstance(listed, bool) == isinstance(value, bool):
                return (listed,)
        return None

    def clip(self, value: Any) -> Any:
        """The nearest value inside the domain, with the domain's type (used after perturbation).

        A value a list does not hold becomes the list's first value: callers that take values
        from a user check them with :meth:`contains` first."""
        if self.is_categorical:
            listed = self._listed(value)
            return listed[0] if listed is not None else self.values[0]
        clipped = min(max(float(value), self.low), self.high)
        if self.kind == "quniform":
            clipped = round(clipped / self.q) * self.q
            clipped = min(max(clipped, self.low), self.high)
        return int(round(clipped)) if self.is_integer else clipped

    def edge_values(self) -> tuple[Any, ...]:
        """The values that bound what a trial can get: every listed value, or both ends of a
        range in the domain's type (checked against ``TrainingArguments`` at validation)."""
        if self.is_categorical:
            return self.values
        return (self.clip(self.low), self.clip(self.high))

    def describe(self) -> str:
        """The domain as the config writes it, e.g. ``[16, 32]`` or ``uniform: [0.0, 0.3]``."""
        if self.is_grid:
            return repr(list(self.values))
        if self.kind == "choice":
            return f"choice: {list(self.values)!r}"
        bounds = [self.low, self.high] if self.q is None else [self.low, self.high, self.q]
        if self.is_integer:
            bounds = [int(b) for b in bounds]
        return f"{self.kind}: {bounds!r}"


KINDS = ("grid", "choice", "uniform", "loguniform", "randint", "quniform")


def parse_dimension(name: str, raw: Any, *, section: str = "search_space") -> Dimension:
    """Parse one config entry; raises :class:`ConfigError` naming ``<section>.<name>``
    (``search_space.<name>``, or e.g. ``strategy.mutations.<name>``)."""
    where = f"{section}.{name}"
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        if len(raw) == 0:
            raise ConfigError(f"{where}: the grid list is empty; give at least one value")
        _check_finite(where, raw)
        return Dimension(name, "grid", values=tuple(raw))
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ConfigError(
            f"{where}: expected a list (grid) or one of "
            f"{{{', '.join(k + ': ...' for k in KINDS[1:])}}}, got {raw!r}"
        )
    ((kind, args),) = raw.items()
    if kind not in KINDS[1:]:
        raise ConfigError(f"{where}: unknown domain '{kind}'; valid ones: {', '.join(KINDS[1:])}")
    if not isinstance(args, Sequence) or isinstance(args, str):
        raise ConfigError(f"{where}.{kind}: expected a list, got {args!r}")
    if kind == "choice":
        if len(args) == 0:
            raise ConfigError(f"{where}.choice: the list is empty; give at least one value")
        _check_finite(f"{where}.choice", args)
        return Dimension(name, "choice", values=tuple(args))
    want = 3 if kind == "quniform" else 2
    shape = "[lo, hi, q]" if kind == "quniform" else "[lo, hi]"
    if len(args) != want or not all(_is_number(a) for a in args):
        raise ConfigError(f"{where}.{kind}: expected {shape} as numbers, got {list(args)!r}")
    low, high = float(args[0]), float(args[1])
    if not low < high:
        raise ConfigError(f"{where}.{kind}: lo must be below hi, got lo={args[0]} hi={args[1]}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}.loguniform: lo must be > 0 (log scale), got {args[0]}")
    if kind == "randint" and not all(float(a).is_integer() for a in args):
        raise ConfigError(f"{where}.randint: lo and hi must be integers, got {list(args)!r}")
    q = float(args[2]) if kind == "quniform" else None
    if q is not None and q <= 0:
        raise ConfigError(f"{where}.quniform: q must be > 0, got {args[2]}")
    return Dimension(name, kind, low=low, high=high, q=q)


def _check_finite(where: str, values: Sequence[Any]) -> None:
    """Refuse NaN or an infinity among listed values (a range refuses them as bounds)."""
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: {value!r} is not a finite number; list finite values "
                              f"only")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def parse_space(raw: Mapping[str, Any], *, training_fields: set[str],
                section: str = "search_space") -> dict[str, Dimension]:
    """Parse a whole ``search_space``; keys must be ``TrainingArguments`` fields or ``model.*``.

    ``section`` is the config key that holds ``raw``, named in errors (``search_space``, or
    ``strategy.mutations`` for PBT's mutations, written in the same syntax).
    """
    space: dict[str, Dimension] = {}
    for name, value in raw.items():
        if is_training_key(name) and name not in training_fields:
            raise ConfigError(
                f"{section}.{name}: not a TrainingArguments field; use a real field "
                f"(e.g. learning_rate, per_device_train_batch_size, num_train_epochs, "
                f"weight_decay, warmup_steps, lr_scheduler_type, seed), "
                f"'model.<config key>' or 'peft.<adapter key>'"
            )
        if name.startswith(MODEL_PREFIX) and len(name) == len(MODEL_PREFIX):
            raise ConfigError(f"{section}.model.: name a model config key after 'model.'")
        if name.startswith(PEFT_PREFIX) and len(name) == len(PEFT_PREFIX):
            raise ConfigError(f"{section}.peft.: name an adapter key after 'peft.'")
        space[name] = parse_dimension(name, value, section=section)
    return space


def to_ray_param_space(space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Ray Tune ``param_space``: grid axes become ``tune.grid_search``, the rest tune domains."""
    from ray import tune

    out: dict[str, Any] = {}
    for name, dim in space.items():
        out[name] = to_ray_domain(dim, grid_as_choice=False)
        if dim.is_grid:
            out[name] = tune.grid_search(list(dim.values))
    return out


def to_ray_domain(dim: Dimension, *, grid_as_choice: bool = True) -> Any:
    """One dimension as a Ray Tune sampling domain (grid axes as ``choice`` when asked)."""
    from ray import tune

    if dim.is_categorical:
        return tune.choice(list(dim.values)) if grid_as_choice or not dim.is_grid else None
    if dim.kind == "uniform":
        return tune.uniform(dim.low, dim.high)
    if dim.kind == "loguniform":
        return tune.loguniform(dim.low, dim.high)
    if dim.kind == "randint":
        # Ray's randint excludes the upper bound; the config's includes it.
        return tune.randint(int(dim.low), int(dim.high) + 1)
    if dim.is_integer:
        return tune.qrandint(int(dim.low), int(dim.high), int(dim.q))
    return tune.quniform(dim.low, dim.high, dim.q)


def grid_size(space: Mapping[str, Dimension]) -> int:
    """Number of grid points (1 when the space has no grid axis)."""
    return math.prod(len(d.values) for d in space.values() if d.is_grid)


def split_hyperparameters(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a trial config into (TrainingArguments values, model-config overrides); its
    ``peft.*`` values are neither (the trial's adapter takes them).

    Numpy scalars (as Ray's samplers produce) become plain Python numbers.
    """
    plain = {k: python_value(v) for k, v in config.items()}
    training = {k: v for k, v in plain.items() if is_training_key(k)}
    model = {k[len(MODEL_PREFIX) :]: v for k, v in plain.items() if k.startswith(MODEL_PREFIX)}
    return training, model


def python_value(value: Any) -> Any:
    """``value`` as a plain Python object (numpy scalars unwrapped)."""
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def as_dict(space: Mapping[str, Dimension]) -> dict[str, dict[str, Any]]:
    """A JSON-friendly view of a parsed space (stored with the study)."""
    return {n: {k: v for k, v in dataclasses.asdict(d).items() if v not in (None, ())}
            for n, d in space.items()}
