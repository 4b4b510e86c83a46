"""A LoRA checkpoint against a full one: ``python benchmarks/lora_checkpoint.py``.

Issue 21: checkpoints (and so PBT exploits) of a LoRA trial hold the adapter's and the head's
weights and their optimizer state only. One 1-epoch trial of each kind on the packaged MiniLM
(all-MiniLM-L6-v2, 22.7M parameters) on the first ``--rows`` SST-2 rows, with a full checkpoint
(weights, optimizer, scheduler, RNG, trainer state: what PBT copies) at its evaluation; the
table gives each checkpoint's bytes, its weights file and optimizer file apart, and the ratio.
It is printed and appended to ``benchmarks/RESULTS.md`` (``--no-append`` to skip).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PEFT = {"r": 8, "lora_alpha": 16, "target_modules": ["query", "value"]}


def checkpoint_of(setup: Any, peft: dict[str, Any] | None, scratch: Path) -> dict[str, int]:
    """Bytes of the checkpoint a 1-epoch trial reports (whole folder, weights, optimizer)."""
    from hftune.training.trainable import run_trial

    kept: list[Path] = []

    def report(record: dict, folder: Path | None) -> None:
        if folder is not None:
            shutil.copytree(folder, scratch / "kept")
            kept.append(scratch / "kept")

    run_trial({"learning_rate": 1e-4, "num_train_epochs": 1, "per_device_train_batch_size": 16},
              dataclasses.replace(setup, peft=peft, checkpoints="every", metric="accuracy"),
              report, str(scratch / "run"))
    folder = kept[-1]
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    weights = sum(v for k, v in files.items() if k.endswith(".safetensors"))
    return {"total": sum(files.values()), "weights": weights,
            "optimizer": files.get("optimizer.pt", 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    from run import machine
    from transformers import AutoTokenizer

    from hftune.config.schema import TaskConfig
    from hftune.data.loading import load_task_data
    from hftune.data.tasks import resolve_task
    from hftune.testing.fixtures import tokenize_limited
    from hftune.training.model import resolve_model_ref
    from hftune.training.trainable import TrialSetup

    data_root = Path(os.environ.get("HFTUNE_BENCH_DATA", HERE.parent.parent / "shared" / "data"))
    model = resolve_model_ref("packaged:minilm")
    task = resolve_task(TaskConfig(name="sst2"))
    data = load_task_data(task, data_root / "sst2")
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenized = tokenize_limited(task, data, tokenizer, 64,
                                 {"train": args.rows, "validation": args.rows})
    setup = TrialSetup(model_path=model, tokenizer=tokenizer, label_names=data.label_names,
                       train_dataset=tokenized.splits["train"].features,
                       eval_dataset=tokenized.splits["validation"].features,
                       metrics=("accuracy",), training={}, seed=0, cpus_per_trial=1,
                       gpus_per_trial=0)
    sizes = {}
    for name, peft in (("full fine-tuning", None), ("LoRA r 8 on query, value", PEFT)):
        with tempfile.TemporaryDirectory() as scratch:
            sizes[name] = checkpoint_of(setup, peft, Path(scratch))
    full = sizes["full fine-tuning"]["total"]
    lines = ["| trial | checkpoint, MB | weights, MB | optimizer, MB | of full |",
             "| --- | --- | --- | --- | --- |"]
    for name, s in sizes.items():
        lines.append(f"| {name} | {s['total'] / 1e6:.2f} | {s['weights'] / 1e6:.2f} "
                     f"| {s['optimizer'] / 1e6:.2f} | {100 * s['total'] / full:.1f}% |")
    text = "\n".join(lines)
    print(text)
    if not args.no_append:
        stamp = time.strftime("%Y-%m-%d %H:%M")
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(f"\n### LoRA checkpoint size {stamp} (benchmarks/lora_checkpoint.py, "
                     f"packaged MiniLM, SST-2, full checkpoints as PBT keeps them)\n\n"
                     f"{machine()}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
