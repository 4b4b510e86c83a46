"""The libraries' log lines stay out of the terminal: held, then in <study>/libraries.log; on
stderr too with --verbose; the loggers as they were afterwards."""

from __future__ import annotations

import logging
from pathlib import Path

from hftune.study import library_log
from hftune.study.library_log import LOG_FILE, attach_study_folder, library_logs, reclaim


def test_library_lines_are_held_then_written_to_the_study_folder(tmp_path: Path,
                                                                 capfd) -> None:
    ray_logger = logging.getLogger("ray.tune.example")
    with library_logs():
        ray_logger.warning("before the folder is known")
        logging.getLogger("transformers.modeling").warning("a transformers line")
        attach_study_folder(tmp_path)
        ray_logger.warning("after")
        logging.getLogger("hftune.libraries").info("a captured print")
    lines = (tmp_path / LOG_FILE).read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "before the folder is known", "a transformers line", "after", "a captured print"]
    assert "ray.tune.example" in lines[0] and "WARNING" in lines[0]
    out, err = capfd.readouterr()
    assert "before the folder" not in out + err and "after" not in out + err


def test_verbose_prints_them_on_stderr_too(tmp_path: Path, capfd) -> None:
    with library_logs(verbose=True):
        attach_study_folder(tmp_path)
        logging.getLogger("mlflow.store").warning("tracking store slow")
    assert "tracking store slow" in capfd.readouterr().err
    assert "tracking store slow" in (tmp_path / LOG_FILE).read_text()


def test_a_library_that_resets_its_logger_is_routed_again(tmp_path: Path, capfd) -> None:
    """ray.init removes the handlers of Ray's logger (which does not propagate): without
    reclaim its warnings would reach stderr through Python's last-resort handler."""
    ray_logger = logging.getLogger("ray")
    with library_logs():
        attach_study_folder(tmp_path)
        ray_logger.handlers = []  # what ray.init does
        reclaim()
        logging.getLogger("ray.tune.analysis").warning("failed to fetch metrics")
    assert "failed to fetch metrics" not in capfd.readouterr().err
    assert "failed to fetch metrics" in (tmp_path / LOG_FILE).read_text()


def test_the_loggers_are_as_they_were_afterwards(tmp_path: Path) -> None:
    ray_logger = logging.getLogger("ray")
    before = (list(ray_logger.handlers), ray_logger.propagate, ray_logger.level)
    with library_logs():
        assert ray_logger.handlers and not ray_logger.propagate
    assert (list(ray_logger.handlers), ray_logger.propagate, ray_logger.level) == before
    assert library_log._active == []
    attach_study_folder(tmp_path)  # outside a block: nothing
    assert not (tmp_path / LOG_FILE).exists()
