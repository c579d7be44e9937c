#!/usr/bin/env bash
# The clients' statements on one server and on a Citus cluster of three nodes on this machine, side
# by side in one run (issue 20, deliverable 5): per-statement latency, the writers' throughput and
# the servers' CPU per write, a worked estimate of what N worker machines would sustain, the folds
# and the refresh, and checks that the answers are right.
#
# Two setups, both up for the whole run, the same rows in both:
#   one server    the extension preloaded, its refresh worker on, settings at their defaults
#                 (port BENCH_PORT, default 55510);
#   cluster       a coordinator (port +1) and two worker nodes (+2, +3), each preloading
#                 'citus,s3scan_jobs', max_prepared_transactions = 100, wal_level = logical,
#                 citus.local_hostname = the socket directory (every node listens on a Unix socket
#                 in the same throwaway directory); CREATE EXTENSION citus on every node,
#                 citus_set_coordinator_host(), citus_add_node() for both workers, CREATE EXTENSION
#                 s3scan_jobs on the coordinator, the rows loaded, then distribute_job_tables(SHARDS).
# s3scan_jobs.database = 'bench' on every node; the refresh workers at their defaults (refresh every
# 60 s, fold every 100 ms). Rows: 20 jobs of 5,000 objects and one of 100,000 (all four statuses),
# a finding for every 10th object; keys carry the job's number, so that the one-server dedup key of
# findings (without job_id) and the cluster's (with it) hold the same rows.
#
# 1. Latency per statement, one client, pgbench -n -M prepared (unless the cluster refuses it for a
#    statement: then -M extended, then simple, for both setups; the report says which), SECS
#    seconds per statement and setup, median per-transaction latency from pgbench's log (the first
#    second left out), median over ROUNDS rounds; the statements' order rotates every round and the
#    setups alternate within each statement. All on the job of 100,000 objects:
#      real_time    SELECT * FROM job_status($1, true)
#      cached       SELECT * FROM job_status($1)         (refreshed first: the cache holds the job)
#      job_summary  SELECT * FROM job_summary WHERE job_id = $1
#      update       the scanner's status UPDATE of a random object of the job (plain values: Citus
#                   13.2.2 crashes deparsing SET status = (ARRAY[...])[n])
#      object_insert  INSERT INTO job_objects ... ON CONFLICT DO NOTHING (a new key)
#      finding_insert INSERT INTO findings ... ON CONFLICT (...) DO NOTHING (a new finding): the
#                   conflict target is (job_id, bucket, key, etag, detector, byte_offset) on the
#                   cluster, (bucket, key, etag, detector, byte_offset) on one server
# 2. Throughput: 4 clients for WSECS seconds over all 21 jobs (random job, random object), on each
#    setup: the writers' mix (object insert, status UPDATE to processing, to succeeded, finding
#    insert, equal weights) and the status UPDATEs alone. Each node's CPU time over the run (the
#    postmaster's and its live children's utime+stime from /proc, plus the postmaster's
#    cutime+cstime of the children that exited), read a second after the clients end: server CPU
#    per 1,000 transactions on the one server, the coordinator and the workers; from the UPDATEs
#    alone, a worked estimate of N worker machines of CORES cores each (an assumption).
# 3. Folds and refresh on the cluster: fold_job_counter_shards() on a worker node and on the
#    coordinator with nothing to fold (20 calls each, one session), whether it opens a distributed
#    transaction (citus.log_remote_commands, the Citus transaction number, pg_prepared_xacts on the
#    workers and pg_dist_transaction on the coordinator, before and after); refresh_job_progress()
#    on the coordinator and on the one server (5 calls each).
# 4. Checks: job_status(id, true) of every job equals a recount of its rows, on both setups, after
#    the writers; EXPLAIN of a job's real-time read (and the other statements) on the cluster shows
#    one task; ERROR lines in the servers' logs.
#
# Prints the tables and writes test/bench/results/<date>-citus-<version>-<revision>.md. Not part
# of the test suite. Needs Citus installed into the PostgreSQL measured (test/run-tests.sh citus
# builds it).
#
#   sudo test/bench/citus.sh                 # about 6 minutes on 2 cores
#
# Environment: SECS (default 5), ROUNDS (default 3), WSECS (default 10), SHARDS (default 32),
# CORES (cores per machine assumed in the estimate, default 8), QUIET_WAIT (seconds to wait at most
# for a load average under 1.5 before measuring, default 120), BENCH_PORT (default 55510; the
# cluster takes the next three), BENCH_SKIP_BUILD=1, BENCH_KEEP=1, BENCH_RESULTS, S3SCAN_PG_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init citus 55510
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
WSECS=${WSECS:-10}
WCLIENTS=4
SHARDS=${SHARDS:-32}
CORES=${CORES:-8}
QUIET_WAIT=${QUIET_WAIT:-120}
LOAD_START=$(loadavg)
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
TCK=$(getconf CLK_TCK)

ensure_packages
build_and_install
[ -f "$("$PGBIN/pg_config" --pkglibdir)/citus.so" ] ||
    die "Citus is not installed into $("$PGBIN/pg_config" --pkglibdir) (test/run-tests.sh citus builds it)"
PORT_ONE=$PORT PORT_C=$((PORT + 1)) PORT_W1=$((PORT + 2)) PORT_W2=$((PORT + 3))

# --- the servers -----------------------------------------------------------------------------------

start_throwaway_server "s3scan_jobs.database = 'bench'
max_connections = 100"
ONE=$TMP/data
COORD=$TMP/coord W1=$TMP/worker1 W2=$TMP/worker2
CLUSTER_STARTED=()
stop_cluster() {
    local d
    for d in ${CLUSTER_STARTED[@]+"${CLUSTER_STARTED[@]}"}; do
        as_pg "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
    done
}
# (ON_EXIT runs inside the exit trap, where $rc is the exit status)
ON_EXIT='stop_cluster; if [ "$rc" -ne 0 ]; then for l in "$TMP"/coord.log "$TMP"/worker1.log "$TMP"/worker2.log; do [ -f "$l" ] && { echo "---- last lines of $l ----" >&2; tail -n 15 "$l" >&2; }; done; fi'

