"""Generation at evaluation against transformers' own: ``python benchmarks/generation.py``.

Issue 21's goal: hftune's evaluation of a seq2seq task with ``evaluation.generation`` (the loss
pass with per-token perplexity, then the generation pass: prompts batched in length order) is
at least 95% as fast as a plain ``Seq2SeqTrainer.evaluate`` with ``predict_with_generate=True``
on the same rows, model, batch size and generation settings (greedy, ``max_new_tokens``), with
``run_summarization.py``'s ROUGE computed on the decoded predictions. The figure is the median,
over ``--repeats`` rounds that run both in alternating order, of plain seconds ÷ hftune
seconds (≥ 0.95 meets the goal), both measured in the same call on one torch thread.

Model: a random T5 (``--hidden``, ``--layers``) with the packaged MiniLM tokenizer; data: the
first ``--rows`` validation rows of ``../shared/data/summ`` (``HFTUNE_BENCH_DATA`` overrides
the root). The table is printed and appended to ``benchmarks/RESULTS.md`` (``--no-append`` to
skip).
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
GOAL = 0.95


def plain_evaluate(model: Any, tokenizer: Any, split: Any, batch: int, new_tokens: int) -> float:
    """Seconds of ``Seq2SeqTrainer.evaluate(predict_with_generate=True)`` with ROUGE."""
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    from hftune.tasks._generation import text_scores

    def compute_metrics(pred: Any) -> dict[str, float]:
        import numpy as np

        preds = np.where(pred.predictions != -100, pred.predictions, tokenizer.pad_token_id)
        labels = np.where(pred.label_ids != -100, pred.label_ids, tokenizer.pad_token_id)
        decoded = tokenizer.batch_decode(preds, skip_special_tokens=True)
        refs = tokenizer.batch_decode(labels, skip_special_tokens=True)
        return text_scores([d.strip() for d in decoded], [r.strip() for r in refs],
                           ("rouge1", "rouge2", "rougeL"))

    features = split.features.remove_columns(["length"])
    with tempfile.TemporaryDirectory() as scratch:
        args = Seq2SeqTrainingArguments(output_dir=scratch, per_device_eval_batch_size=batch,
                                        predict_with_generate=True, report_to=[],
                                        disable_tqdm=True, use_cpu=True)
        trainer = Seq2SeqTrainer(model=model, args=args,
                                 data_collator=DataCollatorForSeq2Seq(tokenizer),
                                 compute_metrics=compute_metrics)
        started = time.perf_counter()
        trainer.evaluate(features, max_new_tokens=new_tokens, num_beams=1)
        return time.perf_counter() - started


def hftune_evaluate(model: Any, tokenizer: Any, split: Any, kind: Any, batch: int) -> float:
    from hftune.study.checkpoints import evaluate_model

    started = time.perf_counter()
    out = evaluate_model(model, split, tokenizer=tokenizer, task_type=kind, batch_size=batch,
                         use_cpu=True)
    assert "rougeL" in out and "perplexity" in out
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    import pandas as pd
    import torch
    from run import machine
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from hftune.config.schema import TaskConfig
    from hftune.data.tasks import resolve_task
    from hftune.testing.tiny_model import make_tiny_generative

    torch.set_num_threads(1)
    data_root = Path(os.environ.get("HFTUNE_BENCH_DATA", HERE.parent.parent / "shared" / "data"))
    folder = make_tiny_generative(
        Path(tempfile.gettempdir()) / f"hftune-bench-t5-{args.hidden}x{args.layers}", "t5",
        hidden=args.hidden, layers=args.layers, heads=4)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    kind = resolve_task(TaskConfig(name="summ", type="seq2seq", max_target_length=64),
                        {"max_new_tokens": args.new_tokens, "num_beams": 1}).type
    rows = pd.read_json(data_root / "summ" / "validation.jsonl", lines=True).iloc[:args.rows]
    frames, _ = kind.normalise({"validation": rows}, "train", {})
    split = kind.tokenize(frames["validation"], tokenizer, 256, (), training=False)
    plain, ours, ratios = [], [], []
    for round_ in range(args.repeats):
        order = (0, 1) if round_ % 2 == 0 else (1, 0)
        spent = {}
        for which in order:
            spent[which] = (plain_evaluate(model, tokenizer, split, args.batch, args.new_tokens)
                            if which == 0 else hftune_evaluate(model, tokenizer, split, kind,
                                                               args.batch))
        plain.append(spent[0])
        ours.append(spent[1])
        ratios.append(spent[0] / spent[1])
    ratio = statistics.median(ratios)
    text = "\n".join([
        "| rows | model | batch | max_new_tokens | Seq2SeqTrainer, s | hftune, s "
        "| plain ÷ hftune | goal ≥ 0.95 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {len(rows)} | random T5 {args.hidden}×{args.layers} | {args.batch} | "
        f"{args.new_tokens} | {statistics.median(plain):.2f} | {statistics.median(ours):.2f} "
        f"| {ratio:.2f} | {'met' if ratio >= GOAL else 'not met'} |"])
    print(text)
    if not args.no_append:
        stamp = time.strftime("%Y-%m-%d %H:%M")
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(f"\n### Generation at evaluation {stamp} (benchmarks/generation.py, median "
                     f"of {args.repeats} alternating rounds, 1 torch thread)\n\n{machine()}\n\n"
                     f"{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
