#!/usr/bin/env bash
# Install everything (scripts/setup.sh --postgres --browser, idempotent) and run the checks: ruff, then the whole pytest
# suite, every ledger test on SQLite and on a throwaway PostgreSQL cluster (started by the tests in a temporary
# folder below, on a free port; stopped and removed at the end, also when the run fails or is interrupted).
# Fails when any check fails, when PostgreSQL cannot run, and when pytest finds no tests at all (exit status 5).
#
#   bash scripts/test.sh                      the CI run (what .ci/run calls): the slow group (-m slow) runs
#                                             beside the rest, both at once
#   bash scripts/test.sh tests/test_queue.py  any pytest arguments
#   bash scripts/test.sh --repeat 10 [--beside] [pytest args]
#       run the selection (without pytest args: the whole suite, as the CI run splits it) N times in a row and count the runs that failed (a flakiness check); with --beside,
#       a second copy of the same selection runs in a loop next to it the whole time, as load (two suites at
#       once on 2 cores). Ends non-zero when any of the N runs failed; the failing tests are listed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

repeat=0
beside=0
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) repeat="${2:?--repeat needs a number}"; shift 2 ;;
        --repeat=*) repeat="${1#*=}"; shift ;;
        --beside) beside=1; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
if ! [[ "$repeat" =~ ^[0-9]+$ ]]; then
    echo "test.sh: --repeat takes a whole number of runs, got '$repeat'" >&2
    exit 2
fi
if [ "$beside" -eq 1 ] && [ "$repeat" -eq 0 ]; then
    echo "test.sh: --beside only goes with --repeat N" >&2
    exit 2
fi

bash scripts/setup.sh --postgres --browser

