#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules where a bug corrupts results without an error:
#   bash scripts/mutation.sh                 every module, one at a time (hours on 2 cores)
#   bash scripts/mutation.sh src/hftune/space.py ...   the named modules
#   bash scripts/mutation.sh --ci            the small fixed subset CI runs
# Prints killed / survived / timed out per module and each survivor's diff; record the rows in
# tests/MUTATION.md. Needs .venv (bash scripts/setup.sh installs mutmut with the dev extra).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python scripts/mutation.py "$@"
