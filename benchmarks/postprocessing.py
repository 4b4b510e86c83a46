"""Evaluation post-processing's share of an evaluation: ``python benchmarks/postprocessing.py``.

Issue 20's goal: turning an evaluation's predictions into metrics (QA: n-best spans over every
window of a context and SQuAD's scoring; NER: ``seqeval`` on the aligned tags) costs at most 10%
of the evaluation's wall time, on the shared data with the tiny model. For each task the
validation split is tokenized once (as a study does), then evaluated ``--repeats`` times the way
trials evaluate (:func:`hftune.study.checkpoints.evaluate_model`: the trials' collator, inputs,
eval batch size 64 and metric code), one torch thread (a 1-CPU trial). The figure is the median
over repeats of (seconds inside the task type's ``compute_metrics``) ÷ (the evaluation's whole
wall time, that included): one ratio per task, both measured in the same call.

The table is printed and appended, with a description of the machine, to
``benchmarks/RESULTS.md`` (``--no-append`` to skip). Data: ``../shared/data``
(``HFTUNE_BENCH_DATA`` overrides the root).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# (task name, max_length): the type's own default length for QA, the study default for NER
TASKS = (("squad", 384), ("wnut17", 128))
GOAL = 0.10


def timed_metrics(kind: Any, spent: list[float]) -> None:
    """Make ``kind.compute_metrics`` add the seconds each metrics call takes to ``spent``."""
    build = kind.compute_metrics

    def compute_metrics(split: Any, names: Any) -> Any:
        inner = build(split, names)

        def measured(prediction: Any) -> dict[str, float]:
            started = time.perf_counter()
            try:
                return inner(prediction)
            finally:
                spent.append(time.perf_counter() - started)
        return measured

    kind.compute_metrics = compute_metrics


def measure(name: str, max_length: int, data_root: Path, model_dir: Path,
            repeats: int) -> dict[str, Any]:
    """Tokenize ``name``'s validation split once, evaluate it ``repeats`` times; the figures."""
    from transformers import AutoTokenizer

    from hftune.config.schema import TaskConfig
    from hftune.data.loading import load_task_data
    from hftune.data.tasks import resolve_task
    from hftune.study.checkpoints import evaluate_model

    task = resolve_task(TaskConfig(name=name))
    data = load_task_data(task, data_root / name)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    started = time.perf_counter()
    split = task.type.tokenize(data.splits[task.validation_split], tokenizer, max_length,
                               data.label_names, training=False)
    tokenize_s = time.perf_counter() - started
    model = task.type.auto_model().from_pretrained(
        str(model_dir), **task.type.model_config(data.label_names))
    ratios, evals, posts = [], [], []
    metrics: dict[str, float] = {}
    for _ in range(repeats):
        spent: list[float] = []
        timed_metrics(task.type, spent)
        started = time.perf_counter()
        metrics = evaluate_model(model, split, tokenizer=tokenizer, task_type=task.type,
                                 label_names=data.label_names, batch_size=64, use_cpu=True)
        whole = time.perf_counter() - started
        del task.type.compute_metrics  # the class's own again
        evals.append(whole)
        posts.append(sum(spent))
        ratios.append(sum(spent) / whole)
    return {"task": name, "type": task.type.name, "examples": split.rows,
            "features": len(split.features), "tokenize_s": tokenize_s,
            "eval_s": statistics.median(evals), "post_s": statistics.median(posts),
            "ratio": statistics.median(ratios), "metric": task.type.metrics[0],
            "value": metrics.get(task.type.metrics[0])}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| task | type | examples (features) | tokenize once, s | evaluation, s "
             "| post-processing, s | share | goal ≤ 10% |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['type']} | {r['examples']} ({r['features']}) "
            f"| {r['tokenize_s']:.2f} | {r['eval_s']:.2f} | {r['post_s']:.3f} "
            f"| {100 * r['ratio']:.1f}% | {'met' if r['ratio'] <= GOAL else 'not met'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    import torch
    from run import machine

    from hftune.testing.tiny_model import make_tiny_bert

    torch.set_num_threads(1)
    data_root = Path(os.environ.get("HFTUNE_BENCH_DATA", HERE.parent.parent / "shared" / "data"))
    model_dir = make_tiny_bert(Path(tempfile.gettempdir()) / "hftune-bench-tiny-bert")
    rows = [measure(name, length, data_root, model_dir, args.repeats)
            for name, length in TASKS]
    text = table(rows)
    print(text)
    if not args.no_append:
        stamp = time.strftime("%Y-%m-%d %H:%M")
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(f"\n### Evaluation post-processing {stamp} (benchmarks/postprocessing.py, "
                     f"median of {args.repeats}, 1 torch thread, eval batch 64)\n\n"
                     f"{machine()}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
