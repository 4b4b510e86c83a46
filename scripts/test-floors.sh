#!/usr/bin/env bash
# The declared floors, tested: .venv-floors (created if missing) holds every direct dependency
# at the floor pyproject.toml declares (scripts/floors.py writes the constraints; dependencies
# of dependencies float), with the same extras and the same torch as .venv (scripts/setup.sh);
# then lint and the unit tier run there. scripts/test.sh runs it after the main unit tier.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
HFTUNE_VENV=.venv-floors HFTUNE_FLOORS=1 bash scripts/setup.sh
echo "floors: .venv-floors ready in $((SECONDS - start)) s"
export RAY_USAGE_STATS_ENABLED=0
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv-floors/bin/python - <<'PY'
from importlib import metadata

from packaging.version import Version

pins = [line.split("#")[0].split("==") for line in open(".venv-floors/floors.txt") if "==" in line]
off = [f"{name} {metadata.version(name)} (floor {floor})" for name, floor in pins
       if Version(metadata.version(name).split("+")[0]) != Version(floor)]
if off:
    raise SystemExit("not at the declared floor: " + ", ".join(off))
print(f"floors: {len(pins)} direct dependencies at their declared floor")
PY
.venv-floors/bin/ruff check src tests
.venv-floors/bin/lint-imports
start=$SECONDS
.venv-floors/bin/python -m pytest -q -m "not integration" "$@"
echo "floors: unit tier in $((SECONDS - start)) s"
