"""Ray Tune's callback count for its usage statistics: same counts, no integration imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hftune.study.ray_telemetry import count_callbacks_by_name


def _callbacks() -> list[object]:
    from ray.tune import Callback
    from ray.tune.logger import CSVLoggerCallback, LoggerCallback

    from hftune.study.recorder import StudyRecorder

    class MyLogger(LoggerCallback):
        pass

    class MLflowLoggerCallback(Callback):  # a built-in's name: counted under it, as Ray does
        pass

    recorder = StudyRecorder.__new__(StudyRecorder)
    return [recorder, recorder, MyLogger(), CSVLoggerCallback(), MLflowLoggerCallback(),
            object()]


def test_counts_match_rays_own() -> None:
    from ray.air._internal.usage import _count_callbacks

    callbacks = _callbacks()
    ours = dict(count_callbacks_by_name(callbacks))
    assert ours == dict(_count_callbacks(callbacks))
    assert ours == {"CustomCallback": 2, "CustomLoggerCallback": 1, "CSVLoggerCallback": 1,
                    "MLflowLoggerCallback": 1}
    assert count_callbacks_by_name(None) == {}


def test_experiment_start_imports_no_tracking_client() -> None:
    """What Ray Tune calls at an experiment's start, in a fresh process: with hftune's count,
    ``mlflow`` and ``wandb`` (both installed here) stay unimported."""
    code = textwrap.dedent("""
        import sys
        from ray.air._internal import usage
        from ray.tune import Callback
        from hftune.study.ray_telemetry import count_callbacks_without_imports
        assert count_callbacks_without_imports()
        usage.tag_callbacks([Callback()])
        print(sorted(m for m in ("mlflow", "wandb") if m in sys.modules))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"
