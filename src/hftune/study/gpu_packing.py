"""``resources.gpus_per_trial: auto``: pack as many trials on one GPU as fit in its memory.

Small models leave most of a GPU idle when each trial holds a whole one. With ``auto``, hftune
measures one trial's GPU memory before the study starts (a probe: the model, AdamW and one
training step on the largest batch of the search space at ``max_length`` tokens, in a child
process so the driver never holds a CUDA context), then asks Ray for ``1/k`` GPU per trial,
``k`` being how many such trials fit in the GPU's memory with some headroom.

:func:`pack_fraction` is the arithmetic (pure, unit-tested); :func:`resolve_auto` wires it to a
config. The bf16/tf32 choice for GPU trials is a trial's own (in
:mod:`hftune.trial_arguments`). Assumes the GPUs of a cluster are alike (the driver's machine is
measured). ``python -m hftune.study.gpu_packing MODEL BATCH MAX_LENGTH`` runs the probe alone and
prints its bytes as JSON.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

# Share of a GPU's memory trials may plan on (the rest: fragmentation, eval batches, spikes).
HEADROOM = 0.9
# Upper bound on trials per GPU (beyond it, CPU-side work and kernel launches dominate).
MAX_PER_GPU = 8
# Ray counts resources in steps of 1e-4; fractions are rounded down to such a step.
RAY_RESOURCE_STEP = 10_000
# Default per_device_train_batch_size of TrainingArguments.
DEFAULT_BATCH = 8


def trials_per_gpu(trial_bytes: int, gpu_bytes: int, *, headroom: float = HEADROOM,
                   max_per_gpu: int = MAX_PER_GPU) -> int:
    """How many trials of ``trial_bytes`` fit on a GPU of ``gpu_bytes`` (at least 1)."""
    if trial_bytes <= 0 or gpu_bytes <= 0:
        raise ValueError("trial_bytes and gpu_bytes must be positive")
    fit = int(gpu_bytes * headroom // trial_bytes)
    return max(1, min(fit, max_per_gpu))


def pack_fraction(trial_bytes: int, gpu_bytes: int, *, headroom: float = HEADROOM,
                  max_per_gpu: int = MAX_PER_GPU) -> float:
    """``gpus_per_trial`` for trials of ``trial_bytes`` on GPUs of ``gpu_bytes``.

    ``1/k`` rounded *down* to Ray's resource step, so that ``k`` trials really fit on one GPU
    (1/3 → 0.3333, never 0.3334); 1.0 when a trial needs (nearly) the whole GPU.
    """
    k = trials_per_gpu(trial_bytes, gpu_bytes, headroom=headroom, max_per_gpu=max_per_gpu)
    return math.floor(RAY_RESOURCE_STEP / k) / RAY_RESOURCE_STEP


def cpus_per_packed_trial(total_cpus: float, total_gpus: int, gpus_per_trial: float) -> float:
    """The CPUs each trial gets when ``total_gpus / gpus_per_trial`` trials run at once (a
    fraction packs several trials per GPU; 2 gives one trial two GPUs); at least 1."""
    if total_gpus <= 0 or gpus_per_trial <= 0:
        return 1.0
    slots = max(1, int(total_gpus / gpus_per_trial + 1e-6))  # 1 / 0.3333 → 3 slots per GPU
    return max(1.0, float(int(total_cpus // slots)))


def largest_batch(training: dict[str, Any], search_space: dict[str, Any]) -> int:
    """The largest ``per_device_train_batch_size`` a trial of this config can get."""
    key = "per_device_train_batch_size"
    return largest_value(search_space.get(key, training.get(key, DEFAULT_BATCH)))


def largest_value(value: Any) -> int:
    """The largest integer a search-space value (a number, a list, ``choice``, ``randint``,
    ``quniform``) gives."""
    if isinstance(value, dict):  # {choice: [...]}, {randint: [lo, hi]}, {quniform: [...]}
        (kind, args), = value.items()
        value = args if kind == "choice" else args[1]
    if isinstance(value, list):
        return int(max(value))
    return int(value)


def probe_trial_bytes(model_path: str, batch: int, max_length: int, num_labels: int = 2,
                      trust_remote_code: bool = False,
                      adapter: dict[str, Any] | None = None) -> dict[str, int]:
    """GPU memory of one trial: one AdamW step on ``batch`` × ``max_length`` tokens (bf16 where
    supported), with the trial's LoRA ``adapter`` (its settings) when it has one: the
    optimizer then holds the adapter's parameters only, so such trials pack more per GPU.
    Returns ``trial_bytes`` (peak reserved + the CUDA context) and ``gpu_bytes``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.cuda.init()
    free0, total = torch.cuda.mem_get_info(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=num_labels, trust_remote_code=trust_remote_code)
    if adapter is not None:
        from hftune.training.adapters import add_adapter

        model = add_adapter(model, adapter, "sequence_classification", ())
    model = model.cuda()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    vocab = int(getattr(model.config, "vocab_size", 1000))
    ids = torch.randint(0, vocab, (batch, max_length), device="cuda")
    labels = torch.zeros(batch, dtype=torch.long, device="cuda")
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    for _ in range(2):  # the second step has the optimizer state allocated
        with torch.autocast("cuda", dtype=dtype):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    context = max(0, total - free0 - torch.cuda.memory_reserved(0))
    return {"trial_bytes": int(torch.cuda.max_memory_reserved(0) + min(context, 2**30)),
            "gpu_bytes": int(total)}


