#!/usr/bin/env bash
# The design note's performance table, reproduced against the extension, side by side, in one
# server and one run: one job's summary and status by job size (the note's job_summary, the
# extension's, job_progress, job_status cached and real time), the refresh of job_progress by job
# count, and the clients' writes against the same tables made by plain SQL; then checks that
# both give the same values. Not part of the test suite.
#
#   sudo test/bench/run.sh [quick|full]
#
#   quick  measured jobs of 1K / 10K / 100K objects, refresh at 1K / 10K jobs (~0.3M objects),
#          short write runs; about 2 minutes on 2 cores.
#   full   measured jobs of 1K / 100K / 1M objects, refresh at 10K / 100K jobs (10M objects),
#          longer write runs; about 20 minutes on 2 cores.
#
# Installs missing packages and builds and installs the extension (as root), starts a throwaway
# server (throwaway_server.sh), loads the data, measures, and writes
# test/bench/results/<date>-run-<scale>-<version>-<revision>.md and .png. It prints
# "!!! N CHECKS FAILED" at the end and exits 1 when a check is not true.
# Environment: BENCH_PORT (default 55499), BENCH_SKIP_BUILD=1, BENCH_KEEP=1, BENCH_RESULTS,
# S3SCAN_PG_BIN (throwaway_server.sh). See test/bench/README.md for what is measured and how.

set -euo pipefail

SCALE=${1:-quick}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SQL=$HERE/sql
. "$HERE/throwaway_server.sh"
bench_init run 55499

case $SCALE in
quick)
    SIZES="1000 10000 100000"     # objects in the measured jobs
    JOBS_A=1000                   # jobs at the first refresh measurement
    JOBS_B=10000                  # jobs at the second one (and for the reads)
    SMALL_AVG=20                  # objects per small job, on average (1..39)
    FIND_EVERY=50                 # small jobs: one finding on every 50th object
    MEASURED_FINDINGS=5           # findings in each measured job
    REFRESH_PAIRS=8 CHURN=200
    READ_MIN=10 READ_MAX=300 READ_BUDGET_MS=2000
    CLIENT_CHUNKS=4 CLIENT_N=500  # client-side round trips per chunk and kind
    WORKER_REFRESHES=3 WORKER_TIMEOUT=30
    W_BIG=100000 W_JOBS=1000 W_PER=50 W_CLIENTS=8 W_THREADS=2 W_DURATION=2 W_ROUNDS=1
    W_OBJ_BATCH=1000 W_FIND_BATCH=100
    SHARED_BUFFERS=1GB
    ;;
full)
    SIZES="1000 100000 1000000"
    JOBS_A=10000
    JOBS_B=100000
    SMALL_AVG=89                  # 99,997 small jobs x 89 + 1,101,000 = 10.0M objects
    FIND_EVERY=50
    MEASURED_FINDINGS=5
    REFRESH_PAIRS=5 CHURN=1000
    READ_MIN=20 READ_MAX=2000 READ_BUDGET_MS=15000
    CLIENT_CHUNKS=6 CLIENT_N=2000
    WORKER_REFRESHES=3 WORKER_TIMEOUT=240
    W_BIG=500000 W_JOBS=2000 W_PER=100 W_CLIENTS=8 W_THREADS=2 W_DURATION=10 W_ROUNDS=2
    W_OBJ_BATCH=1000 W_FIND_BATCH=100
    SHARED_BUFFERS=2GB
    ;;
*)
    echo "usage: $0 [quick|full]" >&2
    exit 2
    ;;
esac

LOAD_START=$(loadavg)
say "load average (1, 5, 15 min) at the start: $LOAD_START"

# --- 0. packages, build, install ---------------------------------------------------------------

ensure_packages gnuplot-nox
build_and_install

# --- 1. throwaway server -----------------------------------------------------------------------

