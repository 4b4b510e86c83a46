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
# ../shared/data beside the checkout; HFTUNE_SHARED_DATA names it elsewhere (mutation runs copy the
# tests into mutants/)
SHARED_DATA = Path(os.environ.get("HFTUNE_SHARED_DATA") or REPO.parent / "shared" / "data")


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
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random T5 (encoder-decoder) with the packaged MiniLM tokenizer."""
    from hftune.testing.tiny_model import make_tiny_generative

    return make_tiny_generative(tmp_path_factory.mktemp("tiny-t5"), "t5")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (decoder-only) with the packaged MiniLM tokenizer."""
    from hftune.testing.tiny_model import make_tiny_generative

    return make_tiny_generative(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (2 CPUs), started as hftune starts one."""
    import ray

    from hftune.study.ray_session import start_local_ray

    if not ray.is_initialized():
        start_local_ray(2)
    yield ray
    ray.shutdown()


# -- skips fail the run under CI --------------------------------------------------------------
# CI installs every extra (and Chromium), so a test that skips there tests nothing: with
# HFTUNE_FAIL_ON_SKIP=1 (scripts/test.sh sets it), CI set, or --no-skips, a session with any
# skipped test exits non-zero and lists them.

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-skips", action="store_true", default=False,
                     help="fail the session when any test is skipped (set by CI through "
                          "HFTUNE_FAIL_ON_SKIP=1)")


def skips_fail(config: pytest.Config) -> bool:
    """Whether a skipped test fails this session (CI)."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return bool(config.getoption("--no-skips")) or ci or (
        os.environ.get("HFTUNE_FAIL_ON_SKIP", "") == "1")


_SKIPPED: list[tuple[str, str]] = []


def _note_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _SKIPPED.append((report.nodeid, reason))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SKIPPED and skips_fail(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _SKIPPED and skips_fail(config):
        terminalreporter.section("skipped tests fail this run (CI / HFTUNE_FAIL_ON_SKIP=1)",
                                 red=True)
        for nodeid, reason in _SKIPPED:
            terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
