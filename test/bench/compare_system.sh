#!/usr/bin/env bash
# s3scan_jobs against the scanner system's own schema: every read the clients and the design note
# run, side by side on the same data, and what each index the extension adds for them costs the
# clients' writes. Not part of the test suite.
#
#   sudo test/bench/compare_system.sh [quick|full]
#
#   full   10M objects, 1M findings, 3,000 jobs (one of 1M objects); 20-30 minutes on 2 cores
#   quick  0.3M objects, 30K findings, 300 jobs (one of 100K objects); about 2 minutes, to try it
#
# One throwaway server (throwaway_server.sh), two databases with the same rows: "system", built by
# test/fixtures/existing-deployment.sql as it is, and "ext", built by CREATE EXTENSION
# s3scan_jobs. Reads alternate between the two in chunks; writes alternate between the extension's
# indexes present and dropped. Writes
# test/bench/results/<date>-compare-system-<scale>-<version>-<revision>.md.
# Environment: BENCH_PORT (default 55498), BENCH_SKIP_BUILD=1, BENCH_KEEP=1, BENCH_RESULTS,
# S3SCAN_PG_BIN (throwaway_server.sh). See test/bench/README.md ("Against the scanner system's
# schema").

set -euo pipefail

SCALE=${1:-quick}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SQL=$HERE/sql
. "$HERE/throwaway_server.sh"
bench_init compare_system 55498
SYSTEM_DDL=$REPO/test/fixtures/existing-deployment.sql

case $SCALE in
full)
    JOBS=3000 BIG=1000000 SMALL=1000 AVG=3000 EVERY=10
    CHUNKS=6 FAST_BUDGET_MS=600 FAST_MAX=300 SLOW_CHUNKS=3
    W_DURATION=8 W_ROUNDS=2 W_CLIENTS=8 W_THREADS=2 REFRESH_PAIRS=3
    SHARED_BUFFERS=2GB
    ;;
quick)
    JOBS=300 BIG=100000 SMALL=1000 AVG=600 EVERY=10
    CHUNKS=2 FAST_BUDGET_MS=200 FAST_MAX=100 SLOW_CHUNKS=2
    W_DURATION=2 W_ROUNDS=1 W_CLIENTS=8 W_THREADS=2 REFRESH_PAIRS=1
    SHARED_BUFFERS=512MB
    ;;
*)
    echo "usage: $0 [quick|full]" >&2
    exit 2
    ;;
esac

LOAD_START="$(nproc) cores, load average $(loadavg) (1, 5, 15 min)"
say "machine at start: $LOAD_START"
[ -f "$SYSTEM_DDL" ] || die "missing $SYSTEM_DDL"
cmp -s "$SYSTEM_DDL" "$REPO/../shared/reference/existing-deployment.sql" 2>/dev/null ||
    [ ! -f "$REPO/../shared/reference/existing-deployment.sql" ] ||
    say "note: $SYSTEM_DDL differs from shared/reference/existing-deployment.sql"

ensure_packages
build_and_install

# --- throwaway server --------------------------------------------------------------------------

start_throwaway_server "max_connections = 40
s3scan_jobs.database = 'ext'
s3scan_jobs.refresh_interval = 0        # no background refresh during measurements
shared_buffers = $SHARED_BUFFERS
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 20GB
checkpoint_timeout = 1h
autovacuum = off                        # never runs during one measurement and not the other
log_min_messages = warning"
DATA=$TMP/data
cd "$TMP"