start_throwaway_server "max_connections = 40
s3scan_jobs.database = 'bench'
s3scan_jobs.refresh_interval = 0        # the worker stays out of the measurements
shared_buffers = $SHARED_BUFFERS
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 20GB
checkpoint_timeout = 1h
autovacuum = off                        # never runs during one measurement and not the other
log_min_messages = warning
log_checkpoints = off"
DATA=$TMP/data
SOCK=$TMP
cd "$TMP"

psql_db() {
    local db=$1; shift
    as_pg $PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d "$db" "$@"
}
q() { local db=$1; shift; psql_db "$db" -At -c "$*"; }
meta() { q bench "INSERT INTO bench.meta VALUES ('$1', \$m\$$2\$m\$) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value" >/dev/null; }
note() { NOTE_N=$((NOTE_N + 1)); meta "note:$(printf '%03d' $NOTE_N)" "$1"; say "NOTE: $1"; }
NOTE_N=0

for db in bench w_ext w_plain; do
    as_pg $PGBIN/createdb -h "$SOCK" -p "$PORT" -U postgres "$db"
done

# --- 2. read database: extension, data, baseline -----------------------------------------------

q bench "CREATE EXTENSION s3scan_jobs" >/dev/null
VERSION=$(ext_version bench)
OUT_MD=$(result_file "run-$SCALE" md "$VERSION")
OUT_PNG=${OUT_MD%.md}.png
say "s3scan_jobs $VERSION; the report: $OUT_MD"
psql_db bench -f - <"$SQL/generate.sql" >/dev/null

say "loading the measured jobs ($SIZES objects, $MEASURED_FINDINGS findings each)"
for n in $SIZES; do
    q bench "CALL bench.load_measured_job($n, $MEASURED_FINDINGS)"
done
say "loading small jobs up to $JOBS_A jobs"
n_measured=$(wc -w <<<"$SIZES")
q bench "CALL bench.load_small_jobs(1, $((JOBS_A - n_measured)), $SMALL_AVG, true, $FIND_EVERY)"
q bench "VACUUM ANALYZE" >/dev/null

say "creating the note's views in schema baseline, and the instruments"
psql_db bench -f - <"$SQL/baseline_views.sql" >/dev/null
psql_db bench -f - <"$SQL/measure.sql" >/dev/null
psql_db bench -f - <"$SQL/report.sql" >/dev/null

objects_now() { q bench "SELECT count(*) FROM public.job_objects"; }
meta scale "$SCALE"
meta churn "$CHURN"
meta "objects_at_jobs:$JOBS_A" "$(objects_now)"

q bench "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
before_cmd=$(q bench "SELECT count(*) FROM public.refresh_history WHERE origin = 'refresh_command'")

say "refresh at $JOBS_A jobs ($(objects_now) objects): $REFRESH_PAIRS pairs"
q bench "CALL bench.measure_refresh('jobs:$JOBS_A', $REFRESH_PAIRS, $CHURN)"

say "loading small jobs up to $JOBS_B jobs"
q bench "CALL bench.load_small_jobs($((JOBS_A - n_measured + 1)), $((JOBS_B - n_measured)), $SMALL_AVG, true, $FIND_EVERY)"
q bench "VACUUM ANALYZE" >/dev/null
meta "objects_at_jobs:$JOBS_B" "$(objects_now)"
q bench "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
q bench "REFRESH MATERIALIZED VIEW CONCURRENTLY baseline.job_progress" >/dev/null

say "refresh at $JOBS_B jobs ($(objects_now) objects): $REFRESH_PAIRS pairs"
q bench "CALL bench.measure_refresh('jobs:$JOBS_B', $REFRESH_PAIRS, $CHURN)"

after_cmd=$(q bench "SELECT count(*) FROM public.refresh_history WHERE origin = 'refresh_command'")
if [ "$after_cmd" != "$before_cmd" ]; then
    note "the extension's event trigger recorded $((after_cmd - before_cmd)) refreshes of baseline.job_progress (another schema's matview) in refresh_history as origin 'refresh_command'"
