#!/usr/bin/env bash
# Where the counters' write cost goes (the per-object UPDATE's target: 95% of the plain tables): the scanner's status
# UPDATE, 8 clients on one job of 100K objects, on the plain tables and on the extension in
# variants that each take one part of the counters away or add one thing, side by side in one
# server and one run, in ABBA rounds (each round runs the variants forward, then backward).
# Prints and writes test/bench/results/<date>-write-parts-<version>-<revision>.md. Not part of the
# test suite.
#
#   sudo test/bench/write_parts.sh            # 3 rounds of 8 s per variant and direction, ~12 minutes
#   ROUNDS=5 SECS=15 sudo test/bench/write_parts.sh
#   WORKLOAD=findings_rows VARIANTS='plain off on capture_only queue_only' sudo test/bench/write_parts.sh
#
# WORKLOAD (default update): update, the status UPDATE above; findings_rows, the clients' findings
# batch instead (100 single-row INSERT ... ON CONFLICT DO NOTHING into findings of that job, one
# transaction; findings emptied after every run), writing <date>-write-parts-findings_rows-....md. The
# variants capture_only and queue_only then replace the findings' insert trigger; the others are
# about the UPDATE's write path and mean nothing for it.
#
# Variants (all on the extension unless said):
#   plain           the plain tables (test/bench/sql/plain_schema.sql), plpgsql updated_at
#   off             set_counter_maintenance(false): no counter triggers (1.0's write path)
#   on              the counters as shipped (since 1.3: a transaction's deltas become rows at commit)
#   per_statement   counters on, but the measured trigger writes its delta rows at once, one per
#                   statement and job, as 1.1 and 1.2 did (its one-argument form)
#   off_dropped     counters off, and the measured trigger dropped, not just disabled: PostgreSQL
#                   captures transition tables for a disabled trigger too
#   capture_only    the UPDATE's counting trigger replaced by a PL/pgSQL no-op statement trigger with
#                   the same transition tables: the trigger machinery and row capture, no delta row
#   queue_only      the same no-op statement trigger without transition tables: the after-trigger
#                   queue and one function call
#   v11             counters on as version 1.1 wrote them: with the btree on job_counter_deltas
#                   (job_id), the replica row triggers ENABLE ALWAYS with a WHEN clause on
#                   session_replication_role instead of ENABLE REPLICA (what 1.2 changed), and a row
#                   per statement (what 1.3 changed)
#   delta_index     counters on, plus 1.1's btree on job_counter_deltas (job_id) only
#   no_fold         counters on, the worker does not fold (fold_interval 0): the writers' own cost,
#                   without the fold's and the deltas' vacuum (folded once after the run)
#   status_index    counters on, plus the system's (job_id, status) index (what the migration keeps)
#   row_floor       no counters; instead the statement itself appends one row shaped like a delta
#                   (WITH u AS (UPDATE ... RETURNING job_id) INSERT INTO bench_sink ...), to a table
#                   without an index: what one durable row per change costs with no trigger at all,
#                   the floor under any design that records each change in a table
#   row_floor_index the same with a btree on bench_sink (job_id), as job_counter_deltas has
# The variants that replace a counter trigger by hand would make 1.4's event trigger
# s3scan_jobs_table_ddl_end switch reads to the base tables (counter triggers changed outside
# set_counter_maintenance()); it is disabled for the run (event triggers never fire on the measured
# statements) and enabled again before the final verify_job_counters().
# Builds and installs the extension (as root) unless BENCH_SKIP_BUILD=1; one throwaway server
# (throwaway_server.sh). Environment: BENCH_PORT (default 55494), BENCH_SKIP_BUILD=1, BENCH_KEEP=1,
# BENCH_RESULTS, S3SCAN_PG_BIN; ROUNDS, SECS, VARIANTS (a subset, in order), WORKLOAD.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init write_parts 55494
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-8}
WORKLOAD=${WORKLOAD:-update}
case $WORKLOAD in
update)
    VARIANTS=${VARIANTS:-plain off on per_statement v11 delta_index no_fold capture_only queue_only status_index row_floor row_floor_index}
    KIND=write-parts
    TRIG=job_objects_count_updates TRIG_ON='UPDATE ON public.job_objects' TRIG_TABLES='OLD TABLE AS old_rows NEW TABLE AS new_rows'
    TRIG_ARG=objects UNIT=UPDATE ;;
