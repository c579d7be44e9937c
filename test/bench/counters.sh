#!/usr/bin/env bash
# s3scan_jobs per-job counters, side by side in one server and one run: real-time read latency by
# job size under write load, write cost with counters on / off / the plain tables, fold
# cost, and refresh at the full size. Not part of the test suite.
#
#   sudo test/bench/counters.sh [quick|full]
#
#   quick  jobs of 1K / 10K / 100K objects read, 10K jobs / ~0.3M objects; 3-5 minutes
#   full   jobs of 1K / 100K / 1M objects read, 100K jobs / ~10M objects; 25-40 minutes on 2 cores
#
# Builds and installs the extension (as root), starts a throwaway server (throwaway_server.sh),
# and writes test/bench/results/<date>-counters-<scale>-<version>-<revision>.md and .png (when
# gnuplot is there). The clients (psql, pgbench) run as the caller.
# Environment: BENCH_PORT (default 55496), BENCH_SKIP_BUILD=1, BENCH_KEEP=1, BENCH_RESULTS,
# S3SCAN_PG_BIN (throwaway_server.sh); BENCH_SECTIONS (reads fold writes refresh: the parts to
# run), BENCH_W_UPD_ROUNDS, BENCH_W_UPD_S, BENCH_W_INS_ROUNDS, BENCH_W_INS_S (a longer write
# section). See test/bench/README.md ("Per-job counters: counters.sh").

set -euo pipefail

SCALE=${1:-quick}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SQL=$HERE/sql
. "$HERE/throwaway_server.sh"
bench_init counters 55496

# R_*: reads under load; W_*: write cost; F_*: fold cost; REF_*: refresh.
case $SCALE in
quick)
    SIZES="1000 10000 100000" JOBS=10000 SMALL_AVG=20 FIND_EVERY=50 MEASURED_FINDINGS=5
    R_CLIENTS=6 R_RATE=5000 R_WARM=2 R_CHUNK=2 R_CHUNKS=1 R_BLOCKS="on off"
    W_BIG=100000 W_JOBS=1000 W_PER=50 W_CLIENTS=8 W_THREADS=2
    W_UPD_S=3 W_UPD_ROUNDS=1 W_INS_S=2 W_INS_ROUNDS=1
    F_SECONDS=5
    REF_ROUNDS=1 CHURN=200
    SHARED_BUFFERS=1GB
    ;;
full)
    SIZES="1000 100000 1000000" JOBS=100000 SMALL_AVG=89 FIND_EVERY=50 MEASURED_FINDINGS=5
    R_CLIENTS=6 R_RATE=5000 R_WARM=3 R_CHUNK=5 R_CHUNKS=2 R_BLOCKS="on off on"
    W_BIG=500000 W_JOBS=2000 W_PER=100 W_CLIENTS=8 W_THREADS=2
    W_UPD_S=20 W_UPD_ROUNDS=2 W_INS_S=10 W_INS_ROUNDS=1
    F_SECONDS=20
    REF_ROUNDS=2 CHURN=1000
    SHARED_BUFFERS=2GB
    ;;
*)
    echo "usage: $0 [quick|full]" >&2
    exit 2
    ;;
esac
# The write section's length, for a longer run of it than the scale's default.
W_UPD_S=${BENCH_W_UPD_S:-$W_UPD_S} W_UPD_ROUNDS=${BENCH_W_UPD_ROUNDS:-$W_UPD_ROUNDS}
W_INS_S=${BENCH_W_INS_S:-$W_INS_S} W_INS_ROUNDS=${BENCH_W_INS_ROUNDS:-$W_INS_ROUNDS}

# Which parts run (BENCH_SECTIONS, default all): reads, fold, writes, refresh.
SECTIONS=" ${BENCH_SECTIONS:-reads fold writes refresh} "
want() { [[ $SECTIONS == *" $1 "* ]]; }

LOADS=()
mark_load() { LOADS+=("$1: $(loadavg)"); say "load average (1, 5, 15 min) $1: $(loadavg)"; }

mark_load "at start"
ensure_packages
build_and_install

# --- throwaway server --------------------------------------------------------------------------
# The server runs as postgres (it refuses root); the clients (psql, pgbench) run as the caller,
# connecting as the database user postgres over the socket, so that their files stay ours.