fi
bad=$(q bench "SELECT count(*) || ' of ' || (SELECT count(*) FROM bench.samples WHERE kind = 'refresh_ext') FROM bench.samples WHERE kind = 'refresh_ext' AND note NOT LIKE 'refreshed/concurrent%'")
case $bad in 0\ of*) ;; *) note "refresh_job_progress() did not report 'refreshed/concurrent' for $bad samples: $(q bench "SELECT string_agg(DISTINCT note, '; ') FROM bench.samples WHERE kind = 'refresh_ext' AND note NOT LIKE 'refreshed/concurrent%'")" ;; esac

# The background worker's own refreshes, as it records them.
say "worker refreshes at $JOBS_B jobs (refresh_interval = 1s, up to ${WORKER_TIMEOUT}s)"
t0=$(q bench "SELECT now()")
q bench "ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1s'" >/dev/null
q bench "SELECT pg_reload_conf()" >/dev/null
got=0
for ((i = 0; i < WORKER_TIMEOUT; i++)); do
    got=$(q bench "SELECT count(*) FROM public.refresh_history WHERE origin = 'worker' AND outcome = 'refreshed' AND started_at >= '$t0'")
    [ "$got" -ge "$WORKER_REFRESHES" ] && break
    sleep 1
done
q bench "ALTER SYSTEM RESET s3scan_jobs.refresh_interval" >/dev/null
q bench "SELECT pg_reload_conf()" >/dev/null
q bench "INSERT INTO bench.samples (label, kind, ms, note)
         SELECT 'jobs:$JOBS_B', 'refresh_worker', duration_ms, mode FROM public.refresh_history
         WHERE origin = 'worker' AND outcome = 'refreshed' AND started_at >= '$t0'" >/dev/null
[ "$got" -ge 1 ] || note "the worker made no refresh within ${WORKER_TIMEOUT}s of refresh_interval = 1s: $(q bench "SELECT string_agg(state || coalesce(' / ' || last_error, ''), '; ') FROM public.refresh_worker_status")"
failed=$(q bench "SELECT count(*) FROM public.refresh_history WHERE origin = 'worker' AND outcome <> 'refreshed' AND started_at >= '$t0'")
[ "$failed" = 0 ] || note "the worker recorded $failed refreshes that were not 'refreshed': $(q bench "SELECT string_agg(DISTINCT outcome || coalesce(': ' || error, ''), '; ') FROM public.refresh_history WHERE origin = 'worker' AND outcome <> 'refreshed' AND started_at >= '$t0'")"
for ((i = 0; i < 600; i++)); do   # wait until the worker is idle again
    busy=$(q bench "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 's3scan_jobs refresh worker' AND query ILIKE '%refresh%' AND state = 'active'")
    [ "$busy" = 0 ] && break
    sleep 0.5
done

say "final refresh of both, VACUUM ANALYZE, value checks"
q bench "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
q bench "REFRESH MATERIALIZED VIEW CONCURRENTLY baseline.job_progress" >/dev/null
q bench "VACUUM ANALYZE" >/dev/null
measured_ids="ARRAY[$(for n in $SIZES; do printf 'bench.jid(-%s),' "$n"; done | sed 's/,$//')]"
step=$(( (JOBS_B - n_measured) / 200 )); [ $step -ge 1 ] || step=1
q bench "INSERT INTO bench.checks SELECT * FROM bench.check_values($measured_ids,
         ARRAY(SELECT bench.jid(i) FROM generate_series(1, $((JOBS_B - n_measured)), $step) i))" >/dev/null
values_equal=$(q bench "SELECT coalesce(bool_and(ok), false) FROM bench.checks WHERE check_name LIKE 'job_summary%'")
meta values_equal "$([ "$values_equal" = t ] && echo true || echo false)"
mismatches=$(q bench "SELECT count(*) FROM bench.checks WHERE NOT ok")
if [ "$mismatches" != 0 ]; then
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! VALUE MISMATCH between the note's definitions and the extension ($mismatches checks):" >&2
    q bench "SELECT check_name || coalesce(': ' || detail, '') FROM bench.checks WHERE NOT ok" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
