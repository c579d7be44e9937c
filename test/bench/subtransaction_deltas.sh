#!/usr/bin/env bash
# What a transaction's pending counter deltas cost inside subtransactions:
# N single-row status UPDATEs (one counted statement each) in one transaction, in three shapes:
#   one_block      all N inside one PL/pgSQL BEGIN ... EXCEPTION block (one subtransaction)
#   block_each     each inside its own BEGIN ... EXCEPTION block (N subtransactions, as psql's
#                  ON_ERROR_ROLLBACK or a driver's autosave savepoint per statement)
#   no_savepoint   plain statements, for comparison
# for N = 10,000, 20,000 and 40,000, on one throwaway server. Prints the time of the N statements
# and TopTransactionContext's size at the end of them (pg_backend_memory_contexts, before the
# commit), and writes test/bench/results/<date>-subtransaction-deltas-<version>-<revision>.md. Time that
# doubles with N is linear; version 1.3 took 0.52 / 1.62 / 3.46 s for nested subtransaction ends
# and held 12 MB at 80,000 statements in one savepoint. Not part of the test suite.
#
#   sudo test/bench/subtransaction_deltas.sh     # about a minute
#
# Builds and installs the extension (as root) unless BENCH_SKIP_BUILD=1; one throwaway server
# (throwaway_server.sh). Environment: BENCH_PORT (default 55491), BENCH_SKIP_BUILD=1, BENCH_KEEP=1,
# BENCH_RESULTS, S3SCAN_PG_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init subtransaction_deltas 55491
LOAD_START=$(loadavg)

ensure_packages
build_and_install
start_throwaway_server "s3scan_jobs.database = 'ext'
s3scan_jobs.refresh_interval = 0
s3scan_jobs.fold_interval = 0"
q() { as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$PORT" -d ext -v ON_ERROR_STOP=1 -c "$1"; }
as_pg "$PGBIN/createdb" -h "$TMP" -p "$PORT" ext
q "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version ext)
OUT=$(result_file subtransaction-deltas md "$VERSION")
q "INSERT INTO public.jobs (job_id, bucket) VALUES ('00000000-0000-4000-8000-000000000001', 'b')"
q "INSERT INTO public.job_objects (job_id, bucket, key, etag)
   SELECT '00000000-0000-4000-8000-000000000001', 'b', 'k' || g, 'e' FROM generate_series(1, 40000) g"
q "VACUUM ANALYZE"

# One run: prints "milliseconds bytes". Each pass flips the status of rows 1..N, one statement each.
run() {
    local shape=$1 n=$2 body
    case $shape in
    one_block) body="BEGIN FOR i IN 1..$n LOOP UPDATE public.job_objects SET status = CASE status WHEN 'queued' THEN 'processing' ELSE 'queued' END WHERE id = i; END LOOP; EXCEPTION WHEN raise_exception THEN NULL; END;" ;;
    block_each) body="FOR i IN 1..$n LOOP BEGIN UPDATE public.job_objects SET status = CASE status WHEN 'queued' THEN 'processing' ELSE 'queued' END WHERE id = i; EXCEPTION WHEN raise_exception THEN NULL; END; END LOOP;" ;;
    no_savepoint) body="FOR i IN 1..$n LOOP UPDATE public.job_objects SET status = CASE status WHEN 'queued' THEN 'processing' ELSE 'queued' END WHERE id = i; END LOOP;" ;;
    esac
    as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$PORT" -d ext -v ON_ERROR_STOP=1 <<SQL | tr '\n' ' '
BEGIN;
SELECT pg_catalog.clock_timestamp() AS t0 \gset
DO \$\$ BEGIN $body END \$\$;
SELECT round(extract(epoch FROM pg_catalog.clock_timestamp() - :'t0'::timestamptz) * 1000);
SELECT total_bytes FROM pg_backend_memory_contexts WHERE name = 'TopTransactionContext';
COMMIT;
SQL
}

rows=""
for shape in no_savepoint one_block block_each; do
    for n in 10000 20000 40000; do
        read -r ms bytes <<<"$(run "$shape" "$n")"
        say "$shape N=$n: $ms ms, TopTransactionContext $bytes bytes"
        rows+="| $shape | $n | $ms | $(( bytes / 1024 )) |"$'\n'
    done
    q "SELECT public.fold_job_counters()" >/dev/null
done
diffs=$(q "SELECT count(*) FROM public.verify_job_counters()")
LOAD_END=$(loadavg)

{
    echo "# Pending counter deltas in subtransactions: $(title_of "$VERSION"), $DATE"
    echo
    echo "\`test/bench/subtransaction_deltas.sh\`: N single-row status UPDATEs in one transaction; the time"
    echo "of the N statements and TopTransactionContext's size before the commit. One run each, one"
    echo "server, $(nproc) cores shared with other work: load average (1, 5, 15 min) $LOAD_START at the start, $LOAD_END at"
    echo "the end. verify_job_counters() afterwards: $diffs differing rows."
    echo
    echo "| shape | N | ms | TopTransactionContext KiB |"
    echo "|---|---:|---:|---:|"
    printf '%s' "$rows"
} | tee "$OUT"
REPORTED=1
say "wrote $OUT"