start_throwaway_server "max_connections = 50
s3scan_jobs.database = 'bench, w_ext'   # a worker in each: it folds the counters there
s3scan_jobs.refresh_interval = 0        # no background refresh during measurements
shared_buffers = $SHARED_BUFFERS
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 20GB
checkpoint_timeout = 1h
# autovacuum stays on for the extension's own tables (the deltas are appended and deleted all the
# time, as in production); the three base tables have it off (below), so that it never runs
# during one measurement and not another.
autovacuum = on
autovacuum_naptime = 5s
log_min_messages = warning
log_checkpoints = off"
DATA=$TMP/data
cd "$TMP"

export PGHOST=$TMP PGPORT=$PORT PGUSER=postgres
psql_db() { local db=$1; shift; "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
q() { local db=$1; shift; psql_db "$db" -At -c "$*"; }
meta() { q bench "INSERT INTO bench.meta VALUES ('$1', \$m\$$2\$m\$) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value" >/dev/null; }
NOTE_N=0
note() { NOTE_N=$((NOTE_N + 1)); meta "note:$(printf '%03d' $NOTE_N)" "$1"; say "NOTE: $1"; }

for db in bench w_ext w_plain; do "$PGBIN/createdb" "$db"; done
q bench "CREATE EXTENSION s3scan_jobs" >/dev/null
q w_ext "CREATE EXTENSION s3scan_jobs" >/dev/null
psql_db w_plain -f "$SQL/plain_schema.sql" >/dev/null
for db in bench w_ext w_plain; do
    psql_db "$db" -f "$SQL/generate.sql" >/dev/null
    q "$db" "ALTER TABLE public.jobs SET (autovacuum_enabled = off);
             ALTER TABLE public.job_objects SET (autovacuum_enabled = off);
             ALTER TABLE public.findings SET (autovacuum_enabled = off)" >/dev/null
done
psql_db bench -f "$SQL/baseline_views.sql" >/dev/null
psql_db bench -f "$SQL/counters_measure.sql" >/dev/null

EXT_VERSION=$(ext_version bench)
OUT_MD=$(result_file "counters-$SCALE" md "$EXT_VERSION")
OUT_PNG=${OUT_MD%.md}.png
say "s3scan_jobs $EXT_VERSION; the report: $OUT_MD"
HAVE_COUNTERS=$(q bench "SELECT to_regprocedure('public.set_counter_maintenance(boolean)') IS NOT NULL")
if [ "$HAVE_COUNTERS" = t ]; then
    MODES_AVAILABLE="on off"
else
    note "this build (extension version $EXT_VERSION) has no per-job counters: only the 1.0 path ('counters off') is measured"
    MODES_AVAILABLE="off"
fi
have_mode() { [[ " $MODES_AVAILABLE " == *" $1 "* ]]; }
set_mode() {  # db on|off
    [ "$HAVE_COUNTERS" = t ] || return 0
    q "$1" "SELECT public.set_counter_maintenance($([ "$2" = on ] && echo true || echo false))" >/dev/null
}
set_fold_interval() {  # value: ALTER SYSTEM + reload
    q bench "ALTER SYSTEM SET s3scan_jobs.fold_interval = '$1'" >/dev/null 2>&1 ||
        { note "s3scan_jobs.fold_interval could not be set to $1"; return 0; }
    q bench "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
}
pending() {  # db: pending delta rows (empty when the table does not exist)
    q "$1" "SELECT count(*) FROM public.job_counter_deltas" 2>/dev/null || true
}
meta scale "$SCALE"
meta version "$EXT_VERSION"
meta churn "$CHURN"
meta r_clients "$R_CLIENTS"; meta r_rate "$R_RATE"; meta r_chunk "$R_CHUNK"; meta r_chunks "$R_CHUNKS"
meta r_blocks "$(sed 's/ /, /g' <<<"$R_BLOCKS")"
meta w_clients "$W_CLIENTS"; meta w_threads "$W_THREADS"; meta w_big "$W_BIG"; meta w_jobs "$W_JOBS"
meta w_per "$W_PER"; meta w_upd_s "$W_UPD_S"; meta w_ins_s "$W_INS_S"; meta f_seconds "$F_SECONDS"
set_fold_interval 100ms

# A fixed CPU-bound query, timed at the start, in the middle and at the end: how much the
# machine's other work slowed this one down.
calibrate() {
    local ms
    ms=$(q bench "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); x bigint; BEGIN
                  SELECT sum(g) INTO x FROM generate_series(1, 3000000) g;
                  RAISE NOTICE '%', round(extract(epoch FROM clock_timestamp() - t0) * 1000); END \$\$" 2>&1 |
         sed -n 's/^NOTICE: *//p')
    CALIB+=("$1: ${ms} ms")
}
CALIB=()
calibrate "at start"

# --- data --------------------------------------------------------------------------------------

n_measured=$(wc -w <<<"$SIZES")
say "bench: measured jobs of $SIZES objects, then small jobs up to $JOBS jobs"
for n in $SIZES; do q bench "CALL bench.load_measured_job($n, $MEASURED_FINDINGS)"; done
q bench "CALL bench.load_small_jobs(1, $((JOBS - n_measured)), $SMALL_AVG, true, $FIND_EVERY)"
say "w_ext, w_plain: one job of $W_BIG objects, $W_JOBS jobs of $W_PER (loaded at once)"
if want writes; then
for db in w_ext w_plain; do
    { q "$db" "CALL bench.load_measured_job($W_BIG, 0)" &&
      q "$db" "CALL bench.load_small_jobs(1, $W_JOBS, $W_PER, false, 50)"; } &
    BG_PIDS+=($!)
done
wait "${BG_PIDS[@]}"; BG_PIDS=()
fi
say "VACUUM ANALYZE, first refreshes"
for db in bench w_ext w_plain; do q "$db" "VACUUM ANALYZE" >/dev/null; done
q bench "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
q bench "REFRESH MATERIALIZED VIEW CONCURRENTLY baseline.job_progress" >/dev/null
q w_ext "SELECT outcome FROM public.refresh_job_progress()" >/dev/null
q bench "CHECKPOINT" >/dev/null
DATA_DESC="$(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.jobs") jobs, $(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.job_objects") objects, $(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.findings") findings"
meta data "$DATA_DESC"
meta data_short "$(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.jobs") jobs / $(q bench "SELECT to_char(count(*), 'FM999,999,999') FROM public.job_objects") objects"
say "bench: $DATA_DESC"