def measure_in_child(model_path: str, batch: int, max_length: int,
                     trust_remote_code: bool = False,
                     adapter: dict[str, Any] | None = None) -> dict[str, int]:
    """:func:`probe_trial_bytes` in a child process (its GPU memory is freed when it exits)."""
    argv = [sys.executable, "-m", "hftune.study.gpu_packing", model_path, str(batch),
            str(max_length)] + (["--trust-remote-code"] if trust_remote_code else []) + (
            ["--adapter", json.dumps(adapter)] if adapter is not None else [])
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"resources.gpus_per_trial: auto: the memory probe failed ({tail[0]})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def resolve_auto(cfg: Any, total_gpus: int) -> float:
    """``gpus_per_trial`` for ``auto``: 0 without GPUs, else the packed fraction (probed)."""
    if total_gpus <= 0:
        return 0.0
    from hftune.training.model import resolve_model_ref

    measured = measure_in_child(
        resolve_model_ref(cfg.model), largest_batch(dict(cfg.training), cfg.search_space),
        cfg.max_length, cfg.trust_remote_code, largest_adapter(cfg.peft, cfg.search_space))
    return pack_fraction(measured["trial_bytes"], measured["gpu_bytes"])


def largest_adapter(peft: dict[str, Any] | None,
                    search_space: dict[str, Any]) -> dict[str, Any] | None:
    """The adapter settings of the trial that needs the most memory: the config's ``peft:``
    with the largest searched rank (``None`` without an adapter)."""
    from hftune.training.adapters import adapter_settings

    settings = adapter_settings(peft, {})
    if settings is None or "peft.r" not in search_space:
        return settings
    return {**settings, "r": largest_value(search_space["peft.r"])}


def main(argv: list[str] | None = None) -> int:
    """The probe as a command: prints ``{"trial_bytes": ..., "gpu_bytes": ...}``."""
    args = list(sys.argv[1:] if argv is None else argv)
    remote = "--trust-remote-code" in args
    args = [a for a in args if a != "--trust-remote-code"]
    adapter = None
    if "--adapter" in args:
        at = args.index("--adapter")
        adapter = json.loads(args[at + 1])
        del args[at:at + 2]
    if len(args) != 3:
        print("usage: python -m hftune.study.gpu_packing MODEL BATCH MAX_LENGTH", file=sys.stderr)
        return 2
    print(json.dumps(probe_trial_bytes(args[0], int(args[1]), int(args[2]),
                                       trust_remote_code=remote, adapter=adapter)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
