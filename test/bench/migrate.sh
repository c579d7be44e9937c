#!/usr/bin/env bash
# The migration's downtime: s3scan_jobs_migrate.sql on the scanner system's own database
# (test/fixtures/existing-deployment.sql) with 1M and then 10M objects, while a client keeps
# sending the scanner's per-object UPDATE and the API's cached read (SELECT ... FROM job_progress
# WHERE job_id = $1) one after the other. Prints and writes
# test/bench/results/<date>-migrate-<version>-<revision>.md: the migration's time, each of its
# statements' time (from the server log), how long the client's statements waited at most, the
# locks held, and the API's own real-time statements before and after. Not part of the test suite.
#
#   sudo test/bench/migrate.sh                 # 1M and 10M objects (about 20 minutes on 2 cores)
#   sudo test/bench/migrate.sh 200000          # other sizes, objects
#
# Builds and installs the extension (as root) unless BENCH_SKIP_BUILD=1; one throwaway server
# (throwaway_server.sh). Environment: BENCH_PORT (default 55497), BENCH_SKIP_BUILD=1, BENCH_KEEP=1,
# BENCH_RESULTS, S3SCAN_PG_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init migrate 55497
SIZES=${*:-1000000 10000000}
LOAD_START=$(loadavg)

ensure_packages
build_and_install
SCRIPT=$("$PGBIN/pg_config" --sharedir)/extension/s3scan_jobs_migrate.sql

start_throwaway_server "s3scan_jobs.database = 'scans'
s3scan_jobs.refresh_interval = 0
shared_buffers = 1GB
maintenance_work_mem = 512MB
max_wal_size = 16GB
checkpoint_timeout = 30min
synchronous_commit = off
autovacuum = off
log_line_prefix = '%m [%p] %a '"
DIR=$TMP
cp "$REPO/test/fixtures/existing-deployment.sql" "$DIR/"
chmod 644 "$DIR/existing-deployment.sql"
ON_EXIT='touch "$DIR/stop"'    # the client and the lock sampler stop
PSQL=("$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1)
: >"$DIR/report.md"

for N in $SIZES; do
    JOBS=$(( N / 1000 )); [ $JOBS -lt 1 ] && JOBS=1
    FINDINGS=$(( N / 10 ))
    BIG=$(( N / 10 )) BIGJOB=00000000-0000-4000-8000-b19000000000
    say "$N objects: building the scanner system's database ($JOBS jobs, $FINDINGS findings)"
    as_pg "${PSQL[@]}" -d postgres -c 'DROP DATABASE IF EXISTS scans' -c 'DROP ROLE IF EXISTS scan_owner' -c 'CREATE ROLE scan_owner LOGIN' -c 'CREATE DATABASE scans OWNER scan_owner'
    as_pg "${PSQL[@]}" -d scans -U scan_owner -f "$DIR/existing-deployment.sql" >/dev/null 2>&1
    # Loaded without the secondary indexes, which are built again afterwards: the same end state, sooner.
    grep -E '^CREATE (UNIQUE )?INDEX' "$DIR/existing-deployment.sql" > "$DIR/indexes.sql"
    as_pg "${PSQL[@]}" -d scans -U scan_owner <<SQL
SELECT format('DROP INDEX %I', indexname) FROM pg_indexes
WHERE schemaname = 'public' AND indexname LIKE 'idx\_%' AND indexname <> 'idx_job_progress_job_id' \gexec
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bucket-' || j % 10, 'p/', 'arn:' || j,
       now() - j * interval '1 min', now() - j * interval '1 min'
FROM generate_series(1, $JOBS) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status, last_error, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad((1 + g / 1000)::text, 12, '0'))::uuid, 'bucket-' || (1 + g / 1000) % 10,
       'p/' || g, 'e', (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4], NULL, now()
FROM generate_series(0, $N - 1) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad((1 + g * 10 / 1000)::text, 12, '0'))::uuid, 'bucket-' || (1 + g * 10 / 1000) % 10,
       'p/' || (g * 10), 'e', 'ssn', '***', 'c', 1, now()
