"""The peer: transformers' own Ray Tune integration, as a transformers user would write it.

``Trainer.hyperparameter_search(backend="ray")`` with ``model_init``, an ``hp_space`` of
``tune.grid_search`` axes, ``n_trials=1`` (one pass over the grid), ``resources_per_trial
{"cpu": 1}`` and an accuracy ``compute_metrics``. Data: the RTE jsonl files read with
``datasets`` and tokenized with ``map`` (truncation to ``max_length``, padding per batch by the
Trainer's default collator). Evaluation every epoch; ``save_strategy="no"`` (hftune's side runs
with ``checkpoints.save_best: false``), so neither side writes checkpoints.

Run alone: ``python benchmarks/peer.py MODEL_DIR DATA_DIR [--rows N] [--grid ref|small]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GRIDS: dict[str, dict[str, list[Any]]] = {
    "ref": {"per_device_train_batch_size": [16, 32], "learning_rate": [2e-5, 3e-5, 5e-5],
            "num_train_epochs": [2, 3, 4]},
    "small": {"per_device_train_batch_size": [16, 32], "learning_rate": [3e-5, 5e-5],
              "num_train_epochs": [1]},
}


def load_rte(model_dir: str, data_dir: str, rows: int | None, max_length: int = 128) -> Any:
    """RTE train/validation as tokenized ``datasets`` (the usual ``load_dataset`` + ``map``)."""
    from datasets import load_dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    raw = load_dataset("json", data_files={
        "train": str(Path(data_dir) / "train.jsonl"),
        "validation": str(Path(data_dir) / "validation.jsonl")})
    if rows is not None:
        raw["train"] = raw["train"].select(range(rows))

    def tokenize(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["premise"], batch["hypothesis"], truncation=True,
                         max_length=max_length)

    data = raw.map(tokenize, batched=True, remove_columns=["premise", "hypothesis", "idx"])
    return tokenizer, data


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """Accuracy."""
    import numpy as np

    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def run_peer(model_dir: str, data_dir: str, grid: dict[str, list[Any]], rows: int | None,
             output_dir: str) -> dict[str, Any]:
    """Run the grid through ``Trainer.hyperparameter_search(backend="ray")``; seconds taken."""
    from ray import tune
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    started = time.perf_counter()
    tokenizer, data = load_rte(model_dir, data_dir, rows)

    def model_init(trial: Any = None) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    args = TrainingArguments(
        output_dir=output_dir, eval_strategy="epoch", save_strategy="no",
        per_device_eval_batch_size=64, report_to=[], disable_tqdm=True, seed=42)
    trainer = Trainer(model_init=model_init, args=args, train_dataset=data["train"],
                      eval_dataset=data["validation"], processing_class=tokenizer,
                      compute_metrics=compute_metrics)
    searched = time.perf_counter()
    best = trainer.hyperparameter_search(
        hp_space=lambda _: {k: tune.grid_search(v) for k, v in grid.items()},
        backend="ray", n_trials=1, direction="maximize",
        resources_per_trial={"cpu": 1},
        storage_path=str(Path(output_dir).resolve() / "ray"))
    ended = time.perf_counter()
    return {"wall_s": ended - started, "search_s": ended - searched,
            "best_objective": best.objective, "best_config": best.hyperparameters}


def main(argv: list[str] | None = None) -> int:
    """Command line: run the peer once and print (or write) its timing as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("data_dir")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="ref")
    parser.add_argument("--json", default=None, help="write the result here")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hftune-peer-") as out:
        result = run_peer(ns.model_dir, ns.data_dir, GRIDS[ns.grid], ns.rows, out)
    text = json.dumps(result, default=str)
    if ns.json:
        Path(ns.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