findings_rows)
    VARIANTS=${VARIANTS:-plain off on per_statement capture_only queue_only}
    KIND=write-parts-findings_rows
    TRIG=findings_count_inserts TRIG_ON='INSERT ON public.findings' TRIG_TABLES='NEW TABLE AS new_rows'
    TRIG_ARG=findings UNIT='batch of 100 INSERTs' ;;
*) echo "WORKLOAD is update or findings_rows, not $WORKLOAD" >&2; exit 2 ;;
esac

ensure_packages
build_and_install
start_throwaway_server "s3scan_jobs.database = 'ext'        # the worker folds the deltas every 100 ms, as shipped
s3scan_jobs.refresh_interval = 0
shared_buffers = 1GB
max_wal_size = 20GB
checkpoint_timeout = 1h
autovacuum_naptime = 5s"
q() { as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$PORT" -d "$1" -v ON_ERROR_STOP=1 -c "$2"; }
qf() { as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$PORT" -d "$1" -v ON_ERROR_STOP=1 -f "$2" >/dev/null; }
q postgres "CREATE DATABASE plain"
q postgres "CREATE DATABASE ext"
qf plain "$HERE/sql/plain_schema.sql"
q ext "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version ext)
OUT=$(result_file "$KIND" md "$VERSION")
GUARD=$(q ext "SELECT evtname FROM pg_event_trigger WHERE evtname = 's3scan_jobs_table_ddl_end'")
[ -z "$GUARD" ] || q ext "ALTER EVENT TRIGGER $GUARD DISABLE"
JOB=00000000-0000-4000-8000-000000000001
for db in plain ext; do
    q "$db" "INSERT INTO public.jobs (job_id, bucket) VALUES ('$JOB', 'b')"
    q "$db" "INSERT INTO public.job_objects (job_id, bucket, key, etag, status)
             SELECT '$JOB', 'b', 'k/' || g, md5(g::text), 'queued' FROM generate_series(1, 100000) g"
    # no autovacuum on the base table: each run is followed by the same VACUUM instead
    q "$db" "ALTER TABLE public.job_objects SET (autovacuum_enabled = off)"
    q "$db" "VACUUM ANALYZE public.job_objects"
done

# The scanner's statement (shared/reference/s3-scanner-interface.md), one object a transaction.
cat >"$TMP/update.sql" <<EOS
\set i random(1, 100000)
\set s random(1, 3)
UPDATE job_objects SET status = CASE :s::int WHEN 1 THEN 'processing' WHEN 2 THEN 'succeeded' ELSE 'failed' END, last_error = NULL, updated_at = now() WHERE job_id = '$JOB' AND bucket = 'b' AND key = 'k/' || :i AND etag = md5(:i::text);
EOS

# The floor variants' statement: the same UPDATE, and one row per changed object appended by the
# statement itself.
cat >"$TMP/update_row.sql" <<EOS
\set i random(1, 100000)
\set s random(1, 3)
WITH u AS (UPDATE job_objects SET status = CASE :s::int WHEN 1 THEN 'processing' WHEN 2 THEN 'succeeded' ELSE 'failed' END, last_error = NULL, updated_at = now() WHERE job_id = '$JOB' AND bucket = 'b' AND key = 'k/' || :i AND etag = md5(:i::text) RETURNING job_id) INSERT INTO public.bench_sink SELECT u.job_id, 0, -1, 1, 0, 0, 0, now(), false FROM u;
EOS
q ext "CREATE TABLE public.bench_sink (LIKE public.job_counter_deltas)"

# The clients' findings batch (shared/reference/s3-scanner-interface.md), as counters.sh sends it:
# 100 findings of one object, each its own INSERT, in one transaction.
{
    printf '\\set i random(1, 100000)\n\\set o random(0, 1000000000)\nBEGIN;\n'
    for ((r = 1; r <= 100; r++)); do
        printf "INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES ('$JOB', 'b', 'k/' || :i, md5(:i::text), 'credit_card', '****-****-****-%04d', 'card: ****-****-****-%04d exp 01/29', :o + %d, now()) ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;\n" "$r" "$r" "$((r * 17))"
    done
    echo "COMMIT;"
} >"$TMP/findings_rows.sql"

# Each variant: SQL that sets it up on ext (after set_counter_maintenance), and SQL that undoes it.
NOOP="CREATE OR REPLACE FUNCTION public.bench_noop() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RETURN NULL; END\$\$;"
RESTORE_TRIG="SET client_min_messages = warning; DROP TRIGGER IF EXISTS $TRIG ON ${TRIG_ON#* ON };
CREATE TRIGGER $TRIG AFTER $TRIG_ON
    REFERENCING $TRIG_TABLES
    FOR EACH STATEMENT EXECUTE FUNCTION public.count_changes('$TRIG_ARG', 'per_transaction');
ALTER TABLE ${TRIG_ON#* ON } ENABLE ALWAYS TRIGGER $TRIG;"
setup() {
    case $1 in
    plain) ;;
    off | off_dropped | row_floor*) q ext "SELECT public.set_counter_maintenance(false)" >/dev/null ;;
    *) q ext "SELECT public.set_counter_maintenance(true)" >/dev/null ;;
    esac
    case $1 in
    per_statement | v11) q ext "DROP TRIGGER $TRIG ON ${TRIG_ON#* ON };
        CREATE TRIGGER $TRIG AFTER $TRIG_ON
            REFERENCING $TRIG_TABLES FOR EACH STATEMENT EXECUTE FUNCTION public.count_changes('$TRIG_ARG');
        ALTER TABLE ${TRIG_ON#* ON } ENABLE ALWAYS TRIGGER $TRIG" ;;
    off_dropped) q ext "DROP TRIGGER $TRIG ON ${TRIG_ON#* ON }" ;;
    capture_only) q ext "$NOOP DROP TRIGGER $TRIG ON ${TRIG_ON#* ON };
        CREATE TRIGGER $TRIG AFTER $TRIG_ON
            REFERENCING $TRIG_TABLES FOR EACH STATEMENT EXECUTE FUNCTION public.bench_noop();
        ALTER TABLE ${TRIG_ON#* ON } ENABLE ALWAYS TRIGGER $TRIG" ;;
    queue_only) q ext "$NOOP DROP TRIGGER $TRIG ON ${TRIG_ON#* ON };
        CREATE TRIGGER $TRIG AFTER $TRIG_ON
            FOR EACH STATEMENT EXECUTE FUNCTION public.bench_noop();
        ALTER TABLE ${TRIG_ON#* ON } ENABLE ALWAYS TRIGGER $TRIG" ;;
    delta_index) q ext "CREATE INDEX job_counter_deltas_job_id_idx ON public.job_counter_deltas (job_id)" ;;
    no_fold) q ext "ALTER SYSTEM SET s3scan_jobs.fold_interval = 0"; q ext "SELECT pg_reload_conf()" >/dev/null ;;
    status_index) q ext "CREATE INDEX bench_job_status ON public.job_objects (job_id, status)" ;;
    row_floor_index) q ext "CREATE INDEX bench_sink_job_id ON public.bench_sink (job_id)" ;;
    esac
    case $1 in  # as well as the per-statement rows above (a case runs its first match only)
    v11) q ext "CREATE INDEX job_counter_deltas_job_id_idx ON public.job_counter_deltas (job_id)"
        q ext "DROP TRIGGER job_objects_count_replicated ON public.job_objects;
        CREATE TRIGGER job_objects_count_replicated AFTER INSERT OR UPDATE OR DELETE ON public.job_objects
            FOR EACH ROW
            WHEN (pg_catalog.current_setting('session_replication_role'::text) OPERATOR(pg_catalog.=) 'replica'::text)
            EXECUTE FUNCTION public.count_changes('objects');
        ALTER TABLE public.job_objects ENABLE ALWAYS TRIGGER job_objects_count_replicated" ;;
    esac
}
teardown() {
    case $1 in
    capture_only | queue_only | per_statement | off_dropped) q ext "$RESTORE_TRIG" ;;
    delta_index) q ext "DROP INDEX public.job_counter_deltas_job_id_idx" ;;
    v11) q ext "$RESTORE_TRIG DROP INDEX public.job_counter_deltas_job_id_idx" ;;
    no_fold) q ext "ALTER SYSTEM RESET s3scan_jobs.fold_interval"; q ext "SELECT pg_reload_conf()" >/dev/null
        q ext "SELECT public.fold_job_counters()" >/dev/null; q ext "VACUUM public.job_counter_deltas" ;;
    status_index) q ext "DROP INDEX public.bench_job_status" ;;
    row_floor*) q ext "DROP INDEX IF EXISTS public.bench_sink_job_id; TRUNCATE public.bench_sink" ;;
    esac
    case $1 in
    v11) q ext "DROP TRIGGER job_objects_count_replicated ON public.job_objects;
        CREATE TRIGGER job_objects_count_replicated AFTER INSERT OR UPDATE OR DELETE ON public.job_objects
            FOR EACH ROW EXECUTE FUNCTION public.count_changes('objects', 'per_transaction');
        ALTER TABLE public.job_objects ENABLE REPLICA TRIGGER job_objects_count_replicated" ;;
    esac
}