# The [pg] variants and the browser tests must run here, not skip: a missing PostgreSQL or Chromium is a failure.
export IVR_TEST_REQUIRE_PG=1
export IVR_TEST_REQUIRE_BROWSER=1
IVR_TEST_PG_DIR="$(mktemp -d -t ivr-test-pg.XXXXXX)"
export IVR_TEST_PG_DIR
chmod 755 "$IVR_TEST_PG_DIR"
work=$(mktemp -d)
load_pid=""
# Stop processes: SIGTERM, a moment to finish, then SIGKILL (a pytest may ignore SIGTERM: a test of the dialer's own
# signal handling leaves its handler installed in the pytest process).
stop_pids() {
    [ "$#" -gt 0 ] || return 0
    kill "$@" 2>/dev/null || true
    local _ p alive
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        alive=""
        for p in "$@"; do
            kill -0 "$p" 2>/dev/null && alive="$alive $p"
        done
        [ -n "$alive" ] || return 0
        sleep 0.5
    done
    # shellcheck disable=SC2086
    kill -KILL $alive 2>/dev/null || true
}
cleanup() {
    # an interrupted run leaves its pytest processes (and, through them, a simulator or a browser) behind. Each of
    # this run's pytests has its --basetemp in $work: found by that, also the load loop's once the loop is gone.
    if [ -n "$load_pid" ]; then
        kill -KILL "$load_pid" 2>/dev/null || true  # no new run may start
        wait "$load_pid" 2>/dev/null || true
    fi
    # shellcheck disable=SC2046
    stop_pids $(pgrep -f -- "--basetemp=$work/" 2>/dev/null || true)
    # a pytest killed before its own teardown leaves a server behind: stop it here
    local pid
    for pid in "$IVR_TEST_PG_DIR"/*/data/postmaster.pid; do
        [ -f "$pid" ] && kill -QUIT "$(head -n 1 "$pid")" 2>/dev/null || true
    done
    # (a killed run's last writes may still be landing: what cannot be removed now is only temporary files)
    rm -rf "$IVR_TEST_PG_DIR" "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that an interrupted or killed run still cleans up (bash skips EXIT on a signal)

echo "==> ruff check"
.venv/bin/ruff check ivr tests scripts

# One of the repeated runs, in its own temporary folder so that concurrent runs never share or clean up each
# other's files. Writes pytest's output to $1; "no tests" and "no summary" count as failures.
run_pytest() {
    local log="$1" base
    base=$(mktemp -d -p "$work")
    set +e
    .venv/bin/pytest -q -p no:cacheprovider --basetemp="$base/t" "${args[@]+"${args[@]}"}" >"$log" 2>&1 &
    wait $!
    local status=$?
    set -e
    rm -rf "$base"
    check_log "$status" "$log" 2>>"$log"  # its verdict's reason goes into the run's log, shown with the failure
}

# The CI run (no arguments): the slow group (`-m slow`: real processes, whole simulated evenings, the browser) runs
# beside the rest, both at once, so that two cores finish the suite in well under 10 minutes. Both halves must pass.
# "No tests" and a run that ended without pytest's closing summary (a test that killed the process) are failures.
check_log() {  # $1 pytest's exit status, $2 its log file
    if [ "$1" -eq 5 ]; then
        echo "test.sh: pytest collected no tests in $2; that is a failure" >&2
        return 1
    fi
    if [ "$1" -eq 0 ] && ! tail -n 3 "$2" | grep -Eq '^[0-9]+ passed'; then
        echo "test.sh: pytest ended without its summary line in $2; treating the run as failed" >&2
        return 1
    fi
    return "$1"
}
# The whole suite as CI runs it, in folder $1: both groups at once, the rest's output also to the terminal when $2
# is "show". Writes $1/rest.log and $1/slow.log; fails when either group fails.
run_split() {
    local dir="$1" show="${2:-}" rest_status rest_pid tail_pid="" slow_status slow_pid ok=0
    mkdir -p "$dir"
    set +e
    .venv/bin/pytest -q -p no:cacheprovider -m slow --basetemp="$dir/slow" >"$dir/slow.log" 2>&1 &
    slow_pid=$!
    # both in the background, waited for: bash runs a trap (a kill, Ctrl-C) only once a foreground command ends
    .venv/bin/pytest -q -p no:cacheprovider -m "not slow" --basetemp="$dir/rest" >"$dir/rest.log" 2>&1 &
    rest_pid=$!
    if [ "$show" = "show" ]; then
        tail -n +1 -f --pid="$rest_pid" "$dir/rest.log" &
        tail_pid=$!
    fi
    wait "$rest_pid"
    rest_status=$?
    if [ -n "$tail_pid" ]; then
        wait "$tail_pid" || true
    fi
    wait "$slow_pid"
    slow_status=$?
    set -e
    rm -rf "$dir/slow" "$dir/rest"
    check_log "$rest_status" "$dir/rest.log" || ok=1
    check_log "$slow_status" "$dir/slow.log" || ok=1
    return "$ok"
}
if [ "$repeat" -eq 0 ] && [ "${#args[@]}" -eq 0 ]; then
    echo "==> pytest: the slow group (-m slow) in the background, the rest here; both at once"
    start=$(date +%s)
    ok=0
    run_split "$work/ci" show || ok=1
    echo "==> the slow group (-m slow)"
    cat "$work/ci/slow.log"
    echo "==> pytest: both groups in $(( $(date +%s) - start )) s: $(tail -n 1 "$work/ci/rest.log") | slow: $(tail -n 1 "$work/ci/slow.log")"
    exit "$ok"
fi

if [ "$repeat" -eq 0 ]; then
    echo "==> pytest"
    log="$work/pytest.log"
    set +e
    .venv/bin/pytest -q "${args[@]+"${args[@]}"}" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    check_log "$status" "$log"
    exit $?
fi

if [ "$beside" -eq 1 ]; then
    echo "==> load: a second copy of the selection runs in a loop beside the measured runs"
    (
        while :; do
            if [ "${#args[@]}" -eq 0 ]; then
                run_split "$work/load" || true
            else
                .venv/bin/pytest -q -p no:cacheprovider --basetemp="$work/load" "${args[@]+"${args[@]}"}" \
                    >"$work/load.log" 2>&1 || true
            fi
        done
    ) &
    load_pid=$!
fi

failed=0
start=$(date +%s)
for i in $(seq 1 "$repeat"); do
    if [ "${#args[@]}" -eq 0 ]; then
        # the whole suite: the same two groups at once as the CI run
        run_split "$work/run" && status=0 || status=1
        cat "$work/run/rest.log" "$work/run/slow.log" >"$work/run.log"
        printf '%s | slow: %s\n' "$(tail -n 1 "$work/run/rest.log")" "$(tail -n 1 "$work/run/slow.log")" >>"$work/run.log"
    else
        run_pytest "$work/run.log" && status=0 || status=1
    fi
    if [ "$status" -eq 0 ]; then
        verdict="ok"
    else
        verdict="FAILED"
        failed=$((failed + 1))
        grep -E '^(FAILED|ERROR) ' "$work/run.log" >>"$work/failures.txt" || echo "run $i: no test named (see below)" >>"$work/failures.txt"
        cp "$work/run.log" "$work/failed-run-$i.log"
    fi
    echo "run $i/$repeat: $verdict: $(tail -n 1 "$work/run.log")"
done
echo "==> $repeat runs in $(( $(date +%s) - start )) s, $failed failed$([ "$beside" -eq 1 ] && echo ' (with a second copy running beside)')"
if [ "$failed" -gt 0 ]; then
    echo "failing tests (one line per failure):"
    sort "$work/failures.txt" | uniq -c | sort -rn
    last=$(ls "$work"/failed-run-*.log | tail -n 1)
    echo "==> the last failed run's output, from its first failure:"
    sed -n '/^=* FAILURES =*$/,$p' "$last" | head -n 150
    exit 1
fi
