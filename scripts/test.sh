#!/usr/bin/env bash
# Fresh machine → installed hftune → the whole test suite (unit, unit at the dependency floors,
# then integration, then mutation testing's CI subset).
# Tests read the real data from ../shared/data (read-only; they copy what they change).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x scripts/install-chromium.sh ] && bash scripts/install-chromium.sh
export RAY_USAGE_STATS_ENABLED=0
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check src tests
.venv/bin/lint-imports
# every extra is installed here: a skipped test is a failure (tests/conftest.py)
export HFTUNE_FAIL_ON_SKIP=1
.venv/bin/python -m pytest -q -m "not integration" "$@"
# the declared floors: lint and the unit tier again, in .venv-floors with every direct
# dependency at its floor (README: Set-up)
bash scripts/test-floors.sh "$@"
.venv/bin/python -m pytest -q -m integration --durations=15 "$@"
# mutation testing's fixed subset, so that scripts/mutation.sh cannot rot (tests/MUTATION.md)
bash scripts/mutation.sh --ci --jobs 2
