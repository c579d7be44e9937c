#!/usr/bin/env bash
# What the refresh worker costs an idle database: 100,000 jobs of 10 objects, the worker
# refreshing every second, nothing written. Since 1.4 a pass that finds nothing changed since its
# last refresh records 'unchanged' instead of running REFRESH ... CONCURRENTLY. Reports, from
# refresh_history, the duration of the worker's real refreshes (the first pass, and one after a
# change) next to its 'unchanged' passes, and the server CPU the idle minute cost, in one run.
# Writes test/bench/results/<date>-idle-refresh-<version>-<revision>.md. Not part of the test
# suite.
#
#   sudo test/bench/idle_refresh.sh              # about 2 minutes
#
# Environment: JOBS (default 100000), IDLE_SECS (default 30), BENCH_PORT (default 55489),
# BENCH_SKIP_BUILD=1, BENCH_KEEP=1, BENCH_RESULTS, S3SCAN_PG_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init idle_refresh 55489
JOBS=${JOBS:-100000}
IDLE_SECS=${IDLE_SECS:-30}
LOAD_START=$(loadavg)

ensure_packages
build_and_install
start_throwaway_server "s3scan_jobs.database = 'bench'
s3scan_jobs.refresh_interval = '1s'
s3scan_jobs.fold_interval = '100ms'
shared_buffers = 512MB"
q() { as_pg "$PGBIN/psql" -X -q -At -d bench -v ON_ERROR_STOP=1 -c "$1"; }
as_pg "$PGBIN/createdb" bench
q "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version bench)
OUT=$(result_file idle-refresh md "$VERSION")

say "loading $JOBS jobs of 10 objects"
q "INSERT INTO public.jobs (job_id, bucket) SELECT md5(g::text)::uuid, 'b' FROM generate_series(1, $JOBS) g"
q "INSERT INTO public.job_objects (job_id, bucket, key, etag)
   SELECT md5(g::text)::uuid, 'b', 'k' || o, 'e' FROM generate_series(1, $JOBS) g, generate_series(1, 10) o"
q "VACUUM ANALYZE"
# The first worker refresh after the load, then an idle stretch.
wait_refreshed() {
    local after=$1 i
    for i in $(seq 1 600); do
        [ "$(q "SELECT count(*) > 0 FROM public.refresh_history WHERE origin = 'worker' AND outcome = 'refreshed' AND id > $after")" = t ] && return 0
        sleep 0.2
    done
    die "no worker refresh within 120 s"
}
wait_refreshed 0
MARK=$(q "SELECT max(id) FROM public.refresh_history")
say "idle for $IDLE_SECS s"
T0=$(server_ticks)
sleep "$IDLE_SECS"
T1=$(server_ticks)
MARK2=$(q "SELECT max(id) FROM public.refresh_history")
say "one change, then the next refresh"
q "UPDATE public.job_objects SET status = 'succeeded' WHERE id = 1"
wait_refreshed "$MARK2"
TICK=$(getconf CLK_TCK)
IDLE_CPU=$(awk -v a="$T0" -v b="$T1" -v t="$TICK" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f", (b - a) / t / s * 100 }')
ROWS=$(q "SELECT string_agg(format('| %s | %s | %s | %s |', x.what, x.passes, x.median, x.max), E'\n' ORDER BY x.ord)
          FROM (SELECT 1 AS ord, 'refreshed (the first pass, after the load)' AS what, count(*) AS passes,
                       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms))::text || ' ms' AS median,
                       round(max(duration_ms))::text || ' ms' AS max
                FROM public.refresh_history WHERE origin = 'worker' AND outcome = 'refreshed' AND id <= $MARK
                UNION ALL
                SELECT 2, 'unchanged (idle)', count(*),
                       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)::numeric, 2)::text || ' ms',
                       round(max(duration_ms)::numeric, 2)::text || ' ms'
                FROM public.refresh_history WHERE origin = 'worker' AND outcome = 'unchanged' AND id > $MARK AND id <= $MARK2
                UNION ALL
                SELECT 3, 'refreshed (after one change)', count(*),
                       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms))::text || ' ms',
                       round(max(duration_ms))::text || ' ms'
                FROM public.refresh_history WHERE origin = 'worker' AND outcome = 'refreshed' AND id > $MARK2) x")
REFRESHED_IDLE=$(q "SELECT count(*) FROM public.refresh_history WHERE origin = 'worker' AND outcome = 'refreshed' AND id > $MARK AND id <= $MARK2")
LOAD_END=$(loadavg)

{
    echo "# The refresh worker on an idle database: $(title_of "$VERSION"), $DATE"
    echo
    echo "- command: \`test/bench/idle_refresh.sh\` (JOBS=$JOBS, IDLE_SECS=$IDLE_SECS)"
    echo "- machine: $(nproc) cores, shared with other work; load average at start $LOAD_START, at the end $LOAD_END"
    echo "- data: $JOBS jobs of 10 objects; s3scan_jobs.refresh_interval = 1s, fold_interval = 100ms; nothing written during the idle stretch"
    echo
    echo "| worker pass | passes | median duration | max |"
    echo "|---|---:|---:|---:|"
    echo "$ROWS"
    echo
    echo "Real refreshes during the idle stretch: $REFRESHED_IDLE. Server CPU during it (all processes, /proc): $IDLE_CPU% of one core."
} | tee "$OUT"
REPORTED=1
say "wrote $OUT"