start_node() {  # start_node DIR PORT NAME
    local dir=$1 port=$2 name=$3
    local locale=C
    locale -a 2>/dev/null | grep -qix 'c.utf-\?8' && locale=C.UTF-8
    as_pg "$PGBIN/initdb" -D "$dir" -U postgres -E UTF8 --locale=$locale -A trust --no-sync >/dev/null
    {
        printf '\n# ---- test/bench/citus.sh: %s ----\n' "$name"
        printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$port" "$TMP"
        printf "shared_preload_libraries = 'citus,s3scan_jobs'\n"
        printf "max_prepared_transactions = 100\nwal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\n"
        printf "max_connections = 100\n"
        printf "s3scan_jobs.database = 'bench'\n"
        printf "citus.local_hostname = '%s'\n" "$TMP"
    } >>"$dir/postgresql.conf"
    as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$TMP/$name.log" -w -t 120 start >/dev/null
    CLUSTER_STARTED+=("$dir")
}
say "cluster: coordinator on port $PORT_C, workers on $PORT_W1 and $PORT_W2 (sockets in $TMP)"
start_node "$COORD" "$PORT_C" coord
start_node "$W1" "$PORT_W1" worker1
start_node "$W2" "$PORT_W2" worker2

# q PORT SQL: one statement (or several) in database bench of the node on PORT
q() { as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$1" -d bench -v ON_ERROR_STOP=1 -c "$2"; }
for p in "$PORT_ONE" "$PORT_C" "$PORT_W1" "$PORT_W2"; do
    as_pg "$PGBIN/createdb" -h "$TMP" -p "$p" bench
done
for p in "$PORT_C" "$PORT_W1" "$PORT_W2"; do q "$p" "CREATE EXTENSION citus"; done
q "$PORT_C" "SELECT citus_set_coordinator_host('$TMP', $PORT_C)" >/dev/null
q "$PORT_C" "SELECT citus_add_node('$TMP', $PORT_W1)" >/dev/null
q "$PORT_C" "SELECT citus_add_node('$TMP', $PORT_W2)" >/dev/null
q "$PORT_ONE" "CREATE EXTENSION s3scan_jobs"
q "$PORT_C" "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version bench)
CITUS_VERSION=$(q "$PORT_C" "SELECT split_part(citus_version(), ' ', 2)")
PG_VERSION=$(q "$PORT_ONE" "SHOW server_version")
OUT=$(result_file citus md "$VERSION")

# --- the rows ------------------------------------------------------------------------------------------

NJOBS=21
BIGJ=21          # job 21 has 100,000 objects, jobs 1-20 5,000 each
job_of() { printf '00000000-0000-4000-8000-%012d' "$1"; }
BIG=$(job_of $BIGJ)
LOAD_SQL="
INSERT INTO public.jobs (job_id, bucket, prefix)
  SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'b', 'p/' FROM generate_series(1, $NJOBS) g;
INSERT INTO public.job_objects (job_id, bucket, key, etag, status)
  SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'b', g || '/k' || o, 'e',
         (ARRAY['queued', 'processing', 'succeeded', 'failed'])[o % 4 + 1]
  FROM generate_series(1, $NJOBS) g, generate_series(1, CASE WHEN g = $BIGJ THEN 100000 ELSE 5000 END) o;
INSERT INTO public.findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset)
  SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'b', g || '/k' || o, 'e', 'email', 'a***', 'ctx', 1
  FROM generate_series(1, $NJOBS) g, generate_series(10, CASE WHEN g = $BIGJ THEN 100000 ELSE 5000 END, 10) o;"
