#!/usr/bin/env bash
# The upgrade from 1.0 to the current version, and a restore, measured: a 1.0 database with N
# objects (default 10M, in 100K jobs, and N/10 findings), then
#   1. ALTER EXTENSION s3scan_jobs UPDATE (every update script from 1.0 to the default version, in
#      one transaction; 1.1's creates the counters and counts every row) while a client sends the
#      scanner's per-object UPDATE one after the other: the update's time, and the longest the
#      client's UPDATE waited (how long writers were blocked);
#   2. verify_job_counters() after it (must return no row), and its time;
#   3. pg_dump -Fc of the upgraded database, pg_restore into a new database (the current version:
#      the counter triggers count the restored rows) against the same dump restored into a
#      database where the extension was created at 1.0 (no counters): the restore's cost of the
#      counters; then verify_job_counters() in the restored database.
# Prints and writes test/bench/results/<date>-upgrade-<version>-<revision>.md. Not part of the
# test suite.
#
#   sudo test/bench/upgrade.sh            # 10M objects (about 15 minutes on 2 cores)
#   sudo test/bench/upgrade.sh 1000000    # another size
#
# Builds and installs the extension (as root) unless BENCH_SKIP_BUILD=1; one throwaway server
# (throwaway_server.sh). Environment: BENCH_PORT (default 55495), BENCH_SKIP_BUILD=1, BENCH_KEEP=1,
# BENCH_RESULTS, S3SCAN_PG_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init upgrade 55495
N=${1:-10000000}
JOBS=$(( N / 100 > 100000 ? 100000 : (N / 100 > 0 ? N / 100 : 1) ))
PER_JOB=$(( N / JOBS ))
FROM=1.0
ms() { date +%s%3N; }

ensure_packages
build_and_install
TO=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$("$PGBIN/pg_config" --sharedir)/extension/s3scan_jobs.control")
[ -n "$TO" ] || die "no default_version in the installed s3scan_jobs.control"