fi

# --- 3. reads ----------------------------------------------------------------------------------

for n in $SIZES; do
    say "reads on the job of $n objects"
    q bench "CALL bench.measure_reads('objects:$n', bench.jid(-$n),
             ARRAY['note_summary', 'ext_summary', 'status_live'], $READ_MIN, $READ_MAX, $READ_BUDGET_MS)"
    q bench "CALL bench.measure_reads('objects:$n', bench.jid(-$n),
             ARRAY['direct_lookup', 'status_cached'], $READ_MIN, $((READ_MAX * 5)), $READ_BUDGET_MS)"
done

# The same two cached reads as a client sees them: pgbench -M prepared, one connection, one
# statement per transaction, per-transaction latencies (--log), chunks alternating.
echo 'SELECT * FROM job_progress WHERE job_id = :jid;' >"$TMP/read_direct_lookup.sql"
echo 'SELECT * FROM job_status(:jid);' >"$TMP/read_status_cached.sql"
chmod 644 "$TMP"/read_*.sql
for n in $SIZES; do
    say "client round trips on the job of $n objects ($CLIENT_CHUNKS x $CLIENT_N each)"
    jid=$(q bench "SELECT bench.jid(-$n)")
    for ((c = 1; c <= CLIENT_CHUNKS; c++)); do
        order="direct_lookup status_cached"; [ $((c % 2)) = 0 ] && order="status_cached direct_lookup"
        for kind in $order; do
            rm -f "$TMP"/lat.*
            as_pg $PGBIN/pgbench -n -M prepared -c 1 -j 1 -t $((CLIENT_N + 10)) -D jid="$jid" \
                -f "$TMP/read_$kind.sql" -l --log-prefix="$TMP/lat" \
                -h "$SOCK" -p "$PORT" -U postgres bench >"$TMP/pgbench.out" 2>&1 ||
                { cat "$TMP/pgbench.out" >&2; die "pgbench read $kind failed"; }
            # log line: client_id transaction_no latency_us script_no epoch epoch_us; skip the
            # first 10 (prepare, cold caches)
            cat "$TMP"/lat.* | awk -v l="objects:$n" -v k="client_$kind" \
                '$2 >= 10 { printf "%s\t%s\t%.6f\n", l, k, $3 / 1000.0 }' >"$TMP/latency.tsv"
            chmod 644 "$TMP/latency.tsv"
            psql_db bench -c "\\copy bench.samples (label, kind, ms) FROM '$TMP/latency.tsv'" >/dev/null
        done
    done
done

# --- 4. writes ---------------------------------------------------------------------------------

say "write databases: w_ext (CREATE EXTENSION) and w_plain (plain SQL), same data"
q w_ext "CREATE EXTENSION s3scan_jobs" >/dev/null
psql_db w_plain -f - <"$SQL/plain_schema.sql" >/dev/null
for db in w_ext w_plain; do
    psql_db "$db" -f - <"$SQL/generate.sql" >/dev/null
    q "$db" "CALL bench.load_measured_job($W_BIG, 0)"
    q "$db" "CALL bench.load_small_jobs(1, $W_JOBS, $W_PER, false, 50)"
    q "$db" "VACUUM ANALYZE" >/dev/null
done

# The plain database must have the extension's tables exactly: columns, constraints, indexes and
# the updated_at triggers (their functions aside: C in the extension, plpgsql in plain_schema.sql),
# with their enabled states. The extension also has its own members there, which the write
# scenarios measure and the plain tables must not have: the counter triggers (on job_objects and
# findings, since 1.1; "expected" below: their function is the extension's count_changes or
# count_truncate) and event triggers (database-wide; since 1.4 also on ALTER TABLE and trigger
# DDL, none of which the writes run). Any other difference is drift; and the counter triggers
# must be exactly as set_counter_maintenance(true) leaves them (counter_triggers_as_maintained(),
# 1.4), or the writes measure something else than what ships.
ddl_query="
WITH t AS (SELECT c.oid, c.relname FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relname IN ('jobs', 'job_objects', 'findings')),
     member AS (SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND x.extname = 's3scan_jobs')
