#!/usr/bin/env bash
# Fresh machine → installed hftune → the quickstart study (examples/quickstart.yaml).
# Offline, the data comes from $HFTUNE_DATA_DIR (default: ../shared/data when it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${HFTUNE_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export HFTUNE_DATA_DIR="$(cd ../shared/data && pwd)"
fi
.venv/bin/hftune run examples/quickstart.yaml --overwrite "$@"
