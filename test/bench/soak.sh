#!/usr/bin/env bash
# The load-with-faults test (test/t/010_load_with_faults.pl) for an hour, or for SOAK_SECONDS:
# 4 clients running the scanner's statement mix while the worker refreshes every second, is
# SIGTERMed and has a refresh cancelled; it ends with the same checks (no failed transaction, no
# unexpected ERROR, cached = real time = direct counts). Writes
# test/bench/results/<date>-soak-<version>-<revision>.md (the test's verdicts and its pgbench
# line). On demand, never in the test suite.
#
#   sudo test/bench/soak.sh            # one hour
#   sudo SOAK_SECONDS=600 test/bench/soak.sh
#
# The build, the packages and the servers are the test suite's (test/run-tests.sh: its TAP nodes
# pick free ports themselves, so this script has no port of its own); throwaway_server.sh only
# names and titles the result. The version is the default version of the control file the build
# installs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init soak none   # no port: the TAP nodes choose theirs
SECS=${SOAK_SECONDS:-3600}
LOAD_START=$(loadavg)
VERSION=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$REPO/s3scan_jobs.control")
OUT=$(result_file soak md "$VERSION")
LOG=$(mktemp /tmp/s3scan-bench-soak.XXXXXX)
ON_EXIT='rm -f "$LOG"'

say "test/t/010_load_with_faults.pl for ${SECS}s; load average (1, 5, 15 min) $LOAD_START"
rc=0
(cd "$REPO" && KEEP=1 S3SCAN_LOAD_SECONDS=$SECS test/run-tests.sh tap test/t/010_load_with_faults.pl) 2>&1 | tee "$LOG" || rc=$?
LOAD_END=$(loadavg)
# The test's own lines (its verdicts, its pgbench note) are in its log, in the test tree that
# KEEP=1 kept: read, then removed.
work=$(sed -n 's/^kept the test tree: //p' "$LOG" | tail -1)
TAP_LOG=
case $work in /tmp/s3scan_jobs.*) TAP_LOG=$work/tmp_check/log/regress_log_010_load_with_faults ;; esac
{
    echo "# Soak, load with faults for $SECS s: $(title_of "$VERSION"), $DATE"
    echo
    echo "\`SOAK_SECONDS=$SECS test/bench/soak.sh\` (test/t/010_load_with_faults.pl with S3SCAN_LOAD_SECONDS=$SECS), $(nproc) cores"
    echo "shared with other work: load average (1, 5, 15 min) $LOAD_START at the start, $LOAD_END at the end."
    echo "$([ $rc = 0 ] && echo "It passed." || echo "**It failed** (exit status $rc).")"
    echo
    echo '```'
    grep -E '^(\[[0-9:]+\] )?test/t/|^tests: |^Result' "$LOG" || true
    [ -n "$TAP_LOG" ] && [ -f "$TAP_LOG" ] && grep -E '(^|\) )(ok|not ok) [0-9]|# pgbench:|#   Failed' "$TAP_LOG"
    echo '```'
} >"$OUT"
[ -n "$TAP_LOG" ] && rm -rf "$work"
REPORTED=1
cat "$OUT"
say "wrote $OUT"
exit $rc
