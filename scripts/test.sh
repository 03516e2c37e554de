#!/usr/bin/env bash
# Install everything (scripts/setup.sh --postgres, idempotent) and run the checks: ruff, then the whole pytest
# suite, every ledger test on SQLite and on a throwaway PostgreSQL cluster (started by the tests in a temporary
# folder below, on a free port; stopped and removed at the end, also when the run fails or is interrupted).
# Fails when any check fails, when PostgreSQL cannot run, and when pytest finds no tests at all (exit status 5).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --postgres

# The [pg] variants must run here, not skip: a missing PostgreSQL is a failure in CI.
export IVR_TEST_REQUIRE_PG=1
IVR_TEST_PG_DIR="$(mktemp -d -t ivr-test-pg.XXXXXX)"
export IVR_TEST_PG_DIR
chmod 755 "$IVR_TEST_PG_DIR"
log=$(mktemp)
cleanup() {
    # a pytest killed before its own teardown leaves a server behind: stop it here
    local pid
    for pid in "$IVR_TEST_PG_DIR"/*/data/postmaster.pid; do
        [ -f "$pid" ] && kill -QUIT "$(head -n 1 "$pid")" 2>/dev/null || true
    done
    rm -rf "$IVR_TEST_PG_DIR" "$log"
}
trap cleanup EXIT

echo "==> ruff check"
.venv/bin/ruff check ivr tests scripts

echo "==> pytest"
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