# Is the worker folding? A burst of changes must be folded within a few fold intervals.
if [ "$HAVE_COUNTERS" = t ]; then
    q bench "SELECT bench.churn(500)" >/dev/null
    folded=no
    for ((i = 0; i < 40; i++)); do
        [ "$(pending bench)" = 0 ] && { folded=yes; break; }
        sleep 0.1
    done
    [ $folded = yes ] && say "the worker folds (pending deltas reached 0 within $((i * 100)) ms)" ||
        note "the refresh worker did not fold within 4 s of a change at fold_interval = 100ms (pending: $(pending bench)); reads sum more deltas"
fi

# --- pgbench scripts -----------------------------------------------------------------------------
# Identifiers are functions of (job number i, object number k), as in sql/generate.sql; measured
# jobs have i = -(objects). The UPDATE is the scanner's own statement
# (shared/reference/s3-scanner-interface.md: SET status, last_error, updated_at WHERE job_id AND
# bucket AND key AND etag), one per transaction; statuses drawn as the workers set them.

JOB_ID="md5('s3scan-bench-job-' || :i)::uuid"
BUCKET="'bucket-' || :b"
OKEY="'scan-' || :i || '/part-' || :p || '/object-' || :k || '.dat'"
common() { printf '%s\n' '\set b abs(:i) % 50' '\set p :k / 1000'; }  # computed by pgbench: typed parameters
OETAG="md5('etag-' || :i || '-' || :k)"

