#!/usr/bin/env bash
# Create .venv (if needed) and install hftune with its test tools.
# torch comes first and never as an accidental multi-GB CUDA build on a machine without CUDA:
#   - a local CPU wheel (the build machines keep one in /opt/wheels) is used when present;
#   - with an NVIDIA GPU (nvidia-smi works), the usual `pip install torch`;
#   - otherwise the CPU-only build from PyTorch's CPU index.
# Set HFTUNE_TORCH_SPEC to override (e.g. "torch==2.5.1").
# HFTUNE_VENV names another environment (default .venv); HFTUNE_FLOORS=1 installs every direct
# dependency at its declared floor (scripts/floors.py; scripts/test-floors.sh uses both).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${HFTUNE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
if ! python -c "import torch" >/dev/null 2>&1; then
  local_wheel=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "${HFTUNE_TORCH_SPEC:-}" ]; then
    pip install -q "$HFTUNE_TORCH_SPEC"
  elif [ -n "$local_wheel" ]; then
    pip install -q "torch==2.13.0"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    pip install -q torch
  else
    pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
constraints=()
if [ -n "${HFTUNE_FLOORS:-}" ]; then
  # torch stays the build installed above (its floor is stated, not tested)
  torch_version=$(python -c "from importlib.metadata import version; print(version('torch').split('+')[0])")
  python scripts/floors.py --torch "$torch_version" -o "$VENV/floors.txt"
  constraints=(-c "$VENV/floors.txt")
fi
extras="dev,bohb,pb2,report-png,mlflow,wandb,tensorboard,generation,peft"
[ -n "${HFTUNE_FLOORS:-}" ] || extras="$extras,mutation,notebook"  # pyproject.toml: mutation
pip install -q -e ".[$extras]" "${constraints[@]}"
