"""One command for the benchmark suite: ``python benchmarks/run.py [--quick] [--ablations]``.

Every figure is a ratio of two times (or memories) measured in the same run, on this machine:

* P1 overhead: hftune's study wall time (``study.json`` ``wall_s``: the Ray Tune run) ÷ ideal
  (the trials' own train + eval loop seconds ÷ concurrency), the reference 18-config grid.
  ``P1 end-to-end`` uses ``run_study``'s whole wall time (data, Ray start-up) instead.
* P2: the wall time of the hftune process ÷ that of the peer process
  (``Trainer.hyperparameter_search(backend="ray")``, ``benchmarks/peer.py``), same configs,
  model, data and resources (1 CPU per trial, 2 at a time); the reference grid on the full RTE
  training set, and 4 configs × 1 epoch on 512 rows.
* P3 start-up: median over warm trials (their worker had run a trial before) of the seconds
  from the trial function's start to the end of its first optimizer step.
* P4 throughput: plain ``Trainer`` loop seconds ÷ an hftune trial's, same config, each alone
  with one thread (= the trial's samples/s ÷ plain ``Trainer``'s); the trial uses the plain
  ``Trainer``'s random batches, not hftune's default length grouping.
* Memory: peak of the summed RSS of each phase's process tree (the driver and every Ray
  process it started: GCS, raylet, agents, workers), sampled every 0.2 s with psutil.

Each phase runs in its own child process (``benchmarks/phases.py``, ``benchmarks/peer.py``).
The table is printed and appended, with a description of the machine, to
``benchmarks/RESULTS.md`` (``--no-append`` to skip).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("HFTUNE_BENCH_DATA", REPO.parent / "shared" / "data" / "rte"))
MODEL = Path(tempfile.gettempdir()) / "hftune-bench-tiny-bert"
P4_CONFIG = {"per_device_train_batch_size": [32], "learning_rate": [3e-5],
             "num_train_epochs": [2]}
# Ablations on the overhead-bound grid: config keys set on hftune's side, or with "env", the
# phase's environment (see RESULTS.md).
ABLATIONS: dict[str, dict[str, Any]] = {
    "save_best: true (a checkpoint per improvement)": {"checkpoints.save_best": True},
    "random batches (train_sampling_strategy: random, default group_by_length)":
        {"training.train_sampling_strategy": "random"},
    "eval batch 256 (default 64)": {"training.per_device_eval_batch_size": 256},
}


class PhaseFailed(RuntimeError):
    """A phase's process exited with an error (its log names the cause)."""


class MemorySampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak = pid, every_s, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop_event.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop_event.wait(self.every_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def run_phase(name: str, argv: list[str], log_dir: Path,
              extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one phase as a child process; its JSON result plus ``proc_wall_s`` and ``peak_rss``."""
    out = log_dir / f"{name}.json"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **(extra_env or {}))
    started = time.perf_counter()
    with open(log_dir / f"{name}.log", "w") as log:
        proc = subprocess.Popen([sys.executable, *argv, "--json", str(out)], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=REPO)
        sampler = MemorySampler(proc.pid)
        sampler.start()
        code = proc.wait()
        peak = sampler.stop()
    wall = time.perf_counter() - started
    if code != 0:
        raise PhaseFailed(f"phase {name} failed (exit {code}); see {log_dir / (name + '.log')}")
    result = json.loads(out.read_text())
    result.update(proc_wall_s=wall, peak_rss=peak)
    print(f"  {name}: {wall:.1f} s, peak RSS {peak / 2**30:.2f} GiB", flush=True)
    return result


def hftune_phase(name: str, grid: str, rows: int | None, log_dir: Path,
                 variant: dict[str, Any] | None = None) -> dict[str, Any]:
    variant = dict(variant or {})
    env = variant.pop("env", None)
    argv = ["benchmarks/phases.py", "hftune", str(MODEL), str(DATA), "--grid", grid,
            "--variant", json.dumps(variant)]
    return run_phase(name, argv + (["--rows", str(rows)] if rows else []), log_dir, env)


def peer_phase(name: str, grid: str, rows: int | None, log_dir: Path) -> dict[str, Any]:
    argv = ["benchmarks/peer.py", str(MODEL), str(DATA), "--grid", grid]
    return run_phase(name, argv + (["--rows", str(rows)] if rows else []), log_dir)


def plain_phase(name: str, grid: str, rows: int | None, threads: int,
                log_dir: Path) -> dict[str, Any]:
    argv = ["benchmarks/phases.py", "plain", str(MODEL), str(DATA), "--grid", grid,
            "--threads", str(threads)]
    return run_phase(name, argv + (["--rows", str(rows)] if rows else []), log_dir)


def overhead(study: dict[str, Any], concurrency: int = 2) -> dict[str, float]:
    """P1 figures of one hftune phase."""
    ideal = sum(t["train_eval_s"] for t in study["trials"]) / concurrency
    return {"ideal_s": ideal, "p1": study["study_wall_s"] / ideal,
            "p1_end_to_end": study["wall_s"] / ideal}


def startup(study: dict[str, Any]) -> dict[str, Any]:
    """P3: median first-step seconds of warm trials (and of cold ones, for reference)."""
    warm = [t["first_step_s"] for t in study["trials"] if t["worker_trials"]]
    cold = [t["first_step_s"] for t in study["trials"] if not t["worker_trials"]]
    loop = [t["setup_s"] for t in study["trials"] if t["worker_trials"]]
    return {"p3_warm": statistics.median(warm) if warm else None,
            "p3_cold": statistics.median(cold) if cold else None, "warm_trials": len(warm),
            "setup_warm": statistics.median(loop) if loop else None}


def machine() -> str:
    """One line describing this machine and its load."""
    import platform

    import psutil
    import torch
    import transformers
    from ray import __version__ as ray_version

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, torch "
            f"{torch.__version__}, transformers {transformers.__version__}, Ray {ray_version}; "
            f"load average {load}")


def main(argv: list[str] | None = None) -> int:
    """Run the suite; print the table; append it to RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the overhead-bound grid and P4 on 512 rows (minutes)")
    parser.add_argument("--ablations", action="store_true",
                        help="also hftune variants on the overhead-bound grid (ABLATIONS)")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer's runs")
    parser.add_argument("--ref-rows", type=int, default=None,
                        help="training rows for the reference grid (default: all 2490)")
    parser.add_argument("--no-ref-peer", action="store_true",
                        help="skip the peer on the reference grid (it takes the longest)")
    parser.add_argument("--plain", action="store_true",
                        help="also plain sequential Trainer runs of the 4×1 grid (2 threads)")
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--note", default="", help="a line saved with the results")
    ns = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from hftune.testing.tiny_model import make_tiny_bert

    make_tiny_bert(MODEL)
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, str, str]] = []
    logs = Path(tempfile.mkdtemp(prefix="hftune-bench-logs-"))  # kept: logs, phase JSON
    print(f"phases (logs in {logs}):", flush=True)
    small = hftune_phase("hftune-small", "small", 512, logs)
    peer_small = None if ns.no_peer else peer_phase("peer-small", "small", 512, logs)
    plain_small = plain_phase("plain-small-2t", "small", 512, 2, logs) if ns.plain else None
    p4_rows = 512 if ns.quick else None
    p4_grid = json.dumps(P4_CONFIG)
    p4_plain = plain_phase("p4-plain-1t", p4_grid, p4_rows, 1, logs)
    # the plain Trainer's own sampling (random batches), so that the loops do the same work
    p4_trial = hftune_phase("p4-hftune", p4_grid, p4_rows, logs,
                            {"training.train_sampling_strategy": "random"})
    full = peer_full = None
    if not ns.quick:
        full = hftune_phase("hftune-ref", "ref", ns.ref_rows, logs)
        if not (ns.no_peer or ns.no_ref_peer):
            peer_full = peer_phase("peer-ref", "ref", ns.ref_rows, logs)
    ablations = {}
    if ns.ablations:
        for i, (label, variant) in enumerate(ABLATIONS.items()):
            try:
                ablations[label] = hftune_phase(f"ablation-{i}", "small", 512, logs,
                                                variant)
            except PhaseFailed as exc:
                print(f"  {exc}", flush=True)
    main_study = full or small
    p1 = overhead(main_study)
    p3 = startup(main_study)
    grid_name = (f"reference 18-config grid, {ns.ref_rows or 2490} rows" if full
                 else "4×1 grid, 512 rows")
    rows.append(("P1 overhead (study wall_s ÷ ideal)", f"{p1['p1']:.3f}",
                 f"≤ 1.05; {grid_name}: {main_study['study_wall_s']:.1f} s vs ideal "
                 f"{p1['ideal_s']:.1f} s"))
    rows.append(("P1 end-to-end (run_study ÷ ideal)", f"{p1['p1_end_to_end']:.3f}",
                 f"incl. data + Ray start: {main_study['wall_s']:.1f} s"))
    if peer_full is not None and full is not None:
        rows.append((f"P2 reference grid, {ns.ref_rows or 2490} rows (hftune ÷ peer)",
                     f"{full['proc_wall_s'] / peer_full['proc_wall_s']:.3f}",
                     f"≤ 0.7; {full['proc_wall_s']:.1f} s vs {peer_full['proc_wall_s']:.1f} s"))
    if peer_small is not None:
        plain = "" if plain_small is None else (
            f"; plain sequential 2 threads: {plain_small['proc_wall_s']:.1f} s (loops "
            f"{sum(r['train_eval_s'] for r in plain_small['runs']):.1f} s)")
        rows.append(("P2 4×1 on 512 rows (hftune ÷ peer)",
                     f"{small['proc_wall_s'] / peer_small['proc_wall_s']:.3f}",
                     f"≤ 0.4; {small['proc_wall_s']:.1f} s vs {peer_small['proc_wall_s']:.1f} s"
                     + plain))
    rows.append(("P3 start-up, warm (median s)",
                 f"{p3['p3_warm']:.2f}" if p3["p3_warm"] is not None else "n/a",
                 f"≤ 0.5; {p3['warm_trials']} warm trials; the first batch is the longest "
                 f"(length grouping); trial start → training loop: {p3['setup_warm']:.2f} s"
                 if p3["setup_warm"] is not None else "≤ 0.5"))
    random_batches = next((st for label, st in ablations.items() if "random" in label), None)
    if random_batches is not None:
        p3_random = startup(random_batches)
        if p3_random["p3_warm"] is not None:
            rows.append(("P3 start-up, warm, random batches (median s)",
                         f"{p3_random['p3_warm']:.2f}",
                         f"≤ 0.5; 4×1 grid, 512 rows, {p3_random['warm_trials']} warm trials"))
    plain_loop = p4_plain["runs"][0]["train_eval_s"]
    trial_loop = p4_trial["trials"][0]["train_eval_s"]
    rows.append(("P4 throughput (trial ÷ plain Trainer)", f"{plain_loop / trial_loop:.3f}",
                 f"≥ 0.97; bs 32, 2 epochs, {p4_rows or 2490} rows, 1 thread: "
                 f"{trial_loop:.1f} s vs {plain_loop:.1f} s"))
    rows.append(("Cold trial start-up (median s)", f"{p3['p3_cold']:.2f}"
                 if p3["p3_cold"] is not None else "n/a",
                 "first trial of each worker: imports, first weights read"))
    for label, study, peer in (("reference grid", full, peer_full),
                               ("4×1 grid", small, peer_small)):
        if study is not None and peer is not None:
            rows.append((f"Memory, {label} (hftune ÷ peer)",
                         f"{study['peak_rss'] / peer['peak_rss']:.3f}",
                         f"peak RSS {study['peak_rss'] / 2**30:.2f} GiB vs "
                         f"{peer['peak_rss'] / 2**30:.2f} GiB"))
    for label, study in ablations.items():
        rows.append((f"Ablation: {label} (÷ default)",
                     f"{study['study_wall_s'] / small['study_wall_s']:.3f}",
                     f"study wall_s {study['study_wall_s']:.1f} s vs "
                     f"{small['study_wall_s']:.1f} s; whole process "
                     f"{study['proc_wall_s']:.1f} s vs {small['proc_wall_s']:.1f} s"))
    load_after = os.getloadavg()[0]
    table = ["| figure | value | notes |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(table)
    print(text)
    if not ns.no_append:
        stamp = time.strftime("%Y-%m-%d %H:%M")
        mode = " ".join(argv if argv is not None else sys.argv[1:]) or "full"
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(f"\n### Run {stamp} ({mode})\n\n{machine()}; 1-min load average "
                     f"{load_before:.1f} before, {load_after:.1f} after.\n")
            if ns.note:
                fh.write(f"{ns.note}\n")
            fh.write(f"\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
