#!/usr/bin/env bash
# What a real-time answer costs next to a cache hit, warm and from a new connection: one server,
# jobs of 1,000, 100,000 and 1,000,000 objects (plus 1,000 jobs of 50), one client reading one job
# with each of
#   select_1     SELECT 1 (the floor: a round trip)
#   lookup       SELECT * FROM job_progress WHERE job_id = $1 (the bare cached row)
#   cached       SELECT * FROM job_status($1)
#   real_time    SELECT * FROM job_status($1, true)
#   job_summary  SELECT * FROM job_summary WHERE job_id = $1
# warm (one connection, pgbench -M prepared), idle and while 4 other clients send 5,000 status
# updates a second into the job read (the worker folding every 100 ms); and from a new connection
# per call (pgbench -C, -M simple), idle. Cells: median latency per call from pgbench's
# per-transaction log, as a client sees it (round trip included), and the ratio to the bare
# lookup measured in the same block. Statements alternate within each block, so a busier moment
# of the shared machine touches them all. Writes
# test/bench/results/<date>-realtime-reads-<version>-<revision>.md. Not part of the test suite.
#
#   sudo test/bench/realtime_reads.sh            # about 8 minutes
#
# Environment: SECS (warm seconds per statement and block, default 3), CALLS (calls per fresh
# block, default 150), ROUNDS (default 2), FOLD_INTERVAL (the worker's s3scan_jobs.fold_interval,
# default 100ms; another value is named in the result's file name), BENCH_PORT (default 55490), BENCH_SKIP_BUILD=1,
# BENCH_KEEP=1, BENCH_RESULTS, S3SCAN_PG_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init realtime_reads 55490
SECS=${SECS:-3}
CALLS=${CALLS:-150}
ROUNDS=${ROUNDS:-2}
FOLD_INTERVAL=${FOLD_INTERVAL:-100ms}
LOAD_START=$(loadavg)

ensure_packages
build_and_install
start_throwaway_server "s3scan_jobs.database = 'bench'
s3scan_jobs.refresh_interval = 0
s3scan_jobs.fold_interval = '$FOLD_INTERVAL'
shared_buffers = 1GB
max_connections = 50"
q() { as_pg "$PGBIN/psql" -X -q -At -d bench -v ON_ERROR_STOP=1 -c "$1"; }
as_pg "$PGBIN/createdb" bench
q "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version bench)
NAME=realtime-reads
[ "$FOLD_INTERVAL" != 100ms ] && NAME=realtime-reads-fold-$FOLD_INTERVAL
OUT=$(result_file "$NAME" md "$VERSION")

SIZES=(1000 100000 1000000)
job_of() { printf '00000000-0000-4000-8000-%012d' "$1"; }
say "loading: jobs of ${SIZES[*]} objects and 1,000 jobs of 50"
for n in "${SIZES[@]}"; do
    q "INSERT INTO public.jobs (job_id, bucket) VALUES ('$(job_of "$n")', 'b')"
    q "INSERT INTO public.job_objects (job_id, bucket, key, etag, status)
       SELECT '$(job_of "$n")', 'b', 'k' || g, 'e', (ARRAY['queued', 'processing', 'succeeded', 'failed'])[g % 4 + 1]
       FROM generate_series(1, $n) g"
done
q "INSERT INTO public.jobs (job_id, bucket) SELECT md5(g::text)::uuid, 'b' FROM generate_series(1, 1000) g"
q "INSERT INTO public.job_objects (job_id, bucket, key, etag)
   SELECT md5(g::text)::uuid, 'b', 'k' || o, 'e' FROM generate_series(1, 1000) g, generate_series(1, 50) o"
q "SELECT public.refresh_job_progress()" >/dev/null
q "VACUUM ANALYZE"

