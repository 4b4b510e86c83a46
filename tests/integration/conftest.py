"""The integration tier's Ray is started as ``hftune run`` starts one."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_preload() -> int:
    """Both workers import a trial's modules as they start (``hftune.training.preload``)."""
    return 2
