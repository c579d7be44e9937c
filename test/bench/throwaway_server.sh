# Sourced by the smaller bench scripts (write_parts.sh, pending_reads.sh, own_deltas_reads.sh,
# subtransaction_deltas.sh): builds and installs the extension, and runs a throwaway server as the
# user postgres in a temporary directory (Unix socket only), stopped and removed when the script
# exits.
#
# The sourcing script sets REPO, PGBIN and PORT first, then calls:
#   build_and_install                   make and make install (as root), unless BENCH_SKIP_BUILD=1
#   start_throwaway_server NAME 'CONF'  initdb in TMP=/tmp/s3scan-NAME.XXXXXX, the lines of CONF
#                                       appended to postgresql.conf (after port, socket and
#                                       shared_preload_libraries), start
#   as_pg CMD...                        run as postgres
#   server_ticks                        the server's CPU time so far, in clock ticks (below)
# and may set ON_EXIT to a command run before the server is stopped.

as_pg() { runuser -u postgres -- "$@"; }

build_and_install() {
    if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
        make -s -C "$REPO" PG_CONFIG="$PGBIN/pg_config" -j2 >/dev/null
        make -s -C "$REPO" PG_CONFIG="$PGBIN/pg_config" install >/dev/null
    fi
}

ON_EXIT=
stop_throwaway_server() {
    [ -n "$ON_EXIT" ] && eval "$ON_EXIT"
    as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}

start_throwaway_server() {
    TMP=$(mktemp -d "/tmp/s3scan-$1.XXXXXX")
    chmod 755 "$TMP"; chown postgres "$TMP"
    trap stop_throwaway_server EXIT
    as_pg "$PGBIN/initdb" -D "$TMP/data" -U postgres -E UTF8 --locale=C -A trust --no-sync >/dev/null
    {
        printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$PORT" "$TMP"
        printf "shared_preload_libraries = 's3scan_jobs'\n%s\n" "$2"
    } >>"$TMP/data/postgresql.conf"
    as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w start >/dev/null
}

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
