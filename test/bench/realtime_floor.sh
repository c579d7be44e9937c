#!/usr/bin/env bash
# Where the time of a warm real-time read goes, inside the server: job_status(id, true) next to the
# bare cached lookup (job_progress by job_id) and next to the pieces of a real-time read done in
# SQL, with 0, 100, 500 and 1,000 unfolded delta rows of the job read. One server, the worker's
# folds and refreshes off (so the deltas stay as the script leaves them); one job of 100,000
# objects (all four statuses) and 1,000 jobs of 50, folded and refreshed once.
#
# Each statement runs its read CALLS (2,000) times inside one SQL statement (generate_series), so
# the round trip, the parse/bind and the executor's start of the statement are paid once per
# 2,000 calls. pgbench -M prepared, one client: per column and round one run of SECS seconds per
# statement, the column's statements interleaved at random transaction by transaction (pgbench
# -f FILE@WEIGHT, weights inversely proportional to each statement's time, measured at the start
# of the column, so that each gets about SECS seconds), so that the other tenants of a shared
# machine slow all statements alike. Per call: a statement's median transaction latency (per-
# transaction log, by script) minus the empty loop's (SELECT count(g) FROM generate_series(1,
# 2000) g) of the same run, divided by 2,000; median over ROUNDS rounds; a second table the same
# with each statement's lowest-decile latency (other tenants only add time). Reads in the target list
# of the loop are called per row (job_status is a SETOF function: ProjectSet calls it per row);
# reads in a scalar subquery reference g (AND g > 0), so they are a SubPlan run per row, not a
# one-time InitPlan. A check before the measurements counts, for one execution of each statement,
# the calls of its function (track_functions = all, this transaction's counts) or the scans of
# the index or table it reads (pg_stat_get_xact_numscans): 2,000 each.
#
# Rows: the empty loop; the lookup; job_status(id) cached; job_status(id, true); the same without
# the function's SET search_path clause (a copy of job_status in the same schema, this throwaway
# database only: the same C symbol, volatility, parallel safety and rows, no SET clause; what
# ALTER FUNCTION ... RESET search_path would make of it, side by side with the shipped function,
# which keeps the clause); the pieces of a real-time read in SQL: the jobs row by key, the
# job_counters row by key, the six sums over job_counter_deltas for the job (a heap scan: the
# table has no index), pending_counter_deltas(), newest_object_update(id) (NEWEST_CALLS calls per
# statement: it reads all of the job's objects); and, whole statements per call, a PL/pgSQL loop
# over a cached plan: the lookup and job_status(id, true) as SELECT * INTO, minus the loop's own
# cost. Reads that do not touch the deltas table are measured at 0 and 1,000 pending rows only
# (newest_object_update at 0 only).
# Columns: the job's unfolded delta rows, created by committed single-row status UPDATEs of its
# objects, each in its own transaction, never folded; job_counter_deltas is VACUUMed before each
# column (there are no dead rows without folds; VACUUM sets the pages all-visible, so every column
# scans the same kind of pages). With perf (PERF=1, default when perf is installed), one
# perf record -g of the server backend during an extra job_status(id, true) run at 500 rows.
#
# Prints the tables and writes test/bench/results/<date>-realtime-floor-<version>-<revision>.md.
# Not part of the test suite.
#
#   sudo test/bench/realtime_floor.sh            # about 6 minutes
#
# Environment: SECS (seconds per statement and round, default 3), ROUNDS (default 3), CALLS
# (reads per statement, default 2000), NEWEST_CALLS (default 10), PERF (1/0), BENCH_PORT
# (default 55500), BENCH_SKIP_BUILD=1, BENCH_KEEP=1, BENCH_RESULTS, S3SCAN_PG_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init realtime_floor 55500
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-2000}
NEWEST_CALLS=${NEWEST_CALLS:-10}
if [ -z "${PERF:-}" ]; then
    command -v perf >/dev/null 2>&1 && PERF=1 || PERF=0
fi
PENDING=(0 100 500 1000)
LOAD_START=$(loadavg)
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)

ensure_packages
build_and_install
start_throwaway_server "s3scan_jobs.database = 'bench'
s3scan_jobs.refresh_interval = 0
s3scan_jobs.fold_interval = 0
autovacuum = off
shared_buffers = 1GB
max_connections = 20"
q() { as_pg "$PGBIN/psql" -X -q -At -d bench -v ON_ERROR_STOP=1 -c "$1"; }
as_pg "$PGBIN/createdb" bench
q "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version bench)
OUT=$(result_file realtime-floor md "$VERSION")

JOB=00000000-0000-4000-8000-000000100000
say "loading: one job of 100,000 objects and 1,000 jobs of 50"
q "INSERT INTO public.jobs (job_id, bucket) VALUES ('$JOB', 'b')"
q "INSERT INTO public.job_objects (job_id, bucket, key, etag, status)
   SELECT '$JOB', 'b', 'k' || g, 'e', (ARRAY['queued', 'processing', 'succeeded', 'failed'])[g % 4 + 1]
   FROM generate_series(1, 100000) g"
