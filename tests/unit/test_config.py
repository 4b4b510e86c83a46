"""Config validation: every example validates; each kind of bad input is one clear error."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from hftune.config.loading import apply_overrides, parse_yaml, read_yaml
from hftune.errors import ConfigError
from hftune.study.loading import load_config, validate_study
from hftune.testing.cli import one_line_error
from hftune.testing.configs import study_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))

BASE = {
    "name": "t",
    "model": "bert-base-uncased",
    "task": "rte",
    "search_space": {"learning_rate": [2e-5, 3e-5]},
}


study = functools.partial(study_config, BASE)  # BASE with top-level changes, validated


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_validates(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.name and cfg.search_space


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.yaml", "rte-grid.yaml"} <= names


def test_reference_grid_has_18_points() -> None:
    from hftune.config.loading import training_argument_fields
    from hftune.space import grid_size, parse_space

    cfg = load_config(next(p for p in EXAMPLES if p.name == "rte-grid.yaml"))
    space = parse_space(cfg.search_space, training_fields=set(training_argument_fields()))
    assert grid_size(space) == 18
    assert cfg.model == "bert-base-uncased"


def test_scientific_notation_is_a_float() -> None:
    assert parse_yaml("lr: [1e-5, 2E-3, 5e3]") == {"lr": [1e-5, 2e-3, 5000.0]}


def test_defaults() -> None:
    cfg = study()
    assert cfg.study_dir == Path("runs/t")
    assert cfg.strategy.name == "grid" and cfg.strategy.score == "best"
    assert cfg.task.name == "rte"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nmae": "x"}, "nmae: unknown key; valid keys here: name, output_dir"),
        ({"strategy": {"name": "grid", "moed": "max"}}, None),
        ({"task": {"name": "rte", "datadir": "x"}}, "task.datadir: unknown key"),
        ({"training": {"learnin_rate": 1e-5}}, "training.learnin_rate: not a TrainingArguments"),
        ({"search_space": {"lr": [1e-5]}}, "search_space.lr: not a TrainingArguments field"),
        ({"search_space": {"learning_rate": {"uniform": [5e-5, 1e-5]}}},
         "search_space.learning_rate.uniform: lo must be below hi"),
        ({"search_space": {"learning_rate": {"loguniform": [0, 1e-5]}}},
         "search_space.learning_rate.loguniform: lo must be > 0"),
        ({"search_space": {"learning_rate": []}}, "search_space.learning_rate: the grid list is"),
        ({"search_space": {"learning_rate": {"normal": [0, 1]}}}, "unknown domain 'normal'"),
        ({"budget": {"num_samples": -3}}, "budget.num_samples: Input should be greater than 0"),
        ({"budget": {"time_budget_s": -1}}, "budget.time_budget_s: Input should be greater"),
        ({"strategy": {"name": "simulated-annealing"}},
         "strategy.name: unknown strategy 'simulated-annealing'; valid ones: grid, random"),
        ({"strategy": {"name": "grid", "grace_period": 2}}, "'grid' takes no option"),
        ({"training": {"output_dir": "x"}}, "training.output_dir: set by hftune itself"),
        ({"training": {"save_only_model": True}}, "training.save_only_model: set by hftune"),
        ({"training": {"eval_steps": 50}}, "training.eval_steps: set it as evaluation.eval_steps"),
        ({"search_space": {"eval_steps": [10, 20]}}, "search_space.eval_steps: set by hftune"),
        ({"evaluation": {"every": "steps"}}, "evaluation: every: steps needs eval_steps"),
        # drop_last would also drop validation rows from every score
        ({"training": {"dataloader_drop_last": True}},
         "training.dataloader_drop_last: not supported: Trainer would also drop the last"),
        ({"search_space": {"dataloader_drop_last": [True, False]}},
         "search_space.dataloader_drop_last: not supported"),
        # options that must fit the search space are checked with the config, not at run time
        ({"strategy": {"name": "pbt", "mutations": {"weight_decay": [0.0, 0.1]}}},
         "strategy.mutations.weight_decay: also declare it in search_space"),
        ({"strategy": {"name": "seeds-then-pbt", "mutations": {"warmup_steps": [0, 10]}}},
         "strategy.mutations.warmup_steps: also declare it in search_space"),
        ({"strategy": {"name": "pb2"}}, "strategy.bounds: pb2 needs at least one numeric"),
        ({"strategy": {"name": "pb2", "bounds": {"weight_decay": [0.0, 0.1]}},
          "search_space": {"learning_rate": {"uniform": [1e-5, 5e-5]}}},
         "strategy.bounds.weight_decay: not a numeric dimension of search_space"),
        ({"strategy": {"name": "pb2", "bounds": {"learning_rate": [5e-5, 1e-5]}},
          "search_space": {"learning_rate": {"uniform": [1e-5, 5e-5]}}},
         "strategy.bounds.learning_rate: lo must be below hi"),
        ({"evaluation": {"eval_steps": 50}}, "evaluation: eval_steps is used only with every"),
        ({"model": ""}, "model: String should have at least 1 character"),
        # hftune never pushes trials to the Hub (and a token would land in study.yaml)
        ({"training": {"hub_token": "hf_x"}}, "training.hub_token: hftune does not push"),
        ({"training": {"push_to_hub": True}}, "training.push_to_hub: hftune does not push"),
        ({"training": {"hub_model_id": "me/m"}}, "'hftune export STUDY -o DIR'"),
        ({"search_space": {"hub_private_repo": [True, False]}},
         "search_space.hub_private_repo: hftune does not push"),
        # label names are label2id keys: one name per class
        ({"task": {"name": "rte", "labels": ["a", "a"]}}, "task.labels: label 'a' is listed twice"),
        ({"task": {"name": "x", "text_fields": ["t"], "labels": [0, "0"]}},
         "task.labels: label '0' is listed twice"),
        # PB2's box must lie inside the space (values outside would be clipped back)
        ({"strategy": {"name": "pb2", "bounds": {"learning_rate": [1e-6, 5e-5]}},
          "search_space": {"learning_rate": {"uniform": [1e-5, 5e-5]}}},
         "strategy.bounds.learning_rate: [1e-06, 5e-05] reaches outside search_space."
         "learning_rate (uniform: [1e-05, 5e-05])"),
        ({"strategy": {"name": "pb2", "bounds": {"warmup_steps": [0, 600]}},
          "search_space": {"warmup_steps": {"randint": [0, 500]}}},
         "give bounds within [0, 500]"),
        # an exploit loads the donor's optimizer and scheduler state into the member
        ({"strategy": {"name": "pbt"}, "search_space": {"optim": ["adamw_torch", "sgd"]}},
         "search_space.optim: PBT members load each other's optimizer state"),
        ({"strategy": {"name": "seeds-then-pbt"},
          "search_space": {"optim": ["adamw_torch", "adafactor"]}}, "search_space.optim: PBT"),
        ({"strategy": {"name": "pbt"}, "training": {"lr_scheduler_type": "reduce_lr_on_plateau"}},
         "training.lr_scheduler_type: 'reduce_lr_on_plateau' keeps state"),
        ({"strategy": {"name": "pb2"}, "search_space": {
            "learning_rate": {"uniform": [1e-5, 5e-5]},
            "lr_scheduler_type": ["linear", "reduce_lr_on_plateau"]}},
         "search_space.lr_scheduler_type: 'reduce_lr_on_plateau' keeps state"),
        # population, not num_samples, sets how many trials PBT runs
        ({"strategy": {"name": "pbt", "population": 4}, "budget": {"num_samples": 20}},
         "budget.num_samples: 'pbt' runs strategy.population trials (4), not 20"),
        ({"strategy": {"name": "pb2"}, "budget": {"num_samples": 3},
          "search_space": {"learning_rate": {"uniform": [1e-5, 5e-5]}}},
         "budget.num_samples: 'pb2' runs strategy.population trials (8), not 3"),
        ({"strategy": {"name": "seeds-then-pbt"}, "budget": {"num_samples": 16}},
         "budget.num_samples: 'seeds-then-pbt' runs strategy.seeds screen trials (8)"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(changes, message) -> None:
    with pytest.raises(ConfigError) as info:
        study(**changes)
    text = str(info.value)
    assert "\n" not in text
    if message is not None:
        assert message in text
    else:  # strategy accepts extra keys; the strategy then rejects 'moed'
        assert "strategy.moed" in text


def test_what_a_pbt_restore_can_honour_is_accepted() -> None:
    """Step-based schedules may be searched under PBT (a restored member follows its own); a
    plateau schedule or a searched optimizer is fine where nothing restores (grid)."""
    pbt = study(strategy={"name": "pbt"},
                search_space={"lr_scheduler_type": ["linear", "cosine"]},
                training={"optim": "adamw_torch"})
    assert pbt.search_space["lr_scheduler_type"] == ["linear", "cosine"]
    assert pbt.training == {"optim": "adamw_torch"}
    grid = study(strategy={"name": "grid"}, search_space={"optim": ["adamw_torch", "sgd"]},
                 training={"lr_scheduler_type": "reduce_lr_on_plateau"})
    assert grid.search_space == {"optim": ["adamw_torch", "sgd"]}
    assert grid.training == {"lr_scheduler_type": "reduce_lr_on_plateau"}


def test_hub_settings_that_push_nothing_are_accepted() -> None:
    """push_to_hub: false (copied from HF scripts) and unset hub values push nothing."""
    cfg = study(training={"push_to_hub": False, "hub_private_repo": None, "hub_token": None})
    assert cfg.training["push_to_hub"] is False


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match=r"s.yaml: YAML syntax error at line \d+"):
        load_config(path)


def test_yaml_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a YAML mapping"):
        load_config(path)


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: !!python/object/apply:os.system ['true']\nmodel: m\ntask: rte\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(path)


def test_set_overrides_nested_and_dotted_keys() -> None:
    data = apply_overrides(
        {"task": "rte", "search_space": {}},
        ["budget.time_budget_s=600", "model=path/to/model", "task.max_train_samples=64",
         "search_space.model.hidden_dropout_prob=[0.1, 0.2]", "search_space.learning_rate=[1e-5]"],
    )
    assert data["budget"] == {"time_budget_s": 600}
    assert data["model"] == "path/to/model"
    assert data["task"] == {"name": "rte", "max_train_samples": 64}
    assert data["search_space"]["model.hidden_dropout_prob"] == [0.1, 0.2]
    assert data["search_space"]["learning_rate"] == [1e-5]


def test_set_into_an_empty_section_and_name_keyed_strategy_options() -> None:
    """An empty YAML section (`training:` reads as null) takes overrides; PBT mutations, PB2
    bounds and the seeds screen config keep a dotted parameter name as one key."""
    data = apply_overrides(
        parse_yaml("name: x\ntraining:\nstrategy:\n  name: pbt\n"),
        ["training.num_train_epochs=2",
         "strategy.mutations.model.hidden_dropout_prob=[0.1, 0.2]",
         "strategy.bounds.learning_rate=[1e-5, 5e-5]",
         "strategy.screen_config.model.attention_probs_dropout_prob=0.1"],
    )
    assert data["training"] == {"num_train_epochs": 2}
    assert data["strategy"]["mutations"] == {"model.hidden_dropout_prob": [0.1, 0.2]}
    assert data["strategy"]["bounds"] == {"learning_rate": [1e-5, 5e-5]}
    assert data["strategy"]["screen_config"] == {"model.attention_probs_dropout_prob": 0.1}


@pytest.mark.parametrize("item", ["novalue", "=3", "a..b=1", "x=[1, 2"])
def test_set_that_does_not_parse(item: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        apply_overrides({}, [item])


def test_data_dir_override(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nmodel: m\ntask: rte\n")
    cfg = load_config(path, data_dir=tmp_path)
    assert cfg.task.data_dir == tmp_path


def test_set_into_a_tracking_list_keeps_its_entries() -> None:
    data = apply_overrides({"tracking": ["mlflow", "wandb"]}, ["tracking.wandb.project=x"])
    assert data["tracking"] == {"mlflow": None, "wandb": {"project": "x"}}


def test_a_relative_data_dir_is_stored_absolute(tmp_path: Path, monkeypatch) -> None:
    """study.yaml keeps where the data was, whatever folder resume/evaluate run from."""
    monkeypatch.chdir(tmp_path)
    cfg = study(task={"name": "rte", "data_dir": "data/rte"})
    assert cfg.task.data_dir == tmp_path / "data" / "rte"
    assert cfg.model_dump(mode="json")["task"]["data_dir"] == str(tmp_path / "data" / "rte")


def test_a_pbt_num_samples_equal_to_the_population_is_accepted() -> None:
    cfg = study(strategy={"name": "pbt", "population": 4}, budget={"num_samples": 4})
    assert cfg.budget.num_samples == 4


def test_pb2_bounds_inside_the_space_are_accepted() -> None:
    cfg = study(strategy={"name": "pb2", "bounds": {"learning_rate": [2e-5, 5e-5]}},
                search_space={"learning_rate": {"uniform": [1e-5, 5e-5]}})
    assert cfg.strategy.options["bounds"] == {"learning_rate": [2e-5, 5e-5]}


def test_the_strategy_config_carries_the_trial_context() -> None:
    """A strategy built from ``cfg.strategy`` alone sees the fixed training values and the
    evaluation cadence (seeds-then-pbt's screen length depends on them)."""
    cfg = study(training={"num_train_epochs": 5},
                evaluation={"every": "steps", "eval_steps": 20})
    context = cfg.strategy.trial_context
    assert context.training == {"num_train_epochs": 5}
    assert (context.eval_every, context.eval_steps) == ("steps", 20)
    assert "trial_context" not in cfg.model_dump(mode="json")["strategy"]


def test_a_key_both_fixed_and_searched_is_refused() -> None:
    data = {"name": "x", "model": "m", "task": "rte",
            "training": {"learning_rate": 2e-5},
            "search_space": {"learning_rate": [1e-5, 3e-5]}}
    with pytest.raises(ConfigError, match="search_space.learning_rate: also set in training"):
        validate_study(data)


def test_output_dir_expands_home_and_refuses_empty(monkeypatch, tmp_path: Path) -> None:
    from hftune.study.loading import validate_study

    monkeypatch.setenv("HOME", str(tmp_path))
    base = {"name": "x", "model": "m", "task": "rte"}
    assert validate_study({**base, "output_dir": "~/runs/x"}).study_dir == tmp_path / "runs/x"
    with pytest.raises(ConfigError, match="^output_dir: empty"):
        validate_study({**base, "output_dir": ""})


def test_yes_and_no_stay_text_while_true_and_false_are_booleans() -> None:
    assert parse_yaml("labels: [no, yes, on, off, y, n]\nflags: [true, False, TRUE]\n") == {
        "labels": ["no", "yes", "on", "off", "y", "n"], "flags": [True, False, True]}


def test_labels_no_and_yes_are_labels(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: s\nmodel: m\ntask:\n  name: mine\n  text_fields: [text]\n"
                    "  labels: [no, yes]\n")
    assert load_config(path).task.labels == ["no", "yes"]


def test_a_key_given_twice_names_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: s\nsearch_space:\n  learning_rate: [1e-4]\n"
                    "search_space:\n  weight_decay: [0.0]\n")
    assert one_line_error(ConfigError, read_yaml, path) == (
        f"{path}: line 4: key 'search_space' is given twice (first on line 2); YAML would keep "
        f"only the last one, so merge them into one")
    nested = one_line_error(ConfigError, parse_yaml, "a:\n  - {k: 1, k: 2}\n")
    assert nested.startswith("line 2: key 'k' is given twice (first on the same line)")
    # a merge key's values may still be overridden, as YAML intends
    assert parse_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n")["c"] == {"x": 3, "y": 2}