start_throwaway_server "s3scan_jobs.database = 'scans'
s3scan_jobs.refresh_interval = 0
shared_buffers = 1GB
maintenance_work_mem = 512MB
work_mem = 64MB
max_wal_size = 16GB
checkpoint_timeout = 30min
synchronous_commit = off
autovacuum = off"
DIR=$TMP
PSQL=("$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1)
ON_EXIT='[ -f "$DIR/writer.pid" ] && kill -TERM "$(cat "$DIR/writer.pid")" 2>/dev/null'
LOAD_START=$(loadavg)

say "a $FROM database: $JOBS jobs of $PER_JOB objects, $(( N / 10 )) findings"
as_pg "${PSQL[@]}" -d postgres -c 'CREATE DATABASE scans'
as_pg "${PSQL[@]}" -d scans <<SQL
CREATE EXTENSION s3scan_jobs VERSION '$FROM';
CREATE ROLE scanner_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_objects, findings TO scanner_app;
INSERT INTO jobs (job_id, bucket, prefix)
SELECT ('40000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bucket-' || j % 100, 'scan-' || j || '/'
FROM generate_series(1, $JOBS) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ('40000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bucket-' || j % 100,
       'scan-' || j || '/object-' || k, md5(j || '-' || k),
       (ARRAY['queued', 'processing', 'succeeded', 'failed'])[1 + (j + k) % 4]
FROM generate_series(1, $JOBS) j, generate_series(1, $PER_JOB) k;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT ('40000000-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'bucket-' || j % 100,
       'scan-' || j || '/object-' || k, md5(j || '-' || k), 'email', '****', k
FROM generate_series(1, $JOBS) j, generate_series(1, GREATEST($PER_JOB / 10, 1)) k;
VACUUM ANALYZE jobs, job_objects, findings;
CHECKPOINT;
SQL

# The writer: the scanner worker's per-object UPDATE, one after the other, latency of each logged;
# stopped by its own pid (the file it writes) once the update has committed.
cat > "$DIR/update.sql" <<'SQL'
\set id random(1, :maxid)
UPDATE job_objects SET status = 'succeeded', last_error = NULL WHERE id = :id;
SQL
chmod 644 "$DIR/update.sql"
MAXID=$(as_pg "${PSQL[@]}" -d scans -At -c 'SELECT max(id) FROM job_objects')

say "ALTER EXTENSION s3scan_jobs UPDATE ($FROM -> $TO) with a writer running"
(cd "$DIR" && as_pg sh -c 'echo $$ > "$0"; exec "$@"' "$DIR/writer.pid" \
    "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -n -c 1 -T 600 -D maxid="$MAXID" -f "$DIR/update.sql" \
    --log --log-prefix="$DIR/writer" scans) >"$DIR/pgbench.out" 2>&1 &
WRITER=$!
sleep 3
t0=$(ms)
as_pg "${PSQL[@]}" -d scans -c "ALTER EXTENSION s3scan_jobs UPDATE TO '$TO'"
t1=$(ms)
UPDATE_MS=$(( t1 - t0 ))
sleep 3
kill -TERM "$(cat "$DIR/writer.pid")" 2>/dev/null || true
wait $WRITER || true
rm -f "$DIR/writer.pid"
VERSION=$(ext_version scans)
[ "$VERSION" = "$TO" ] || die "the update left version $VERSION, not $TO"
# pgbench --log: client, transaction no, latency (us), script, epoch, us
WRITER_MAX_MS=$(cat "$DIR"/writer.* | awk '{ if ($3 > m) m = $3 } END { printf "%.0f", m / 1000 }')
WRITER_N=$(cat "$DIR"/writer.* | wc -l)
WRITER_MEDIAN_MS=$(cat "$DIR"/writer.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END { printf "%.2f", a[int((NR+1)/2)] / 1000 }')
say "update: ${UPDATE_MS} ms; the writer's longest UPDATE: ${WRITER_MAX_MS} ms (median ${WRITER_MEDIAN_MS} ms, $WRITER_N updates)"

t0=$(ms)
DIFFER=$(as_pg "${PSQL[@]}" -d scans -At -c 'SELECT count(*) FROM verify_job_counters()')
VERIFY_MS=$(( $(ms) - t0 ))
LIVE_GRANT=$(as_pg "${PSQL[@]}" -d scans -At -c "SELECT has_table_privilege('scanner_app', 'job_progress_live', 'SELECT')")
say "verify_job_counters(): $DIFFER differing jobs, ${VERIFY_MS} ms; scanner_app may read job_progress_live: $LIVE_GRANT"

say "pg_dump -Fc of the $TO database"
t0=$(ms)
as_pg "$PGBIN/pg_dump" -h "$DIR" -p "$PORT" -U postgres -Fc -f "$DIR/scans.dump" scans
DUMP_MS=$(( $(ms) - t0 ))

restore_into() {  # database, version to create first (empty: let pg_restore create the default)
    as_pg "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
    [ -n "$2" ] && as_pg "${PSQL[@]}" -d "$1" -c "CREATE EXTENSION s3scan_jobs VERSION '$2'"
    local t0
    t0=$(ms)
    as_pg "$PGBIN/pg_restore" -h "$DIR" -p "$PORT" -U postgres -d "$1" "$DIR/scans.dump" 2>"$DIR/restore-$1.err" || true
    echo $(( $(ms) - t0 ))
}
say "pg_restore into a $FROM database (no counters) and into $TO, alternating (ABBA)"
RA_FROM=$(restore_into restored_from "$FROM"); RA_TO=$(restore_into restored_to "")
RB_TO=$(restore_into restored_to ""); RB_FROM=$(restore_into restored_from "$FROM")
RESTORED_VERSION=$(ext_version restored_to)
RESTORED_DIFFER=$(as_pg "${PSQL[@]}" -d restored_to -At -c 'SELECT count(*) FROM verify_job_counters()')
RESTORED_OBJECTS=$(as_pg "${PSQL[@]}" -d restored_to -At -c 'SELECT sum(total_objects) FROM job_progress_live')
say "restore: $FROM ${RA_FROM} / ${RB_FROM} ms, $RESTORED_VERSION ${RA_TO} / ${RB_TO} ms; restored: $RESTORED_DIFFER differing jobs, $RESTORED_OBJECTS objects counted"
LOAD_END=$(loadavg)

OUT=$(result_file upgrade md "$VERSION")
{
    echo "# Upgrade $FROM -> $TO and restore at $N objects: $(title_of "$VERSION"), $DATE"
    echo
    echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') by \`test/bench/upgrade.sh $N\`; $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB memory,"
    echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), shared_buffers 1GB, work_mem 64MB, synchronous_commit off, autovacuum off."
    echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $LOAD_END (the machine is shared: other work ran beside this)."
    echo
    echo "Data: $JOBS jobs of $PER_JOB objects ($N), $(( N / 10 )) findings, created with the extension at $FROM."
    echo
    echo "| measure | result |"
    echo "|---|---|"
    echo "| \`ALTER EXTENSION s3scan_jobs UPDATE\` $FROM -> $TO (creates the counters, counts every row) | ${UPDATE_MS} ms |"
    echo "| longest per-object UPDATE of a client writing through it (writers blocked at most) | ${WRITER_MAX_MS} ms |"
    echo "| the writer's median UPDATE over the run | ${WRITER_MEDIAN_MS} ms ($WRITER_N UPDATEs) |"
    echo "| \`verify_job_counters()\` after the update: differing jobs / time | $DIFFER / ${VERIFY_MS} ms |"
    echo "| a role with SELECT on the three tables may read \`job_progress_live\` after the update | $LIVE_GRANT |"
    echo "| \`pg_dump -Fc\` of the $TO database | ${DUMP_MS} ms |"
    echo "| \`pg_restore\` into a database with the extension at $FROM (no counters), two runs | ${RA_FROM} ms, ${RB_FROM} ms |"
    echo "| \`pg_restore\` into a new database ($RESTORED_VERSION: the triggers count the restored rows), two runs | ${RA_TO} ms, ${RB_TO} ms |"
    echo "| \`verify_job_counters()\` in the restored $RESTORED_VERSION database: differing jobs / objects counted | $RESTORED_DIFFER / $RESTORED_OBJECTS |"
    echo
    echo "The update runs every script from $FROM to $TO in one transaction. 1.1's creates the counter"
    echo "triggers, whose CREATE TRIGGER statements take SHARE ROW EXCLUSIVE locks on job_objects and"
    echo "findings, held until the update commits, and counts every row under them, so that no change"
    echo "can slip between the count and the first delta: writers wait for the whole update."
} > "$OUT"
REPORTED=1
cat "$OUT"
say "wrote $OUT"