quiet_backends() {  # waits until the benchmark's connections are gone (reaped by the postmaster)
    local db=$1 n
    for _ in $(seq 50); do
        n=$(q postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend'")
        [ "$n" = 0 ] && { sleep 0.2; return; }
        sleep 0.2
    done
    echo "the benchmark's connections to $db did not go away" >&2
    exit 1
}
TICK=$(getconf CLK_TCK)

echo "variant round direction tps cpu_us" >"$TMP/runs"
run() {  # variant round direction
    local db=ext out tps xacts t0 t1 cpu script=$TMP/update.sql
    [ "$1" = plain ] && db=plain
    case $1 in row_floor*) script=$TMP/update_row.sql ;; esac
    [ "$WORKLOAD" = findings_rows ] && script=$TMP/findings_rows.sql
    setup "$1"
    quiet_backends "$db"
    t0=$(server_ticks)
    out=$(as_pg env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -h "$TMP" -p "$PORT" -n -M prepared \
            -c 8 -j 2 -T "$SECS" -f "$script" "$db" 2>&1)
    quiet_backends "$db"
    t1=$(server_ticks)
    tps=$(awk '/^tps/ { print $3 }' <<<"$out")
    xacts=$(awk '/number of transactions actually processed/ { print $NF }' <<<"$out")
    [ -n "$tps" ] && [ -n "$xacts" ] || { echo "pgbench on $1 failed: $out" >&2; exit 1; }
    cpu=$(awk -v a="$t0" -v b="$t1" -v x="$xacts" -v hz="$TICK" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / x }')
    teardown "$1"
    if [ "$WORKLOAD" = findings_rows ]; then q "$db" "TRUNCATE public.findings" >/dev/null
    else q "$db" "VACUUM public.job_objects" >/dev/null; fi
    echo "$1 $2 $3 $tps $cpu" >>"$TMP/runs"
    say "round $2 $3 $(printf '%-15s %9.0f tps %7.1f us server CPU per %s' "$1" "$tps" "$cpu" "$UNIT")"
}
LOAD_START=$(loadavg)
say "variants: $VARIANTS; $ROUNDS rounds x ${SECS}s; load average $LOAD_START"
for ((r = 1; r <= ROUNDS; r++)); do
    for v in $VARIANTS; do run "$v" "$r" fwd; done
    for v in $(tr ' ' '\n' <<<"$VARIANTS" | tac); do run "$v" "$r" back; done