psql_db() { local db=$1; shift; as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT" -U postgres -d "$db" "$@"; }
q() { local db=$1; shift; psql_db "$db" -At -c "$*"; }

for db in system ext results; do as_pg "$PGBIN/createdb" -h "$TMP" -p "$PORT" -U postgres "$db"; done
psql_db system -f - <"$SYSTEM_DDL" >/dev/null
q ext "CREATE EXTENSION s3scan_jobs" >/dev/null
VERSION=$(ext_version ext)
OUT_MD=$(result_file "compare-system-$SCALE" md "$VERSION")
say "s3scan_jobs $VERSION; the report: $OUT_MD"
psql_db results -f - <"$SQL/compare_report.sql" >/dev/null
meta() { q results "INSERT INTO meta VALUES ('$1', \$m\$$2\$m\$) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value" >/dev/null; }
meta load_start "$LOAD_START"

# --- data: both databases loaded at once (one core each) ---------------------------------------

say "loading $JOBS jobs, ~$((BIG + (JOBS - 2) * AVG)) objects, one finding per $EVERY objects, into both databases"
gen_vars=(-v jobs=$JOBS -v big=$BIG -v small=$SMALL -v avg=$AVG -v every=$EVERY)
psql_db system "${gen_vars[@]}" -f - <"$SQL/compare_generate.sql" >"$TMP/load_system.log" 2>&1 & p1=$!
psql_db ext "${gen_vars[@]}" -f - <"$SQL/compare_generate.sql" >"$TMP/load_ext.log" 2>&1 & p2=$!
wait $p1 || { cat "$TMP/load_system.log" >&2; die "load of system failed"; }
wait $p2 || { cat "$TMP/load_ext.log" >&2; die "load of ext failed"; }
say "VACUUM ANALYZE, refresh of both caches"
q system "VACUUM ANALYZE" & p1=$!
q ext "VACUUM ANALYZE" & p2=$!
wait $p1 $p2
# system: what its external timer does (REFRESH, then the log row)
q system "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
  REFRESH MATERIALIZED VIEW job_progress;
  INSERT INTO materialized_view_refresh_log AS l (view_name, last_refreshed_at, refresh_duration_ms, total_jobs, total_objects)
  SELECT 'job_progress', now(), (extract(epoch FROM clock_timestamp() - t0) * 1000)::integer, count(*), sum(total_objects) FROM job_progress
  ON CONFLICT (view_name) DO UPDATE SET last_refreshed_at = EXCLUDED.last_refreshed_at,
      refresh_duration_ms = EXCLUDED.refresh_duration_ms, total_jobs = EXCLUDED.total_jobs, total_objects = EXCLUDED.total_objects;
END \$\$" >/dev/null
q ext "SELECT outcome FROM refresh_job_progress()" >/dev/null
q system "VACUUM ANALYZE job_progress, materialized_view_refresh_log" >/dev/null
q ext "VACUUM ANALYZE job_progress, materialized_view_refresh_log" >/dev/null

# Same rows in both? Tables, and the two caches (the system rounds progress to 2 places).
fingerprint="
SELECT 'jobs', count(*), md5(string_agg(job_id::text || bucket || coalesce(execution_arn, '-') || created_at, ',' ORDER BY job_id)) FROM jobs
UNION ALL
SELECT 'job_objects', count(*), sum(hashtext(job_id::text || key || etag || status || coalesce(last_error, '') || updated_at))::text FROM job_objects
UNION ALL
SELECT 'findings', count(*), sum(hashtext(id || job_id::text || key || detector || byte_offset || created_at))::text FROM findings
UNION ALL
SELECT 'job_progress', count(*), md5(string_agg(concat_ws('|', job_id, total_objects, queued_count, processing_count,
       succeeded_count, failed_count, total_findings, round(progress_percent, 2), last_object_update), ',' ORDER BY job_id)) FROM job_progress"
q system "$fingerprint" >"$TMP/fp_system.txt" & p1=$!
q ext "$fingerprint" >"$TMP/fp_ext.txt" & p2=$!
wait $p1 $p2
if diff "$TMP/fp_system.txt" "$TMP/fp_ext.txt" >/dev/null; then
    meta same_data "yes: jobs, objects, findings (ids included) and job_progress fingerprints are equal"
else
    diff "$TMP/fp_system.txt" "$TMP/fp_ext.txt" >&2 || true
    meta same_data "NO: the fingerprints differ: $(paste -sd';' "$TMP/fp_system.txt") vs $(paste -sd';' "$TMP/fp_ext.txt")"
    say "!!! the two databases do not hold the same rows"
fi
meta data "$(q ext "SELECT to_char(count(*), 'FM999,999,999') FROM jobs") jobs, $(q ext "SELECT to_char(count(*), 'FM999,999,999') FROM job_objects") objects, $(q ext "SELECT to_char(count(*), 'FM999,999,999') FROM findings") findings"
for db in system ext; do
    meta "size_$db" "$(q $db "SELECT pg_size_pretty(pg_database_size(current_database()))")"
done

q system "CHECKPOINT" >/dev/null    # the load's checkpoint done now, not during the reads

# --- reads -------------------------------------------------------------------------------------

JID_BIG=$(q ext "SELECT md5('cmp-job-1')::uuid")
JID_SMALL=$(q ext "SELECT md5('cmp-job-$((JOBS - 1))')::uuid")
LAST_ALL=$(q ext "SELECT id FROM findings ORDER BY id OFFSET (SELECT count(*) / 2 FROM findings) LIMIT 1")
LAST_BIG=$(q ext "SELECT id FROM findings WHERE job_id = '$JID_BIG' ORDER BY id OFFSET (SELECT count(*) / 2 FROM findings WHERE job_id = '$JID_BIG') LIMIT 1")
BUCKET=bucket-7
LAST_BUCKET=$(q ext "SELECT id FROM findings WHERE bucket = '$BUCKET' ORDER BY id OFFSET (SELECT count(*) / 2 FROM findings WHERE bucket = '$BUCKET') LIMIT 1")
KEY=$(q ext "SELECT key FROM findings WHERE job_id = '$JID_BIG' ORDER BY id OFFSET 1000 LIMIT 1")
KEY_BUCKET=$(q ext "SELECT bucket FROM findings WHERE job_id = '$JID_BIG' LIMIT 1")
meta params "1M-object job $JID_BIG, 1K-object job $JID_SMALL; paging after id $LAST_ALL (all), $LAST_BIG (job), $LAST_BUCKET ($BUCKET); key $KEY_BUCKET/$KEY"
for a in system ext; do
    for b in JID_BIG JID_SMALL; do
        [ -n "$(q $a "SELECT 1 FROM jobs WHERE job_id = '${!b}'")" ] || die "$b missing in $a"
    done
done

# Each read: a name, what it is, the system's statements and the extension's. pgbench runs the
# file as a client would (-M prepared; several statements = several round trips, as the API
# makes them). :jid, :last, :bucket, :key are pgbench variables (-D), sent as parameters.
READS=()
add_read() {  # name group description system_sql ext_sql [variables]
    READS+=("$1")
    printf '%s\n' "$4" >"$TMP/r_$1.system.sql"
    printf '%s\n' "$5" >"$TMP/r_$1.ext.sql"
    printf '%s' "${6:-}" >"$TMP/r_$1.vars"
    q results "INSERT INTO reads VALUES ('$1', '$2', \$d\$$3\$d\$, \$s\$$4\$s\$, \$e\$$5\$e\$, ${#READS[@]})" >/dev/null
}
API_CHECK="SELECT 1 FROM pg_matviews WHERE schemaname = 'public' AND matviewname = 'job_progress';"
API_LOG="SELECT last_refreshed_at, refresh_duration_ms FROM materialized_view_refresh_log WHERE view_name = 'job_progress';"
API_ROW="SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at, total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings, progress_percent FROM job_progress WHERE job_id = :jid;"
API_LIVE="SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at FROM jobs WHERE job_id = :jid;
SELECT status, count(*) FROM job_objects WHERE job_id = :jid GROUP BY status;
SELECT count(*) FROM findings WHERE job_id = :jid;"
for size in 1K 1M; do
    jid=$JID_SMALL; [ $size = 1M ] && jid=$JID_BIG
    add_read "status_cached_$size" status "job status, cached, job of $size objects: system = the API's statements (pg_matviews check, refresh log row, job_progress row); ext = job_status(id)" \
        "$API_CHECK
$API_LOG
$API_ROW" "SELECT * FROM job_status(:jid);" "-D jid=$jid"
    add_read "status_cached_api_$size" status "job status, cached, job of $size objects: the API's statements on both" \
        "$API_CHECK
$API_LOG
$API_ROW" "$API_CHECK
$API_LOG
$API_ROW" "-D jid=$jid"
    add_read "status_live_$size" status "job status, real time, job of $size objects: system = the API's statements (job row, counts per status, findings count); ext = job_status(id, true)" \
        "$API_CHECK
$API_LIVE" "SELECT * FROM job_status(:jid, true);" "-D jid=$jid"
    add_read "status_live_api_$size" status "job status, real time, job of $size objects: the API's statements on both" \
        "$API_CHECK
$API_LIVE" "$API_CHECK
$API_LIVE" "-D jid=$jid"
done
F="SELECT * FROM findings"
both() { add_read "$1" "$2" "$3" "$4" "$4" "${5:-}"; }
both f_all_id findings "findings, no filter, ORDER BY id LIMIT 100" "$F ORDER BY id LIMIT 100;"
both f_all_id_after findings "findings, no filter, id > last ORDER BY id LIMIT 100" "$F WHERE id > :last ORDER BY id LIMIT 100;" "-D last=$LAST_ALL"
both f_all_id_offset findings "findings, no filter, ORDER BY id LIMIT 100 OFFSET 10000" "$F ORDER BY id LIMIT 100 OFFSET 10000;"
both f_all_created findings "findings, no filter, ORDER BY created_at DESC LIMIT 100" "$F ORDER BY created_at DESC LIMIT 100;"
both f_all_created_offset findings "findings, no filter, ORDER BY created_at DESC LIMIT 100 OFFSET 10000" "$F ORDER BY created_at DESC LIMIT 100 OFFSET 10000;"
for size in 1K 1M; do
    jid=$JID_SMALL; [ $size = 1M ] && jid=$JID_BIG
    both "f_job_id_$size" findings "findings of the $size-object job, ORDER BY id LIMIT 100" "$F WHERE job_id = :jid ORDER BY id LIMIT 100;" "-D jid=$jid"
    both "f_job_created_$size" findings "findings of the $size-object job, ORDER BY created_at DESC LIMIT 100" "$F WHERE job_id = :jid ORDER BY created_at DESC LIMIT 100;" "-D jid=$jid"
done
both f_job_id_after_1M findings "findings of the 1M-object job, id > last ORDER BY id LIMIT 100" "$F WHERE job_id = :jid AND id > :last ORDER BY id LIMIT 100;" "-D jid=$JID_BIG -D last=$LAST_BIG"
both f_job_id_offset_1M findings "findings of the 1M-object job, ORDER BY id LIMIT 100 OFFSET 10000" "$F WHERE job_id = :jid ORDER BY id LIMIT 100 OFFSET 10000;" "-D jid=$JID_BIG"
both f_bucket_id findings "findings in one bucket, ORDER BY id LIMIT 100" "$F WHERE bucket = :bucket ORDER BY id LIMIT 100;" "-D bucket=$BUCKET"
both f_bucket_id_after findings "findings in one bucket, id > last ORDER BY id LIMIT 100" "$F WHERE bucket = :bucket AND id > :last ORDER BY id LIMIT 100;" "-D bucket=$BUCKET -D last=$LAST_BUCKET"
both f_bucket_created findings "findings in one bucket, ORDER BY created_at DESC LIMIT 100" "$F WHERE bucket = :bucket ORDER BY created_at DESC LIMIT 100;" "-D bucket=$BUCKET"
both f_bucket_key_id findings "findings of one object (bucket + key), ORDER BY id LIMIT 100" "$F WHERE bucket = :bucket AND key = :key ORDER BY id LIMIT 100;" "-D bucket=$KEY_BUCKET -D key=$KEY"
both f_bucket_key_created findings "findings of one object (bucket + key), ORDER BY created_at DESC LIMIT 100" "$F WHERE bucket = :bucket AND key = :key ORDER BY created_at DESC LIMIT 100;" "-D bucket=$KEY_BUCKET -D key=$KEY"
add_read n_summary_all note "note: job_summary, all jobs, newest first (the system's view has its own column names)" \
    "SELECT job_id, bucket, total_objects, succeeded_count, failed_count, CASE WHEN total_objects = 0 THEN 0 ELSE (succeeded_count + failed_count) * 100.0 / total_objects END AS progress FROM job_summary ORDER BY created_at DESC;" \
    "SELECT job_id, bucket, total_objects, succeeded, failed, CASE WHEN total_objects = 0 THEN 0 ELSE (succeeded + failed) * 100.0 / total_objects END AS progress FROM job_summary ORDER BY created_at DESC;"
add_read n_summary_active note "note: job_summary, jobs with active processing, newest first" \
    "SELECT * FROM job_summary WHERE processing_count > 0 OR queued_count > 0 ORDER BY created_at DESC;" \
    "SELECT * FROM job_summary WHERE processing > 0 OR queued > 0 ORDER BY created_at DESC;"
both n_progress_all note "note: job_progress, all jobs, newest first" \
    "SELECT job_id, bucket, total_objects, succeeded_count, failed_count, progress_percent FROM job_progress ORDER BY created_at DESC;"
both n_active note "note: SELECT * FROM active_jobs_progress" "SELECT * FROM active_jobs_progress;"
both n_arn note "note: job_progress WHERE execution_arn IS NOT NULL AND total_objects > 0" \
    "SELECT * FROM job_progress WHERE execution_arn IS NOT NULL AND total_objects > 0;"
both d_newest dashboard "dashboard: job_progress ORDER BY created_at DESC LIMIT 50" "SELECT * FROM job_progress ORDER BY created_at DESC LIMIT 50;"
both d_stats dashboard "dashboard: SELECT * FROM job_statistics" "SELECT * FROM job_statistics;"
chmod 644 "$TMP"/r_*

# Plans, for the report: the scan lines of each read's plan (the values in place of parameters).
for name in "${READS[@]}"; do
    for db in system ext; do
        sql=$(sed -e "s/:jid/'${JID_BIG}'/g" "$TMP/r_$name.$db.sql")
        vars=$(cat "$TMP/r_$name.vars")
        [[ $vars == *"jid=$JID_SMALL"* ]] && sql=$(sed -e "s/:jid/'${JID_SMALL}'/g" "$TMP/r_$name.$db.sql")
        [[ $vars == *"last=$LAST_ALL"* ]] && sql=${sql//:last/$LAST_ALL}
        [[ $vars == *"last=$LAST_BIG"* ]] && sql=${sql//:last/$LAST_BIG}
        [[ $vars == *"last=$LAST_BUCKET"* ]] && sql=${sql//:last/$LAST_BUCKET}
        [[ $vars == *"bucket=$KEY_BUCKET "* ]] && sql=${sql//:bucket/\'$KEY_BUCKET\'}
        sql=${sql//:bucket/\'$BUCKET\'}
        sql=${sql//:key/\'$KEY\'}
        # job_status(id, true) reads job_progress_live: show that plan rather than a Function Scan
        sql=$(sed -E "s/^SELECT \* FROM job_status\(('[^']*'), true\);/SELECT * FROM job_progress_live WHERE job_id = \1;/" <<<"$sql")
        plan=$(while IFS= read -r stmt; do
                   [ -n "$stmt" ] && q $db "EXPLAIN (COSTS OFF) $stmt"
               done <<<"$sql" | grep -oE '(Parallel )?(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan|Bitmap Heap Scan)( Backward)?( using| on) [a-z_0-9]+|Function Scan on [a-z_]+' |
               grep -v 'Bitmap Heap' | sort | uniq -c | sed 's/^ *//' | paste -sd';' || true)
        q results "INSERT INTO plans VALUES ('$name', '$db', \$p\$$plan\$p\$)" >/dev/null
    done
done

# One pgbench run of a read on a database: n transactions after w warm-up ones (first plans,
# caches; past the plan cache's five custom plans); appends samples (µs) to results.samples.
run_read() {  # name db chunk n w
    local name=$1 db=$2 chunk=$3 n=$4 w=$5
    rm -f "$TMP"/lat.*
    # shellcheck disable=SC2046
    as_pg "$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -t $((n + w)) $(cat "$TMP/r_$name.vars") \
        -f "$TMP/r_$name.$db.sql" -l --log-prefix="$TMP/lat" -h "$TMP" -p "$PORT" -U postgres "$db" \
        >"$TMP/pgbench.out" 2>&1 || { cat "$TMP/pgbench.out" >&2; die "pgbench $name on $db failed"; }
    # (the output's name must not match lat.*: cat's glob and awk's redirection run at once)
    cat "$TMP"/lat.* | awk -v q="$name" -v d="$db" -v c="$chunk" -v w="$w" \
        '$2 >= w { printf "%s\t%s\t%s\t%s\n", q, d, c, $3 }' >"$TMP/samples.tsv"
    chmod 644 "$TMP/samples.tsv"
    psql_db results -c "\\copy samples (query, db, chunk, us) FROM '$TMP/samples.tsv'" >/dev/null
}
probe_ms() {  # name db: latency of one execution (ms, rounded up): the first one when it takes
              # 200 ms or more, else the fastest of three after it
    local t=1 ms
    for t in 1 4; do
        rm -f "$TMP"/lat.*
        # shellcheck disable=SC2046
        as_pg "$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -t $t $(cat "$TMP/r_$1.vars") -f "$TMP/r_$1.$2.sql" \
            -l --log-prefix="$TMP/lat" -h "$TMP" -p "$PORT" -U postgres "$2" >"$TMP/pgbench.out" 2>&1 ||
            { cat "$TMP/pgbench.out" >&2; die "pgbench $1 on $2 failed"; }
        ms=$(cat "$TMP"/lat.* | awk -v t=$t '$2 >= t - 3 && (m == "" || $3 < m) { m = $3 } END { printf "%d\n", m / 1000 + 1 }')
        [ "$ms" -ge 200 ] && break
    done
    echo "$ms"
}

measure_read() {  # name: probe, then chunks alternating system / ext
    local name=$1 ms_s ms_e slow chunks n w c order db
    ms_s=$(probe_ms "$name" system)
    ms_e=$(probe_ms "$name" ext)
    slow=$(( ms_s > ms_e ? ms_s : ms_e ))
    if [ "$slow" -ge 200 ]; then
        chunks=$SLOW_CHUNKS n=1 w=0           # seconds each: one per chunk, the probe warmed up
    else
        chunks=$CHUNKS w=6
        n=$(( FAST_BUDGET_MS / slow )); [ $n -gt $FAST_MAX ] && n=$FAST_MAX; [ $n -lt 5 ] && n=5
    fi
    printf '           %-24s probe system %6d ms, ext %6d ms: %d chunks of %d\n' "$name" "$ms_s" "$ms_e" "$chunks" "$n"
    for ((c = 1; c <= chunks; c++)); do
        if [ $((c % 2)) = 1 ]; then order="system ext"; else order="ext system"; fi
        for db in $order; do run_read "$name" "$db" "$c" "$n" "$w"; done
    done
}
say "reads: ${#READS[@]} kinds, each in chunks alternating system / ext"
for name in "${READS[@]}"; do measure_read "$name"; done

# The real-time status reads again, with the index that would give the extension the system's
# index-only count per status (the system has job_objects (job_id, status); INCLUDE (updated_at)
# also covers job_progress_live's max(updated_at)). Measured before the writes below, which
# update the 1M-object job's rows and would take its pages out of the visibility map.
CAND_NAME=job_objects_job_id_status_idx
CAND_DEF="CREATE INDEX $CAND_NAME ON public.job_objects (job_id, status) INCLUDE (updated_at)"
meta candidate "$CAND_DEF"
say "candidate index on ext: $CAND_DEF"
q ext "SET maintenance_work_mem = '1GB'; $CAND_DEF" >/dev/null
q ext "VACUUM ANALYZE job_objects" >/dev/null
for base in status_live_1K status_live_api_1K status_live_1M status_live_api_1M; do
    name=$base+idx
    READS+=("$name")
    for f in system.sql ext.sql vars; do cp "$TMP/r_$base.$f" "$TMP/r_$name.$f"; done
    q results "INSERT INTO reads SELECT '$name', 'candidate', descr || ', with $CAND_NAME on ext', system_sql, ext_sql, ${#READS[@]} FROM reads WHERE name = '$base'" >/dev/null
done
for name in "${READS[@]}"; do
    [[ $name == *+idx ]] || continue
    for db in system ext; do
        plan=$(q results "SELECT plan FROM plans WHERE name = '${name%+idx}' AND db = '$db'")
        if [ $db = ext ]; then
            sql=$(sed -e "s/:jid/'${JID_BIG}'/g" "$TMP/r_$name.ext.sql" |
                  sed -E "s/^SELECT \* FROM job_status\(('[^']*'), true\);/SELECT * FROM job_progress_live WHERE job_id = \1;/")
            [[ $name == *1K* ]] && sql=${sql//$JID_BIG/$JID_SMALL}
            plan=$(while IFS= read -r stmt; do [ -n "$stmt" ] && q ext "EXPLAIN (COSTS OFF) $stmt"; done <<<"$sql" |
                   grep -oE '(Parallel )?(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)( Backward)?( using| on) [a-z_0-9]+|Function Scan on [a-z_]+' |
                   sort | uniq -c | sed 's/^ *//' | paste -sd';' || true)
        fi
        q results "INSERT INTO plans VALUES ('$name', '$db', \$p\$$plan\$p\$)" >/dev/null
    done
    measure_read "$name"
done
q ext "DROP INDEX public.$CAND_NAME" >/dev/null
meta load_after_reads "$(loadavg)"

# --- writes: what each index the branch adds costs the clients' statements ---------------------

ADDED="findings_created_at_idx jobs_created_at_idx jobs_execution_arn_idx job_progress_created_at_idx"
declare -A IDX_DEF
for i in $ADDED; do
    IDX_DEF[$i]=$(q ext "SELECT pg_get_indexdef('public.$i'::regclass)")
    [ -n "${IDX_DEF[$i]}" ] || die "index $i not found in ext"
done
set_indexes() {  # the indexes of $ADDED (and the candidate) to have; the others are dropped
    local want=" $* " i
    have=$(q ext "SELECT 1 FROM pg_class WHERE oid = to_regclass('public.$CAND_NAME')")
    if [[ $want == *" $CAND_NAME "* ]]; then
        [ -n "$have" ] || q ext "SET maintenance_work_mem = '1GB'; $CAND_DEF" >/dev/null
    else
        [ -z "$have" ] || q ext "DROP INDEX public.$CAND_NAME" >/dev/null
    fi
    for i in $ADDED; do
        have=$(q ext "SELECT 1 FROM pg_class WHERE oid = to_regclass('public.$i')")
        if [[ $want == *" $i "* ]]; then
            [ -n "$have" ] || q ext "${IDX_DEF[$i]}" >/dev/null
        else
            [ -z "$have" ] || q ext "DROP INDEX public.$i" >/dev/null
        fi
    done
    q ext "CHECKPOINT" >/dev/null
}
CFG_all="$ADDED"
CFG_none=""
CFG_no_jobs_created="findings_created_at_idx jobs_execution_arn_idx job_progress_created_at_idx"
CFG_no_jobs_arn="findings_created_at_idx jobs_created_at_idx job_progress_created_at_idx"
CFG_candidate="$ADDED $CAND_NAME"

# The clients' statements (shared/reference/s3-scanner-interface.md), on the ext database's
# rows (identifiers as sql/compare_generate.sql makes them).
JOB_ID="md5('cmp-job-' || :i)::uuid"
OKEY="'scan-' || :i || '/part-' || (:k / 1000) || '/object-' || :k || '.dat'"
OETAG="md5('etag-' || :i || '-' || :k)"
{   # per-object status UPDATE, own transaction, all clients on the 1M-object job
    printf '\\set i 1\n\\set k random(1, %d)\n\\set s random(1, 20)\n' "$BIG"
    printf '\\if :s <= 9\n\\set st 1\n\\elif :s <= 18\n\\set st 2\n\\else\n\\set st 3\n\\endif\n'
    printf "UPDATE job_objects SET status = (ARRAY['processing', 'succeeded', 'failed'])[:st], last_error = CASE WHEN :st = 3 THEN 'AccessDenied: GetObject' END, updated_at = now() WHERE job_id = %s AND bucket = 'bucket-1' AND key = %s AND etag = %s;\n" "$JOB_ID" "$OKEY" "$OETAG"
} >"$TMP/w_update.sql"
{   # listing batch: 1000 single-row INSERTs ON CONFLICT DO NOTHING in one transaction, random job
    printf '\\set i random(1, %d)\n\\set n random(1, 1000000000000)\n' "$JOBS"
    echo "BEGIN;"
    for ((r = 1; r <= 1000; r++)); do
        printf "INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES (%s, 'bucket-' || (:i %% 50), 'scan-' || :i || '/new-' || :n || '/object-%d.dat', md5('new-' || :n || '-%d'), 'queued', now()) ON CONFLICT DO NOTHING;\n" "$JOB_ID" "$r" "$r"
    done
    echo "COMMIT;"
} >"$TMP/w_objects.sql"
{   # findings of one object: 100 INSERTs ON CONFLICT (...) DO NOTHING in one transaction, random job
    printf '\\set i random(2, %d)\n\\set k random(1, %d)\n\\set o random(0, 1000000000)\n' "$((JOBS - 2))" "$AVG"
    echo "BEGIN;"
    for ((r = 1; r <= 100; r++)); do
        printf "INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES (%s, 'bucket-' || (:i %% 50), %s, %s, 'credit_card', '****-****-****-%04d', 'card: ****-****-****-%04d exp 01/29', :o + %d, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;\n" "$JOB_ID" "$OKEY" "$OETAG" "$r" "$r" "$((r * 17))"
    done
    echo "COMMIT;"
} >"$TMP/w_findings.sql"
{   # create a job (with an execution ARN two times in three, as the data has them)
    printf '\\set a random(1, 3)\n'
    # (no colon in the literal: pgbench would take ":aws" for a variable)
    printf "INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at) VALUES (gen_random_uuid(), 'bucket-new', 'scan-new/', CASE WHEN :a < 3 THEN translate('arn;aws;states;us-east-1;123456789012;execution;s3-scanner;', ';', chr(58)) || gen_random_uuid() END, now());\n"
} >"$TMP/w_create_job.sql"
chmod 644 "$TMP"/w_*.sql

record_write() {  # scenario config rep outfile
    local tps
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$4")
    [ -n "$tps" ] || { cat "$4" >&2; die "pgbench $1: no tps"; }
    grep -q '^number of failed transactions: 0 ' "$4" || say "note: $1: $(grep '^number of failed' "$4")"
    q results "INSERT INTO write_runs VALUES ('$1', '$2', $3, $tps, '$(loadavg)')" >/dev/null
    printf '           %-12s %-18s rep %d: %9.1f tps\n' "$1" "$2" "$3" "$tps"
}
run_write() {  # scenario config rep
    as_pg env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -n -M prepared -c $W_CLIENTS -j $W_THREADS \
        -T $W_DURATION -f "$TMP/w_$1.sql" -h "$TMP" -p "$PORT" -U postgres ext >"$TMP/pgbench.out" 2>&1 ||
        { cat "$TMP/pgbench.out" >&2; die "pgbench write $1 failed"; }
    record_write "$1" "$2" "$3" "$TMP/pgbench.out"
}
run_refresh() {  # config rep: refresh_job_progress() after the same churn
    q ext "UPDATE job_objects SET status = 'succeeded' WHERE id IN (SELECT id FROM job_objects WHERE job_id = '$JID_BIG' AND status = 'queued' LIMIT 2000)" >/dev/null
    local ms
    ms=$(q ext "SELECT duration_ms FROM refresh_job_progress()")
    q results "INSERT INTO write_runs VALUES ('refresh', '$1', $2, $ms, '$(loadavg)')" >/dev/null
    printf '           %-12s %-18s rep %d: %9.1f ms\n' refresh "$1" "$2" "$ms"
}

say "writes: ${W_CLIENTS} clients, ${W_DURATION}s runs; sets of indexes alternating, x $W_ROUNDS rounds"
meta load_before_writes "$(loadavg)"
rep=0
for ((round = 1; round <= W_ROUNDS; round++)); do
    for step in all none no_jobs_created no_jobs_arn candidate candidate no_jobs_arn no_jobs_created none all; do
        cfg=CFG_$step
        # shellcheck disable=SC2086
        set_indexes ${!cfg}
        rep=$((rep + 1))
        case $step in
        all | none)
            for s in update objects findings create_job; do run_write $s $step $rep; done
            for ((r = 1; r <= REFRESH_PAIRS; r++)); do run_refresh $step $rep; done
            ;;
        candidate) for s in update objects; do run_write $s $step $rep; done ;;
        *) run_write create_job $step $rep ;;
        esac
    done
done
set_indexes $CFG_all
meta load_end "$(nproc) cores, load average $(loadavg) (1, 5, 15 min)"
say "machine at end: $(nproc) cores, load average $(loadavg)"

# --- report ------------------------------------------------------------------------------------

settings=$(q ext "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
                  WHERE name IN ('shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather', 'autovacuum', 'random_page_cost', 'effective_cache_size')")
{
    echo "# The extension against the scanner system's schema, $SCALE scale: $(title_of "$VERSION"), $DATE"
    echo
    echo "- command: \`test/bench/compare_system.sh $SCALE\`"
    echo "- machine: $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GB memory, shared with other work"
    echo "- server: $(q ext "SELECT version()")"
    echo "- settings: $settings"
    echo "- run time: $((SECONDS - START_TIME)) s"
    echo
    psql_db results -At -f - <"$SQL/compare_render.sql"
} >"$OUT_MD"
REPORTED=1
cat "$OUT_MD"
say "wrote $OUT_MD"