def test_an_unknown_mutation_is_named_under_strategy_mutations() -> None:
    cfg = study_config(search_space={"learning_rate": {"uniform": [1e-5, 1e-4]}},
                strategy={"name": "pbt", "population": 2})
    text = one_line_error(ConfigError, validate_study, {
        **cfg.model_dump(mode="json", exclude_unset=True),
        "strategy": {"name": "pbt", "population": 2, "mutations": {"foo": [1, 2]}}})
    assert text.startswith("strategy.mutations.foo: not a TrainingArguments field")


def test_a_union_value_names_the_key_and_every_accepted_kind() -> None:
    text = one_line_error(ConfigError, study_config, resources={"gpus_per_trial": "lots"})
    assert text == "resources.gpus_per_trial: Input should be a valid number or 'auto' (got 'lots')"
    text = one_line_error(ConfigError, study_config, task={"name": "mine", "labels": [{"a": 1}]})
    assert text == ("task.labels.0: Input should be a valid string or a valid integer "
                    "(got {'a': 1})")


def test_a_task_given_by_its_folder_is_named_after_it(tmp_path: Path) -> None:
    from hftune.config.schema import TaskConfig

    folder = tmp_path / "reviews"
    task = TaskConfig(data_dir=folder, text_fields=["text"], label_field="label")
    assert task.name == "reviews"
    assert TaskConfig(name="mine", data_dir=folder).name == "mine"
    with pytest.raises(ValueError, match="name"):
        TaskConfig(text_fields=["text"])