done
[ -z "$GUARD" ] || q ext "ALTER EVENT TRIGGER $GUARD ENABLE ALWAYS"
q ext "SELECT public.set_counter_maintenance(true)" >/dev/null
DIFFER=$(q ext "SELECT count(*) FROM public.verify_job_counters()")
LOAD_END=$(loadavg)

# Ratios within each round (mean of its forward and backward run over the same for 'off' and
# 'plain'), then the mean and the range over the rounds.
python3 - "$TMP/runs" "$OUT" "$ROUNDS" "$SECS" "$LOAD_START" "$LOAD_END" "$DIFFER" "$(title_of "$VERSION"), $DATE" \
    "$("$PGBIN/postgres" --version)" "$(nproc)" "$WORKLOAD" "$VARIANTS" <<'PY'
import sys, statistics as st
runs, out, rounds, secs, l0, l1, differ, title, pgv, ncpu, workload, variant_list = sys.argv[1:]
if workload == "update":
    what, unit = "UPDATE", "UPDATE"
    tx = "The scanner's status UPDATE of one object per transaction"
else:
    what, unit = "findings batch", "batch"
    tx = ("The clients' findings batch, 100 single-row INSERT ... ON CONFLICT DO NOTHING into findings in one "
          "transaction (findings emptied after every run)")
