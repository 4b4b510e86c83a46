"""Search-space parsing and conversion to Ray Tune domains."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from hftune.config.loading import training_argument_fields
from hftune.errors import ConfigError
from hftune.space import (
    grid_size,
    parse_dimension,
    parse_space,
    split_hyperparameters,
    to_ray_domain,
    to_ray_param_space,
)
from hftune.testing.cli import one_line_error

FIELDS = {"learning_rate", "per_device_train_batch_size", "num_train_epochs", "warmup_steps"}


def test_kinds_and_types() -> None:
    space = parse_space(
        {"learning_rate": {"loguniform": [1e-5, 5e-5]},
         "per_device_train_batch_size": {"choice": [16, 32, 64]},
         "num_train_epochs": [2, 3],
         "warmup_steps": {"quniform": [0, 500, 50]},
         "model.hidden_dropout_prob": {"uniform": [0.0, 0.3]}},
        training_fields=FIELDS)
    assert space["num_train_epochs"].is_grid
    assert space["warmup_steps"].is_integer and space["per_device_train_batch_size"].is_integer
    assert not space["learning_rate"].is_integer
    assert grid_size(space) == 2


def test_ray_domains_sample_inside_bounds() -> None:
    rng = np.random.default_rng(0)
    cases = {
        "randint": ({"randint": [2, 5]},
                    lambda v: isinstance(v, (int, np.integer)) and 2 <= v <= 5),
        "quniform_int": ({"quniform": [0, 500, 50]},
                         lambda v: isinstance(v, (int, np.integer)) and v % 50 == 0
                         and 0 <= v <= 500),
        "loguniform": ({"loguniform": [1e-5, 5e-5]}, lambda v: 1e-5 <= v <= 5e-5),
        "choice": ({"choice": [16, 32]}, lambda v: v in (16, 32)),
    }
    for name, (raw, ok) in cases.items():
        domain = to_ray_domain(parse_dimension("x", raw))
        values = domain.sample(size=200, random_state=rng)
        assert all(ok(v) for v in values), name
    # randint includes its upper end (Ray's excludes it): 5 must appear
    dom = to_ray_domain(parse_dimension("x", {"randint": [2, 5]}))
    assert 5 in set(dom.sample(size=200, random_state=rng))


def test_grid_axes_become_grid_search() -> None:
    space = parse_space({"learning_rate": [1e-5, 2e-5], "num_train_epochs": {"choice": [2, 3]}},
                        training_fields=FIELDS)
    ps = to_ray_param_space(space)
    assert ps["learning_rate"] == {"grid_search": [1e-5, 2e-5]}
    assert not isinstance(ps["num_train_epochs"], dict)


def test_clip_and_contains() -> None:
    dim = parse_dimension("lr", {"uniform": [1e-5, 5e-5]})
    assert dim.clip(9e-5) == 5e-5 and dim.clip(0.0) == 1e-5
    ints = parse_dimension("bs", {"randint": [16, 64]})
    assert ints.clip(70.4) == 64 and isinstance(ints.clip(20.6), int)
    assert ints.contains(32) and not ints.contains(32.5)


@pytest.mark.parametrize("value", ["abc", None, True, float("nan"), [1e-5]])
def test_a_range_contains_only_numbers(value) -> None:
    """Checked user values (seeds-then-pbt's screen_config) are refused, not a ValueError."""
    assert not parse_dimension("lr", {"uniform": [0.0, 1.0]}).contains(value)


def test_a_list_contains_its_values_not_lookalikes() -> None:
    dim = parse_dimension("fp16", [True, False])
    assert dim.contains(True) and not dim.contains(1) and not dim.contains(0)
    bs = parse_dimension("bs", [16, 32])
    assert bs.contains(np.int64(32)) and not bs.contains(20)
    assert type(bs.clip(np.int64(32))) is int  # the listed value itself
    assert bs.clip(20) == 16  # the fallback after a perturbation; user values are checked


def test_edge_values_and_describe() -> None:
    assert parse_dimension("x", {"randint": [1, 8]}).edge_values() == (1, 8)
    assert parse_dimension("x", {"quniform": [0, 10, 0.5]}).edge_values() == (0.0, 10.0)
    assert parse_dimension("x", {"choice": ["a", "b"]}).edge_values() == ("a", "b")
    assert parse_dimension("x", {"randint": [1, 8]}).describe() == "randint: [1, 8]"
    assert parse_dimension("x", [16, 32]).describe() == "[16, 32]"
    assert parse_dimension("x", {"loguniform": [1e-5, 1e-3]}).describe() == \
        "loguniform: [1e-05, 0.001]"


def test_split_hyperparameters() -> None:
    training, model = split_hyperparameters({"learning_rate": np.float64(1e-5),
                                             "num_train_epochs": np.int64(3),
                                             "model.hidden_dropout_prob": 0.2})
    assert training == {"learning_rate": 1e-5, "num_train_epochs": 3}
    assert model == {"hidden_dropout_prob": 0.2}
    assert type(training["num_train_epochs"]) is int  # numpy scalars become Python values
    assert type(training["learning_rate"]) is float


@pytest.mark.parametrize("raw", [{"uniform": [1]}, {"uniform": ["a", 2]}, {"randint": [1.5, 3]},
                                 {"quniform": [0, 1, 0]}, {"choice": []}, "abc", {"a": 1, "b": 2}])
def test_bad_dimensions(raw) -> None:
    with pytest.raises(ConfigError, match="search_space.x"):
        parse_dimension("x", raw)


@pytest.mark.parametrize("raw", [[1e-5, math.nan], {"choice": [0.1, math.inf]},
                                 [-math.inf]])
def test_nan_or_inf_in_a_list_is_refused(raw: Any) -> None:
    """Also for model-config keys, which TrainingArguments does not check."""
    text = one_line_error(ConfigError, parse_dimension, "model.hidden_dropout_prob", raw)
    assert re.match(r"search_space\.model\.hidden_dropout_prob(\.choice)?: -?(nan|inf) is not a "
                    r"finite number", text), text


def test_the_fields_a_search_space_error_suggests_exist() -> None:
    fields = set(training_argument_fields())
    text = one_line_error(ConfigError, parse_space, {"lr": [1]}, training_fields=fields)
    examples = re.search(r"\(e\.g\. ([^)]*)\)", text).group(1).split(", ")
    assert len(examples) > 3 and set(examples) <= fields, text
