#!/usr/bin/env bash
# Runs every test of s3scan_jobs: the pg_regress suite (sql/, expected/), the isolation specs
# (test/isolation/) and the TAP tests (test/t/), each against throwaway servers it starts itself.
# Installs what it needs on a fresh Debian machine (run as root there).
#
#   test/run-tests.sh                 everything
#   test/run-tests.sh regress         only pg_regress      (also: isolation, tap, citus)
#   test/run-tests.sh tap test/t/001_worker_basic.pl      some TAP files (citus: test/citus/...)
#
#   KEEP=1 test/run-tests.sh ...     keep the copy the suites ran in (results/, tmp_check/ logs)
#
# Ends with one line "tests: N passed, M failed" counting suites' individual tests.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

what=${1:-all}
shift || true
tap_files=${*:-}

ensure_packages
build_and_install || exit 1

work=$(copy_tree_for_server_user)
if [ "${KEEP:-0}" = 1 ]; then
    trap 'echo "kept the test tree: $work"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
passed=0
failed=0
status=0

# Adds the counts of a pg_regress / pg_isolation_regress run from its output file.
count_regress() {
    local out=$1
    local ok bad
    ok=$(grep -cE '^(ok|test) .* ok( |$)|^ok [0-9]+ ' "$out" || true)
    bad=$(grep -cE ' \.\.\. FAILED|^not ok ' "$out" || true)
    passed=$((passed + ok))
    failed=$((failed + bad))
}

run_make_suite() {
    local name=$1
    shift
    log "$name"
    local out="$work/$name.out"
    as_server_user "cd '$work' && make -s PG_CONFIG='$PG_CONFIG' installcheck $*" 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]}
    if [ "$name" = tap ] || [ "$name" = citus ]; then
        local ok bad
        # prove --timer prefixes its lines with [hh:mm:ss].
        ok=$(grep -E '^(\[[0-9:]+\] )?test/(t|citus)/' "$out" | grep -cE '\.{2,} ok( |$)' || true)
        bad=$(grep -E '^(\[[0-9:]+\] )?test/(t|citus)/.*(Dubious|Failed|not ok)' "$out" | wc -l)
        [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
        passed=$((passed + ok))
        failed=$((failed + bad))
    else
        count_regress "$out"
        [ "$rc" -ne 0 ] && [ "$(grep -c FAILED "$out")" -eq 0 ] && failed=$((failed + 1))
    fi
    if [ "$rc" -ne 0 ]; then
        status=1
        for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs; do
            [ -f "$f" ] && { echo "--- $f"; head -c 20000 "$f"; }
        done
        for f in "$work"/tmp_check/log/regress_log_*; do
            [ -f "$f" ] && grep -q 'not ok\|died\|Dubious\|error running SQL\|BAIL' "$f" &&
                { echo "--- $f (tail)"; tail -n 60 "$f"; }
        done
    fi
}

case "$what" in
all | regress) run_make_suite regress "ISOLATION= TAP_TESTS=" ;;
esac
case "$what" in
all | isolation) run_make_suite isolation "REGRESS= TAP_TESTS=" ;;
esac
case "$what" in
all | tap) run_make_suite tap "REGRESS= ISOLATION= ${tap_files:+PROVE_TESTS='$tap_files'} PROVE_FLAGS=--timer" ;;
esac
# The Citus suite: a coordinator and two worker nodes (test/citus/); builds Citus first if this
# PostgreSQL lacks it.
case "$what" in
all | citus)
    if ensure_citus; then
        citus_files=${tap_files:-$(cd "$work" && ls test/citus/*.pl | tr '\n' ' ')}
        run_make_suite citus "REGRESS= ISOLATION= PROVE_TESTS='$citus_files' PROVE_FLAGS=--timer"
    else
        echo "the Citus suite could not build Citus"
        failed=$((failed + 1))
        status=1
    fi
    ;;
esac

echo
echo "tests: $passed passed, $failed failed"
exit $status
