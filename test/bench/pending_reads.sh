#!/usr/bin/env bash
# What a real-time read costs when the counter deltas are not folded (version 1.2's trade: no
# btree on job_counter_deltas, so a read scans every pending delta). No worker and no refresh
# fold here: a server without the worker, or one whose pg_cron refresh is far apart. One hot job
# (100K objects) takes single-object UPDATEs, one delta row each; at each count of pending deltas,
# job_status(id, true) of the hot job and of a small job (100 objects) is timed with the deltas
# table as 1.2 has it (no index) and with 1.1's btree on job_id, side by side on the same rows.
# Last, the deltas are folded while a REPEATABLE READ transaction holds its snapshot (so the
# folded rows stay in the table, dead, as behind a long transaction) and the reads are timed
# again. Prints and writes test/bench/results/<date>-pending-reads-<version>-<revision>.md. Not
# part of the test suite.
#
#   sudo test/bench/pending_reads.sh                   # about 2 minutes
#   PENDING="1000 10000 100000" READS=300 sudo test/bench/pending_reads.sh
#
# Builds and installs the extension (as root) unless BENCH_SKIP_BUILD=1; one throwaway server
# (throwaway_server.sh). Environment: BENCH_PORT (default 55493), BENCH_SKIP_BUILD=1, BENCH_KEEP=1,
# BENCH_RESULTS, S3SCAN_PG_BIN; PENDING (counts of pending deltas, ascending), READS (timed reads
# per measure).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init pending_reads 55493
PENDING=${PENDING:-1000 10000 100000 300000}
READS=${READS:-300}

ensure_packages
build_and_install
HOLDER=
ON_EXIT='[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null || true'
start_throwaway_server "# no s3scan_jobs.database: no worker, nothing folds
shared_buffers = 1GB
max_wal_size = 20GB
checkpoint_timeout = 1h
autovacuum = off"
q() { as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$PORT" -d ext -v ON_ERROR_STOP=1 -c "$1"; }
as_pg "$PGBIN/psql" -X -q -h "$TMP" -p "$PORT" -d postgres -c "CREATE DATABASE ext"
q "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version ext)
OUT=$(result_file pending-reads md "$VERSION")
HOT=00000000-0000-4000-8000-000000000001
SMALL=00000000-0000-4000-8000-000000000002
q "INSERT INTO jobs (job_id, bucket) VALUES ('$HOT', 'b'), ('$SMALL', 'b')"
q "INSERT INTO job_objects (job_id, bucket, key, etag, status)
   SELECT '$HOT'::uuid, 'b', 'k/' || g, md5(g::text), 'queued' FROM generate_series(1, 100000) g
   UNION ALL SELECT '$SMALL'::uuid, 'b', 's/' || g, md5(g::text), 'queued' FROM generate_series(1, 100) g"
q "SELECT fold_job_counters()" >/dev/null
q "VACUUM ANALYZE"

cat >"$TMP/update.sql" <<EOS
\set i random(1, 100000)
\set s random(1, 3)
UPDATE job_objects SET status = CASE :s::int WHEN 1 THEN 'processing' WHEN 2 THEN 'succeeded' ELSE 'failed' END, last_error = NULL, updated_at = now() WHERE job_id = '$HOT' AND bucket = 'b' AND key = 'k/' || :i AND etag = md5(:i::text);
EOS
for job in hot small; do
    id=$HOT; [ $job = small ] && id=$SMALL
    echo "SELECT * FROM job_status('$id', true);" >"$TMP/read_$job.sql"
done

# Median and p99 of READS reads of one job, in microseconds, from pgbench's per-transaction log.
time_reads() {  # job
    rm -f "$TMP"/log.*
    (cd "$TMP" && as_pg "$PGBIN/pgbench" -h "$TMP" -p "$PORT" -n -M prepared -c 1 -t "$READS" \
        -f "$TMP/read_$1.sql" -l --log-prefix="$TMP/log" ext >/dev/null 2>&1)
    awk '{ print $3 }' "$TMP"/log.* | sort -n | awk '{ v[NR] = $1 } END {
        m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.99 + 0.5)]
        printf "%s / %s\n", (m < 1000 ? m " µs" : sprintf("%.1f ms", m / 1000)), (p < 1000 ? p " µs" : sprintf("%.1f ms", p / 1000)) }'
}
measure() {  # label -> one row per job: label, job, without index, with index
    local hot_no small_no hot_idx small_idx
    hot_no=$(time_reads hot); small_no=$(time_reads small)
    q "CREATE INDEX bench_deltas_job_id ON job_counter_deltas (job_id)"
    q "ANALYZE job_counter_deltas"
    hot_idx=$(time_reads hot); small_idx=$(time_reads small)
    q "DROP INDEX bench_deltas_job_id"
    q "ANALYZE job_counter_deltas"
    printf '| %s | hot job (100K objects) | %s | %s |\n| %s | small job (100 objects) | %s | %s |\n' \
        "$1" "$hot_no" "$hot_idx" "$1" "$small_no" "$small_idx" >>"$TMP/rows"
    say "$1: hot $hot_no vs $hot_idx with the btree; small $small_no vs $small_idx"
}

