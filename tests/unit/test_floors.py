"""The dependency floors of pyproject.toml, as scripts/floors.py turns them into constraints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def floors_module():
    spec = importlib.util.spec_from_file_location("floors", ROOT / "scripts" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_declared_dependency_has_one_floor(floors_module) -> None:
    found = floors_module.floors(ROOT / "pyproject.toml")
    assert {"ray", "transformers", "torch", "wandb", "hpbandster", "configspace"} <= set(found)
    assert "hyperopt" not in found  # imported nowhere


def test_libraries_whose_internals_hftune_uses_stop_below_their_next_major(floors_module) -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = floors_module.tomllib.loads(text)["project"]
    declared = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    for name, bound in {"ray[tune]": "<3", "transformers": "<6", "torch": "<3",
                        "wandb": "<1"}.items():
        (requirement,) = [r for r in declared if r.split(">=")[0] == name]
        assert requirement.endswith("," + bound), requirement


@pytest.mark.parametrize("requirement, expected", [
    ("ray[tune]>=2.60,<3", ("ray", "2.60")),
    ("GPy>=1.13.1", ("GPy", "1.13.1")),
    ("pkg~=1.4", ("pkg", "1.4")),
])
def test_a_requirement_gives_its_floor(floors_module, requirement, expected) -> None:
    assert floors_module.floor_of(requirement) == expected


@pytest.mark.parametrize("requirement", ["pkg", "pkg<2", "pkg>=1,>=2"])
def test_a_requirement_without_one_floor_is_refused(floors_module, requirement) -> None:
    with pytest.raises(ValueError, match="exactly one floor"):
        floors_module.floor_of(requirement)


def test_the_constraints_pin_each_floor_and_torch_to_the_installed_build(floors_module,
                                                                         tmp_path) -> None:
    out = tmp_path / "floors.txt"
    assert floors_module.main(["--torch", "2.13.0", "-o", str(out)]) == 0
    lines = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    assert any(line.startswith("ray==") for line in lines)
    assert not any("[" in line for line in lines)  # constraints take no extras
    assert [line.split("#")[0].strip() for line in lines if line.startswith("torch")] == [
        "torch==2.13.0"]