say "loading 20 jobs of 5,000 objects and one of 100,000, a finding per 10 objects, into both setups"
t0=$(date +%s.%N)
q "$PORT_ONE" "$LOAD_SQL"
q "$PORT_ONE" "VACUUM ANALYZE"
q "$PORT_ONE" "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
t1=$(date +%s.%N)
q "$PORT_C" "$LOAD_SQL"
t2=$(date +%s.%N)
say "distribute_job_tables($SHARDS)"
q "$PORT_C" "SET client_min_messages = warning; SELECT public.distribute_job_tables($SHARDS)" >/dev/null
t3=$(date +%s.%N)
q "$PORT_C" "VACUUM ANALYZE"
q "$PORT_C" "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
LOAD_ONE_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
LOAD_C_S=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')
DIST_S=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.1f", b - a }')
[ "$(q "$PORT_C" "SELECT public.job_tables_distributed()")" = t ] || die "distribute_job_tables() left the tables local"
ROWS_ONE=$(q "$PORT_ONE" "SELECT (SELECT count(*) FROM public.jobs) || ' / ' || (SELECT count(*) FROM public.job_objects) || ' / ' || (SELECT count(*) FROM public.findings)")
ROWS_C=$(q "$PORT_C" "SELECT (SELECT count(*) FROM public.jobs) || ' / ' || (SELECT count(*) FROM public.job_objects) || ' / ' || (SELECT count(*) FROM public.findings)")
JOB_IDS=$(for j in $(seq 1 $NJOBS); do printf "'%s'," "$(job_of "$j")"; done)
JOB_IDS=${JOB_IDS%,}
JOBS_PER_NODE=$(q "$PORT_C" "SELECT string_agg(n.nodeport || ': ' || c.jobs || ' jobs (' || c.objects || ' objects)', ', ' ORDER BY n.nodeport)
  FROM (SELECT p.groupid, count(*) AS jobs, sum(CASE WHEN x = '$BIG' THEN 100000 ELSE 5000 END) AS objects
        FROM unnest(ARRAY[$JOB_IDS]::uuid[]) x
        JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('public.jobs', x)
        GROUP BY p.groupid) c JOIN pg_dist_node n ON n.groupid = c.groupid")
BIG_NODE=$(q "$PORT_C" "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
  WHERE p.shardid = get_shard_id_for_distribution_column('public.jobs', '$BIG'::uuid)")
say "rows one server: $ROWS_ONE; cluster: $ROWS_C; per worker node: $JOBS_PER_NODE"
[ "$ROWS_ONE" = "$ROWS_C" ] || die "the setups hold different rows: $ROWS_ONE / $ROWS_C"

# --- the statements --------------------------------------------------------------------------------------

STATEMENTS=(real_time cached job_summary update object_insert finding_insert)
conflict_of() { [ "$1" = cluster ] && echo '(job_id, bucket, key, etag, detector, byte_offset)' || echo '(bucket, key, etag, detector, byte_offset)'; }
sql_of() {  # sql_of STATEMENT SETUP [JOB_NUMBER]: the pgbench script; the job's id is :id (or :idN)
    local s=$1 setup=$2 j=${3:-$BIGJ} id=:id n=100000
    [ -n "${3:-}" ] && { id=":id$3"; n=5000; }
    case $s in
    real_time) echo "SELECT * FROM public.job_status($id, true);" ;;
    cached) echo "SELECT * FROM public.job_status($id);" ;;
    job_summary) echo "SELECT * FROM public.job_summary WHERE job_id = $id;" ;;
    update | update_succeeded)
        local st=processing
        [ "$s" = update_succeeded ] && st=succeeded
        printf '%s\n' "\\set o random(1, $n)" \
            "UPDATE public.job_objects SET status = '$st', last_error = NULL, updated_at = now() WHERE job_id = $id AND bucket = 'b' AND key = '$j/k' || :o AND etag = 'e';" ;;
    object_insert)
        printf '%s\n' "\\set r random(1, 2000000000)" \
            "INSERT INTO public.job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ($id, 'b', '$j/new-' || :r, 'e', 'queued', now()) ON CONFLICT DO NOTHING;" ;;
    finding_insert)
        printf '%s\n' "\\set o random(1, $n)" "\\set off random(2, 2000000000)" \
            "INSERT INTO public.findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ($id, 'b', '$j/k' || :o, 'e', 'email', 'a***', 'ctx', :off, now()) ON CONFLICT $(conflict_of "$2") DO NOTHING;" ;;
    esac
}
mkdir -p "$TMP/sql"
for setup in one cluster; do
    for s in "${STATEMENTS[@]}"; do sql_of "$s" "$setup" >"$TMP/sql/$s.$setup.sql"; done
    for j in $(seq 1 $NJOBS); do
        for s in update update_succeeded object_insert finding_insert; do sql_of "$s" "$setup" "$j" >"$TMP/sql/w_$s.$j.$setup.sql"; done
    done
done
chmod -R a+rX "$TMP/sql"
port_of() { [ "$1" = cluster ] && echo "$PORT_C" || echo "$PORT_ONE"; }
# -D arguments for a job's id (-M simple puts the value's text into the statement: quoted)
id_args() {  # id_args MODE: -D id=... and -D id1..id21=...
    local mode=$1 j v
    v=$BIG; [ "$mode" = simple ] && v="'$BIG'"
    printf '%s\n' -D "id=$v"
    for j in $(seq 1 $NJOBS); do
        v=$(job_of "$j"); [ "$mode" = simple ] && v="'$v'"
        printf '%s\n' -D "id$j=$v"
    done
}
pgb() {  # pgb SETUP MODE ARGS...: pgbench on SETUP's database
    local setup=$1 mode=$2; shift 2
    local ids
    mapfile -t ids < <(id_args "$mode")
    as_pg "$PGBIN/pgbench" -h "$TMP" -p "$(port_of "$setup")" -n -M "$mode" "${ids[@]}" "$@" bench
}

# Which protocol the cluster accepts for each statement: -M prepared, else extended, else simple.
declare -A MODE
MODE_NOTES=()
for s in "${STATEMENTS[@]}" w_update w_update_succeeded w_object_insert w_finding_insert; do
    MODE[$s]=
    for m in prepared extended simple; do
        f="$TMP/sql/$s.cluster.sql"
        [[ $s == w_* ]] && f="$TMP/sql/$s.3.cluster.sql"
        if pgb cluster "$m" -c 1 -t 20 -f "$f" >"$TMP/probe.out" 2>&1 &&
           pgb one "$m" -c 1 -t 20 -f "${f%.cluster.sql}.one.sql" >>"$TMP/probe.out" 2>&1; then
            MODE[$s]=$m
            break
        fi
        MODE_NOTES+=("$s: -M $m failed: $(grep -m1 -E 'ERROR|error|abort' "$TMP/probe.out" || tail -n 1 "$TMP/probe.out")")
    done
    [ -n "${MODE[$s]}" ] || die "no pgbench protocol works for $s: ${MODE_NOTES[*]}"
done
say "protocols: $(for s in "${!MODE[@]}"; do printf '%s=%s ' "$s" "${MODE[$s]}"; done)"
WMODE=${MODE[w_update]}
for s in w_update_succeeded w_object_insert w_finding_insert; do
    [ "${MODE[$s]}" = "$WMODE" ] || WMODE=simple
done

# The cache holds every job (refreshed after the probes' writes), and answers as cached.
q "$PORT_ONE" "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
q "$PORT_C" "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
CACHED_ONE=$(q "$PORT_ONE" "SELECT data_source FROM public.job_status('$BIG')")
CACHED_C=$(q "$PORT_C" "SELECT data_source FROM public.job_status('$BIG')")
[ "$CACHED_ONE/$CACHED_C" = cached/cached ] || die "job_status(id) does not answer from the cache: $CACHED_ONE / $CACHED_C"

# --- a quiet moment, not too long -----------------------------------------------------------------------

waited=0
while [ "$waited" -lt "$QUIET_WAIT" ] && awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l > 1.5) }'; do
    sleep 10
    waited=$((waited + 10))