SELECT 'f|' || t.relname || ' column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
       CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
       coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
UNION ALL
SELECT 'f|' || t.relname || ' constraint ' || conname || ' ' || pg_get_constraintdef(c.oid)
FROM t JOIN pg_constraint c ON c.conrelid = t.oid
UNION ALL
SELECT 'f|' || t.relname || ' index ' || pg_get_indexdef(i.indexrelid)
FROM t JOIN pg_index i ON i.indrelid = t.oid
UNION ALL
SELECT CASE WHEN p.proname IN ('count_changes', 'count_truncate')
                 AND ('pg_proc'::regclass::oid, p.oid) IN (SELECT classid, objid FROM member) THEN 't|' ELSE 'f|' END ||
       t.relname || ' trigger ' || regexp_replace(pg_get_triggerdef(g.oid), ' EXECUTE FUNCTION .*', '') ||
       ' (enabled ' || g.tgenabled::text || ')'
FROM t JOIN pg_trigger g ON g.tgrelid = t.oid AND NOT g.tgisinternal JOIN pg_proc p ON p.oid = g.tgfoid
UNION ALL
SELECT CASE WHEN ('pg_event_trigger'::regclass::oid, e.oid) IN (SELECT classid, objid FROM member) THEN 't|' ELSE 'f|' END ||
       'event trigger ' || e.evtname || ' ON ' || e.evtevent ||
       coalesce(' WHEN TAG IN (' || array_to_string(e.evttags, ', ') || ')', '') || ' (enabled ' || e.evtenabled::text || ')'
FROM pg_event_trigger e
ORDER BY 1"
q w_ext "$ddl_query" >"$TMP/ddl_ext_all.txt"
q w_plain "$ddl_query" >"$TMP/ddl_plain_all.txt"
sed -n 's/^f|//p' "$TMP/ddl_ext_all.txt" >"$TMP/ddl_ext.txt"
sed -n 's/^f|//p' "$TMP/ddl_plain_all.txt" >"$TMP/ddl_plain.txt"
check() { q bench "INSERT INTO bench.checks VALUES (\$c\$$1\$c\$, $2, nullif(\$c\$$3\$c\$, ''))" >/dev/null; }
if diff -u "$TMP/ddl_plain.txt" "$TMP/ddl_ext.txt" >"$TMP/ddl.diff"; then
    check "plain_schema.sql = the extension's tables: the same $(wc -l <"$TMP/ddl_ext.txt") columns, constraints, indexes and updated_at triggers" true ""
else
    echo "!!! DDL DRIFT: test/bench/sql/plain_schema.sql no longer matches the extension's tables:" >&2
    cat "$TMP/ddl.diff" >&2
    check "plain_schema.sql = the extension's tables (columns, constraints, indexes, updated_at triggers)" false \
          "DDL drift (- plain_schema.sql, + the extension): $(grep '^[-+][a-z]' "$TMP/ddl.diff" | tr '\n' ';')"
fi
n_counter=$(grep '^t|' "$TMP/ddl_ext_all.txt" | grep -vc '^t|event trigger ' || true)
n_event=$(grep -c '^t|event trigger ' "$TMP/ddl_ext_all.txt" || true)
plain_own=$(grep -c '^t|' "$TMP/ddl_plain_all.txt" || true)
as_maintained=$(q w_ext "SELECT CASE WHEN to_regprocedure('public.counter_triggers_as_maintained()') IS NULL THEN 'n/a'
                                     ELSE public.counter_triggers_as_maintained()::text END")
own="$n_counter counter triggers, $n_event event triggers: $(sed -n 's/^t|//p' "$TMP/ddl_ext_all.txt" |
      sed -E 's/ \(enabled (.)\)$/ [\1]/; s/^(job_objects|findings) trigger CREATE TRIGGER ([a-z_]+) .*( \[.\])$/\2\3/; s/^event trigger ([a-z0-9_]+) .*( \[.\])$/\1\2/' | paste -sd' ' -)"
