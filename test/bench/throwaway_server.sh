# The one helper of every script in test/bench (sourced, never run): packages, the build, a
# throwaway server, the result file's name and title. soak.sh uses it for its result file only:
# its servers are the TAP test's own.
#
# A script sources it and calls, in this order:
#   bench_init NAME PORT        NAME: the script's name in messages, in its temporary directory and
#                               its result file; PORT: its default port, a different one for each
#                               script (BENCH_PORT overrides it). Sets REPO, PGBIN (S3SCAN_PG_BIN,
#                               default /usr/lib/postgresql/15/bin), PORT, RESULTS (BENCH_RESULTS,
#                               default test/bench/results), DATE, REVISION and REVISION_NOTE, and
#                               the exit trap below.
#   ensure_packages [PKG...]    installs postgresql-15, postgresql-server-dev-15, make, g++ and the
#                               PKGs that are missing (Debian, as root; only for the default PGBIN)
#   build_and_install           make and make install into PGBIN's PostgreSQL, unless
#                               BENCH_SKIP_BUILD=1 (then the installed extension is measured)
#   start_throwaway_server 'CONF'
#                               initdb in TMP=/tmp/s3scan-bench-NAME.XXXXXX (the data directory is
#                               $TMP/data, the log $TMP/server.log), the lines of CONF appended to
#                               postgresql.conf after port, socket and shared_preload_libraries,
#                               start. The server listens on a Unix socket in $TMP only (PGHOST,
#                               PGPORT and PGUSER are exported for it): the port only names the
#                               socket, so two scripts never collide; distinct defaults still tell
#                               their servers apart in ps and in logs.
#   as_pg CMD...                runs CMD as the user postgres (when root: the server refuses root),
#                               else as the caller
#   ext_version DB              the extension's version in database DB
#   result_file KIND EXT VERSION
#                               prints $RESULTS/<date>-KIND-VERSION-REVISION.EXT
#   title_of VERSION            prints "s3scan_jobs VERSION (REVISION[ with uncommitted changes])",
#                               for the result's title
#   server_ticks                the server's CPU time so far, in clock ticks (below)
#   say MSG, die MSG, loadavg   a line with the seconds since the start; an error; the load average
#
# On exit the trap runs ON_EXIT (a command the script may set), kills the pids in BG_PIDS, stops
# the server and removes TMP; it keeps TMP when the script fails before its report (a script sets
# REPORTED=1 once it has written it), or with BENCH_KEEP=1, and prints the server log's last lines
# when the script fails.

bench_init() {
    BENCH_NAME=$1
    REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    PGBIN=${S3SCAN_PG_BIN:-/usr/lib/postgresql/15/bin}
    PORT=${BENCH_PORT:-$2}
    RESULTS=${BENCH_RESULTS:-$REPO/test/bench/results}
    DATE=$(date +%Y-%m-%d)
    START_TIME=$SECONDS
    REVISION=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    REVISION_NOTE=
    if [ "$REVISION" != unknown ] && [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        REVISION_NOTE=" with uncommitted changes"
    fi
    TMP= SERVER_STARTED=0 ON_EXIT= BG_PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

say() { printf '[%s %4ds] %s\n' "$BENCH_NAME" $((SECONDS - START_TIME)) "$*"; }
die() { printf '[%s] ERROR: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

if [ "$(id -u)" -eq 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

ensure_packages() {
    local need=() p
    if [ -z "${S3SCAN_PG_BIN:-}" ]; then
        [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] || need+=(postgresql-15)
        [ -f /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk ] || need+=(postgresql-server-dev-15)
        command -v make >/dev/null || need+=(make)
        command -v g++ >/dev/null || need+=(g++)
    else
        [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pg_config" ] || die "no PostgreSQL 15 server and pg_config in S3SCAN_PG_BIN=$PGBIN"
    fi
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${need[*]}); install them or run as root"
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

build_and_install() {
    if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
        say "BENCH_SKIP_BUILD=1: measuring the extension installed in $("$PGBIN/pg_config" --sharedir)/extension"
        return 0
    fi
    say "building and installing the extension into $("$PGBIN/pg_config" --pkglibdir)"
    local log sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    log=$(mktemp /tmp/s3scan-bench-build.XXXXXX)
    { make -C "$REPO" PG_CONFIG="$PGBIN/pg_config" -j"$(nproc)" &&
      "${sudo[@]}" make -C "$REPO" PG_CONFIG="$PGBIN/pg_config" install; } >"$log" 2>&1 ||
        { tail -n 40 "$log" >&2; rm -f "$log"; die "the build or make install failed (make install needs root)"; }
    rm -f "$log"
}

start_throwaway_server() {
    local locale=C
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "user postgres missing (the Debian package creates it)"
    fi
    locale -a 2>/dev/null | grep -qix 'c.utf-\?8' && locale=C.UTF-8
    TMP=$(mktemp -d "/tmp/s3scan-bench-$BENCH_NAME.XXXXXX")
    chmod 755 "$TMP"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$TMP"
    say "server in $TMP (port $PORT), PostgreSQL from $PGBIN"
    as_pg "$PGBIN/initdb" -D "$TMP/data" -U postgres -E UTF8 --locale=$locale -A trust --no-sync >/dev/null
    {
        printf '\n# ---- test/bench/%s ----\n' "$BENCH_NAME"
        printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$PORT" "$TMP"
        printf "shared_preload_libraries = 's3scan_jobs'\n%s\n" "$1"
    } >>"$TMP/data/postgresql.conf"
    as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w -t 120 start >/dev/null
    SERVER_STARTED=1
    export PGHOST=$TMP PGPORT=$PORT PGUSER=postgres
}

bench_cleanup() {
    local rc=$? p
    trap - EXIT
    [ -n "$ON_EXIT" ] && { eval "$ON_EXIT" || true; }
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
    if [ "$SERVER_STARTED" = 1 ]; then
        as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ $rc -ne 0 ] && [ -n "$TMP" ] && [ -f "$TMP/server.log" ]; then
        echo "---- last lines of the server log ($TMP/server.log) ----" >&2
        tail -n 30 "$TMP/server.log" >&2 || true
    fi
    cd /
    if [ -n "$TMP" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ] || { [ $rc -ne 0 ] && [ "${REPORTED:-0}" != 1 ]; }; then
            echo "[$BENCH_NAME] kept $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    exit $rc
}

ext_version() {
    as_pg "$PGBIN/psql" -X -At -h "$TMP" -p "$PORT" -U postgres -d "$1" \
        -c "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 's3scan_jobs'"
}

result_file() {
    mkdir -p "$RESULTS"
    printf '%s/%s-%s-%s-%s.%s\n' "$RESULTS" "$DATE" "$1" "$3" "$REVISION" "$2"
}

title_of() { printf 's3scan_jobs %s (%s%s)' "$1" "$REVISION" "$REVISION_NOTE"; }

# The server's CPU time so far, in clock ticks: the postmaster's own and that of its children it
# has reaped (the benchmark's backends, autovacuum workers), plus its live children's (the
# checkpointer, WAL writer, the refresh worker that folds). Read after the benchmark's backends
# have exited, the difference over a run is what the server spent on it, whatever else the
# machine's other tenants were doing.
server_ticks() {
    local pm
    pm=$(head -1 "$TMP/data/postmaster.pid")
    { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
      for c in $(cat "/proc/$pm/task/$pm/children"); do awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true; done
    } | awk '{ t += $1 } END { print t }'
}
