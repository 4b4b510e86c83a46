#!/usr/bin/env bash
# The reference study on GPUs: the 18-config RTE grid (batch {16,32} x lr {2e-5,3e-5,5e-5} x
# epochs {2,3,4}, max_length 128, evaluation every epoch) with a BERT-base-shaped model
# (hidden 768, 12 layers, 12 heads: the same FLOPs as bert-base-uncased; random weights, so no
# download), gpus_per_trial: auto (trials packed per GPU by measured memory), bf16/tf32 where
# the GPU has them. Reports wall time, GPU-minutes (wall x GPUs) and mean GPU utilisation
# (nvidia-smi, sampled every second), and appends them to benchmarks/RESULTS.md.
#
# Usage: bash benchmarks/gpu_seed_study.sh [extra hftune --set options...]
# Env: HFTUNE_BENCH_DATA (RTE folder; default ../shared/data/rte), OUT (default runs/gpu-seed).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
command -v nvidia-smi >/dev/null || { echo "gpu_seed_study.sh: no nvidia-smi (no GPU)"; exit 2; }
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA="${HFTUNE_BENCH_DATA:-$(cd .. && pwd)/shared/data/rte}"
OUT="${OUT:-runs/gpu-seed}"
MODEL="${TMPDIR:-/tmp}/hftune-bench-bert-base-shape"
python - "$MODEL" <<'PY'
import sys
from hftune.testing.tiny_model import make_tiny_bert
make_tiny_bert(sys.argv[1], hidden=768, layers=12, heads=12)
PY
GPUS=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
SMI_LOG=$(mktemp)
nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader,nounits \
  -l 1 >"$SMI_LOG" &
SMI_PID=$!
trap 'kill "$SMI_PID" 2>/dev/null || true' EXIT
START=$(date +%s.%N)
hftune run examples/rte-grid.yaml --quiet --overwrite --data-dir "$DATA" \
  --set model="$MODEL" --set output_dir="$OUT" --set resources.gpus_per_trial=auto \
  --set checkpoints.save_best=false "$@"
END=$(date +%s.%N)
kill "$SMI_PID" 2>/dev/null || true
python - "$SMI_LOG" "$START" "$END" "$GPUS" "$OUT" <<'PY'
import json, pathlib, sys, time
log, start, end, gpus, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
util = [float(line.split(",")[2]) for line in open(log) if line.count(",") >= 3]
wall = end - start
study = json.loads((pathlib.Path(out) / "study.json").read_text())
res = study.get("resources", {})
line = (f"| GPU seed study (BERT-base shapes, 18 configs) | {wall / 60 * gpus:.1f} GPU-min | "
        f"{gpus} GPU(s), wall {wall:.0f} s (Tuner {study.get('wall_s', 0):.0f} s), mean GPU "
        f"utilisation {sum(util) / max(len(util), 1):.0f}% ({len(util)} samples), "
        f"gpus_per_trial {res.get('gpus_per_trial')}, best accuracy {study.get('best_value')} "
        f"(random init: not a quality figure) |")
print(line)
with open("benchmarks/RESULTS.md", "a") as fh:
    fh.write(f"\n### GPU seed study {time.strftime('%Y-%m-%d %H:%M')}\n\n")
    fh.write("| figure | value | notes |\n| --- | --- | --- |\n" + line + "\n")
PY