done
LOAD_MEASURE=$(loadavg)
say "waited ${waited}s for the load average (now $LOAD_MEASURE)"

# --- 1. latency per statement ---------------------------------------------------------------------------

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print v[int((NR + 1) / 2)] }'; }
declare -A LAT NTX
run_latency() {  # run_latency SETUP STATEMENT ROUND
    local setup=$1 s=$2 r=$3 logdir
    logdir=$(mktemp -d "$TMP/log.XXXXXX")
    chmod 777 "$logdir"
    pgb "$setup" "${MODE[$s]}" -c 1 -j 1 -T "$SECS" -f "$TMP/sql/$s.$setup.sql" -l --log-prefix="$logdir/tx" \
        >"$logdir/out" 2>&1 || die "pgbench $s on $setup failed: $(tail -n 3 "$logdir/out")"
    LAT[$setup/$s/$r]=$(awk 'NR == 1 { t0 = $5 } $5 > t0 { print $3 }' "$logdir"/tx.* | median)
    NTX[$setup/$s/$r]=$(cat "$logdir"/tx.* | wc -l)
    rm -rf "$logdir"
}
for ((r = 0; r < ROUNDS; r++)); do
    order=("${STATEMENTS[@]}")
    for ((k = 0; k < r; k++)); do order=("${order[@]:1}" "${order[0]}"); done
    say "latency, round $((r + 1)) of $ROUNDS: ${order[*]}"
    for s in "${order[@]}"; do
        if ((r % 2 == 0)); then run_latency one "$s" "$r"; run_latency cluster "$s" "$r"
        else run_latency cluster "$s" "$r"; run_latency one "$s" "$r"; fi
    done
done

# --- 2. throughput and server CPU ----------------------------------------------------------------------------

# A node's CPU time so far, in clock ticks (as server_ticks in throwaway_server.sh, for any node).
node_ticks() {
    local pm
    pm=$(head -1 "$1/postmaster.pid")
    { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
      for c in $(cat "/proc/$pm/task/$pm/children"); do awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true; done
    } | awk '{ t += $1 } END { print t }'
}
all_ticks() { echo "$(node_ticks "$ONE") $(node_ticks "$COORD") $(node_ticks "$W1") $(node_ticks "$W2")"; }
declare -A TPS TXS CPU1K FAILED WIN TICKS
run_writers() {  # run_writers SETUP WORKLOAD
    local setup=$1 w=$2 files=() j s before after out
    local kinds=(update update_succeeded)
    [ "$w" = mix ] && kinds=(object_insert update update_succeeded finding_insert)
    for j in $(seq 1 $NJOBS); do
        for s in "${kinds[@]}"; do files+=(-f "$TMP/sql/w_$s.$j.$setup.sql"); done
    done
    out=$TMP/writers.$setup.$w.out
    sleep 1
    before=$(all_ticks)
    local w0 w1s
    w0=$(date +%s.%N)
    pgb "$setup" "$WMODE" -c "$WCLIENTS" -j 2 -T "$WSECS" "${files[@]}" >"$out" 2>&1 ||
        die "the writers ($w) on $setup failed: $(grep -m3 -E 'error|abort' "$out")"
    sleep 1  # (the backends exit and are reaped; the workers fold what is left)
    after=$(all_ticks)
    w1s=$(date +%s.%N)
    WIN[$setup/$w]=$(awk -v a="$w0" -v b="$w1s" 'BEGIN { printf "%.2f", b - a }')
    TPS[$setup/$w]=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$out")
    TXS[$setup/$w]=$(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }' "$out")
    FAILED[$setup/$w]=$(awk '/number of failed transactions/ { print $5; exit }' "$out")
    read -r -a b <<<"$before"
    read -r -a a <<<"$after"
    local names=(one coord w1 w2) i
    for i in 0 1 2 3; do
        TICKS[$setup/$w/${names[$i]}]=$((a[i] - b[i]))
        CPU1K[$setup/$w/${names[$i]}]=$(awk -v d=$((a[i] - b[i])) -v t="$TCK" -v n="${TXS[$setup/$w]}" 'BEGIN { printf "%.3f", d / t / n * 1000 }')
    done
    say "writers $w on $setup: ${TPS[$setup/$w]} tx/s (${TXS[$setup/$w]} transactions)"
}
say "throughput: $WCLIENTS clients, $WSECS s each, -M $WMODE"
run_writers one mix
run_writers cluster mix
run_writers cluster updates
run_writers one updates
LOAD_AFTER_WRITES=$(loadavg)

# --- 4. checks (after the writers) -----------------------------------------------------------------------------

recount() {  # recount PORT: one line per job, "job|status counts|recounted counts"
    local port=$1 j id sql=
    for j in $(seq 1 $NJOBS); do
        id=$(job_of "$j")
        sql+="SELECT 'status', '$id', concat_ws(' ', total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings) FROM public.job_status('$id', true);
SELECT 'counted', '$id', concat_ws(' ', count(*), count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'processing'),
       count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
       (SELECT count(*) FROM public.findings f WHERE f.job_id = '$id')) FROM public.job_objects WHERE job_id = '$id';