q "INSERT INTO public.jobs (job_id, bucket) SELECT md5(g::text)::uuid, 'b' FROM generate_series(1, 1000) g"
q "INSERT INTO public.job_objects (job_id, bucket, key, etag)
   SELECT md5(g::text)::uuid, 'b', 'k' || o, 'e' FROM generate_series(1, 1000) g, generate_series(1, 50) o"
FOLDED=$(q "SELECT public.fold_job_counters()")
q "SELECT public.refresh_job_progress()" >/dev/null
q "VACUUM ANALYZE"
WORKER_STATE=$(q "SELECT state FROM public.refresh_worker_status WHERE database = 'bench'")

# The loops. @N@: the calls per statement; :id the job (pgbench -D; -M prepared makes it $1).
q "CREATE SCHEMA floor"
q "CREATE FUNCTION floor.stmt_loop(id uuid, n int) RETURNS bigint LANGUAGE plpgsql AS \$f\$
   DECLARE c bigint := 0;
   BEGIN FOR i IN 1..n LOOP c := c + 1; END LOOP; RETURN c; END \$f\$"
q "CREATE FUNCTION floor.stmt_lookup(id uuid, n int) RETURNS bigint LANGUAGE plpgsql AS \$f\$
   DECLARE r record; c bigint := 0;
   BEGIN FOR i IN 1..n LOOP SELECT * INTO r FROM public.job_progress WHERE job_id = id; c := c + 1; END LOOP; RETURN c; END \$f\$"
q "CREATE FUNCTION floor.stmt_real_time(id uuid, n int) RETURNS bigint LANGUAGE plpgsql AS \$f\$
   DECLARE r record; c bigint := 0;
   BEGIN FOR i IN 1..n LOOP SELECT * INTO r FROM public.job_status(id, true); c := c + 1; END LOOP; RETURN c; END \$f\$"
# The check: one execution of a statement, what it counted, and the calls of function FN
# (track_functions = all for this transaction only: this transaction's counts) or the scans of
# relation REL (an index: its index scans; a table: its sequential scans) it made.
q "CREATE FUNCTION floor.runs_of(sql text, fn regprocedure, rel regclass, OUT counted bigint, OUT runs bigint)
   LANGUAGE plpgsql AS \$f\$
   DECLARE before bigint;
   BEGIN
     SET LOCAL track_functions = 'all';
     before := CASE WHEN fn IS NOT NULL THEN coalesce(pg_stat_get_xact_function_calls(fn), 0)
                    ELSE pg_stat_get_xact_numscans(rel) END;
     EXECUTE sql INTO counted;
     runs := CASE WHEN fn IS NOT NULL THEN coalesce(pg_stat_get_xact_function_calls(fn), 0)
                  ELSE pg_stat_get_xact_numscans(rel) END - before;
   END \$f\$"
# A statement's best time of 3 (ms), to weight it in the interleaved runs.
q "CREATE FUNCTION floor.best_ms(sql text) RETURNS float8 LANGUAGE plpgsql AS \$f\$
   DECLARE t0 timestamptz; ms float8 := 'Infinity'; c bigint;
   BEGIN
     FOR i IN 1..3 LOOP
       t0 := clock_timestamp(); EXECUTE sql INTO c;
       ms := least(ms, 1000 * extract(epoch FROM clock_timestamp() - t0));
     END LOOP;
     RETURN ms;
   END \$f\$"
# job_status without its SET search_path clause: a copy, in the same schema (the library reads the
# relations of the function's schema), of the same C symbol, volatility, parallel safety and rows.
q "DO \$d\$ DECLARE f record; BEGIN
     SELECT probin, prosrc INTO f FROM pg_catalog.pg_proc WHERE oid = 'public.job_status(uuid, boolean)'::regprocedure;
     EXECUTE format('CREATE FUNCTION public.job_status_no_set(job_id uuid, real_time boolean DEFAULT false)
                     RETURNS SETOF public.job_status_result LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 1 AS %L, %L',
                    f.probin, f.prosrc);
   END \$d\$"
