# shellcheck shell=bash
# Local PostgreSQL cluster for ./run and ./test. Source this file, then:
#
#   chat_pg_ensure <database>   # no-op when ConnectionStrings__Chat is set;
#                               # otherwise start (or reuse) the cluster in
#                               # .data/postgres, create <database>, export
#                               # ConnectionStrings__Chat
#   chat_pg_stop                # stop the cluster, only if chat_pg_ensure
#                               # started it (safe to call more than once)
#
# Functions return non-zero with a message on stderr; they never exit.
#
# Environment:
#   CHAT_PG_PORT     TCP port on 127.0.0.1 (default 54329)
#   CHAT_PG_BINDIR   directory holding initdb/pg_ctl (default: newest
#                    /usr/lib/postgresql/*/bin, else `pg_config --bindir`)

CHAT_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHAT_DATA_DIR="$CHAT_REPO_ROOT/.data"
CHAT_PG_DATA="$CHAT_DATA_DIR/postgres"
CHAT_PG_SOCKET_DIR="$CHAT_DATA_DIR/pg-socket"
CHAT_PG_LOG="$CHAT_DATA_DIR/postgres.log"
CHAT_PG_STARTED=0

_chat_pg_err() { echo "postgres.sh: error: $*" >&2; }
_chat_pg_info() { echo "postgres.sh: $*" >&2; }

# Prints the directory holding initdb and pg_ctl. Prefers the major version
# the existing data dir was created with, then the newest installed one.
_chat_pg_find_bindir() {
    local dir version
    if [[ -n "${CHAT_PG_BINDIR:-}" ]]; then
        [[ -x "$CHAT_PG_BINDIR/pg_ctl" && -x "$CHAT_PG_BINDIR/initdb" ]] || {
            _chat_pg_err "CHAT_PG_BINDIR=$CHAT_PG_BINDIR has no initdb/pg_ctl"
            return 1
        }
        echo "$CHAT_PG_BINDIR"
        return 0
    fi
    if [[ -f "$CHAT_PG_DATA/PG_VERSION" ]]; then
        version="$(cat "$CHAT_PG_DATA/PG_VERSION" 2>/dev/null)"
        dir="/usr/lib/postgresql/$version/bin"
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
            echo "$dir"
            return 0
        fi
    fi
    while read -r dir; do
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
            echo "$dir"
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null)"
        if [[ -n "$dir" && -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
            echo "$dir"
            return 0
        fi
    fi
    return 1
}

# Sets CHAT_PG_BIN, installing PostgreSQL with apt-get if missing and root.
chat_pg_require_binaries() {
    local bindir
    if bindir="$(_chat_pg_find_bindir)"; then
        CHAT_PG_BIN="$bindir"
        return 0
    fi
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        _chat_pg_info "PostgreSQL server binaries not found; installing with apt-get"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
               DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; } >&2; then
            _chat_pg_err "apt-get install postgresql failed"
            return 1
        fi
        if bindir="$(_chat_pg_find_bindir)"; then
            CHAT_PG_BIN="$bindir"
            return 0
        fi
    fi
    _chat_pg_err "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or \`pg_config --bindir\`." \
        "Install PostgreSQL (e.g. \`apt-get install postgresql\`), set CHAT_PG_BINDIR, or set ConnectionStrings__Chat to use an existing server."
    return 1
}

# Runs a command as the server's user: `postgres` when we are root (the
# server refuses to run as root), else the current user. Runs from / so the
# server user never needs access to the caller's working directory.
_chat_pg_as_server() {
    if [[ $EUID -eq 0 ]]; then
        if command -v setpriv >/dev/null 2>&1; then
            (cd / && setpriv --reuid=postgres --regid=postgres --init-groups -- "$@")
        else
            (cd / && runuser -u postgres -- "$@")
        fi
    else
        (cd / && "$@")
    fi
}

# Creates .data/ and the dirs/files the server writes, owned by its user.
_chat_pg_prepare_dirs() {
    local path server_user
    server_user="$(id -un)"
    [[ $EUID -ne 0 ]] || server_user=postgres
    if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        _chat_pg_err "running as root but there is no 'postgres' user to run the server as" \
            "(installing the Debian 'postgresql' package creates it)"
        return 1
    fi
    if ! mkdir -p "$CHAT_DATA_DIR" "$CHAT_PG_DATA" "$CHAT_PG_SOCKET_DIR" || ! touch "$CHAT_PG_LOG"; then
        _chat_pg_err "cannot create $CHAT_DATA_DIR"
        return 1
    fi
    if [[ $EUID -eq 0 ]]; then
        chown postgres:postgres "$CHAT_PG_SOCKET_DIR" "$CHAT_PG_LOG" || return 1
        # -R only when needed (e.g. a data dir left behind by a non-root run).
        if [[ "$(stat -c %U "$CHAT_PG_DATA")" != postgres ]]; then
            chown -R postgres:postgres "$CHAT_PG_DATA" || return 1
        fi
    elif [[ ! -O "$CHAT_PG_DATA" ]]; then
        _chat_pg_err "$CHAT_PG_DATA is owned by $(stat -c %U "$CHAT_PG_DATA"), not $(id -un);" \
            "remove it or run as that user"
        return 1
    fi
    chmod 700 "$CHAT_PG_DATA" || return 1
    # Every ancestor must be searchable by the server's user.
    for path in "$CHAT_PG_DATA" "$CHAT_PG_SOCKET_DIR" "$CHAT_PG_LOG"; do
        if ! _chat_pg_as_server test -w "$path"; then
            _chat_pg_err "the server user ($server_user) cannot write $path;" \
                "make every parent directory of $CHAT_REPO_ROOT searchable (chmod o+x)"
            return 1
        fi
    done
}

