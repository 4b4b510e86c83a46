"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hftune.testing.fixtures import build_report_fixtures, build_running_study


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Study folders for report tests: grid, ASHA, PBT (fixtures) and a running study."""
    base = tmp_path_factory.mktemp("studies")
    paths = build_report_fixtures(base)
    paths["running"] = build_running_study(base / "running")
    return paths
