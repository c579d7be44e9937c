#!/usr/bin/env bash
# What pending_counter_deltas() (since 1.3) costs a real-time read: job_status(id, true) of
# jobs of 1,000 objects, one client, no writes, with job_progress_live as the installed version
# defines it (the table's deltas plus the reading transaction's own pending ones: variant v13),
# the same with the function's
# pinned search_path reset (the GUC save and restore every call pays), and with 1.2's definition
# (the table's deltas only), side by side in one server, in ABBA rounds. Reports latency (pgbench
# average) and server CPU per read (/proc, as write_parts.sh). Prints and writes
# test/bench/results/<date>-own-deltas-reads-<version>-<revision>.md. Not part of the test suite.
#
#   sudo test/bench/own_deltas_reads.sh          # 4 rounds of 8 s per variant and direction, ~4 min
#
# Builds and installs the extension (as root) unless BENCH_SKIP_BUILD=1; one throwaway server
# (throwaway_server.sh). Environment: BENCH_PORT (default 55492), BENCH_SKIP_BUILD=1, BENCH_KEEP=1,
# BENCH_RESULTS, S3SCAN_PG_BIN; ROUNDS, SECS.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/throwaway_server.sh"
bench_init own_deltas_reads 55492
ROUNDS=${ROUNDS:-4}
SECS=${SECS:-8}

ensure_packages
build_and_install
start_throwaway_server "s3scan_jobs.database = 'ext'
s3scan_jobs.refresh_interval = 0
shared_buffers = 256MB"
q() { as_pg "$PGBIN/psql" -X -q -At -h "$TMP" -p "$PORT" -d ext -v ON_ERROR_STOP=1 -c "$1"; }
as_pg "$PGBIN/createdb" -h "$TMP" -p "$PORT" ext
q "CREATE EXTENSION s3scan_jobs"
VERSION=$(ext_version ext)
OUT=$(result_file own-deltas-reads md "$VERSION")
q "INSERT INTO public.jobs (job_id, bucket) SELECT md5(g::text)::uuid, 'b' FROM generate_series(1, 100) g"
q "INSERT INTO public.job_objects (job_id, bucket, key, etag, status)
   SELECT md5(g::text)::uuid, 'b', 'k' || o, 'e', (ARRAY['queued', 'processing', 'succeeded', 'failed'])[o % 4 + 1]
   FROM generate_series(1, 100) g, generate_series(1, 1000) o"
q "SELECT public.fold_job_counters()" >/dev/null
q "VACUUM ANALYZE"

DEF13=$(q "SELECT pg_get_viewdef('public.job_progress_live'::regclass)" | tr '\n' ' ')
# 1.2's definition: the same without the branch that adds pending_counter_deltas().
DEF12=$(sed -E -e 's/UNION ALL.*pending_counter_deltas\(\) p(\([^)]*\))?\) x/) x/' <<<"$DEF13")
if grep -q pending_counter_deltas <<<"$DEF12"; then
    echo "could not take pending_counter_deltas() out of the view's definition" >&2
    exit 1
fi
printf '%s\n' '\set g random(1, 100)' 'SELECT * FROM job_status(md5(:g::text)::uuid, true);' >"$TMP/read.sql"
chmod 644 "$TMP/read.sql"

setup() {
    case $1 in
    v13) q "CREATE OR REPLACE VIEW public.job_progress_live AS $DEF13"
        q "ALTER FUNCTION public.pending_counter_deltas() SET search_path = pg_catalog, pg_temp" ;;
    v13_no_set) q "CREATE OR REPLACE VIEW public.job_progress_live AS $DEF13"
        q "ALTER FUNCTION public.pending_counter_deltas() RESET search_path" ;;
    v12_view) q "CREATE OR REPLACE VIEW public.job_progress_live AS $DEF12" ;;
    esac
}
TICK=$(getconf CLK_TCK)
echo "variant round latency_ms cpu_us" >"$TMP/runs"
run() {
    local out t0 t1 xacts lat
    setup "$1"
    sleep 0.5
    t0=$(server_ticks)
    out=$(as_pg "$PGBIN/pgbench" -h "$TMP" -p "$PORT" -n -M prepared -c 1 -T "$SECS" -f "$TMP/read.sql" ext 2>&1)
    sleep 0.5
    t1=$(server_ticks)
    lat=$(awk '/latency average/ { print $4 }' <<<"$out")
    xacts=$(awk '/number of transactions actually processed/ { print $NF }' <<<"$out")
    [ -n "$lat" ] && [ -n "$xacts" ] || { echo "pgbench on $1 failed: $out" >&2; exit 1; }
    echo "$1 $2 $lat $(awk -v a="$t0" -v b="$t1" -v x="$xacts" -v hz="$TICK" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / x }')" >>"$TMP/runs"
    say "round $2 $(tail -1 "$TMP/runs")"
}
LOAD_START=$(loadavg)
VARIANTS="v13 v13_no_set v12_view"
for ((r = 1; r <= ROUNDS; r++)); do
    for v in $VARIANTS; do run "$v" "$r"; done
    for v in $(tr ' ' '\n' <<<"$VARIANTS" | tac); do run "$v" "$r"; done
done
setup v13
LOAD_END=$(loadavg)

python3 - "$TMP/runs" "$OUT" "$ROUNDS" "$SECS" "$LOAD_START" "$LOAD_END" "$(title_of "$VERSION"), $DATE" "$VERSION" <<'PY'
import sys, statistics as st
runs, out, rounds, secs, l0, l1, title, version = sys.argv[1:]
rows = [l.split() for l in open(runs).read().splitlines()[1:]]
R = range(1, int(rounds) + 1)
def per_round(v, col): return [st.mean(float(x[col]) for x in rows if x[0] == v and int(x[1]) == r) for r in R]
names = {"v13": f"{version}: the table's deltas + pending_counter_deltas()",
         "v13_no_set": f"{version}, the function without its pinned search_path",
         "v12_view": "1.2's view: the table's deltas only"}
lines = [f"# What pending_counter_deltas() costs a real-time read: {title}", "",
  f"`ROUNDS={rounds} SECS={secs} test/bench/own_deltas_reads.sh`: job_status(id, true) of random jobs of 1,000 objects (100 jobs, "
  f"counters folded, no writes), one pgbench client (-M prepared), {rounds} ABBA rounds of {secs} s per variant and "
  f"direction. Latency: pgbench's average, round trip included; server CPU: all server processes' CPU time (/proc) "
  f"per read. Load average (1, 5, 15 min) {l0} at the start, {l1} at the end.", "",
  "| job_progress_live | latency per round (µs) | mean | server CPU per read: mean (range) | CPU vs 1.2's view |",
  "|---|---|---:|---:|---:|"]
base = per_round("v12_view", 3)
for v in ["v13", "v13_no_set", "v12_view"]:
    lat = [x * 1000 for x in per_round(v, 2)]
    cpu = per_round(v, 3)
    d = [c - b for c, b in zip(cpu, base)]
    lines.append(f"| {names[v]} | {', '.join(f'{x:.0f}' for x in lat)} | {st.mean(lat):.1f} µs | "
                 f"{st.mean(cpu):.1f} µs ({min(cpu):.1f}-{max(cpu):.1f}) | {st.mean(d):+.1f} µs |")
lines += ["", "Runs, in order:", "", "    " + "\n    ".join(" ".join(r) for r in rows), ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines[:9]))
PY
REPORTED=1
say "wrote $OUT"