case $as_maintained in
true) check "the extension's own, which the plain tables lack: $own; the counter triggers as set_counter_maintenance(true) leaves them ([A] always, [R] replica)" \
            "$([ "$plain_own" = 0 ] && [ "$n_counter" -gt 0 ] && echo true || echo false)" "" ;;
n/a) check "the extension's own, which the plain tables lack: $own (version $VERSION has no counter_triggers_as_maintained())" \
           "$([ "$plain_own" = 0 ] && echo true || echo false)" "" ;;
*) check "the counter triggers are as set_counter_maintenance(true) leaves them" false "$own" ;;
esac

# pgbench scripts, modelled on the clients (shared/reference/s3-scanner-interface.md).
# Identifiers are computed from job/object numbers as in sql/generate.sql.
JOB_ID="md5('s3scan-bench-job-' || :i)::uuid"
BUCKET="'bucket-' || :b"
OKEY="'scan-' || :i || '/part-' || :p || '/object-' || :k || '.dat'"
OETAG="md5('etag-' || :i || '-' || :k)"

pick_one() { printf '\\set i -%s\n\\set k random(1, %s)\n' "$W_BIG" "$W_BIG"; }
pick_spread() { printf '\\set i random(1, %s)\n\\set k random(1, %s)\n' "$W_JOBS" "$W_PER"; }
common() { printf '\\set b abs(:i) %% 50\n\\set p :k / 1000\n'; }

write_update() {   # 3. per-object status update, own transaction
    {
        "$1"; common
        printf '\\set s random(1, 20)\n'
        printf '\\if :s <= 9\n'
        printf "UPDATE job_objects SET status = 'processing', last_error = NULL, updated_at = now() WHERE job_id = %s AND bucket = %s AND key = %s AND etag = %s;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG"
        printf '\\elif :s <= 18\n'
        printf "UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now() WHERE job_id = %s AND bucket = %s AND key = %s AND etag = %s;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG"
        printf '\\else\n'
        printf "UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied: GetObject', updated_at = now() WHERE job_id = %s AND bucket = %s AND key = %s AND etag = %s;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG"
        printf '\\endif\n'
    } >"$2"
}
write_objects() {  # 2. listing batch: N single-row inserts, ON CONFLICT DO NOTHING, one transaction
    {
        "$1"; common
        printf '\\set n random(1, 1000000000000)\n'
        echo "BEGIN;"
        for ((r = 1; r <= W_OBJ_BATCH; r++)); do
            printf "INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES (%s, %s, 'scan-' || :i || '/new-' || :n || '/object-%d.dat', md5('new-' || :n || '-%d'), 'queued', now()) ON CONFLICT DO NOTHING;\n" "$JOB_ID" "$BUCKET" "$r" "$r"
        done
        echo "COMMIT;"
    } >"$2"
}
write_findings() { # 4. findings of one object: batch of N inserts, ON CONFLICT (...) DO NOTHING
    {
        "$1"; common
        printf '\\set o random(0, 1000000000)\n'
        echo "BEGIN;"
        for ((r = 1; r <= W_FIND_BATCH; r++)); do
            printf "INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES (%s, %s, %s, %s, 'credit_card', '****-****-****-%04d', 'card: ****-****-****-%04d exp 01/29', :o + %d, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG" "$r" "$r" "$((r * 17))"
        done
        echo "COMMIT;"
    } >"$2"
}

