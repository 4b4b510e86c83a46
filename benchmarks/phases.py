"""One benchmark phase in its own process: an hftune study, or plain ``Trainer`` runs.

``benchmarks/run.py`` starts each phase as a child process (a fresh Ray for each, and a
process tree whose memory it samples) and reads the JSON the phase writes.

* ``hftune``: ``run_study`` on a grid; per trial the train + eval loop seconds (last report's
  ``elapsed_s`` minus the first report's ``setup_s``), start-up (``first_step_s``), whether its
  worker was warm (``worker_trials > 0``).
* ``plain``: the grid's configs one after another with plain ``Trainer`` in this process
  (``--threads`` torch threads), data prepared as the peer does; seconds of ``train()`` each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer import GRIDS, compute_metrics, load_rte  # noqa: E402


def grid_configs(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every point of ``grid`` (a dict of axes) as a config dict."""
    import itertools

    keys = list(grid)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))]


def run_hftune(model_dir: str, data_dir: str, grid: dict[str, list[Any]], rows: int | None,
               variant: dict[str, Any]) -> dict[str, Any]:
    """Run the grid as an hftune study; the study's wall time and per-trial timings."""
    from hftune.study.loading import validate_study
    from hftune.study.runner import run_study

    with tempfile.TemporaryDirectory(prefix="hftune-bench-") as out:
        cfg: dict[str, Any] = {
            "name": "bench", "output_dir": str(Path(out) / "study"), "model": model_dir,
            "task": {"name": "rte", "data_dir": data_dir, "max_train_samples": rows},
            "max_length": 128, "seed": 42,
            "search_space": {k: list(v) for k, v in grid.items()},
            "strategy": {"name": "grid", "metric": "accuracy", "mode": "max"},
            "checkpoints": {"save_best": False},
        }
        for key, value in variant.items():
            section, _, sub = key.partition(".")
            if sub:
                cfg.setdefault(section, {})[sub] = value
            else:
                cfg[key] = value
        started = time.perf_counter()
        result = run_study(validate_study(cfg))
        wall = time.perf_counter() - started
    trials = []
    for t in result.trials:
        first, last = t.reports[0], t.reports[-1]
        loop = last["elapsed_s"] - first.get("setup_s", 0.0)
        trials.append({
            "config": t.config, "state": t.state, "train_eval_s": loop,
            "setup_s": first.get("setup_s"), "first_step_s": first.get("first_step_s"),
            "worker_trials": first.get("worker_trials"), "worker_pid": first.get("worker_pid"),
            "epochs": last["epoch"], "accuracy": max(r["accuracy"] for r in t.reports),
            "started_at": t.started_at, "ended_at": t.ended_at})
    return {"wall_s": wall, "study_wall_s": result.study.wall_s,
            "study_started_at": result.study.started_at,
            "tokenize_s": result.study.tokenize_s, "trials": trials,
            "max_concurrent": result.study.resources.get("max_concurrent"),
            "best_value": result.study.best_value}


def run_plain(model_dir: str, data_dir: str, grid: dict[str, list[Any]], rows: int | None,
              threads: int) -> dict[str, Any]:
    """The grid's configs one after another with a plain ``Trainer``, ``threads`` threads."""
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    torch.set_num_threads(threads)
    started = time.perf_counter()
    tokenizer, data = load_rte(model_dir, data_dir, rows)
    runs = []
    with tempfile.TemporaryDirectory(prefix="hftune-plain-") as out:
        for config in grid_configs(grid):
            run_started = time.perf_counter()
            model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
            args = TrainingArguments(
                output_dir=out, eval_strategy="epoch", save_strategy="no",
                per_device_eval_batch_size=64, report_to=[], disable_tqdm=True, seed=42,
                logging_strategy="no", **config)
            trainer = Trainer(model=model, args=args, train_dataset=data["train"],
                              eval_dataset=data["validation"], processing_class=tokenizer,
                              compute_metrics=compute_metrics)
            loop_started = time.perf_counter()
            trainer.train()
            ended = time.perf_counter()
            runs.append({"config": config, "train_eval_s": ended - loop_started,
                         "run_s": ended - run_started,
                         "samples": len(data["train"]) * config["num_train_epochs"]})
    return {"wall_s": time.perf_counter() - started, "runs": runs, "threads": threads}


def main(argv: list[str] | None = None) -> int:
    """Command line: run one phase and write its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["hftune", "plain"])
    parser.add_argument("model_dir")
    parser.add_argument("data_dir")
    parser.add_argument("--json", required=True)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--grid", default="ref",
                        help="a name in peer.GRIDS, or a JSON dict of axes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant", default="{}",
                        help="JSON: config keys to set (dotted: training.group_by_length)")
    ns = parser.parse_args(argv)
    grid = GRIDS[ns.grid] if ns.grid in GRIDS else json.loads(ns.grid)
    if ns.phase == "hftune":
        result = run_hftune(ns.model_dir, ns.data_dir, grid, ns.rows, json.loads(ns.variant))
    else:
        result = run_plain(ns.model_dir, ns.data_dir, grid, ns.rows, ns.threads)
    Path(ns.json).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
