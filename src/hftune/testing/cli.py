"""The ``hftune`` command in the test's own process, and what a refusal must look like.

:func:`run_cli` calls the real entry point with ``sys.argv`` set (pytest's ``monkeypatch`` and
``capsys``); :func:`one_line` and :func:`check_refused` check a refusal: exit code 2 and a single
``error:`` line (no traceback). :class:`Reached` stands in for a step that would start Ray, train
or load a model: patched in with :func:`reached`, a check that is missing shows as that
exception, not as a run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


class Reached(Exception):
    """Raised where the command would go on to Ray, training or model loading."""


def reached(*args: object, **kwargs: object) -> None:
    """A stand-in for a step past the checks: raises :class:`Reached`."""
    raise Reached("went past the checks")


def run_cli(args: list[str], monkeypatch: Any, capsys: Any) -> tuple[int, str, str]:
    """``hftune ARGS`` through :func:`hftune.cli.main.main`: ``(exit code, stdout, stderr)``."""
    from hftune.cli.main import main

    monkeypatch.setattr(sys, "argv", ["hftune", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(code: int, err: str, needle: str) -> str:
    """The single ``error:`` line of a refusal (exit code 2) that contains ``needle``."""
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    return lines[0]


def check_refused(code: int, err: str, out_dir: Path, needle: str) -> None:
    """A one-line refusal (:func:`one_line`) that left no study folder at ``out_dir``."""
    one_line(code, err, needle)
    assert "Traceback" not in err
    assert not Path(out_dir).exists(), out_dir


def one_line_error(kind: type[Exception], call: Any, *args: Any, **kwargs: Any) -> str:
    """The message of the ``kind`` that ``call(*args, **kwargs)`` raises, checked to be one
    line."""
    import pytest

    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text, text
    return text


def unwritable_folder() -> Path:
    """A folder nothing can be made in, even by root (in ``/proc``, a virtual file system).

    Without ``/proc`` (not Linux) the test is skipped; under CI a skip fails the session."""
    import pytest

    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc (Linux)")
    return Path("/proc/hftune-no-such-folder")