write_update() {  # objects-in-job file
    {
        printf '\\set i -%s\n\\set k random(1, %s)\n\\set s random(1, 20)\n' "$1" "$1"; common
        printf '\\if :s <= 9\n'
        printf "UPDATE job_objects SET status = 'processing', last_error = NULL, updated_at = now() WHERE job_id = %s AND bucket = %s AND key = %s AND etag = %s;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG"
        printf '\\elif :s <= 18\n'
        printf "UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now() WHERE job_id = %s AND bucket = %s AND key = %s AND etag = %s;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG"
        printf '\\else\n'
        printf "UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied: GetObject', updated_at = now() WHERE job_id = %s AND bucket = %s AND key = %s AND etag = %s;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG"
        printf '\\endif\n'
    } >"$2"
}
write_objects_rows() {  # the clients' listing batch: 1000 single-row INSERTs, one transaction
    {
        printf '\\set i -%s\n\\set k 0\n\\set n random(1, 1000000000000)\n' "$W_BIG"; common
        echo "BEGIN;"
        for ((r = 1; r <= 1000; r++)); do
            printf "INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES (%s, %s, 'scan-' || :i || '/new-' || :n || '/object-%d.dat', md5('new-' || :n || '-%d'), 'queued', now()) ON CONFLICT DO NOTHING;\n" "$JOB_ID" "$BUCKET" "$r" "$r"
        done
        echo "COMMIT;"
    } >"$1"
}
write_objects_multi() {  # 1000 objects in one INSERT ... SELECT
    {
        printf '\\set i -%s\n\\set k 0\n\\set n random(1, 1000000000000)\n' "$W_BIG"; common
        printf "INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) SELECT %s, %s, 'scan-' || :i || '/new-' || :n || '/object-' || g || '.dat', md5('new-' || :n || '-' || g), 'queued', now() FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;\n" "$JOB_ID" "$BUCKET"
    } >"$1"
}
write_findings_rows() {  # the clients' findings batch: 100 single-row INSERTs, one transaction
    {
        printf '\\set i -%s\n\\set k random(1, %s)\n\\set o random(0, 1000000000)\n' "$W_BIG" "$W_BIG"; common
        echo "BEGIN;"
        for ((r = 1; r <= 100; r++)); do
            printf "INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES (%s, %s, %s, %s, 'credit_card', '****-****-****-%04d', 'card: ****-****-****-%04d exp 01/29', :o + %d, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG" "$r" "$r" "$((r * 17))"
        done
        echo "COMMIT;"
    } >"$1"
}
write_findings_multi() {  # 100 findings in one INSERT ... SELECT
    {
        printf '\\set i -%s\n\\set k random(1, %s)\n\\set o random(0, 1000000000)\n' "$W_BIG" "$W_BIG"; common
        printf "INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) SELECT %s, %s, %s, %s, 'credit_card', '****-****-****-' || lpad(g::text, 4, '0'), 'card: ****-****-****-' || lpad(g::text, 4, '0') || ' exp 01/29', :o + g * 17, now() FROM generate_series(1, 100) g ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;\n" "$JOB_ID" "$BUCKET" "$OKEY" "$OETAG"
    } >"$1"
}
for n in $SIZES; do write_update "$n" "$TMP/update_$n.sql"; done
write_update "$W_BIG" "$TMP/w_update.sql"
write_objects_rows "$TMP/w_objects_rows.sql"
write_objects_multi "$TMP/w_objects_multi.sql"
write_findings_rows "$TMP/w_findings_rows.sql"
write_findings_multi "$TMP/w_findings_multi.sql"
echo 'SELECT * FROM job_status(:jid, true);' >"$TMP/read_status_live.sql"
echo 'SELECT * FROM job_summary WHERE job_id = :jid;' >"$TMP/read_summary.sql"
echo 'SELECT * FROM job_status(:jid);' >"$TMP/read_status_cached.sql"

pgbench_out() {  # file field: tps / latency average / lag from a pgbench summary
    case $2 in
    tps) sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$1" ;;
    xacts) sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1" ;;
    lat) sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$1" ;;
    lag) sed -n 's/^rate limit schedule lag: avg \([0-9.]*\) .*/\1/p' "$1" ;;
    failed) sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1" ;;
    esac
}
start_writers() {  # db script seconds: rate-limited per-object updates in the background
    env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -n -M prepared -c "$R_CLIENTS" -j 2 \
        -R "$R_RATE" -T "$3" -f "$2" "$1" >"$TMP/writers.out" 2>&1 &
    WRITERS=$!
    BG_PIDS+=("$WRITERS")
}
wait_writers() {
    wait "$WRITERS" || { cat "$TMP/writers.out" >&2; die "the writers (pgbench -R) failed"; }
    BG_PIDS=()
}

# --- 1. reads under write load -----------------------------------------------------------------