_chat_pg_running() {
    _chat_pg_as_server "$CHAT_PG_BIN/pg_ctl" status -D "$CHAT_PG_DATA" >/dev/null 2>&1
}

# Port of the running server, from line 4 of postmaster.pid.
_chat_pg_running_port() {
    sed -n 4p "$CHAT_PG_DATA/postmaster.pid" 2>/dev/null
}

_chat_pg_psql() {
    local psql="$CHAT_PG_BIN/psql"
    [[ -x "$psql" ]] || psql="psql"
    PGCONNECT_TIMEOUT=5 "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CHAT_PG_ACTIVE_PORT" -U postgres "$@"
}

chat_pg_ensure() {
    local db="${1:?usage: chat_pg_ensure <database>}"
    local port="${CHAT_PG_PORT:-54329}" exists

    if [[ -n "${ConnectionStrings__Chat:-}" ]]; then
        _chat_pg_info "using ConnectionStrings__Chat from the environment; not starting a local cluster"
        return 0
    fi
    if [[ ! "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        _chat_pg_err "invalid database name '$db'"
        return 1
    fi
    if [[ ! "$port" =~ ^[0-9]+$ ]]; then
        _chat_pg_err "CHAT_PG_PORT must be a number, got '$port'"
        return 1
    fi

    chat_pg_require_binaries || return 1
    _chat_pg_prepare_dirs || return 1

    if [[ ! -f "$CHAT_PG_DATA/PG_VERSION" ]]; then
        if [[ -n "$(ls -A "$CHAT_PG_DATA")" ]]; then
            _chat_pg_err "$CHAT_PG_DATA is not empty but holds no cluster; remove it and retry"
            return 1
        fi
        _chat_pg_info "initialising cluster in $CHAT_PG_DATA"
        if ! _chat_pg_as_server "$CHAT_PG_BIN/initdb" -D "$CHAT_PG_DATA" --auth=trust -U postgres \
                --encoding=UTF8 --locale=C.UTF-8 --no-instructions >"$CHAT_DATA_DIR/initdb.log" 2>&1; then
            _chat_pg_err "initdb failed; see $CHAT_DATA_DIR/initdb.log:"
            tail -n 20 "$CHAT_DATA_DIR/initdb.log" >&2
            return 1
        fi
        echo "include_if_exists = 'chat.conf'" >>"$CHAT_PG_DATA/postgresql.conf"
    fi

    if _chat_pg_running; then
        CHAT_PG_ACTIVE_PORT="$(_chat_pg_running_port)"
        [[ "$CHAT_PG_ACTIVE_PORT" =~ ^[0-9]+$ ]] || CHAT_PG_ACTIVE_PORT="$port"
        _chat_pg_info "reusing the cluster already running on 127.0.0.1:$CHAT_PG_ACTIVE_PORT (left running at exit)"
    else
        # Written on every start so a moved repo or another port just works.
        # Unix socket paths are limited to ~107 bytes; skip the socket if the
        # repo lives too deep (we connect over TCP anyway).
        local socket_dirs="$CHAT_PG_SOCKET_DIR"
        if (( ${#CHAT_PG_SOCKET_DIR} > 90 )); then socket_dirs=""; fi
        {
            echo "# Written by scripts/postgres.sh on every start."
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $port"
            echo "unix_socket_directories = '${socket_dirs//\'/\'\'}'"
            # Room for the benchmark's SignalR reference (a 100-connection Npgsql pool) beside the runner's own
            # connections; the default of 100 refused some of them.
            echo "max_connections = 300"
        } >"$CHAT_PG_DATA/chat.conf" || return 1
        [[ $EUID -ne 0 ]] || chown postgres:postgres "$CHAT_PG_DATA/chat.conf" || return 1

        _chat_pg_info "starting PostgreSQL on 127.0.0.1:$port (log: $CHAT_PG_LOG)"
        # Marked before starting so an interrupted start is still cleaned up.
        CHAT_PG_STARTED=1
        if ! _chat_pg_as_server "$CHAT_PG_BIN/pg_ctl" start -D "$CHAT_PG_DATA" -l "$CHAT_PG_LOG" -w -t 60 >/dev/null; then
            CHAT_PG_STARTED=0
            _chat_pg_err "PostgreSQL failed to start (is port $port taken? set CHAT_PG_PORT); last lines of $CHAT_PG_LOG:"
            tail -n 15 "$CHAT_PG_LOG" >&2
            return 1
        fi
        CHAT_PG_ACTIVE_PORT="$port"
    fi

    if ! exists="$(_chat_pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")"; then
        _chat_pg_err "cannot connect to PostgreSQL on 127.0.0.1:$CHAT_PG_ACTIVE_PORT"
        return 1
    fi
    if [[ "$exists" != 1 ]]; then
        _chat_pg_info "creating database $db"
        _chat_pg_psql -d postgres -c "CREATE DATABASE \"$db\"" || {
            _chat_pg_err "CREATE DATABASE $db failed"
            return 1
        }
    fi

    export ConnectionStrings__Chat="Host=127.0.0.1;Port=$CHAT_PG_ACTIVE_PORT;Username=postgres;Database=$db"
    _chat_pg_info "ConnectionStrings__Chat=$ConnectionStrings__Chat"
}

chat_pg_stop() {
    [[ "${CHAT_PG_STARTED:-0}" == 1 ]] || return 0
    CHAT_PG_STARTED=0
    _chat_pg_info "stopping PostgreSQL"
    _chat_pg_as_server "$CHAT_PG_BIN/pg_ctl" stop -D "$CHAT_PG_DATA" -m fast -w -t 30 >/dev/null 2>&1 || {
        _chat_pg_err "pg_ctl stop failed; see $CHAT_PG_LOG"
        return 1
    }
}
