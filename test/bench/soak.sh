#!/usr/bin/env bash
# The load-with-faults test (test/t/010_load_with_faults.pl) for an hour, or for SOAK_SECONDS:
# 4 clients running the scanner's statement mix while the worker refreshes every second, is
# SIGTERMed and has a refresh cancelled; it ends with the same checks (no failed transaction, no
# unexpected ERROR, cached = real time = direct counts). On demand, never in the test suite.
#
#   sudo test/bench/soak.sh            # one hour
#   sudo SOAK_SECONDS=600 test/bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export S3SCAN_LOAD_SECONDS=${SOAK_SECONDS:-3600}
exec test/run-tests.sh tap test/t/010_load_with_faults.pl
