#!/usr/bin/env bash
# Version 1.1's upgrade path and restore, measured (issue 9, point 6): a 1.0 database with N objects
# (default 10M, in 100K jobs, and N/10 findings), then
#   1. ALTER EXTENSION s3scan_jobs UPDATE while a client sends the scanner's per-object UPDATE one
#      after the other: the update's time, and the longest the client's UPDATE waited (how long
#      writers were blocked);
#   2. verify_job_counters() after it (must return no row), and its time;
#   3. pg_dump -Fc of the 1.1 database, pg_restore into a new database: with 1.1 (the counter
#      triggers count the restored rows) against the same dump restored into a database where the
#      extension was created at 1.0 (no counters): the restore's cost of the counters; then
#      verify_job_counters() in the restored 1.1 database.
# Prints and writes test/bench/results/<date>-upgrade.md. Not part of the test suite.
#
#   sudo test/bench/upgrade.sh            # 10M objects (about 15 minutes on 2 cores)
#   sudo test/bench/upgrade.sh 1000000    # another size
#
# Builds and installs the extension (as root) unless BENCH_SKIP_BUILD=1; one throwaway server as the
# user postgres in a temporary directory, Unix socket only (BENCH_PORT, default 55496).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PGBIN=${S3SCAN_PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${BENCH_PORT:-55496}
N=${1:-10000000}
JOBS=$(( N / 100 > 100000 ? 100000 : (N / 100 > 0 ? N / 100 : 1) ))
PER_JOB=$(( N / JOBS ))
OUT=$HERE/results/$(date +%Y-%m-%d)-upgrade.md
START=$SECONDS
say() { printf '[upgrade %4ds] %s\n' $((SECONDS - START)) "$*"; }

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    make -s -C "$REPO" PG_CONFIG="$PGBIN/pg_config" -j2 >/dev/null
    make -s -C "$REPO" PG_CONFIG="$PGBIN/pg_config" install >/dev/null
fi

