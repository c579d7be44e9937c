# Shared by the scripts behind the README's commands: installs what the build and the tests
# need (Debian packages), builds and installs the extension, and runs commands as the
# unprivileged user PostgreSQL requires (it refuses to run as root).

PG_BIN=${S3SCAN_PG_BIN:-/usr/lib/postgresql/15/bin}  # another (relocated) copy of PostgreSQL 15: set S3SCAN_PG_BIN
PG_CONFIG=$PG_BIN/pg_config
PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-cron libipc-run-perl make g++"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The checkout's git history, for the test that builds an earlier version (021); the suites run in
# a copy without .git.
[ -d "$REPO/.git" ] && export S3SCAN_GIT_DIR=${S3SCAN_GIT_DIR:-$REPO}

log() { printf '\n==> %s\n' "$*"; }

# Installs the Debian packages that are missing (as root; otherwise checks they are there).
ensure_packages() {
    local missing=()
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds and installs the extension into the PostgreSQL 15 installation.
build_and_install() {
    log "building and installing s3scan_jobs"
    make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" -j"$(nproc)"
    make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" install
}

# The unprivileged user that runs servers: postgres (created by the Debian package), or the
# current user when not root.
RUN_USER=postgres
[ "$(id -u)" -ne 0 ] && RUN_USER=$(id -un)

as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then
        su "$RUN_USER" -s /bin/bash -c "$*"
    else
        bash -c "$*"
    fi
}

# A copy of the tree that the server user owns, for suites that write into their directory.
copy_tree_for_server_user() {
    local dir
    dir=$(mktemp -d /tmp/s3scan_jobs.XXXXXX)
    tar -C "$REPO" --exclude=.git --exclude='tmp_check*' --exclude=results -cf - . | tar -C "$dir" -xf -
    [ "$(id -u)" -eq 0 ] && chown -R "$RUN_USER" "$dir"
    chmod 755 "$dir"
    echo "$dir"
}

# Citus, for the distributed suite (test/run-tests.sh citus) and its benchmark: builds and
# installs the version in ../shared/vendor into this PostgreSQL unless it is there already. Citus
# is AGPL and a separate extension: it is built beside ours, never copied into the project.
CITUS_VERSION=13.2.2
# The vendored sources: S3SCAN_VENDOR_DIR, else ../shared/vendor next to this checkout, else the
# workplace's /work/shared/vendor (a clone elsewhere, as CI makes).
CITUS_VENDOR=${S3SCAN_VENDOR_DIR:-}
if [ -z "$CITUS_VENDOR" ]; then
    for dir in "$REPO/../shared/vendor" /work/shared/vendor; do
        [ -f "$dir/citus-13.2.2.tar.gz" ] && { CITUS_VENDOR=$(cd "$dir" && pwd); break; }
    done
fi
CITUS_PACKAGES="libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev zlib1g-dev libicu-dev patch"

citus_installed() {
    local so
    so="$($PG_CONFIG --pkglibdir)/citus.so"
    [ -f "$so" ] && grep -aq "Citus $CITUS_VERSION" "$so"
}

ensure_citus() {
    if citus_installed; then
        log "Citus $CITUS_VERSION is installed"
        return 0
    fi
    local tarball=$CITUS_VENDOR/citus-$CITUS_VERSION.tar.gz
    local patchfile=$CITUS_VENDOR/citus-$CITUS_VERSION-pg15.20.patch
    if [ -z "$CITUS_VENDOR" ] || [ ! -f "$tarball" ]; then
        echo "Citus $CITUS_VERSION is not installed and its sources (citus-$CITUS_VERSION.tar.gz) are" \
             "not in ../shared/vendor or /work/shared/vendor: set S3SCAN_VENDOR_DIR to their folder" >&2
        return 1
    fi
    (cd "$CITUS_VENDOR" && sha256sum --quiet -c --ignore-missing SHA256SUMS) || {
        echo "the Citus sources in $CITUS_VENDOR do not match SHA256SUMS" >&2
        return 1
    }
    PACKAGES="$CITUS_PACKAGES" ensure_packages
    log "building Citus $CITUS_VERSION from $tarball (a few minutes)"
    local build
    build=$(mktemp -d /tmp/citus-build.XXXXXX)
    (
        set -e
        tar -C "$build" -xzf "$tarball"
        cd "$build/citus-$CITUS_VERSION"
        patch -s -p1 <"$patchfile"
        ./configure -q PG_CONFIG="$PG_CONFIG" >/dev/null
        make -s -j"$(nproc)" with_llvm=no >/dev/null
        make -s with_llvm=no install >/dev/null
    ) >"$build.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        tail -40 "$build.log" >&2
        echo "building Citus failed (log: $build.log)" >&2
        return 1
    fi
    rm -rf "$build" "$build.log"
    citus_installed
}