STATEMENTS=(select_1 lookup cached real_time job_summary)
sql_of() {
    case $1 in
    select_1) echo 'SELECT 1;' ;;
    lookup) echo 'SELECT * FROM public.job_progress WHERE job_id = :id;' ;;
    cached) echo 'SELECT * FROM public.job_status(:id);' ;;
    real_time) echo 'SELECT * FROM public.job_status(:id, true);' ;;
    job_summary) echo 'SELECT * FROM public.job_summary WHERE job_id = :id;' ;;
    esac
}
for s in "${STATEMENTS[@]}"; do
    sql_of "$s" >"$TMP/$s.sql"
done
# The writers: the scanner's per-object status UPDATE, random objects of the job read.
writer_sql() {
    local n=$1
    printf '%s\n' "\\set o random(1, $n)" \
        "UPDATE public.job_objects SET status = (CASE :o % 4 WHEN 0 THEN 'queued' WHEN 1 THEN 'processing' WHEN 2 THEN 'succeeded' ELSE 'failed' END) WHERE job_id = :id AND bucket = 'b' AND key = 'k' || :o;" \
        >"$TMP/writer.sql"
}
chmod 644 "$TMP"/*.sql

# The median per-call latency (µs) of one pgbench run: one client, its per-transaction log.
median_of_run() {
    local mode=$1 stmt=$2 job=$3 logdir
    logdir=$(mktemp -d "$TMP/log.XXXXXX")
    chmod 777 "$logdir"
    local args=(-n -c 1 -j 1 -f "$TMP/$stmt.sql" -l --log-prefix="$logdir/tx")
    if [ "$mode" = fresh ]; then
        # (-M simple puts the variable's text into the statement: quoted)
        args+=(-C -M simple -t "$CALLS" -D "id='$job'")
    else
        args+=(-M prepared -T "$SECS" -D "id=$job")
    fi
    as_pg "$PGBIN/pgbench" "${args[@]}" bench >/dev/null 2>&1 || die "pgbench $mode $stmt failed"
    # (warm: the first second is the plan cache's warm-up, not counted)
    awk -v warm="$mode" 'NR == 1 { t0 = $5 } warm != "warm" || $5 > t0 { print $3 }' "$logdir"/tx.* |
        sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print v[int((NR + 1) / 2)] }'
    rm -rf "$logdir"
}

declare -A RESULT
block() {  # block CONDITION MODE SIZE ROUND
    local cond=$1 mode=$2 n=$3 round=$4 s job
    job=$(job_of "$n")
    local order=("${STATEMENTS[@]}")
    # rotate the order every round
    for ((r = 0; r < round; r++)); do order=("${order[@]:1}" "${order[0]}"); done
    for s in "${order[@]}"; do
        RESULT["$cond/$mode/$n/$s/$round"]=$(median_of_run "$mode" "$s" "$job")
    done
}

# The writers run for one block (its statements, their warm-up, a margin) and stop by themselves.
start_writers() {
    local n=$1
    writer_sql "$n"
    chmod 644 "$TMP/writer.sql"
    as_pg env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -n -c 4 -j 2 -M prepared -R 5000 \
        -T $((${#STATEMENTS[@]} * (SECS + 1) + 6)) -f "$TMP/writer.sql" -D "id=$(job_of "$n")" bench \
        >"$TMP/writers.out" 2>&1 &
    WRITERS=$!
    BG_PIDS+=("$WRITERS")
    sleep 4  # (the writers' connections and their first burst: on 2 cores it starved a reader)
}
wait_for_writers() {
    wait "$WRITERS" || die "the writers failed: $(tail -n 3 "$TMP/writers.out")"
    WRITE_RATES+=("$(awk '/^tps = / { printf "%.0f", $3 }' "$TMP/writers.out")")
}
WRITE_RATES=()

PENDING_MAX=0
for ((round = 0; round < ROUNDS; round++)); do
    for n in "${SIZES[@]}"; do
        say "round $((round + 1)): $n objects, warm idle"
        block idle warm "$n" "$round"
        say "round $((round + 1)): $n objects, warm under 5,000 updates/s"
        start_writers "$n"
        block load warm "$n" "$round"
        p=$(q "SELECT count(*) FROM public.job_counter_deltas")
        [ "$p" -gt "$PENDING_MAX" ] && PENDING_MAX=$p
        wait_for_writers
        say "round $((round + 1)): $n objects, a new connection per call"
        block idle fresh "$n" "$round"
    done
done
DIFFS=$(q "SELECT count(*) FROM public.verify_job_counters()")
LOAD_END=$(loadavg)

# The median over rounds of a cell (µs), and its ratio to the lookup of the same block.
cell() {
    local key=$1 s=$2 vals=() r
    for ((r = 0; r < ROUNDS; r++)); do vals+=("${RESULT[$key/$s/$r]}"); done
    # (a round that recorded nothing, "nan", is left out; none at all: nan)
    printf '%s\n' "${vals[@]}" | grep -v nan | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print v[int((NR + 1) / 2)] }'
}
fmt_us() { awk -v v="$1" 'BEGIN { if (v == "nan") printf "n/a"; else if (v >= 10000) printf "%.1f ms", v / 1000; else printf "%d µs", v }'; }
table() {
    local cond=$1 mode=$2 n s lookup v
    echo "| statement | 1,000 objects | 100,000 objects | 1,000,000 objects |"
    echo "|---|---:|---:|---:|"
    for s in "${STATEMENTS[@]}"; do
        printf '| `%s` |' "$s"
        for n in "${SIZES[@]}"; do
            v=$(cell "$cond/$mode/$n" "$s")
            lookup=$(cell "$cond/$mode/$n" lookup)
            printf ' %s (%sx) |' "$(fmt_us "$v")" "$(awk -v a="$v" -v b="$lookup" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) printf "n/a"; else printf "%.2f", a / b }')"
        done
        echo
    done
}
# The extra cost of a first call over another statement's, new connection (µs).
extra() {
    local n=$1 a=$2 b=$3
    awk -v x="$(cell "idle/fresh/$n" "$a")" -v y="$(cell "idle/fresh/$n" "$b")" 'BEGIN { printf "%+.2f ms", (x - y) / 1000 }'
}

{
    echo "# Real-time reads next to a cache hit, warm and from a new connection: $(title_of "$VERSION"), $DATE"
    echo
    echo "- command: \`test/bench/realtime_reads.sh\` (SECS=$SECS, CALLS=$CALLS, ROUNDS=$ROUNDS)"
    echo "- machine: $(nproc) cores, shared with other work; load average at start $LOAD_START, at the end $LOAD_END"
    echo "- data: jobs of 1,000, 100,000 and 1,000,000 objects (all four statuses) and 1,000 jobs of 50; job_progress refreshed once; the worker folds every $FOLD_INTERVAL"
    echo "- cells: median latency per call as the client sees it (pgbench per-transaction log, one client), median over $ROUNDS rounds; in brackets the ratio to \`lookup\` (\`SELECT * FROM job_progress WHERE job_id = \$1\`) of the same block"
    echo "- verify_job_counters() at the end: $DIFFS differing rows; the most pending delta rows seen under load: $PENDING_MAX; the writers' rate per loaded block: ${WRITE_RATES[*]} updates/s"
    echo
    echo "## Warm (one connection, -M prepared), idle"
    echo
    table idle warm
    echo
    echo "## Warm, while 4 clients send 5,000 status updates a second into the job read"
    echo
    table load warm
    echo
    echo "## A new connection per call (pgbench -C, -M simple), idle"
    echo
    table idle fresh
    echo
    echo "First call of a connection, extra cost:"
    echo
    echo "| | 1,000 objects | 100,000 objects | 1,000,000 objects |"
    echo "|---|---:|---:|---:|"
    printf '| `job_status(id, true)` over `job_status(id)` |'
    for n in "${SIZES[@]}"; do printf ' %s |' "$(extra "$n" real_time cached)"; done
    echo
    printf '| `job_summary` over `SELECT 1` |'
    for n in "${SIZES[@]}"; do printf ' %s |' "$(extra "$n" job_summary select_1)"; done
    echo
} | tee "$OUT"
REPORTED=1
say "wrote $OUT"