LOAD_START=$(loadavg)
say "pending deltas: $PENDING; $READS reads per measure; load average $LOAD_START"
: >"$TMP/rows"
measure "0 pending"
done_so_far=0
for p in $PENDING; do
    as_pg env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -h "$TMP" -p "$PORT" -n -M prepared \
        -c 4 -j 2 -t $(((p - done_so_far) / 4)) -f "$TMP/update.sql" ext >/dev/null 2>&1
    done_so_far=$p
    pending=$(q "SELECT count(*) FROM job_counter_deltas")
    q "VACUUM ANALYZE job_counter_deltas"
    measure "$(printf "%'d" "$pending") pending"
done

# The deltas folded behind an open REPEATABLE READ snapshot: dead rows a vacuum cannot remove.
as_pg "$PGBIN/psql" -X -q -h "$TMP" -p "$PORT" -d ext \
    -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM jobs" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
HOLDER=$!
sleep 1
dead=$(q "SELECT fold_job_counters()")
as_pg env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -h "$TMP" -p "$PORT" -n -M prepared \
    -c 4 -j 2 -t 250 -f "$TMP/update.sql" ext >/dev/null 2>&1
q "VACUUM ANALYZE job_counter_deltas"
measure "$(printf "%'d" "$(q "SELECT count(*) FROM job_counter_deltas")") pending behind $(printf "%'d" "$dead") folded but not removable"
kill "$HOLDER" 2>/dev/null || true; HOLDER=
DIFFER=$(q "SELECT count(*) FROM verify_job_counters()")
LOAD_END=$(loadavg)

{
    echo "# Real-time reads with pending counter deltas: $(title_of "$VERSION"), $DATE"
    echo
    echo "\`PENDING='$PENDING' READS=$READS test/bench/pending_reads.sh\`, $("$PGBIN/postgres" --version), $(nproc) cores."
    echo "No worker and no refresh: nothing folds while the hot job's single-object UPDATEs append one delta"
    echo "row each. \`job_status(id, true)\`, $READS reads by one client (pgbench -M prepared), median / p99 as the"
    echo "client sees it; the deltas table as $VERSION has it (no index since 1.2) and, on the same rows, with"
    echo "1.1's btree on job_id. Load average (1, 5, 15 min) $LOAD_START at the start, $LOAD_END at the end."
    echo "After the runs, verify_job_counters() reported $DIFFER differing jobs."
    echo
    echo "| deltas in the table | read of | $VERSION: no index | with 1.1's btree |"
    echo "|---|---|---:|---:|"
    cat "$TMP/rows"
} >"$OUT"
REPORTED=1
cat "$OUT"
say "wrote $OUT"