DIR=$(mktemp -d /tmp/s3scan_upgrade_bench.XXXXXX)
chown postgres "$DIR"
as_pg() { su postgres -s /bin/bash -c "$*"; }
cleanup() { as_pg "$PGBIN/pg_ctl -D $DIR/data -m immediate stop" >/dev/null 2>&1 || true; [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$DIR"; }
trap cleanup EXIT
PSQL="$PGBIN/psql -h $DIR -p $PORT -X -q -v ON_ERROR_STOP=1"
ms() { date +%s%3N; }

as_pg "$PGBIN/initdb -D $DIR/data -A trust" >/dev/null
cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DIR'
port = $PORT
shared_preload_libraries = 's3scan_jobs'
s3scan_jobs.database = 'scans'
s3scan_jobs.refresh_interval = 0
shared_buffers = 1GB
maintenance_work_mem = 512MB
work_mem = 64MB
max_wal_size = 16GB
checkpoint_timeout = 30min
synchronous_commit = off
autovacuum = off
CONF
as_pg "$PGBIN/pg_ctl -D $DIR/data -l $DIR/log -w start" >/dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

say "a 1.0 database: $JOBS jobs of $PER_JOB objects, $(( N / 10 )) findings"
as_pg "$PSQL -d postgres -c 'CREATE DATABASE scans'"
as_pg "$PSQL -d scans" <<SQL
CREATE EXTENSION s3scan_jobs VERSION '1.0';
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

# The writer: the scanner worker's per-object UPDATE, one after the other, latency of each logged.
cat > "$DIR/update.sql" <<'SQL'
\set id random(1, :maxid)
UPDATE job_objects SET status = 'succeeded', last_error = NULL WHERE id = :id;
SQL
chown postgres "$DIR/update.sql"
MAXID=$(as_pg "$PSQL -d scans -At -c 'SELECT max(id) FROM job_objects'")

say "ALTER EXTENSION s3scan_jobs UPDATE with a writer running"
as_pg "cd $DIR && $PGBIN/pgbench -h $DIR -p $PORT -n -c 1 -T 600 -D maxid=$MAXID -f $DIR/update.sql --log --log-prefix=$DIR/writer scans" >"$DIR/pgbench.out" 2>&1 &
WRITER=$!
sleep 3
t0=$(ms)
as_pg "$PSQL -d scans -c 'ALTER EXTENSION s3scan_jobs UPDATE'"
t1=$(ms)
UPDATE_MS=$(( t1 - t0 ))
sleep 3
pkill -INT -f "pgbench -h $DIR" || true
wait $WRITER || true
# pgbench --log: client, transaction no, latency (us), script, epoch, us
WRITER_MAX_MS=$(cat "$DIR"/writer.* | awk '{ if ($3 > m) m = $3 } END { printf "%.0f", m / 1000 }')
WRITER_N=$(cat "$DIR"/writer.* | wc -l)
WRITER_MEDIAN_MS=$(cat "$DIR"/writer.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END { printf "%.2f", a[int((NR+1)/2)] / 1000 }')
say "update: ${UPDATE_MS} ms; the writer's longest UPDATE: ${WRITER_MAX_MS} ms (median ${WRITER_MEDIAN_MS} ms, $WRITER_N updates)"

t0=$(ms)
DIFFER=$(as_pg "$PSQL -d scans -At -c 'SELECT count(*) FROM verify_job_counters()'")
VERIFY_MS=$(( $(ms) - t0 ))
LIVE_GRANT=$(as_pg "$PSQL -d scans -At -c \"SELECT has_table_privilege('scanner_app', 'job_progress_live', 'SELECT')\"")
say "verify_job_counters(): $DIFFER differing jobs, ${VERIFY_MS} ms; scanner_app may read job_progress_live: $LIVE_GRANT"

say "pg_dump -Fc of the 1.1 database"
t0=$(ms)
as_pg "$PGBIN/pg_dump -h $DIR -p $PORT -Fc -f $DIR/scans.dump scans"
DUMP_MS=$(( $(ms) - t0 ))

restore_into() {  # database, version to create first (empty: let pg_restore create the default)
    as_pg "$PSQL -d postgres -c 'DROP DATABASE IF EXISTS $1' -c 'CREATE DATABASE $1'"
    as_pg "$PSQL -d $1 -c 'CREATE ROLE scanner_app'" >/dev/null 2>&1 || true
    [ -n "$2" ] && as_pg "$PSQL -d $1 -c \"CREATE EXTENSION s3scan_jobs VERSION '$2'\""
    local t0
    t0=$(ms)
    as_pg "$PGBIN/pg_restore -h $DIR -p $PORT -d $1 $DIR/scans.dump" 2>"$DIR/restore-$1.err" || true
    echo $(( $(ms) - t0 ))
}
say "pg_restore into a 1.0 database (no counters) and into 1.1, alternating (ABBA)"
R10A=$(restore_into restored_10 1.0); R11A=$(restore_into restored_11 "")
R11B=$(restore_into restored_11 ""); R10B=$(restore_into restored_10 1.0)
RESTORED_DIFFER=$(as_pg "$PSQL -d restored_11 -At -c 'SELECT count(*) FROM verify_job_counters()'")
RESTORED_OBJECTS=$(as_pg "$PSQL -d restored_11 -At -c 'SELECT sum(total_objects) FROM job_progress_live'")
say "restore: 1.0 ${R10A} / ${R10B} ms, 1.1 ${R11A} / ${R11B} ms; restored 1.1: $RESTORED_DIFFER differing jobs, $RESTORED_OBJECTS objects counted"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "# Upgrade 1.0 -> 1.1 and restore at $N objects"
    echo
    echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') by \`test/bench/upgrade.sh $N\`; $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB memory,"
    echo "PostgreSQL $($PGBIN/postgres --version | awk '{print $3}'), shared_buffers 1GB, work_mem 64MB, synchronous_commit off, autovacuum off."
    echo "Load average at start: $LOAD_START; at the end: $LOAD_END (the machine is shared: other work ran beside this)."
    echo
    echo "Data: $JOBS jobs of $PER_JOB objects ($N), $(( N / 10 )) findings, created with the extension at 1.0."
    echo
    echo "| measure | result |"
    echo "|---|---|"
    echo "| \`ALTER EXTENSION s3scan_jobs UPDATE\` (creates the counters, counts every row) | ${UPDATE_MS} ms |"
    echo "| longest per-object UPDATE of a client writing through it (writers blocked at most) | ${WRITER_MAX_MS} ms |"
    echo "| the writer's median UPDATE over the run | ${WRITER_MEDIAN_MS} ms ($WRITER_N UPDATEs) |"
    echo "| \`verify_job_counters()\` after the update: differing jobs / time | $DIFFER / ${VERIFY_MS} ms |"
    echo "| a role with SELECT on the three tables may read \`job_progress_live\` after the update | $LIVE_GRANT |"
    echo "| \`pg_dump -Fc\` of the 1.1 database | ${DUMP_MS} ms |"
    echo "| \`pg_restore\` into a database with the extension at 1.0 (no counters), two runs | ${R10A} ms, ${R10B} ms |"
    echo "| \`pg_restore\` into a new database (1.1: the triggers count the restored rows), two runs | ${R11A} ms, ${R11B} ms |"
    echo "| \`verify_job_counters()\` in the restored 1.1 database: differing jobs / objects counted | $RESTORED_DIFFER / $RESTORED_OBJECTS |"
    echo
    echo "Writers wait for the update because its CREATE TRIGGER statements take SHARE ROW EXCLUSIVE"
    echo "locks on job_objects and findings, held until the update commits; the recount runs under them,"
    echo "so that no change can slip between the count and the first delta."
} > "$OUT"
cat "$OUT"
