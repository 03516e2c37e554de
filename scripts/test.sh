#!/usr/bin/env bash
# Install everything (scripts/setup.sh, idempotent) and run the checks: ruff, then the whole pytest suite.
# Fails when any check fails, and also when pytest finds no tests at all (its exit status 5).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

echo "==> ruff check"
.venv/bin/ruff check ivr tests scripts

echo "==> pytest"
status=0
.venv/bin/pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$status"
