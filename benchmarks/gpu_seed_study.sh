#!/usr/bin/env bash
# The reference study on GPUs with BERT-base shapes: the example configs examples/rte-<name>.yaml
# (default: the 18-config grid; --strategies "grid bayes-asha pbt" for the three-strategy study)
# with a BERT-base-shaped model (hidden 768, 12 layers, 12 heads: the FLOPs of
# bert-base-uncased; random weights, so no download), gpus_per_trial: auto (trials packed per
# GPU by measured memory), bf16/tf32 where the GPU has them, everything else as the examples
# say. Reports per study and in all: wall time, GPU-minutes (wall x GPUs), mean GPU utilisation
# (nvidia-smi, every second); appends them to benchmarks/RESULTS.md and, where $OUT is set (a
# device machine's return folder), writes them there too.
#
# Usage: bash benchmarks/gpu_seed_study.sh [--kit] [--strategies "grid pbt"] [hftune run options]
#   --kit: a machine without the project's venv or a package index: install
#          .device-kit/wheels into /tmp/site and read data and tokenizer from .device-kit
#          (made here by `python benchmarks/device_kit.py`; see benchmarks/README.md).
# Env: HFTUNE_BENCH_DATA (RTE folder), STUDY_ROOT (default runs/gpu-seed), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=""
STRATEGIES="grid"
while [ $# -gt 0 ]; do
  case "$1" in
    --kit) KIT=.device-kit; shift ;;
    --strategies) STRATEGIES="$2"; shift 2 ;;
    *) break ;;
  esac
done
PY="${PYTHON:-python3}"
TOKENIZER=""
DATA="${HFTUNE_BENCH_DATA:-$(cd .. && pwd)/shared/data/rte}"
if [ -n "$KIT" ]; then
  [ -d "$KIT/wheels" ] || { echo "gpu_seed_study.sh: no $KIT/wheels (run benchmarks/device_kit.py)"; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$KIT"/wheels/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  DATA="${HFTUNE_BENCH_DATA:-$PWD/$KIT/data/rte}"
  TOKENIZER="$PWD/$KIT/tokenizer"
elif [ -f .venv/bin/activate ]; then
  . .venv/bin/activate
fi
command -v nvidia-smi >/dev/null || { echo "gpu_seed_study.sh: no nvidia-smi (no GPU)"; exit 2; }
export RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STUDY_ROOT="${STUDY_ROOT:-runs/gpu-seed}"
WORK=$(mktemp -d)
MODEL="$WORK/bert-base-shape"
SHAPE="${SHAPE:-768 12 12}"  # hidden, layers, heads (smaller for a dry run)
"$PY" - "$MODEL" "$TOKENIZER" $SHAPE <<'PY' | tee "$WORK/versions.txt"
import sys
import datasets, ray, torch, transformers
from hftune.testing.tiny_model import make_tiny_bert
hidden, layers, heads = (int(v) for v in sys.argv[3:6])
make_tiny_bert(sys.argv[1], hidden=hidden, layers=layers, heads=heads,
               tokenizer_from=sys.argv[2] or None)
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"{gpu}; Python {sys.version.split()[0]}, torch {torch.__version__}, transformers "
      f"{transformers.__version__}, datasets {datasets.__version__}, Ray {ray.__version__}; "
      f"model: random BERT, hidden {hidden}, {layers} layers, {heads} heads")
PY
GPUS=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader,nounits \
  -l 1 >"$WORK/smi.csv" &
SMI_PID=$!
trap 'kill "$SMI_PID" 2>/dev/null || true' EXIT
summarize() {  # $1: final (print, append to RESULTS.md) or partial (only $OUT)
"$PY" - "$WORK" "$GPUS" "$STUDY_ROOT" "$1" <<'PY'
import datetime as dt, json, os, pathlib, shutil, sys, time
work, gpus, root = pathlib.Path(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
final = sys.argv[4] == "final"
samples = []  # (unix time, utilisation %)
for line in (work / "smi.csv").read_text().splitlines():
    parts = [p.strip() for p in line.split(",")]
    try:
        stamp = dt.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        samples.append((stamp, float(parts[2])))
    except (IndexError, ValueError):
        continue
rows, total = [], 0.0
spans = [line.split() for line in (work / "spans.txt").read_text().splitlines()]
for name, start, end, rc in spans:
    start, end = float(start), float(end)
    wall = end - start
    total += wall
    util = [u for t, u in samples if start <= t <= end]
    path = root / name / "study.json"
    study = json.loads(path.read_text()) if path.is_file() else {}
    res = study.get("resources", {})
    rows.append(f"| {name} | {wall / 60 * gpus:.1f} GPU-min | exit {rc}, {study.get('status')}; "
                f"wall {wall:.0f} s (Tuner "
                f"{study.get('wall_s') or 0:.0f} s), mean GPU utilisation "
                f"{sum(util) / max(len(util), 1):.0f}% ({len(util)} samples), gpus_per_trial "
                f"{res.get('gpus_per_trial')}, best accuracy {study.get('best_value')} "
                f"(random init: not a quality figure) |")
rows.append(f"| all ({len(rows)} studies) | {total / 60 * gpus:.1f} GPU-min | {gpus} GPU(s), "
            f"wall {total:.0f} s |")
machine = (work / "versions.txt").read_text().strip().splitlines()[-1]
table = (f"\n### GPU seed study {time.strftime('%Y-%m-%d %H:%M')}\n\n{machine}\n\n"
         "| study (examples/rte-*.yaml) | GPU time | notes |\n"
         "| --- | --- | --- |\n" + "\n".join(rows) + "\n")
if final:
    print(table)
    with open("benchmarks/RESULTS.md", "a") as fh:
        fh.write(table)
out = os.environ.get("OUT")
if out:  # a device machine's return folder
    (pathlib.Path(out) / "gpu_seed_study.md").write_text(table)
    shutil.copy(work / "smi.csv", pathlib.Path(out) / "smi.csv")
    for name, *_ in spans:
        if (root / name / "study.json").is_file():
            shutil.copy(root / name / "study.json", pathlib.Path(out) / f"study-{name}.json")
PY
}
for NAME in $STRATEGIES; do
  START=$(date +%s.%N)
  RC=0
  "$PY" -m hftune run "examples/rte-$NAME.yaml" --quiet --overwrite --data-dir "$DATA" \
    --set model="$MODEL" --set output_dir="$STUDY_ROOT/$NAME" \
    --set resources.gpus_per_trial=auto "$@" || RC=$?
  echo "$NAME $START $(date +%s.%N) $RC" >>"$WORK/spans.txt"
  summarize partial  # what a call cut off at its time limit still returns
done
kill "$SMI_PID" 2>/dev/null || true
summarize final