if want reads; then
mark_load "before the reads"
block=0
for mode in $R_BLOCKS; do
    have_mode "$mode" || continue
    block=$((block + 1))
    say "reads, block $block: counters $mode"
    set_mode bench "$mode"
    q bench "VACUUM public.job_objects" >/dev/null   # the previous block's dead rows pruned alike
    for n in $SIZES; do
        jid=$(q bench "SELECT bench.jid(-$n)")
        # the writers run for the whole block: warm-up, the read chunks, and a margin of 1.5 s a
        # chunk for the last read of a chunk that overruns it (seconds for the slow reads)
        wsecs=$(awk -v w="$R_WARM" -v n="$R_CHUNKS" -v c="$R_CHUNK" 'BEGIN { printf "%d", w + 3 * n * (c + 1.5) + 0.999 }')
        start_writers bench "$TMP/update_$n.sql" "$wsecs"
        sleep "$R_WARM"
        pmax=0
        for ((c = 0; c < R_CHUNKS; c++)); do
            kinds=(status_live summary status_cached)
            for ((j = 0; j < 3; j++)); do
                kind=${kinds[$(( (j + c + block) % 3 ))]}
                rm -f "$TMP"/lat.*
                "$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -T "$R_CHUNK" -D jid="$jid" \
                    -f "$TMP/read_$kind.sql" -l --log-prefix="$TMP/lat" bench >"$TMP/reader.out" 2>&1 ||
                    { cat "$TMP/reader.out" >&2; die "pgbench read $kind failed"; }
                # log: client_id transaction_no latency_us script_no epoch epoch_us; the first
                # reads of a chunk (custom plans, cold caches) are not counted
                cat "$TMP"/lat.* | awk -v s="$n" -v m="$mode" -v b="$block" -v k="$kind" '
                    { lat[NR] = $3 } END { skip = (NR > 40) ? 10 : (NR > 3 ? 1 : 0)
                      for (i = skip + 1; i <= NR; i++) printf "%s\t%s\t%s\t%s\t%.6f\n", s, m, b, k, lat[i] / 1000.0 }' \
                    >"$TMP/lat.tsv"
                psql_db bench -c "\\copy bench.read_lat (size, counters, block, kind, ms) FROM '$TMP/lat.tsv'" >/dev/null
                p=$(pending bench); [ -n "$p" ] && [ "$p" -gt "$pmax" ] && pmax=$p
            done
        done
        kill -0 "$WRITERS" 2>/dev/null || note "reads of the $n-object job, counters $mode: the writers ended before the readers (${wsecs}s)"
        wait_writers
        q bench "INSERT INTO bench.read_load VALUES ($n, '$mode', $block, $wsecs, $(pgbench_out "$TMP/writers.out" tps),
                 nullif('$(pgbench_out "$TMP/writers.out" lag)', '')::float8,
                 $([ "$HAVE_COUNTERS" = t ] && echo "$pmax" || echo NULL))" >/dev/null
        say "  $n objects: $(q bench "SELECT string_agg(kind || ' ' || bench.fmt(median) || ' / p99 ' || bench.fmt(p99), ', ' ORDER BY kind) FROM (SELECT kind, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM bench.read_lat WHERE size = $n AND block = $block GROUP BY kind) s"); $(pgbench_out "$TMP/writers.out" tps) updates/s"
    done
done
set_mode bench on
mark_load "after the reads"
calibrate "after the reads"
fi

# --- 3. fold cost (before the write runs: bench's largest job, same server state) ----------------

