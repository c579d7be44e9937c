#!/usr/bin/env bash
# Runs s3scan_jobs: a throwaway PostgreSQL 15 server with the extension preloaded and its
# refresh worker on, a sample scan loaded with the scanner clients' own statements, and
# job_status() answering, first in real time, then from the cache the worker refreshed.
# Installs what it needs on a fresh Debian machine (run as root there).
#
#   test/run-demo.sh          start the server, load the sample, show the answers (server stays up)
#   test/run-demo.sh stop     stop the server and remove its files
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_DIR=${DEMO_DIR:-/tmp/s3scan_jobs_demo}
PORT=${PORT:-55433}
DB=scans

if [ "${1:-}" = stop ]; then
    [ -d "$DEMO_DIR/data" ] && as_server_user "$PG_BIN/pg_ctl -D '$DEMO_DIR/data' -m fast stop" || true
    rm -rf "$DEMO_DIR"
    exit 0
fi

ensure_packages
build_and_install

if [ -d "$DEMO_DIR/data" ]; then
    as_server_user "$PG_BIN/pg_ctl -D '$DEMO_DIR/data' -m fast stop" >/dev/null 2>&1 || true
    rm -rf "$DEMO_DIR"
fi
mkdir -p "$DEMO_DIR"
[ "$(id -u)" -eq 0 ] && chown "$RUN_USER" "$DEMO_DIR"

log "starting a throwaway server in $DEMO_DIR (port $PORT)"
as_server_user "$PG_BIN/initdb -D '$DEMO_DIR/data' -A trust -U postgres >/dev/null"
cat >>"$DEMO_DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DEMO_DIR'
shared_preload_libraries = 's3scan_jobs'
s3scan_jobs.database = '$DB'
s3scan_jobs.refresh_interval = '5s'
CONF
as_server_user "$PG_BIN/pg_ctl -D '$DEMO_DIR/data' -l '$DEMO_DIR/server.log' -w start >/dev/null"

psql_demo() { as_server_user "$PG_BIN/psql -X -q -h '$DEMO_DIR' -p $PORT -U postgres -d $DB $*"; }
as_server_user "$PG_BIN/createdb -h '$DEMO_DIR' -p $PORT -U postgres $DB"
psql_demo -c "'CREATE EXTENSION s3scan_jobs'"

log "loading a sample scan with the clients' statements (3 jobs, 2,500 objects, findings)"
psql_demo -v ON_ERROR_STOP=1 <<'SQL'
-- The API creates jobs (with and without the workflow engine's execution ARN).
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at)
VALUES ('6f1d3c1e-0000-4000-8000-000000000001', 'acme-invoices', '2026/', 'arn:aws:states:eu-west-1:1:execution:scan:1', now());
INSERT INTO jobs (job_id, bucket, prefix, created_at)
VALUES ('6f1d3c1e-0000-4000-8000-000000000002', 'acme-logs', '', now());
INSERT INTO jobs (job_id, bucket, prefix, created_at)
VALUES ('6f1d3c1e-0000-4000-8000-000000000003', 'acme-empty', 'none/', now());
-- The workflow engine registers the listed objects in batches, in one transaction.
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT '6f1d3c1e-0000-4000-8000-000000000001', 'acme-invoices', '2026/inv-' || g || '.pdf', md5(g::text), 'queued', now()
FROM generate_series(1, 2000) g ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT '6f1d3c1e-0000-4000-8000-000000000002', 'acme-logs', 'app-' || g || '.log', md5(g::text), 'queued', now()
FROM generate_series(1, 500) g ON CONFLICT DO NOTHING;
COMMIT;
-- Scanner workers move objects along, one UPDATE per object.
UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now()
WHERE job_id = '6f1d3c1e-0000-4000-8000-000000000001' AND bucket = 'acme-invoices' AND key = '2026/inv-1.pdf' AND etag = md5('1');
UPDATE job_objects SET status = 'succeeded', updated_at = now()
WHERE job_id = '6f1d3c1e-0000-4000-8000-000000000001' AND key <= '2026/inv-5';
UPDATE job_objects SET status = 'processing', updated_at = now()
WHERE job_id = '6f1d3c1e-0000-4000-8000-000000000001' AND key > '2026/inv-5' AND key <= '2026/inv-6';
UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied', updated_at = now()
WHERE job_id = '6f1d3c1e-0000-4000-8000-000000000002' AND key LIKE 'app-1%';
UPDATE job_objects SET status = 'succeeded', updated_at = now()
WHERE job_id = '6f1d3c1e-0000-4000-8000-000000000002' AND status = 'queued';
-- Findings, de-duplicated on (bucket, key, etag, detector, byte_offset).
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
SELECT '6f1d3c1e-0000-4000-8000-000000000001', 'acme-invoices', '2026/inv-' || g || '.pdf', md5(g::text),
       'iban', 'DE89 **** **** 3000', 'pay to', 120, now()
FROM generate_series(1, 40) g
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
SQL

log "job_status right away: the jobs are newer than the last refresh, so it answers in real time"
psql_demo -c "\"SELECT s.bucket, s.total_objects, s.succeeded_count AS succeeded, s.failed_count AS failed, s.total_findings AS findings, round(s.progress_percent, 1) AS progress, s.status, s.data_source FROM jobs j, job_status(j.job_id) s ORDER BY s.bucket\""

log "waiting for the refresh worker to refresh job_progress"
for _ in $(seq 1 60); do
    n=$(as_server_user "$PG_BIN/psql -X -At -h '$DEMO_DIR' -p $PORT -U postgres -d $DB -c 'SELECT count(*) FROM job_progress'")
    [ "$n" = 3 ] && break
    sleep 1
done

log "job_status now: served from the cache (data_source cached, with its refresh time)"
psql_demo -c "\"SELECT s.bucket, s.total_objects, s.succeeded_count AS succeeded, s.failed_count AS failed, s.total_findings AS findings, round(s.progress_percent, 1) AS progress, s.status, s.data_source, s.cache_timestamp FROM jobs j, job_status(j.job_id) s ORDER BY s.bucket\""
log "the same job in real time"
psql_demo -c "\"SELECT total_objects, queued_count, processing_count, succeeded_count, failed_count, data_source FROM job_status('6f1d3c1e-0000-4000-8000-000000000001', real_time => true)\""
log "the same job in real time comes from its counters (since version 1.1): exact, checked against a recount"
psql_demo -c "\"SELECT (SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs') AS version, counter_maintenance() AS counters, (SELECT count(*) FROM job_counter_deltas) AS pending_deltas, (SELECT count(*) FROM verify_job_counters()) AS differing_jobs\""
log "the refresh worker"
psql_demo -c "\"SELECT database, pid, state, last_refresh_outcome, round(last_refresh_duration_ms::numeric, 1) AS last_ms, next_refresh_due FROM refresh_worker_status\""
psql_demo -c "\"SELECT pid, backend_type, query FROM pg_stat_activity WHERE backend_type LIKE 's3scan_jobs%'\""

cat <<EOT

The server keeps running. Connect with:
    su $RUN_USER -c "psql -h $DEMO_DIR -p $PORT -U postgres $DB"
Stop it and remove its files with:
    test/run-demo.sh stop
EOT