SCENARIOS="update_one update_spread objects_one objects_spread findings_one findings_spread"
write_update pick_one "$TMP/update_one.sql"
write_update pick_spread "$TMP/update_spread.sql"
write_objects pick_one "$TMP/objects_one.sql"
write_objects pick_spread "$TMP/objects_spread.sql"
write_findings pick_one "$TMP/findings_one.sql"
write_findings pick_spread "$TMP/findings_spread.sql"
chmod 644 "$TMP"/*.sql
meta "scenario:update_one" "status UPDATE of one object (own transaction), all clients on one job of $W_BIG objects"
meta "scenario:update_spread" "status UPDATE of one object (own transaction), random job of $W_JOBS"
meta "scenario:objects_one" "$W_OBJ_BATCH object INSERTs ON CONFLICT DO NOTHING in one transaction, all clients on one job"
meta "scenario:objects_spread" "$W_OBJ_BATCH object INSERTs ON CONFLICT DO NOTHING in one transaction, random job"
meta "scenario:findings_one" "$W_FIND_BATCH findings INSERTs ON CONFLICT (...) DO NOTHING in one transaction, one job"
meta "scenario:findings_spread" "$W_FIND_BATCH findings INSERTs ON CONFLICT (...) DO NOTHING in one transaction, random job"
meta w_clients "$W_CLIENTS"; meta w_threads "$W_THREADS"; meta w_duration "$W_DURATION"
meta w_big "$W_BIG"; meta w_jobs "$W_JOBS"; meta w_per "$W_PER"

q bench "CHECKPOINT" >/dev/null
pgbench_w() {  # db scenario outfile: one write run
    as_pg env PGOPTIONS='-c synchronous_commit=off' $PGBIN/pgbench -n -M prepared \
        -c "$W_CLIENTS" -j "$W_THREADS" -T "$W_DURATION" -f "$TMP/$2.sql" \
        -h "$SOCK" -p "$PORT" -U postgres "$1" >"$3" 2>&1
}
record_run() {  # scenario target rep mode outfile
    local tps xacts db=w_plain
    [ "$2" = extension ] && db=w_ext
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$5")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$5")
    [ -n "$tps" ] || { cat "$5" >&2; die "pgbench $1 on $db: no tps in its output"; }
    grep -q '^number of failed transactions: 0 ' "$5" || note "pgbench $1 on $db: $(grep '^number of failed' "$5")"
    q bench "INSERT INTO bench.write_runs VALUES ('$1', '$2', $3, $tps, $xacts, '$4')" >/dev/null
    printf '           %-16s %-9s %-12s rep %d: %8.1f tps\n' "$1" "$2" "$4" "$3" "$tps"
}
run_alone() {  # scenario target rep
    local db=w_plain; [ "$2" = extension ] && db=w_ext
    pgbench_w "$db" "$1" "$TMP/pgbench.out" || { cat "$TMP/pgbench.out" >&2; die "pgbench $1 on $db failed"; }
    record_run "$1" "$2" "$3" alternating "$TMP/pgbench.out"
}
run_together() {  # scenario rep: both databases at the same time, same clients each
    pgbench_w w_ext "$1" "$TMP/pgbench_ext.out" & local pe=$!
    pgbench_w w_plain "$1" "$TMP/pgbench_plain.out" & local pp=$!
    wait $pe || { cat "$TMP/pgbench_ext.out" >&2; die "pgbench $1 on w_ext failed"; }
    wait $pp || { cat "$TMP/pgbench_plain.out" >&2; die "pgbench $1 on w_plain failed"; }
    record_run "$1" extension "$2" simultaneous "$TMP/pgbench_ext.out"
    record_run "$1" plain "$2" simultaneous "$TMP/pgbench_plain.out"
}
meta load_before_writes "$(cut -d' ' -f1-3 /proc/loadavg)"
say "writes: $SCENARIOS; $W_CLIENTS clients, ${W_DURATION}s runs, ABBA x $W_ROUNDS, then both at once x $W_ROUNDS"
for ((round = 1; round <= W_ROUNDS; round++)); do
    for s in $SCENARIOS; do
        run_alone "$s" extension $((2 * round - 1))
        run_alone "$s" plain $((2 * round - 1))
        run_alone "$s" plain $((2 * round))
        run_alone "$s" extension $((2 * round))
        run_together "$s" "$round"
    done
done
meta load_after_writes "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 5. report ---------------------------------------------------------------------------------

say "report"
LOAD_END=$(loadavg)
pg_version=$(q bench "SELECT version()")
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
mem=$(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GB"}')
settings=$(q bench "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
                    WHERE name IN ('shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather', 'autovacuum', 'fsync', 'synchronous_commit')")
{
    echo "# The design note's table against the extension, $SCALE scale: $(title_of "$VERSION"), $DATE"
    echo
    echo "- command: \`test/bench/run.sh $SCALE\`"
    echo "- machine: $(nproc) cores${cpu:+ ($cpu)}, $mem memory; shared with other work while it ran: load average (1, 5, 15 min) $LOAD_START at the start, $LOAD_END at the end"
    echo "- server: $pg_version"
    echo "- settings: $settings; s3scan_jobs.refresh_interval=0 except while measuring the worker"
    echo "- data: measured jobs of $(sed 's/ /, /g' <<<"$SIZES") objects ($MEASURED_FINDINGS findings each) among small jobs of $SMALL_AVG objects on average (1 to $((2 * SMALL_AVG - 1))), one finding per $FIND_EVERY objects; $(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.jobs") jobs, $(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.job_objects") objects, $(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.findings") findings at the end"
    echo "- baseline: the design note's job_summary and job_progress, verbatim (test/bench/sql/baseline_views.sql), in schema baseline over the same tables"
    echo "- run time: $((SECONDS - START_TIME)) s"
    echo
    psql_db bench -At -f - <"$SQL/render.sql"
    echo
    echo "![read latency vs job size]($(basename "$OUT_PNG"))"
} >"$OUT_MD"

q bench "SELECT * FROM bench.chart_data()" | tr '|' '\t' >"$TMP/chart.tsv"
smin=$(tr ' ' '\n' <<<"$SIZES" | sort -n | head -1)
smax=$(tr ' ' '\n' <<<"$SIZES" | sort -n | tail -1)
gnuplot <<EOF || note "gnuplot failed"
set terminal pngcairo size 1100,650 noenhanced font ",10"
set output '$OUT_PNG'
set title "s3scan_jobs $VERSION ($REVISION): one job's summary, median latency ($SCALE scale, $DATE, $(nproc) cores)"
set logscale xy
set xrange [$smin / 2.0 : $smax * 2.0]
set xlabel 'objects in the job'
set ylabel 'median latency (ms), log scale'
set format x '%.0s%c'
set grid
set key outside right top Left reverse
set datafile separator '\t'
\$NOTE << EOD
1000	50
100000	500
1000000	5000
EOD
plot '$TMP/chart.tsv' using 1:2 with linespoints lw 2 pt 7 title "note's job_summary", \\
     '' using 1:3 with linespoints lw 2 pt 5 title 'extension job_summary', \\
     '' using 1:6 with linespoints lw 2 pt 9 title 'job_status(id, true)', \\
     '' using 1:4 with linespoints lw 2 pt 11 title 'job_progress lookup', \\
     '' using 1:5 with linespoints lw 2 pt 13 title 'job_status(id) cached', \\
     '' using 1:7 with linespoints lw 1 dt 2 pt 11 title 'job_progress lookup, client round trip', \\
     '' using 1:8 with linespoints lw 1 dt 2 pt 13 title 'job_status(id) cached, client round trip', \\
     \$NOTE using 1:2 with points pt 2 ps 2 lc rgb 'black' title "note's published job_summary figures"
EOF

cat "$OUT_MD"
echo
say "wrote $OUT_MD and $OUT_PNG"
echo
echo "Targets:"
q bench "SELECT verdict || ': ' || target || ' @ ' || point || ': ' || measured FROM bench.target_results()"
REPORTED=1
failed=$(q bench "SELECT count(*) FROM bench.checks WHERE NOT ok")
if [ "$failed" != 0 ]; then
    echo "!!! $failed CHECKS FAILED (see the Checks section of $OUT_MD)"
    exit 1
fi
echo "Checks: all $(q bench "SELECT count(*) FROM bench.checks") true (the Checks section of $OUT_MD)"