"
    done
    printf '%s' "$sql" >"$TMP/recount.sql"
    chmod 644 "$TMP/recount.sql"
    as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$port" -d bench -v ON_ERROR_STOP=1 -f "$TMP/recount.sql"
}
check_recount() {  # check_recount PORT: "N of 21 jobs equal" and the differences
    local port=$1 what job counts equal=0 diffs=()
    declare -A st ct
    while IFS='|' read -r what job counts; do
        [ "$what" = status ] && st[$job]=$counts || ct[$job]=$counts
    done < <(recount "$port")
    for job in "${!ct[@]}"; do
        if [ "${st[$job]:-missing}" = "${ct[$job]}" ]; then equal=$((equal + 1)); else diffs+=("$job: job_status ${st[$job]:-missing}, recount ${ct[$job]}"); fi
    done
    echo "$equal of ${#ct[@]} jobs equal${diffs[*]:+; differing: ${diffs[*]}}"
}
say "checks: job_status(id, true) against a recount"
RECOUNT_ONE=$(check_recount "$PORT_ONE")
RECOUNT_C=$(check_recount "$PORT_C")
BIG_ONE=$(q "$PORT_ONE" "SELECT concat_ws(' ', total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings) FROM public.job_status('$BIG', true)")
BIG_C=$(q "$PORT_C" "SELECT concat_ws(' ', total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings) FROM public.job_status('$BIG', true)")
say "one server: $RECOUNT_ONE"
say "cluster: $RECOUNT_C"
explain() { q "$PORT_C" "EXPLAIN (COSTS OFF) $1"; }
tasks_of() { explain "$1" | sed -n 's/.*Task Count: \([0-9]*\).*/\1/p' | head -1; }
PLAN_REALTIME=$(explain "SELECT * FROM public.job_progress_live WHERE job_id = '$BIG'")
TASKS_REALTIME=$(printf '%s\n' "$PLAN_REALTIME" | sed -n 's/.*Task Count: \([0-9]*\).*/\1/p' | head -1)
TASKS_SUMMARY=$(tasks_of "SELECT * FROM public.job_summary WHERE job_id = '$BIG'")
TASKS_UPDATE=$(tasks_of "UPDATE public.job_objects SET status = 'processing', last_error = NULL, updated_at = now() WHERE job_id = '$BIG' AND bucket = 'b' AND key = '21/k1' AND etag = 'e'")
TASKS_OINS=$(tasks_of "INSERT INTO public.job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('$BIG', 'b', '21/x', 'e', 'queued', now()) ON CONFLICT DO NOTHING")
TASKS_FINS=$(tasks_of "INSERT INTO public.findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('$BIG', 'b', '21/k1', 'e', 'email', 'a***', 'ctx', 1, now()) ON CONFLICT (job_id, bucket, key, etag, detector, byte_offset) DO NOTHING")
TASKS_ALL=$(tasks_of "SELECT * FROM public.job_progress_live")

# --- 3. folds and refresh ----------------------------------------------------------------------------------------

for i in $(seq 1 100); do
    [ "$(q "$PORT_C" "SELECT count(*) FROM public.job_counter_deltas")" = 0 ] && break
    sleep 0.2
done
PENDING_BEFORE_FOLD=$(q "$PORT_C" "SELECT count(*) FROM public.job_counter_deltas")
# An idle stretch: what each node's background work (refresh workers' folds, Citus's daemons) costs.
IDLE_SECS=${IDLE_SECS:-10}
say "idle for $IDLE_SECS s"
sleep 1
read -r -a b <<<"$(all_ticks)"
sleep "$IDLE_SECS"
read -r -a a <<<"$(all_ticks)"
declare -A IDLE
names=(one coord w1 w2)
for i in 0 1 2 3; do
    # (share of one core, and CPU seconds per second)
    IDLE[${names[$i]}]=$(awk -v d=$((a[i] - b[i])) -v t="$TCK" -v s="$IDLE_SECS" 'BEGIN { printf "%.4f", d / t / s }')
done
idle_pct() { awk -v v="${IDLE[$1]}" 'BEGIN { printf "%.1f%%", v * 100 }'; }
# CPU s per 1,000 transactions of a run net of the node's idle background over the run's window
net_cpu() {  # net_cpu SETUP/WORKLOAD NODE
    awk -v d="${TICKS[$1/$2]}" -v t="$TCK" -v n="${TXS[$1]}" -v idle="${IDLE[$2]}" -v win="${WIN[$1]}" \
        'BEGIN { v = (d / t - idle * win) / n * 1000; if (v < 0) v = 0; printf "%.3f", v }'
}
prepared_xacts() { echo "$(q "$PORT_W1" "SELECT count(*) FROM pg_prepared_xacts") $(q "$PORT_W2" "SELECT count(*) FROM pg_prepared_xacts") $(q "$PORT_C" "SELECT count(*) FROM pg_dist_transaction")"; }
# fold_session PORT: 20 calls in one session with citus.log_remote_commands on; prints
# "median_ms|max_ms|sum_folded|remote_commands|citus_txn_numbers"
fold_session() {
    local port=$1 out
    out=$(
        {
            echo "SET citus.log_remote_commands = on;"
            echo "SET client_min_messages = notice;"
            echo '\timing on'
            for i in $(seq 1 20); do echo "SELECT 'folded', public.fold_job_counter_shards();"; done
            echo '\timing off'
            echo "BEGIN; SELECT 'folded', public.fold_job_counter_shards(); SELECT 'txn', transaction_number FROM get_current_transaction_id(); COMMIT;"
        } | as_pg "$PGBIN/psql" -X -At -h "$TMP" -p "$port" -d bench -v ON_ERROR_STOP=1 2>&1
    )
    printf '%s\n' "$out" >"$TMP/fold.$port.out"
    local med mx folded remote txn
    med=$(printf '%s\n' "$out" | awk '/^Time: / { print $2 }' | median)
    mx=$(printf '%s\n' "$out" | awk '/^Time: / { print $2 }' | sort -n | tail -1)
    folded=$(printf '%s\n' "$out" | awk -F'|' '$1 == "folded" { s += $2 } END { print s + 0 }')
    remote=$(printf '%s\n' "$out" | grep -c 'issuing' || true)
    txn=$(printf '%s\n' "$out" | awk -F'|' '$1 == "txn" { print $2 }')
    echo "$med|$mx|$folded|$remote|$txn"
}
say "folds with nothing to fold: worker node $PORT_W1, coordinator"
XACTS_BEFORE=$(prepared_xacts)
IFS='|' read -r FOLD_W_MED FOLD_W_MAX FOLD_W_N FOLD_W_REMOTE FOLD_W_TXN <<<"$(fold_session "$PORT_W1")"
IFS='|' read -r FOLD_C_MED FOLD_C_MAX FOLD_C_N FOLD_C_REMOTE FOLD_C_TXN <<<"$(fold_session "$PORT_C")"
XACTS_AFTER=$(prepared_xacts)
# refresh_session PORT: 5 calls of refresh_job_progress() in one session; prints
# "median client ms|median duration_ms|outcomes"
refresh_session() {
    local port=$1 out
    out=$(
        {
            echo '\timing on'
            for i in 1 2 3 4 5; do echo "SELECT 'r', outcome, mode, duration_ms, total_jobs, total_objects FROM public.refresh_job_progress();"; done
        } | as_pg "$PGBIN/psql" -X -At -h "$TMP" -p "$port" -d bench -v ON_ERROR_STOP=1 2>&1
    )
    printf '%s\n' "$out" >"$TMP/refresh.$port.out"
    echo "$(printf '%s\n' "$out" | awk '/^Time: / { print $2 }' | median)|$(printf '%s\n' "$out" | awk -F'|' '$1 == "r" { print $4 }' | median)|$(printf '%s\n' "$out" | awk -F'|' '$1 == "r" { print $2 " " $3 " (" $5 " jobs, " $6 " objects)" }' | sort | uniq -c | awk '{ $1 = $1 "x"; print }' | paste -sd ';' | sed 's/;/; /g')"
}
say "refresh_job_progress(): one server, coordinator"
IFS='|' read -r REF_ONE_MED REF_ONE_DUR REF_ONE_OUT <<<"$(refresh_session "$PORT_ONE")"
IFS='|' read -r REF_C_MED REF_C_DUR REF_C_OUT <<<"$(refresh_session "$PORT_C")"