rows = [l.split() for l in open(runs).read().splitlines()[1:]]
variants = []
for v, *_ in rows:
    if v not in variants: variants.append(v)
def mean(v, r, col=3): return st.mean(float(x[col]) for x in rows if x[0] == v and int(x[1]) == r)
R = range(1, int(rounds) + 1)
lines = [f"# Where the counters' {what} cost goes: {title}", "",
  f"`WORKLOAD={workload} ROUNDS={rounds} SECS={secs} VARIANTS='{variant_list}' test/bench/write_parts.sh`, {pgv}, {ncpu} cores. {tx}, 8 clients (pgbench -M prepared, synchronous_commit off) on one job of 100,000 objects; {rounds} rounds, "
  f"each running every variant for {secs} s forward then backward (ABBA); the table gives tps (mean of a round's two runs) "
  f"and the ratio to `off` and to `plain` within each round, then the mean and range of the ratios over the rounds. "
  f"'Server CPU' is the CPU time all server processes spent during a run (backends, WAL writer, the worker's folds, "
  f"autovacuum; read from /proc) divided by its transactions: unlike tps it hardly depends on what other tenants of "
  f"the machine do, so it splits the cost into parts where tps cannot. "
  f"Load average (1, 5, 15 min) {l0} at the start, {l1} at the end (other tenants' work on this shared machine). "
  f"After the runs, verify_job_counters() reported {differ} differing jobs.", "",
  f"| variant | tps per round | vs off: mean (range) | vs plain: mean (range) | server CPU per {unit}: mean (range) | CPU vs off |",
  "|---|---|---:|---:|---:|---:|"]
for v in variants:
    tps = [mean(v, r) for r in R]
    cpu = [mean(v, r, 4) for r in R]
    ro = [mean(v, r) / mean('off', r) for r in R] if 'off' in variants else []
    rp = [mean(v, r) / mean('plain', r) for r in R] if 'plain' in variants else []
    co = [mean(v, r, 4) - mean('off', r, 4) for r in R] if 'off' in variants else []
    f = lambda xs: f"{st.mean(xs)*100:.1f}% ({min(xs)*100:.0f}-{max(xs)*100:.0f}%)" if xs else "-"
    g = lambda xs: f"{st.mean(xs):.1f} µs ({min(xs):.1f}-{max(xs):.1f})"
    h = lambda xs: f"{st.mean(xs):+.1f} µs" if xs else "-"
    lines.append(f"| {v} | {', '.join(f'{t:,.0f}' for t in tps)} | {f(ro)} | {f(rp)} | {g(cpu)} | {h(co)} |")
lines += ["", "Runs, in order:", "", "    " + "\n    ".join(" ".join(r) for r in rows), ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines[:len(variants) + 12]))
PY
REPORTED=1
say "wrote $OUT"