FROM generate_series(0, $FINDINGS - 1) g;
-- One big job beside them ($BIG objects, a finding every 10th), whose real-time reads are timed
-- before and after the migration.
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at)
VALUES ('$BIGJOB', 'big', 'p/', 'arn:big', now(), now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, last_error, updated_at)
SELECT '$BIGJOB', 'big', 'p/' || g, 'e', (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4], NULL, now()
FROM generate_series(0, $BIG - 1) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
SELECT '$BIGJOB', 'big', 'p/' || (g * 10), 'e', 'ssn', '***', 'c', 1, now() FROM generate_series(0, $BIG / 10 - 1) g;
SQL
    as_pg "${PSQL[@]}" -d scans -U scan_owner -f "$DIR/indexes.sql" 2>&1 | grep -v 'already exists' || true
    as_pg "${PSQL[@]}" -d scans -U scan_owner -c 'REFRESH MATERIALIZED VIEW job_progress'
    as_pg "${PSQL[@]}" -d scans -c 'VACUUM ANALYZE'
    as_pg "${PSQL[@]}" -d postgres -c CHECKPOINT
    size=$(as_pg "${PSQL[@]}" -At -d scans -c "SELECT pg_size_pretty(pg_database_size('scans'))")

    # The API's own real-time statements on the big job (interface, 5.), 5 times each, median.
    api_reads() {  # label
        as_pg "${PSQL[@]}" -At -d scans <<SQL
CREATE TEMP TABLE t (what text, ms float8);
DO \$\$
DECLARE t0 timestamptz; n bigint;
BEGIN
    FOR i IN 1..5 LOOP
        t0 := clock_timestamp();
        PERFORM status, count(*) FROM job_objects WHERE job_id = '$BIGJOB' GROUP BY status;
        INSERT INTO t VALUES ('per-status count', extract(epoch FROM clock_timestamp() - t0) * 1000);
        t0 := clock_timestamp();
        SELECT count(*) INTO n FROM findings WHERE job_id = '$BIGJOB';
        INSERT INTO t VALUES ('findings count', extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
END
\$\$;
SELECT string_agg(format('%s %s ms', what, round(m::numeric, 1)), ', ' ORDER BY what)
FROM (SELECT what, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS m FROM t GROUP BY what) s;
SQL
    }
    API_BEFORE=$(api_reads)
    say "$N objects: the API's real-time statements on the system's schema: $API_BEFORE"

    # The client: one statement at a time, each timed; it stops when told to.
    cat > "$DIR/client.sh" <<CLIENT
#!/bin/bash
i=0
while [ ! -f $DIR/stop ]; do
    i=\$((i + 1)); j=\$(( 1 + i % $JOBS )); k=\$(( (j - 1) * 1000 + i % 1000 ))
    job=\$(printf '00000000-0000-4000-8000-%012d' \$j)
    t0=\$(date +%s%N)
    ${PSQL[*]} -d scans -c "UPDATE job_objects SET status = 'succeeded', updated_at = now() WHERE job_id = '\$job' AND bucket = 'bucket-\$(( j % 10 ))' AND key = 'p/\$k' AND etag = 'e'" >/dev/null 2>>$DIR/client.err || echo "update failed" >> $DIR/client.err
    t1=\$(date +%s%N)
    ${PSQL[*]} -d scans -c "SELECT job_id, total_objects, succeeded_count FROM job_progress WHERE job_id = '\$job'" >/dev/null 2>>$DIR/client.err || echo "read failed" >> $DIR/client.err
    t2=\$(date +%s%N)
    echo "\$t0 \$(( (t1 - t0) / 1000000 )) \$(( (t2 - t1) / 1000000 ))" >> $DIR/client.log
    sleep 0.01
done
CLIENT
    chmod +x "$DIR/client.sh"; rm -f "$DIR/stop" "$DIR/client.log" "$DIR/client.err"; touch "$DIR/client.err"
    [ "$(id -u)" -ne 0 ] || chown postgres "$DIR"/client.*
    as_pg "$DIR/client.sh" & client=$!
    BG_PIDS+=("$client")
    # The locks the migration holds, sampled every 100 ms.
    ( while [ ! -f "$DIR/stop" ]; do
          as_pg "${PSQL[@]}" -At -d scans -c "SELECT to_char(clock_timestamp(), 'HH24:MI:SS.MS'), l.mode, coalesce(c.relname, l.locktype)
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid LEFT JOIN pg_class c ON c.oid = l.relation
                 WHERE a.application_name = 's3scan_migrate' AND l.granted AND l.mode = 'AccessExclusiveLock'
                   AND c.relname IN ('jobs', 'job_objects', 'findings', 'job_progress', 'materialized_view_refresh_log')" \
              >> "$DIR/locks.log" 2>/dev/null || true
          sleep 0.1
      done ) & sampler=$!
    BG_PIDS+=("$sampler")
    sleep 3
    say "$N objects ($size): migrating"
    log_at=$(stat -c %s "$DIR/server.log")
    t0=$(date +%s%N)
    as_pg env PGAPPNAME=s3scan_migrate PGOPTIONS='-c log_min_duration_statement=0' "${PSQL[@]}" -d scans -f "$SCRIPT" > "$DIR/migrate.out" 2>&1 ||
        { cat "$DIR/migrate.out" >&2; die "the migration failed"; }
    t1=$(date +%s%N)
    sleep 3
    touch "$DIR/stop"; wait $client $sampler 2>/dev/null || true
    BG_PIDS=()
    total=$(( (t1 - t0) / 1000000 ))
    moved=$(grep -o 'moved [^;]*; kept aside .*' "$DIR/migrate.out" | head -1)
    read max_update max_read samples < <(awk -v s="$t0" '$1 >= s - 3000000000 {n++; if ($2 > u) u = $2; if ($3 > r) r = $3} END {print u + 0, r + 0, n + 0}' "$DIR/client.log")
    errors=$(grep -c . "$DIR/client.err" || true)
    as_pg "${PSQL[@]}" -d scans -c 'VACUUM ANALYZE'
    API_AFTER=$(api_reads)
    STATUS_AFTER=$(as_pg "${PSQL[@]}" -At -d scans <<SQL
SELECT 1 FROM job_status('$BIGJOB', true);
\\timing on
SELECT 1 FROM job_status('$BIGJOB', true);
SQL
)
    STATUS_AFTER=$(grep -o 'Time: [0-9.]* ms' <<<"$STATUS_AFTER" | head -1)
    say "$N objects: after the migration (and a VACUUM ANALYZE): $API_AFTER; job_status(id, true) ${STATUS_AFTER#Time: }"
    locked=$(awk -F'|' '{print $1}' "$DIR/locks.log" | sort -u | sed -n '1p;$p' | paste -sd/ - | sed 's|/| / |')
    say "$N objects: ${total} ms; longest client UPDATE ${max_update} ms, read ${max_read} ms; $errors client errors"
    {
        echo "## $N objects, $FINDINGS findings, $JOBS jobs (database $size)"
        echo
        echo "| | |"
        echo "|---|---:|"
        echo "| migration, start to commit | $(awk -v t=$total 'BEGIN {printf "%.1f s", t / 1000}') |"
        echo "| longest wait of a client statement: writers and readers are blocked this long | $(awk -v u=$max_update -v r=$max_read 'BEGIN {printf "%.1f s", (u > r ? u : r) / 1000}') |"
        echo "| longest wait of the client's per-object UPDATE / of its cached read | $(awk -v u=$max_update -v r=$max_read 'BEGIN {printf "%.1f s / %.1f s", u / 1000, r / 1000}') |"
        echo "| client statements that failed | $errors (of $((samples * 2)) sent while it ran) |"
        echo "| AccessExclusive locks on the scanner's tables seen from / to | ${locked:-none sampled} |"
        echo
        echo "The API's own real-time statements on the job of $BIG objects (median of 5), on the system's schema"
        echo "before the migration: $API_BEFORE; after it, and a \`VACUUM ANALYZE\`: $API_AFTER. The extension's"
        echo "\`job_status(id, true)\` for that job, after: ${STATUS_AFTER#Time: }."
        echo
        echo "Its output: \`$moved\`"
        echo
        echo "Its statements over 100 ms (server log, \`log_min_duration_statement = 0\`):"
        echo
        echo "| ms | statement |"
        echo "|---:|---|"
        tail -c +$((log_at + 1)) "$DIR/server.log" | grep 's3scan_migrate LOG:  duration:' \
          | sed -E 's/.*duration: ([0-9.]+) ms  statement: (.*)/\1|\2/' \
          | awk -F'|' '$1 > 100 {printf "| %.0f | `%s` |\n", $1, substr($2, 1, 90)}'
        echo
    } >> "$DIR/report.md"
    rm -f "$DIR/locks.log"
done
VERSION=$(ext_version scans)
OUT=$(result_file migrate md "$VERSION")
{
    echo "# The migration's downtime at $(echo $SIZES | sed 's/ / and /') objects: $(title_of "$VERSION"), $DATE"
    echo
    echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') by \`test/bench/migrate.sh $*\`; $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB memory,"
    echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), shared_buffers 1GB, synchronous_commit off."
    echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(loadavg) (the machine is shared; other work ran beside this)."
    echo
    echo "A client sends, one after the other for the whole run, the scanner worker's per-object"
    echo "\`UPDATE job_objects SET status = ..., updated_at = now() WHERE job_id = ... AND bucket = ... AND key = ... AND etag = ...\`"
    echo "and the API's cached read \`SELECT ... FROM job_progress WHERE job_id = ...\`, one statement at a"
    echo "time: whichever was in flight when the migration took its locks waited until it committed, so"
    echo "the longest wait of either is how long writers and readers were blocked."
    echo
    cat "$DIR/report.md"
} >"$OUT"
REPORTED=1
cat "$OUT"
say "wrote $OUT"