errors_of() { grep -c ' ERROR: ' "$1" 2>/dev/null || true; }
error_lines() { grep ' ERROR: ' "$1" 2>/dev/null | sed 's/^.* ERROR: *//' | sort | uniq -c | sort -rn | head -3 | awk '{ $1 = $1 "x"; print }' | paste -sd ';' || true; }
ERR_ONE=$(errors_of "$TMP/server.log") ERR_C=$(errors_of "$TMP/coord.log") ERR_W1=$(errors_of "$TMP/worker1.log") ERR_W2=$(errors_of "$TMP/worker2.log")
ERR_TEXT=$(for l in server coord worker1 worker2; do e=$(error_lines "$TMP/$l.log"); [ -n "$e" ] && echo "$l: $e"; done | paste -sd '|' | sed 's/|/ · /g' || true)
LOAD_END=$(loadavg)

# --- the report -------------------------------------------------------------------------------------------------

cell() {  # cell SETUP STATEMENT: median over rounds (µs)
    local r
    for ((r = 0; r < ROUNDS; r++)); do echo "${LAT[$1/$2/$r]}"; done | median
}
rounds_of() { local r; for ((r = 0; r < ROUNDS; r++)); do echo "${LAT[$1/$2/$r]}"; done | paste -sd ' '; }
fmt_us() { awk -v v="$1" 'BEGIN { if (v >= 10000) printf "%.1f ms", v / 1000; else if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%d µs", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
label_of() {
    case $1 in
    real_time) echo '`job_status(id, true)`' ;;
    cached) echo '`job_status(id)` (cached)' ;;
    job_summary) echo '`SELECT * FROM job_summary WHERE job_id = $1`' ;;
    update) echo 'status `UPDATE` (random object of the job)' ;;
    object_insert) echo 'object `INSERT ... ON CONFLICT DO NOTHING`' ;;
    finding_insert) echo 'finding `INSERT ... ON CONFLICT (...) DO NOTHING`' ;;
    esac
}
RT_C=$(cell cluster real_time) CACHED_CL=$(cell cluster cached)
TARGET_RT=$(awk -v v="$RT_C" 'BEGIN { print (v <= 2000) ? "met" : "NOT met" }')
TARGET_CACHED=$(awk -v a="$CACHED_CL" -v b="$RT_C" 'BEGIN { print (a <= b) ? "met" : "NOT met" }')
IDLE_FOLD_TXN="no distributed transaction seen"
if [ "$FOLD_W_REMOTE" != 0 ] || [ "$FOLD_W_TXN" != 0 ] || [ "$XACTS_BEFORE" != "$XACTS_AFTER" ]; then
    IDLE_FOLD_TXN="a distributed transaction or remote command WAS seen"
fi
W_NET=$(awk -v a="$(net_cpu cluster/updates w1)" -v b="$(net_cpu cluster/updates w2)" 'BEGIN { printf "%.3f", a + b }')
C_NET=$(net_cpu cluster/updates coord)
per_core() { awk -v v="$1" 'BEGIN { printf "%.0f", 1000 / v }'; }
w_cpu() { awk -v a="${CPU1K[$1/w1]}" -v b="${CPU1K[$1/w2]}" 'BEGIN { printf "%.3f", a + b }'; }
estimate_rows() {
    local wc cc n
    wc=$(w_cpu cluster/updates)
    cc=${CPU1K[cluster/updates/coord]}
    [ "${1:-}" = net ] && { wc=$W_NET; cc=$C_NET; }
    for n in 2 4 8 16; do
        awk -v n="$n" -v c="$CORES" -v w="$wc" -v k="$cc" 'BEGIN {
            wcap = n * c / (w / 1000); ccap = c / (k / 1000);
            est = (wcap < ccap) ? wcap : ccap;
            printf "| %d | %d | %s | %s | **%s** | %s |\n", n, n * c, th(wcap), th(ccap), th(est), (wcap < ccap) ? "the workers" : "the coordinator" }
            function th(x,  s, r) { s = sprintf("%.0f", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } return s r }'
    done
}