COPY_SAME=$(q "SELECT a.probin = b.probin AND a.prosrc = b.prosrc AND a.provolatile = b.provolatile AND a.proparallel = b.proparallel
                  AND a.prorows = b.prorows AND a.procost = b.procost AND a.prosecdef = b.prosecdef AND a.proretset = b.proretset
                  AND a.prorettype = b.prorettype AND a.proargtypes = b.proargtypes AND b.proconfig IS NULL
                  AND a.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
               FROM pg_catalog.pg_proc a, pg_catalog.pg_proc b
               WHERE a.oid = 'public.job_status(uuid, boolean)'::regprocedure AND b.oid = 'public.job_status_no_set(uuid, boolean)'::regprocedure")

declare -A SQL LABEL
STMTS=(loop lookup cached real_time real_time_no_set jobs_row counters_row deltas_sum pending newest
       stmt_loop stmt_lookup stmt_real_time)
SQL[loop]="SELECT count(g) FROM generate_series(1, @N@) g"
SQL[lookup]="SELECT count((SELECT total_objects FROM public.job_progress WHERE job_id = CAST(:id AS uuid) AND g > 0)) FROM generate_series(1, @N@) g"
SQL[cached]="SELECT count(t) FROM (SELECT (public.job_status(CAST(:id AS uuid))).total_objects AS t FROM generate_series(1, @N@) g) s"
SQL[real_time]="SELECT count(t) FROM (SELECT (public.job_status(CAST(:id AS uuid), true)).total_objects AS t FROM generate_series(1, @N@) g) s"
SQL[real_time_no_set]="SELECT count(t) FROM (SELECT (public.job_status_no_set(CAST(:id AS uuid), true)).total_objects AS t FROM generate_series(1, @N@) g) s"
SQL[jobs_row]="SELECT count((SELECT updated_at FROM public.jobs WHERE job_id = CAST(:id AS uuid) AND g > 0)) FROM generate_series(1, @N@) g"
SQL[counters_row]="SELECT count((SELECT total_findings FROM public.job_counters WHERE job_id = CAST(:id AS uuid) AND g > 0)) FROM generate_series(1, @N@) g"
SQL[deltas_sum]="SELECT count((SELECT coalesce(sum(total_objects) + sum(queued_count) + sum(processing_count) + sum(succeeded_count) + sum(failed_count) + sum(total_findings), 0) FROM public.job_counter_deltas WHERE job_id = CAST(:id AS uuid) AND g > 0)) FROM generate_series(1, @N@) g"
SQL[pending]="SELECT count(p) FROM (SELECT public.pending_counter_deltas() AS p FROM generate_series(1, @N@) g) s"
SQL[newest]="SELECT count(public.newest_object_update(CAST(:id AS uuid))) FROM generate_series(1, @N@) g"
SQL[stmt_loop]="SELECT floor.stmt_loop(CAST(:id AS uuid), @N@)"
SQL[stmt_lookup]="SELECT floor.stmt_lookup(CAST(:id AS uuid), @N@)"
SQL[stmt_real_time]="SELECT floor.stmt_real_time(CAST(:id AS uuid), @N@)"
LABEL[loop]="empty loop: \`SELECT count(g) FROM generate_series(1, $CALLS) g\`, per row (not subtracted)"
LABEL[lookup]='lookup: `(SELECT total_objects FROM job_progress WHERE job_id = $1 AND g > 0)`'
LABEL[cached]='`job_status(id)`, cached'
LABEL[real_time]='`job_status(id, true)`'
LABEL[real_time_no_set]='`job_status(id, true)` without its `SET search_path` clause (a copy, here only)'
LABEL[jobs_row]='piece: the `jobs` row by key (`updated_at`)'
LABEL[counters_row]='piece: the `job_counters` row by key (`total_findings`)'
LABEL[deltas_sum]='piece: the six sums over `job_counter_deltas` for the job (heap scan)'
LABEL[pending]='piece: `pending_counter_deltas()` (empty: no writes in the reading transaction)'
LABEL[newest]="piece: \`newest_object_update(id)\` ($NEWEST_CALLS calls per statement, not subtracted)"
LABEL[stmt_loop]='PL/pgSQL loop, empty body, per iteration (not subtracted)'
LABEL[stmt_lookup]='PL/pgSQL, a statement per call: `SELECT * INTO r FROM job_progress WHERE job_id = id`'
LABEL[stmt_real_time]='PL/pgSQL, a statement per call: `SELECT * INTO r FROM job_status(id, true)`'
# What the check counts: a function's calls, or a relation's scans.
declare -A CHECK_FN CHECK_REL
CHECK_REL[lookup]=public.job_progress_job_id_idx
CHECK_FN[cached]='public.job_status(uuid, boolean)'
CHECK_FN[real_time]='public.job_status(uuid, boolean)'
CHECK_FN[real_time_no_set]='public.job_status_no_set(uuid, boolean)'
CHECK_REL[jobs_row]=public.jobs_pkey
CHECK_REL[counters_row]=public.job_counters_pkey
CHECK_REL[deltas_sum]=public.job_counter_deltas
CHECK_FN[pending]='public.pending_counter_deltas()'
CHECK_FN[newest]='public.newest_object_update(uuid)'
CHECK_REL[stmt_lookup]=public.job_progress_job_id_idx
CHECK_FN[stmt_real_time]='public.job_status(uuid, boolean)'
thousands() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
calls_of() { [ "$1" = newest ] && echo "$NEWEST_CALLS" || echo "$CALLS"; }
base_of() { case $1 in stmt_*) echo stmt_loop ;; *) echo loop ;; esac; }
# Which columns measure a statement: the reads of the deltas table at every count, the others at
# the first and the last (newest_object_update, 100x slower than the rest, at the first only).
measured_at() {  # measured_at STMT PENDING
    case $1 in
    loop | lookup | cached | real_time | real_time_no_set | deltas_sum) return 0 ;;
    newest) [ "$2" = "${PENDING[0]}" ] ;;
    *) [ "$2" = "${PENDING[0]}" ] || [ "$2" = "${PENDING[${#PENDING[@]} - 1]}" ] ;;
    esac
}
for s in "${STMTS[@]}"; do
    printf '%s;\n' "${SQL[$s]//@N@/$(calls_of "$s")}" >"$TMP/$s.sql"
