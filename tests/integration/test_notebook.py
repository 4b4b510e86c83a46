"""``examples/quickstart.ipynb`` executed in a real Jupyter kernel (nbclient): its parameters
cell pointed at the tiny model and a slice of SST-2, every cell runs without error, and the
executed notebook holds the live view, the trials table and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs_and_shows_trials_and_report(tiny_bert: Path,
                                                                  shared_data: Path,
                                                                  tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    overrides = {"model": str(tiny_bert), "output_dir": str(tmp_path / "runs" / "quickstart"),
                 "task.max_train_samples": 64, "task.max_eval_samples": 32, "max_length": 32}
    parameters.source = (f"config = {str(NOTEBOOK.parent / 'quickstart.yaml')!r}\n"
                         f"overrides = {json.dumps(overrides)}\n"
                         f"data_dir = {str(shared_data / 'sst2')!r}")
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("trial_id" in h and "learning_rate" in h and "score" in h for h in html)
    markdown = [o["data"]["text/markdown"] for o in outputs
                if "text/markdown" in o.get("data", {})]
    assert any("Best (validation)" in m for m in markdown)
    # the live view rendered while the study ran (an ipywidgets output, updated in place)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs)