{
    echo "# One server and a Citus cluster of three nodes, side by side: $(title_of "$VERSION"), $DATE"
    echo
    echo "- command: \`sudo test/bench/citus.sh\` (SECS=$SECS, ROUNDS=$ROUNDS, WSECS=$WSECS, SHARDS=$SHARDS, CORES=$CORES)"
    echo "- machine: $(nproc) cores ($CPU), shared with other work; load average at start $LOAD_START, when the measurements began $LOAD_MEASURE (after waiting ${waited} s of at most $QUIET_WAIT for a 1-minute load under 1.5), after the writers $LOAD_AFTER_WRITES, at the end $LOAD_END"
    echo "- PostgreSQL $PG_VERSION, Citus $CITUS_VERSION, s3scan_jobs $VERSION. **All four servers and the pgbench clients shared these $(nproc) cores**: the cluster's coordinator and both worker nodes run on this one machine, talking over Unix sockets"
    echo "- one server: the extension preloaded, refresh worker on, settings at their defaults (refresh every 60 s, fold every 100 ms), port $PORT_ONE"
    echo "- cluster: coordinator (port $PORT_C) and two worker nodes ($PORT_W1, $PORT_W2), each preloading \`citus,s3scan_jobs\`, \`max_prepared_transactions = 100\`, \`wal_level = logical\`, \`citus.local_hostname\` = the socket directory, \`s3scan_jobs.database = 'bench'\`; \`distribute_job_tables($SHARDS)\` after the load (it took $DIST_S s; the load itself ${LOAD_C_S} s on the coordinator, ${LOAD_ONE_S} s on one server with VACUUM ANALYZE and a refresh)"
    echo "- data, the same in both (jobs / objects / findings after the load: $ROWS_ONE): 20 jobs of 5,000 objects and one of 100,000 (all four statuses), a finding per 10 objects; on the cluster: $JOBS_PER_NODE; the 100,000-object job, which the latency table measures, is on the node of port $BIG_NODE"
    echo "- protocol: $(for s in "${STATEMENTS[@]}"; do printf '%s -M %s, ' "$s" "${MODE[$s]}"; done)writers -M $WMODE${MODE_NOTES[*]:+; refused: ${MODE_NOTES[*]}}"
    echo "- the finding insert's conflict target: \`ON CONFLICT (job_id, bucket, key, etag, detector, byte_offset)\` on the cluster (\`distribute_job_tables()\` puts \`job_id\` into findings' dedup key; the key without it is refused there, 42P10), \`ON CONFLICT (bucket, key, etag, detector, byte_offset)\` on one server"
    echo "- the status UPDATE sets plain values (\`SET status = 'processing', last_error = NULL, updated_at = now()\`): Citus 13.2.2 crashes deparsing \`SET status = (ARRAY[...])[n]\`"
    echo
    echo "## Latency per statement, one client"
    echo
    echo "Median latency per statement as the client sees it (pgbench per-transaction log, the first second of each run left out), $SECS s per statement and setup, median over $ROUNDS rounds (statements in rotating order, the setups alternating). All on the job of 100,000 objects."
    echo
    echo "| statement | one server | cluster | ratio |"
    echo "|---|---:|---:|---:|"
    for s in "${STATEMENTS[@]}"; do
        a=$(cell one "$s"); b=$(cell cluster "$s")
        echo "| $(label_of "$s") | $(fmt_us "$a") | $(fmt_us "$b") | $(ratio "$b" "$a")x |"
    done
    echo
    echo "Per round (µs, one server; cluster):"
    echo
    for s in "${STATEMENTS[@]}"; do
        echo "- $s: $(rounds_of one "$s"); $(rounds_of cluster "$s")"
    done
    echo
    echo "Targets: on the cluster real-time \`job_status\` median <= 2 ms: $(fmt_us "$RT_C"), **$TARGET_RT**; cached \`job_status\` <= real time on the cluster: $(fmt_us "$CACHED_CL") against $(fmt_us "$RT_C"), **$TARGET_CACHED**."
    echo
    echo "## Writers: throughput and server CPU"
    echo
    echo "$WCLIENTS clients, $WSECS s, \`-M $WMODE\`, over all 21 jobs (random job, random one of its first 5,000 objects), one statement per transaction. **mix**: the object insert, the status UPDATE to \`processing\`, to \`succeeded\`, and the finding insert, equal weights; **updates**: the two status UPDATEs alone. CPU: each node's server processes (utime+stime from \`/proc\`, the postmaster's children that exited included: backends, the refresh worker's folds, Citus's daemons), over the run and a second after it, per 1,000 transactions. pgbench itself ran on the same cores and is not counted."
    echo
    echo "| workload | one server tx/s | cluster tx/s | ratio | CPU s / 1,000 tx: one server | coordinator | worker nodes (sum; node $PORT_W1 + $PORT_W2) | cluster total |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for w in mix updates; do
        wsum=$(w_cpu "cluster/$w")
        tot=$(awk -v a="$wsum" -v b="${CPU1K[cluster/$w/coord]}" 'BEGIN { printf "%.3f", a + b }')
        echo "| $w | ${TPS[one/$w]} | ${TPS[cluster/$w]} | $(ratio "${TPS[cluster/$w]}" "${TPS[one/$w]}")x | ${CPU1K[one/$w/one]} | ${CPU1K[cluster/$w/coord]} | $wsum (${CPU1K[cluster/$w/w1]} + ${CPU1K[cluster/$w/w2]}) | $tot |"
    done
    echo
    echo "(transactions: one server ${TXS[one/mix]} mix, ${TXS[one/updates]} updates; cluster ${TXS[cluster/mix]} mix, ${TXS[cluster/updates]} updates; failed transactions as pgbench counts them: ${FAILED[one/mix]:-?}, ${FAILED[one/updates]:-?}; ${FAILED[cluster/mix]:-?}, ${FAILED[cluster/updates]:-?}. While the one server ran, the idle cluster's nodes used ${CPU1K[one/mix/coord]} + ${CPU1K[one/mix/w1]} + ${CPU1K[one/mix/w2]} s per 1,000 of its mix transactions, and while the cluster ran, the idle one server ${CPU1K[cluster/mix/one]} s: their own background work.)"
    echo
    echo "## A worked estimate: N worker machines"
    echo
    echo "From the cluster's status UPDATEs (${TXS[cluster/updates]} in ${WIN[cluster/updates]} s, ${TPS[cluster/updates]}/s): the worker nodes spent $(w_cpu cluster/updates) s and the coordinator ${CPU1K[cluster/updates/coord]} s of CPU per 1,000 updates, i.e. one worker core carries about $(per_core "$(w_cpu cluster/updates)") updates/s and one coordinator core about $(per_core "${CPU1K[cluster/updates/coord]}") (one server: ${CPU1K[one/updates/one]} s per 1,000, about $(per_core "${CPU1K[one/updates/one]}") per core). With N worker machines of C cores each and a coordinator of C cores (**C = $CORES is an assumption**, not this machine), and the jobs spread evenly over the shards:"
    echo
    echo "    updates/s ≈ min(N × C / worker CPU per update, C / coordinator CPU per update)"
    echo
    echo "| N worker machines | worker cores | worker side, updates/s | coordinator side, updates/s | estimate | limited by |"
    echo "|---:|---:|---:|---:|---:|---|"
    estimate_rows
    echo
    echo "These CPU times include each node's background work over the run, which does not grow with the rate: idle, the worker nodes used $(idle_pct w1) and $(idle_pct w2) of a core, the coordinator $(idle_pct coord) (below). Net of it, per 1,000 updates: workers $W_NET s, coordinator $C_NET s, and the same estimate:"
    echo
    echo "| N worker machines | worker cores | worker side, updates/s | coordinator side, updates/s | estimate | limited by |"
    echo "|---:|---:|---:|---:|---:|---|"
    estimate_rows net
    echo
    echo "This is an estimate, not a measurement of N machines: **the three nodes shared $(nproc) cores here** (with pgbench), and it scales CPU time measured at this one size. It leaves out the network round trips between machines (here Unix sockets on one host: on a network each statement routed through the coordinator waits one more round trip, which costs latency and clients, not CPU), two-phase commit for transactions that touch several shards (the clients' statements here each touch one shard: no 2PC was measured), the commit's WAL flush on each worker's disk, connection limits, and the coordinator's periodic refresh of \`job_progress\` (which reads every shard). Clients that send their writes through the worker nodes instead of the coordinator (which the extension supports: each node has its own id range) would take the coordinator's share off the limit."
    echo
    echo "## Folds and refresh on the cluster"
    echo
    echo "| call, nothing to fold | median of 20 | max | rows folded (sum) | remote commands logged (\`citus.log_remote_commands\`) | Citus transaction number inside it |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| \`fold_job_counter_shards()\` on worker node $PORT_W1 | $FOLD_W_MED ms | $FOLD_W_MAX ms | $FOLD_W_N | $FOLD_W_REMOTE | $FOLD_W_TXN |"
    echo "| \`fold_job_counter_shards()\` on the coordinator | $FOLD_C_MED ms | $FOLD_C_MAX ms | $FOLD_C_N | $FOLD_C_REMOTE | $FOLD_C_TXN |"
    echo
    echo "Idle for $IDLE_SECS s (no client; each node's refresh worker folding every 100 ms, the coordinator's refreshing every 60 s, Citus's daemons), the server CPU of each node as a share of one core: one server $(idle_pct one), coordinator $(idle_pct coord), worker nodes $(idle_pct w1) and $(idle_pct w2)."
    echo
    echo "Pending delta rows before the folds: $PENDING_BEFORE_FOLD (the nodes' refresh workers had folded the writers' deltas). Prepared transactions on worker $PORT_W1, worker $PORT_W2, and \`pg_dist_transaction\` rows on the coordinator: before the folds $XACTS_BEFORE, after $XACTS_AFTER. Target \"an idle fold costs no distributed transaction\": **$IDLE_FOLD_TXN** (the transaction number is that of \`get_current_transaction_id()\` in the transaction of one more fold: 0 when Citus assigned none)."
    echo
    echo "| \`SELECT * FROM refresh_job_progress()\`, 5 calls | median, client | median \`duration_ms\` | outcomes |"
    echo "|---|---:|---:|---|"
    echo "| one server | $REF_ONE_MED ms | $REF_ONE_DUR ms | $REF_ONE_OUT |"
    echo "| coordinator | $REF_C_MED ms | $REF_C_DUR ms | $REF_C_OUT |"
    echo
    echo "## Checks"
    echo
    echo "- after the writers, \`job_status(id, true)\` against a recount (\`count(*) ... FROM job_objects WHERE job_id = ...\`, findings likewise), every job: one server $RECOUNT_ONE; cluster $RECOUNT_C"
    echo "- the 100,000-object job (total, queued, processing, succeeded, failed, findings): one server $BIG_ONE, cluster $BIG_C (the setups took different writes, so these differ from each other)"
    echo "- Citus task count on the coordinator: a job's real-time read (\`job_progress_live WHERE job_id = ...\`, what \`job_status(id, true)\` reads) **$TASKS_REALTIME**; \`job_summary\` of a job $TASKS_SUMMARY; the status UPDATE $TASKS_UPDATE; the object insert $TASKS_OINS; the finding insert $TASKS_FINS; all jobs' \`job_progress_live\` $TASKS_ALL"
    echo "- ERROR lines in the server logs: one server $ERR_ONE, coordinator $ERR_C, worker nodes $ERR_W1 and $ERR_W2${ERR_TEXT:+ (${ERR_TEXT})}"
    echo
    echo "EXPLAIN (COSTS OFF) of the real-time read of one job on the cluster:"
    echo
    echo '```'
    printf '%s\n' "$PLAN_REALTIME"
    echo '```'
} | tee "$OUT"
REPORTED=1
say "wrote $OUT"