done
chmod 644 "$TMP"/*.sql

text_of() {  # the statement's SQL with N calls and the job as a literal
    local t=${SQL[$1]//@N@/$2} lit="'$JOB'"
    printf '%s' "${t//:id/$lit}"
}

# The check: every read runs once per row.
declare -A CHECK_RUNS CHECK_COUNTED
per_row_check() {
    local s n args
    say "checking that every read runs once per row"
    for s in "${STMTS[@]}"; do
        [ -n "${CHECK_FN[$s]:-}${CHECK_REL[$s]:-}" ] || continue
        n=$(calls_of "$s")
        if [ -n "${CHECK_FN[$s]:-}" ]; then args="'${CHECK_FN[$s]}', NULL"; else args="NULL, '${CHECK_REL[$s]}'"; fi
        read -r "CHECK_COUNTED[$s]" "CHECK_RUNS[$s]" <<<"$(q "SELECT counted || ' ' || runs FROM floor.runs_of(\$q\$$(text_of "$s" "$n")\$q\$, $args)" | tr '|' ' ')"
    done
}

# One round of a column: one pgbench run, SECS seconds per statement, the statements interleaved
# at random with weights inversely proportional to their time (WEIGHT[s]); then each statement's
# median and lowest-decile transaction latency (µs) from the per-transaction log (its 4th field:
# the script's number).
declare -A WEIGHT
weigh() {  # weigh STMT...: each statement's weight from its time at this column's pending rows
    local s ms
    declare -A MS
    for s in "$@"; do
        MS[$s]=$(q "SELECT floor.best_ms(\$q\$$(text_of "$s" "$(calls_of "$s")")\$q\$)")
    done
    # (+0.1 ms for each transaction's round trip; the cheapest statement weighs 100,000, so that
    # the weights of the slowest are still fine-grained)
    local least
    least=$(for s in "$@"; do echo "${MS[$s]}"; done | sort -g | awk 'NR == 1')
    for s in "$@"; do
        WEIGHT[$s]=$(awk -v a="$least" -v b="${MS[$s]}" 'BEGIN { w = int(100000 * (a + 0.1) / (b + 0.1) + 0.5); print (w < 1 ? 1 : w) }')
    done
}
run_round() {  # run_round PENDING ROUND STMT...
    local p=$1 round=$2 logdir i s
    shift 2
    local files=()
    for s in "$@"; do files+=(-f "$TMP/$s.sql@${WEIGHT[$s]}"); done
    logdir=$(mktemp -d "$TMP/log.XXXXXX")
    chmod 777 "$logdir"
    as_pg "$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -T $((SECS * $#)) -D "id=$JOB" "${files[@]}" \
        -l --log-prefix="$logdir/tx" bench >"$logdir/out" 2>&1 || die "pgbench failed: $(tail -n 3 "$logdir/out")"
    i=0
    for s in "$@"; do
        read -r "RESULT[med/$p/$s/$round]" "RESULT[low/$p/$s/$round]" <<<"$(awk -v k="$i" '$4 == k { print $3 }' "$logdir"/tx.* | sort -n |
            awk '{ v[NR] = $1 } END { if (NR == 0) print "nan nan"; else { d = int(NR / 10 + 0.999); if (d < 1) d = 1; print v[int((NR + 1) / 2)], v[d] } }')"
        TXNS["$p/$s/$round"]=$(awk -v k="$i" '$4 == k { n++ } END { print n + 0 }' "$logdir"/tx.*)
        i=$((i + 1))
    done
    rm -rf "$logdir"
}

# The job's unfolded delta rows, up to TARGET: committed single-row status UPDATEs of objects
# k<FROM+1>..k<TARGET> (each to the next status, so each changes a count), one transaction each.
# The last one commits synchronously: it flushes the WAL of the asynchronous ones before it,
# without which no one may set the hint bits of their rows, and VACUUM leaves their pages not
# all-visible.
PRESENT=0
add_deltas() {
    local target=$1
    [ "$target" -gt "$PRESENT" ] || return 0
    awk -v from=$((PRESENT + 1)) -v to="$target" -v job="$JOB" 'BEGIN {
        split("queued processing succeeded failed", st, " ")
        for (i = from; i <= to; i++) {
            if (i == to) print "SET synchronous_commit = on;"
            printf "UPDATE public.job_objects SET status = %c%s%c WHERE job_id = %c%s%c AND bucket = %cb%c AND key = %ck%d%c AND etag = %ce%c;\n",
                39, st[(i + 1) % 4 + 1], 39, 39, job, 39, 39, 39, 39, i, 39, 39, 39
        }
    }' >"$TMP/deltas.sql"
    chmod 644 "$TMP/deltas.sql"
    as_pg env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/psql" -X -q -d bench -v ON_ERROR_STOP=1 \
        -f "$TMP/deltas.sql" >/dev/null
    PRESENT=$target
}

declare -A RESULT TXNS COUNT_JOB COUNT_ALL PAGES VALUES_OK
PERF_NOTE="not run (PERF=0)"
PERF_TOP= PERF_DSO=
run_perf() {
    local pid= i bg
    say "perf record -g of the backend during job_status(id, true) at ${PRESENT} pending rows"
    as_pg "$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -T $((SECS + 2)) -D "id=$JOB" -f "$TMP/real_time.sql" \
        bench >"$TMP/perf_pgbench.out" 2>&1 &
    bg=$!
    BG_PIDS+=("$bg")
    for i in $(seq 1 50); do
        pid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND backend_type = 'client backend' LIMIT 1")
        [ -n "$pid" ] && break
        sleep 0.1
    done
    if [ -z "$pid" ]; then
        PERF_NOTE="skipped: the pgbench backend was not found"
    elif perf record -g -p "$pid" -o "$TMP/perf.data" -- sleep "$SECS" >"$TMP/perf_record.out" 2>&1 &&
        perf report -i "$TMP/perf.data" --no-children --sort dso,symbol --stdio -g none >"$TMP/perf_symbols.txt" 2>/dev/null &&
        perf report -i "$TMP/perf.data" --no-children --sort dso --stdio -g none >"$TMP/perf_dso.txt" 2>/dev/null; then
        PERF_NOTE="$(grep -o '([0-9]* samples)' "$TMP/perf_record.out" | tr -d '()') of backend $pid over ${SECS} s ($(grep -m1 -o '^# Samples: .* of event .*' "$TMP/perf_symbols.txt" | sed 's/^# Samples: [^ ]* of event //'))"
        # (the exported symbols of the server binary, to place its static functions; addresses are
        # compared as strings: awk would read 000000000030e115 as a number)
        nm -D --defined-only "$PGBIN/postgres" 2>/dev/null | awk '{ print $1, $3 }' | LC_ALL=C sort >"$TMP/postgres.syms" || true
        # (awk stops by itself: a head closing the pipe early would fail it under pipefail)
        PERF_TOP=$(awk '/^ +[0-9.]+%/ && ++n <= 10 { pct = $1; dso = $2; $1 = ""; $2 = ""; sub(/^ +/, ""); sub(/( +-)* *$/, "")
                                                     printf "%s\t%s\t%s\n", pct, dso, $0 }' "$TMP/perf_symbols.txt" |
            while IFS=$'\t' read -r pct dso sym; do
                near=
                if [ "$dso" = postgres ] && [[ $sym =~ \]\ 0x([0-9a-f]+)$ ]] && [ -s "$TMP/postgres.syms" ]; then
                    near=$(awk -v t="$(printf '%016x' $((16#${BASH_REMATCH[1]})))" '($1 "") <= (t "") { last = $2 } ($1 "") > (t "") { next_ = $2; exit } END { if (last != "") printf "`%s` and `%s`", last, next_ }' "$TMP/postgres.syms")
                    [ -n "$near" ] && near=" (a static function, between the exported $near)"
                fi
                printf '| %s | %s | `%s`%s |\n' "$pct" "$dso" "$sym" "$near"
            done)
        PERF_DSO=$(awk '/^ +[0-9.]+%/ && ++n <= 6 { printf "%s %s, ", $2, $1 }' "$TMP/perf_dso.txt" | sed 's/, $//')
    else
        PERF_NOTE="skipped: perf failed ($(tail -n 1 "$TMP/perf_record.out"))"
    fi
    wait "$bg" || true
}

per_row_check

for p in "${PENDING[@]}"; do
    add_deltas "$p"
    q "VACUUM public.job_counter_deltas"
    COUNT_JOB[$p]=$(q "SELECT count(*) FROM public.job_counter_deltas WHERE job_id = '$JOB'")
    COUNT_ALL[$p]=$(q "SELECT count(*) FROM public.job_counter_deltas")
    PAGES[$p]=$(q "SELECT (pg_relation_size('public.job_counter_deltas') / current_setting('block_size')::int) || ' / ' || relallvisible
                   FROM pg_class WHERE oid = 'public.job_counter_deltas'::regclass")
    [ "${COUNT_JOB[$p]}" -eq "$p" ] || die "expected $p delta rows of the job, found ${COUNT_JOB[$p]}"
    # The real-time answer against the objects themselves, and the cached one still cached.
    VALUES_OK[$p]=$(q "SELECT (s.total_objects, s.queued_count, s.processing_count, s.succeeded_count, s.failed_count, s.data_source)
                          = (SELECT count(*), count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'processing'),
                                     count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'), 'real_time'
                             FROM public.job_objects WHERE job_id = '$JOB')
                        AND (SELECT data_source FROM public.job_status('$JOB')) = 'cached'
                        AND (SELECT array_agg(n) FROM public.job_status_no_set('$JOB', true) n)
                            = (SELECT array_agg(r) FROM public.job_status('$JOB', true) r)
                      FROM public.job_status('$JOB', true) s")
    say "${COUNT_JOB[$p]} pending delta rows of the job (${COUNT_ALL[$p]} in the table; pages / all-visible: ${PAGES[$p]}); real-time answer exact: ${VALUES_OK[$p]}"
    order=()
    for s in "${STMTS[@]}"; do measured_at "$s" "$p" && order+=("$s"); done
    weigh "${order[@]}"
    for ((round = 0; round < ROUNDS; round++)); do
        say "  round $((round + 1)): ${#order[@]} statements interleaved, $((SECS * ${#order[@]})) s"
        run_round "$p" "$round" "${order[@]}"
    done
    [ "$PERF" = 1 ] && [ "$p" = 500 ] && run_perf
done
FINAL_COUNT=$(q "SELECT count(*) FROM public.job_counter_deltas WHERE job_id = '$JOB'")
PROCONFIG=$(q "SELECT array_to_string(proconfig, ',') FROM pg_proc WHERE oid = 'public.job_status(uuid, boolean)'::regprocedure")
DIFFS=$(q "SELECT count(*) FROM public.verify_job_counters()")
FOLDS_BY_OTHERS=$(q "SELECT count(*) FROM public.refresh_history WHERE origin <> 'sql'")
LOAD_END=$(loadavg)

# µs per call of a statement in a column, by METRIC (med: median transaction latency; low: its
# lowest decile): median over rounds of (the statement's value minus its loop's, same run) /
# calls; the loops themselves and newest_object_update not subtracted.
per_call() {
    local m=$1 p=$2 s=$3 base vals=() r n
    measured_at "$s" "$p" || { echo nan; return; }
    base=$(base_of "$s")
    n=$(calls_of "$s")
    for ((r = 0; r < ROUNDS; r++)); do
        case $s in
        loop | stmt_loop | newest) vals+=("$(awk -v a="${RESULT[$m/$p/$s/$r]}" -v n="$n" 'BEGIN { if (a == "nan") print "nan"; else printf "%.4f", a / n }')") ;;
        *) vals+=("$(awk -v a="${RESULT[$m/$p/$s/$r]}" -v b="${RESULT[$m/$p/$base/$r]}" -v n="$n" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else printf "%.4f", (a - b) / n }')") ;;
        esac
    done
    # (a round where the statement drew no transaction gives nan: left out)
    printf '%s\n' "${vals[@]}" | awk '$1 != "nan"' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print v[int((NR + 1) / 2)] }'
}
declare -A US
for m in med low; do
    for p in "${PENDING[@]}"; do
        for s in "${STMTS[@]}"; do US[$m/$p/$s]=$(per_call "$m" "$p" "$s"); done
    done
done
# The fewest transactions a cell's median came from (over its rounds).
fewest_txns() {
    local k
    for k in "${!TXNS[@]}"; do echo "${TXNS[$k]}"; done | sort -n | awk 'NR == 1'
}
fmt() {  # fmt VALUE [REFERENCE]
    awk -v v="$1" -v ref="${2:-}" 'BEGIN {
        if (v == "nan") { printf "—"; exit }
        if (v >= 1000) printf "%.2f ms", v / 1000; else printf "%.2f µs", v
        if (ref != "" && ref != "nan" && ref > 0) printf " (%.1fx)", v / ref }'
}
ratio_ref() {
    case $1 in
    cached | real_time | real_time_no_set) echo lookup ;;
    stmt_real_time) echo stmt_lookup ;;
    esac
}
P0=${PENDING[0]}
PL=${PENDING[${#PENDING[@]} - 1]}
v() { echo "${US[$M/$1/$2]}"; }  # (of metric M)
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# Least-squares slope (ns per pending row) of a statement over the columns.
slope_ns() {
    local s=$1 p
    for p in "${PENDING[@]}"; do echo "${COUNT_JOB[$p]} ${US[$M/$p/$s]}"; done |
        awk '{ n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
             END { printf "%.1f", 1000 * (n * sxy - sx * sy) / (n * sxx - sx * sx) }'
}
# The figures the findings quote, of metric M.
figures() {
    M=$1
    RT0=$(v "$P0" real_time) LK0=$(v "$P0" lookup) CA0=$(v "$P0" cached) NS0=$(v "$P0" real_time_no_set)
    RTL=$(v "$PL" real_time) LKL=$(v "$PL" lookup)
    JR0=$(v "$P0" jobs_row) CR0=$(v "$P0" counters_row) DS0=$(v "$P0" deltas_sum) PD0=$(v "$P0" pending)
    SLK0=$(v "$P0" stmt_lookup) SRT0=$(v "$P0" stmt_real_time) SLKL=$(v "$PL" stmt_lookup) SRTL=$(v "$PL" stmt_real_time)
    SET_COSTS=$(for p in "${PENDING[@]}"; do awk -v a="${US[$M/$p/real_time]}" -v b="${US[$M/$p/real_time_no_set]}" 'BEGIN { printf "%.2f\n", a - b }'; done | paste -sd' ' | sed 's/ /, /g')
    SET0=$(calc '%.2f' "$RT0 - $NS0")
    PIECES0=$(calc '%.2f' "$JR0 + $CR0 + $DS0")
    REST0=$(calc '%.2f' "$RT0 - $JR0 - $CR0 - $DS0 - $SET0")
    SLOPE_RT=$(slope_ns real_time) SLOPE_NS=$(slope_ns real_time_no_set) SLOPE_SQL=$(slope_ns deltas_sum)
}
table() {
    local m=$1 p s ref
    printf '| per call, inside the server |'
    for p in "${PENDING[@]}"; do printf ' %s pending rows |' "$(thousands "$p")"; done
    echo
    printf '|---|'
    for p in "${PENDING[@]}"; do printf -- '---:|'; done
    echo
    printf '| delta rows of the job / in the table / table pages / all-visible pages |'
    for p in "${PENDING[@]}"; do printf ' %s / %s / %s |' "${COUNT_JOB[$p]}" "${COUNT_ALL[$p]}" "${PAGES[$p]}"; done
    echo
    for s in "${STMTS[@]}"; do
        printf '| %s |' "${LABEL[$s]}"
        ref=$(ratio_ref "$s")
        for p in "${PENDING[@]}"; do
            printf ' %s |' "$(fmt "${US[$m/$p/$s]}" "${ref:+${US[$m/$p/$ref]}}")"
        done
        echo
    done
}

{
    echo "# Real-time read floor inside the server: $(title_of "$VERSION"), $DATE"
    echo
    echo "- command: \`test/bench/realtime_floor.sh\` (SECS=$SECS, ROUNDS=$ROUNDS, CALLS=$CALLS, NEWEST_CALLS=$NEWEST_CALLS, PERF=$PERF)"
    echo "- machine: $(nproc) cores ($CPU), shared with other work; load average at start $LOAD_START, at the end $LOAD_END"
    echo "- data: one job of 100,000 objects (all four statuses) and 1,000 jobs of 50; $FOLDED delta rows folded and job_progress refreshed once; then the worker's folds and refreshes off (\`s3scan_jobs.fold_interval = 0\`, \`refresh_interval = 0\`: worker state \`$WORKER_STATE\`, $FOLDS_BY_OTHERS refreshes but the script's), autovacuum off"
    echo "- cells: µs per call inside the server. Each statement runs its read $CALLS times in one SQL statement (\`generate_series\`). pgbench -M prepared, one client; per column and round one run of $SECS s per statement, the column's statements interleaved at random transaction by transaction (\`-f FILE@WEIGHT\`, weights inversely proportional to each statement's time, so each gets about $SECS s), so that the machine's other load slows them alike. Per call: the statement's median transaction latency (per-transaction log) minus the empty loop's of the same run, divided by $CALLS; median over $ROUNDS rounds (each cell's median in a round came from at least $(fewest_txns) transactions). In brackets: the ratio to the lookup of the same column (the PL/pgSQL real-time row: to the PL/pgSQL lookup). —: not measured in that column (reads that do not touch \`job_counter_deltas\`)"
    echo "- columns: unfolded delta rows of the job, each from one committed single-row status UPDATE, none folded; \`job_counter_deltas\` VACUUMed before each column: no dead rows exist without folds, and VACUUM sets the pages all-visible, so that the scan checks no tuple's visibility (under live writes the newest rows are not all-visible and cost more). The table keeps the ${PAGES[$P0]%% *} pages of the first fold's deleted rows (\`vacuum_truncate = false\`), which the pending rows fill again"
    echo "- \`job_status(id, true)\` without its \`SET search_path\` clause: a copy of \`job_status\` in the same schema, in this throwaway database only (the same C symbol, volatility, parallel safety, rows and cost, no \`SET\` clause: $COPY_SAME; the same answer in every column), what \`ALTER FUNCTION job_status(uuid, boolean) RESET search_path\` would make of the function, measured side by side with it. **The shipped function keeps the clause** (at the end: \`$PROCONFIG\`)"
    echo "- checks: the real-time answer equal to a count of the job's objects, \`job_status(id)\` answering from the cache, and the copy without the clause answering as \`job_status(id, true)\`, in every column: $(for p in "${PENDING[@]}"; do printf '%s ' "${VALUES_OK[$p]}"; done | sed 's/ $//'); the job's delta rows after the last run: $FINAL_COUNT (nothing folded them); verify_job_counters(): $DIFFS differing rows; every read ran once per row (below)"
    echo
    echo "## µs per call: medians"
    echo
    table med
    echo
    echo "## µs per call: lowest deciles"
    echo
    echo "The same runs, each statement's lowest-decile transaction latency in place of its median (minus the loop's lowest decile): the other tenants of the machine only add time, so this is the closer estimate of the floor when they are busy."
    echo
    table low
    echo
    echo "## Findings"
    echo
    echo "From the medians (first table); the lowest deciles' figures in the last line."
    echo
    figures med
    echo "- **At 0 pending rows** \`job_status(id, true)\` costs $(calc '%.2f' "$RT0") µs per call, $(calc '%.1f' "$RT0 / $LK0")x the lookup's $(calc '%.2f' "$LK0") µs in the same loop; the cached \`job_status(id)\` $(calc '%.2f' "$CA0") µs ($(calc '%.1f' "$CA0 / $LK0")x). The loop's lookup is a SubPlan, planned and started once per loop; as whole statements (PL/pgSQL, one executor run of a cached plan per call) the lookup costs $(calc '%.2f' "$SLK0") µs and the real-time read $(calc '%.2f' "$SRT0") µs, $(calc '%.1f' "$SRT0 / $SLK0")x: $(calc '%.2f' "$SRT0 - $SLK0") µs more per statement, before any round trip."
    echo "- **Each pending delta row** adds $SLOPE_RT ns to the real-time read (least-squares slope over the four columns; $SLOPE_NS ns without the \`SET\` clause; $(calc '%.2f' "$RT0") µs at 0 rows, $(calc '%.2f' "$RTL") µs at $(thousands "$PL"), $(calc '%.0f' "$RTL / $LKL")x the lookup); the same rows summed in SQL (a SubPlan's heap scan) cost $SLOPE_SQL ns each. At $(thousands "$PL") rows the real-time statement is $(calc '%.1f' "$SRTL / $SLKL")x the lookup statement ($(calc '%.2f' "$SRTL") / $(calc '%.2f' "$SLKL") µs)."
    echo "- **The \`SET search_path\` clause** costs $SET0 µs per call at 0 rows: the real-time read without it $(calc '%.2f' "$NS0") µs ($(calc '%.1f' "$NS0 / $LK0")x the lookup). Column by column, with it minus without it: $SET_COSTS µs (the clause's cost does not depend on the rows; beyond 0 rows the difference is within the scan's noise). The shipped function keeps the clause."
    echo "- **The pieces at 0 rows**: the jobs row ($(calc '%.2f' "$JR0") µs), the counters row ($(calc '%.2f' "$CR0") µs) and the scan of the deltas table (${PAGES[$P0]%% *} pages, no rows: $(calc '%.2f' "$DS0") µs) add up to $PIECES0 µs, with the \`SET\` clause $(calc '%.2f' "$PIECES0 + $SET0") µs of the real-time read's $(calc '%.2f' "$RT0"). The remaining $REST0 µs are the call itself (a SETOF function's tuplestore and result row, progress_percent in numeric) and what the SQL pieces, planned and started once per loop, do not repeat per call: name, privilege and row-level-security look-ups, opening and locking three tables and two indexes, starting the scans, the transaction's own pending sums. \`pending_counter_deltas()\` (a SETOF C function with the same clause) costs $(calc '%.2f' "$PD0") µs per call through SQL; the real-time read does not call it, nor \`newest_object_update()\` ($(fmt "$(v "$P0" newest)") per call at 100,000 objects; \`job_status\` has no \`last_object_update\` column)."
    figures low
    echo "- **By the lowest deciles** (second table): at 0 rows the real-time read $(calc '%.2f' "$RT0") µs, $(calc '%.1f' "$RT0 / $LK0")x the lookup ($(calc '%.2f' "$LK0") µs), the cached read $(calc '%.2f' "$CA0") µs; as statements $(calc '%.2f' "$SRT0") against $(calc '%.2f' "$SLK0") µs ($(calc '%.1f' "$SRT0 / $SLK0")x); $SLOPE_RT ns per pending row ($SLOPE_NS without the clause, $SLOPE_SQL in SQL); the \`SET\` clause $SET0 µs at 0 rows (by column: $SET_COSTS); the pieces $PIECES0 µs, with the clause $(calc '%.2f' "$PIECES0 + $SET0"), the rest $REST0 µs."
    echo
    echo "## Per-row check"
    echo
    echo "One execution of each statement ($CALLS rows; \`newest_object_update\`: $NEWEST_CALLS): what it counted, and the calls of its function (\`track_functions = all\` for that transaction, \`pg_stat_get_xact_function_calls\`) or the scans of the index or table it reads (\`pg_stat_get_xact_numscans\`): one per row when the read runs once per row (a one-time InitPlan would scan once)."
    echo
    echo "| statement | counted | function calls or scans |"
    echo "|---|---:|---:|"
    for s in "${STMTS[@]}"; do
        [ -n "${CHECK_RUNS[$s]:-}" ] || continue
        printf '| %s | %s | %s of `%s` |\n' "${LABEL[$s]}" "${CHECK_COUNTED[$s]}" "${CHECK_RUNS[$s]}" "${CHECK_FN[$s]:-${CHECK_REL[$s]}}"
    done
    echo
    echo "## perf: the backend during \`job_status(id, true)\` at 500 pending rows"
    echo
    echo "perf record -g, $PERF_NOTE (an extra run, not in the tables)."
    if [ -n "$PERF_TOP" ]; then
        echo
        echo "By shared object: $PERF_DSO."
        echo
        echo "| self | object | symbol (\`[.]\` user, \`[k]\` kernel; an address: a static function of a stripped binary) |"
        echo "|---:|---|---|"
        echo "$PERF_TOP"
    fi
} | tee "$OUT"
REPORTED=1
say "wrote $OUT"
