"""Shared fixtures: the real data folder, a tiny BERT, one Ray instance per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Every tokenization appends a line here, from any process (see hftune.data.tokenize).
TOKENIZE_LOG = Path(os.environ.setdefault(
    "HFTUNE_TOKENIZE_LOG", os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                        f"hftune-tokenize-{os.getpid()}.log")))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (read-only in CI): one folder per task."""
    if not (SHARED_DATA / "rte" / "train.jsonl").is_file():
        pytest.fail(f"the real data is missing: expected {SHARED_DATA}/rte (../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised BERT (hidden 64, 2 layers) with the MiniLM tokenizer."""
    from hftune.testing.tiny_model import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (2 CPUs), started as hftune starts one."""
    import ray

    from hftune.study.ray_session import start_local_ray

    if not ray.is_initialized():
        start_local_ray(2)
    yield ray
    ray.shutdown()
