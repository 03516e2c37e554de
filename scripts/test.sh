#!/usr/bin/env bash
# Install everything (scripts/setup.sh, idempotent) and run the checks: ruff, then the whole pytest suite.
# Fails when any check fails, and also when pytest finds no tests at all (its exit status 5).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

echo "==> ruff check"
.venv/bin/ruff check ivr tests scripts

echo "==> pytest"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
.venv/bin/pytest -q "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
# A run that ended without pytest's closing summary (a test that killed the process) must not pass.
if [ "$status" -eq 0 ] && ! tail -n 3 "$log" | grep -Eq '^[0-9]+ passed'; then
    echo "test.sh: pytest ended without its summary line; treating the run as failed" >&2
    exit 1
fi
exit "$status"