if want fold; then
F_SIZE=$(tr ' ' '\n' <<<"$SIZES" | sort -n | tail -1)
meta f_size "$F_SIZE"
sample_pending() {  # mode seconds: count(*) of job_counter_deltas every ~5 ms until the deadline
    local deadline
    deadline=$(q bench "SELECT clock_timestamp() + interval '$2 seconds'")
    {
        echo "\\set deadline '$deadline'"
        for ((i = 0; i < $2 * 400; i++)); do
            echo "SELECT '$1' || E'\\t' || extract(epoch FROM clock_timestamp()) || E'\\t' || count(*) AS line, clock_timestamp() > :'deadline' AS done FROM public.job_counter_deltas \\gset"
            echo "\\echo :line"
            echo "\\if :done"
            echo "\\q"
            echo "\\endif"
            echo "SELECT pg_sleep(0.005) \\g /dev/null"
        done
    } >"$TMP/sampler.sql"
    psql_db bench -At -f "$TMP/sampler.sql" >"$TMP/pending_$1.tsv"
}
fold_loop() {  # seconds: a client folds every 100 ms, timed inside the server
    local deadline
    deadline=$(q bench "SELECT clock_timestamp() + interval '$1 seconds'")
    {
        echo "\\set deadline '$deadline'"
        for ((i = 0; i < $1 * 10 + 10; i++)); do
            echo "SELECT 'manual' || E'\\t' || extract(epoch FROM clock_timestamp()) || E'\\t' || f.n || E'\\t' || extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000 AS line, clock_timestamp() > :'deadline' AS done FROM public.fold_job_counters() AS f(n) \\gset"
            echo "\\echo :line"
            echo "\\if :done"
            echo "\\q"
            echo "\\endif"
            echo "SELECT pg_sleep(0.1) \\g /dev/null"
        done
    } >"$TMP/folder.sql"
    psql_db bench -At -f "$TMP/folder.sql" >"$TMP/folds.tsv"
}
if [ "$HAVE_COUNTERS" = t ]; then
    mark_load "before the fold runs"
    for fmode in worker manual; do
        say "fold cost, $fmode: $R_CLIENTS clients at -R $R_RATE on the $F_SIZE-object job for ${F_SECONDS}s"
        if [ $fmode = worker ]; then set_fold_interval 100ms; else set_fold_interval 0; fi
        q bench "SELECT public.fold_job_counters()" >/dev/null
        start_writers bench "$TMP/update_$F_SIZE.sql" "$((F_SECONDS + 2))"
        sleep 1
        if [ $fmode = manual ]; then fold_loop "$F_SECONDS" & BG_PIDS+=($!); fi
        sample_pending "$fmode" "$F_SECONDS"
        [ $fmode = manual ] && wait "${BG_PIDS[-1]}"
        wait_writers
        psql_db bench -c "\\copy bench.pending (mode, t, n) FROM '$TMP/pending_$fmode.tsv'" >/dev/null
        [ $fmode = manual ] && psql_db bench -c "\\copy bench.folds (mode, t, rows, ms) FROM '$TMP/folds.tsv'" >/dev/null
        q bench "INSERT INTO bench.fold_load VALUES ('$fmode', $F_SECONDS, $(pgbench_out "$TMP/writers.out" tps),
                 $(pgbench_out "$TMP/writers.out" lat), nullif('$(pgbench_out "$TMP/writers.out" lag)', '')::float8)" >/dev/null
        say "  pending deltas: $(q bench "SELECT 'median ' || round(median) || ', p99 ' || round(p99) || ', max ' || max FROM bench.pending_stats WHERE mode = '$fmode'")"
    done
    set_fold_interval 100ms
    # Whatever the worker reports about its folds (columns named fold*), if anything.
    cols=$(q bench "SELECT string_agg(quote_ident(attname), ', ') FROM pg_attribute
                    WHERE attrelid = to_regclass('public.refresh_worker_status') AND attname LIKE '%fold%' AND NOT attisdropped")
    [ -n "$cols" ] && meta worker_fold_stats "$(q bench "SELECT string_agg(row_to_json(s)::text, '; ') FROM (SELECT $cols FROM public.refresh_worker_status) s")"
    mark_load "after the fold runs"
fi
fi

# --- 2. write cost -----------------------------------------------------------------------------

if want writes; then
meta "scenario:update" "status UPDATE of one object, own transaction (the scanner's statement)"
meta "scenario:objects_rows" "1000 single-row object INSERTs ON CONFLICT DO NOTHING, one transaction (the clients' listing batch)"
meta "scenario:objects_multi" "1000 objects in one INSERT ... SELECT ... ON CONFLICT DO NOTHING"
meta "scenario:findings_rows" "100 single-row findings INSERTs ON CONFLICT (...) DO NOTHING, one transaction (the clients' batch)"
meta "scenario:findings_multi" "100 findings in one INSERT ... SELECT ... ON CONFLICT (...) DO NOTHING"
CONFIGS=(on off plain)
have_mode on || CONFIGS=(off plain)
EXT_STATE=on
write_run() {  # scenario config round seconds
    local db=w_plain
    if [ "$2" != plain ]; then
        db=w_ext
        if [ "$EXT_STATE" != "$2" ]; then set_mode w_ext "$2"; EXT_STATE=$2; fi
    fi
    env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -n -M prepared -c "$W_CLIENTS" -j "$W_THREADS" \
        -T "$4" -f "$TMP/w_$1.sql" "$db" >"$TMP/w.out" 2>&1 ||
        { cat "$TMP/w.out" >&2; die "pgbench $1 on $db ($2) failed"; }
    local tps; tps=$(pgbench_out "$TMP/w.out" tps)
    [ -n "$tps" ] || { cat "$TMP/w.out" >&2; die "pgbench $1: no tps"; }
    q bench "INSERT INTO bench.write_runs (scenario, config, round, tps, xacts, lat_ms, failed)
             VALUES ('$1', '$2', $3, $tps, $(pgbench_out "$TMP/w.out" xacts), $(pgbench_out "$TMP/w.out" lat),
                     coalesce(nullif('$(pgbench_out "$TMP/w.out" failed)', '')::bigint, 0))" >/dev/null
    printf '           %-15s %-6s round %d: %9.1f tps\n' "$1" "$2" "$3" "$tps"
}
write_rounds() {  # scenario rounds seconds
    local r i order
    for ((r = 1; r <= $2; r++)); do
        order=()
        for ((i = 0; i < ${#CONFIGS[@]}; i++)); do order+=("${CONFIGS[$(( (i + r - 1) % ${#CONFIGS[@]} ))]}"); done
        for c in "${order[@]}"; do write_run "$1" "$c" "$r" "$3"; done
        for ((i = ${#order[@]} - 1; i >= 0; i--)); do write_run "$1" "${order[$i]}" "$r" "$3"; done
    done
}
mark_load "before the writes"
say "writes: update ($W_UPD_ROUNDS rounds x ${W_UPD_S}s), inserts ($W_INS_ROUNDS rounds x ${W_INS_S}s); $W_CLIENTS clients, configs ${CONFIGS[*]}"
q w_ext "CHECKPOINT" >/dev/null
write_rounds update "$W_UPD_ROUNDS" "$W_UPD_S"
for s in objects_rows objects_multi findings_rows findings_multi; do
    write_rounds "$s" "$W_INS_ROUNDS" "$W_INS_S"
done
[ "$EXT_STATE" = on ] || set_mode w_ext on
mark_load "after the writes"
calibrate "after the writes"
fi

# --- 4. refresh at the full size ---------------------------------------------------------------

if want refresh; then
say "refresh at $(q bench "SELECT value FROM bench.meta WHERE key = 'data_short'"): $REF_ROUNDS rounds"
set_fold_interval 0
q bench "VACUUM ANALYZE public.job_objects" >/dev/null
q bench "DROP MATERIALIZED VIEW IF EXISTS bench.floor_mv; DROP TABLE IF EXISTS bench.floor_src;
         CREATE TABLE bench.floor_src AS SELECT * FROM public.job_progress;
         CREATE MATERIALIZED VIEW bench.floor_mv AS SELECT * FROM bench.floor_src;
         CREATE UNIQUE INDEX ON bench.floor_mv (job_id)" >/dev/null
q bench "VACUUM ANALYZE bench.floor_src" >/dev/null
q bench "CALL bench.measure_refresh($REF_ROUNDS, $CHURN, $([ "$HAVE_COUNTERS" = t ] && echo true || echo false))"
set_fold_interval 100ms
if [ "$HAVE_COUNTERS" = t ]; then
    meta refresh_plan "$(q bench "EXPLAIN (ANALYZE, COSTS, TIMING OFF, SUMMARY) SELECT * FROM public.job_progress_live" |
        awk 'NR == 1 || /JIT:|Timing:|Execution Time/' | sed 's/^ *//; s/  */ /g' | tr '\n' ';' | sed 's/;/; /g')"
fi
say "  $(q bench "SELECT string_agg(kind || ' ' || bench.fmt(median), ', ' ORDER BY kind) FROM bench.refresh_stats")"
fi

# --- checks ------------------------------------------------------------------------------------

say "checks"
check() { q bench "INSERT INTO bench.checks VALUES (\$c\$$1\$c\$, $2, nullif(\$c\$$3\$c\$, ''))" >/dev/null; }
if [ "$HAVE_COUNTERS" = t ]; then
    for db in bench w_ext; do
        bad=$(q "$db" "SELECT count(*) || '|' || coalesce(string_agg(job_id || ' ' || item || ': ' || maintained || ' vs ' || counted, '; '), '') FROM (SELECT * FROM public.verify_job_counters() LIMIT 20) v")
        check "verify_job_counters() in $db: no job differs" "$([ "${bad%%|*}" = 0 ] && echo true || echo false)" "${bad#*|}"
    done
fi
for n in $SIZES; do
    r=$(q bench "WITH s AS (SELECT * FROM public.job_status(bench.jid(-$n), true)),
                     c AS (SELECT count(*) AS t, count(*) FILTER (WHERE status = 'queued') AS q,
                                  count(*) FILTER (WHERE status = 'processing') AS p,
                                  count(*) FILTER (WHERE status = 'succeeded') AS s,
                                  count(*) FILTER (WHERE status = 'failed') AS f
                           FROM public.job_objects WHERE job_id = bench.jid(-$n))
                 SELECT ((s.total_objects, s.queued_count, s.processing_count, s.succeeded_count, s.failed_count)
                         = (c.t, c.q, c.p, c.s, c.f))::text || '|' || s.total_objects || ' ' || s.queued_count || ' ' ||
                         s.processing_count || ' ' || s.succeeded_count || ' ' || s.failed_count || ' vs ' ||
                         c.t || ' ' || c.q || ' ' || c.p || ' ' || c.s || ' ' || c.f
                 FROM s, c")
    check "job_status($n-object job, true) = a count of its objects (after the writes stopped)" "${r%%|*}" "$([ "${r%%|*}" = true ] || echo "${r#*|}")"
done
errors=$(grep ' ERROR: ' "$TMP/server.log" | grep -vc 'canceling autovacuum task' || true)
check "server log: no ERROR (but autovacuum's cancellations)" "$([ "$errors" = 0 ] && echo true || echo false)" "$([ "$errors" = 0 ] || grep ' ERROR: ' "$TMP/server.log" | grep -v 'canceling autovacuum task' | sed 's/^.*ERROR: *//' | sort | uniq -c | sort -rn | head -5 | tr '\n' ';')"
mark_load "at the end"
calibrate "at the end"

# --- report ------------------------------------------------------------------------------------

say "report"
pg_version=$(q bench "SELECT version()")
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
mem=$(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GB"}')
settings=$(q bench "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
                    WHERE name IN ('shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather', 'autovacuum', 'fsync', 'synchronous_commit', 's3scan_jobs.fold_interval')")
{
    echo "# Per-job counters, $SCALE scale: $(title_of "$EXT_VERSION"), $DATE"
    echo
    echo "- command: \`test/bench/counters.sh $SCALE\`"
    echo "- machine: $(nproc) cores${cpu:+ ($cpu)}, $mem memory; shared with other work while it ran"
    echo "- load average (1, 5, 15 min): $(printf '%s; ' "${LOADS[@]}" | sed 's/; $//')"
    echo "- a fixed CPU-bound query (sum over generate_series(1, 3e6)) took: $(printf '%s; ' "${CALIB[@]}" | sed 's/; $//') (the spread is the machine's noise)"
    echo "- server: $pg_version"
    echo "- settings: $settings (the writers: synchronous_commit=off); autovacuum off for jobs, job_objects and findings, on for the extension's own tables; s3scan_jobs.refresh_interval=0; s3scan_jobs.fold_interval 100ms except where said"
    echo "- data (database bench): $DATA_DESC; the jobs read: $(sed 's/ /, /g' <<<"$SIZES") objects, in progress, $MEASURED_FINDINGS findings each; small jobs of $SMALL_AVG objects on average"
    echo "- run time: $((SECONDS - START_TIME)) s"
    echo
    psql_db bench -At -f "$SQL/counters_render.sql"
    if command -v gnuplot >/dev/null; then
        echo
        echo "![real-time read latency under write load, by job size]($(basename "$OUT_PNG"))"
    fi
} >"$OUT_MD"
REPORTED=1

if command -v gnuplot >/dev/null; then
    q bench "SELECT * FROM bench.chart_data()" | tr '|' '\t' | sed 's/\t\t/\t?\t/g; s/\t\t/\t?\t/g; s/\t$/\t?/' >"$TMP/chart.tsv"
    smin=$(tr ' ' '\n' <<<"$SIZES" | sort -n | head -1)
    smax=$(tr ' ' '\n' <<<"$SIZES" | sort -n | tail -1)
    gnuplot <<EOF || note "gnuplot failed"
set terminal pngcairo size 1100,650 noenhanced font ",10"
set output '$OUT_PNG'
set title "s3scan_jobs $EXT_VERSION ($REVISION): one job's real-time reads while $R_CLIENTS clients update it at $R_RATE/s ($SCALE scale, $DATE, $(nproc) cores)"
set logscale xy
set xrange [$smin / 2.0 : $smax * 2.0]
set xlabel 'objects in the job'
set ylabel 'latency as a client sees it (ms), log scale'
set format x '%.0s%c'
set grid
set key outside right top Left reverse
set datafile separator '\t'
set datafile missing '?'
plot '$TMP/chart.tsv' using 1:2 with linespoints lw 2 pt 7 title 'job_status(id, true), counters on: median', \\
     '' using 1:3 with linespoints lw 1 dt 2 pt 7 title 'job_status(id, true), counters on: p99', \\
     '' using 1:4 with linespoints lw 2 pt 5 title 'job_summary, counters on: median', \\
     '' using 1:5 with linespoints lw 2 pt 13 title 'job_status(id) cached: median', \\
     '' using 1:6 with linespoints lw 2 pt 9 title 'job_status(id, true), counters off (1.0): median', \\
     '' using 1:7 with linespoints lw 2 pt 11 title 'job_summary, counters off (1.0): median'
EOF
fi

cat "$OUT_MD"
echo
say "wrote $OUT_MD$(command -v gnuplot >/dev/null && echo " and $OUT_PNG")"
