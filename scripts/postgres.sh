#!/usr/bin/env bash
# Start/stop a throwaway PostgreSQL server (Debian's `postgresql` package) on 127.0.0.1 (or
# WEIR_PG_HOST) for tests: `initdb` into a temporary directory, max_prepared_transactions=64
# (for the exactly-once sink's two-phase commit), trust authentication for the server's own
# address only (or WEIR_PG_CLIENTS), a database and superuser named `weir`.
#
#   scripts/postgres.sh start  [DIR]  # prints "dir=<RUN>", then (last line) the connection
#                                     # URL postgres://weir@127.0.0.1:PORT/weir
#   scripts/postgres.sh status [DIR]  # "running URL" (exit 0) or "stopped" (exit 1)
#   scripts/postgres.sh stop   [DIR]  # fast shutdown (KILL after 30 s), removes DIR; idempotent
#   scripts/postgres.sh pause  [DIR]  # immediate shutdown (as a crash: no checkpoint, its
#                                     # clients cut off), keeping DIR (data and port)
#   scripts/postgres.sh resume [DIR]  # starts a paused server again: same data, same URL
#
# DIR defaults to a fresh mktemp dir on start and to the last started run (recorded in
# ${TMPDIR:-/tmp}/weir-postgres.last) on stop/status. Several servers can run at once, each
# with its own run dir and free port. Log: DIR/postgres.log. Run as root, the server runs
# as the `postgres` user (PostgreSQL refuses to run as root) and DIR is handed to it.
# Needs python3 and Debian's postgresql package.
# Env: WEIR_PG_READY_TIMEOUT (s, default 60); WEIR_PG_MAX_PREPARED (default 64); WEIR_PG_OWNER_PID: stop the server (as
# `stop DIR` does) once that process exits, e.g. the test binary; WEIR_PG_HOST: the address
# to serve on instead of 127.0.0.1, an IPv4 address (inside a network namespace the caller
# created; kept in DIR for resume and status); WEIR_PG_CLIENTS: the addresses (CIDR) that
# may connect without a password instead of the server's own (such as that namespace's
# subnet).
set -euo pipefail

TMPROOT="${TMPDIR:-/tmp}"
LAST="$TMPROOT/weir-postgres.last"
READY_TIMEOUT="${WEIR_PG_READY_TIMEOUT:-60}"
HOST="${WEIR_PG_HOST:-127.0.0.1}"
STOP_TIMEOUT=30
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SERVER_NAME=postgres.sh
SERVER_NOUN=server
SERVER_MARK=postgresql.conf
SERVER_PID_FILE=server.pid
# SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
STOP_SIGNAL=INT
# shellcheck source=lib/server.sh
source "$(dirname "$SELF")/lib/server.sh"

# The newest installed PostgreSQL's programs.
bindir() {
  local d
  d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/postgres" ]] || die "Debian's postgresql package is not installed (apt-get install postgresql)"
  echo "$d"
}

# as_server CMD...: runs CMD as the server's user (`postgres` when we are root).
as_server() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() { echo "postgres://weir@$HOST:$1/weir"; }

# ready PORT: the server accepts connections to the `weir` database.
ready() {
  "$BIN/pg_isready" -q -h "$HOST" -p "$1" -d weir -U weir -t 2
}

# clients: the addresses that may connect: WEIR_PG_CLIENTS, or HOST only.
clients() { echo "${WEIR_PG_CLIENTS:-$HOST/32}"; }

# write_config RUN PORT
write_config() {
  cat >"$1/$SERVER_MARK" <<EOF
listen_addresses = '$HOST'
port = $2
unix_socket_directories = '$1'
max_connections = 100
max_prepared_transactions = ${WEIR_PG_MAX_PREPARED:-64}
hba_file = '$1/pg_hba.conf'
ident_file = '$1/data/pg_ident.conf'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
log_destination = 'stderr'
logging_collector = off
EOF
  cat >"$1/pg_hba.conf" <<EOF
local all all trust
host all all $(clients) trust
EOF
  echo "$HOST" >"$1/host"
}

# launch RUN PORT DEADLINE: starts RUN's server (detached from our stdio) and waits until
# it answers on PORT or DEADLINE (in $SECONDS) passes; with WEIR_PG_OWNER_PID, a watcher
# stops it (as `stop RUN` does) once that process is gone.
launch() {
  local run="$1" port="$2" deadline="$3"
  local server=("$BIN/postgres" -D "$run/data" -c "config_file=$run/$SERVER_MARK")
  if [[ "$(id -u)" == 0 ]]; then
    # The run dir and log belong to the server's user; setpriv execs, so the pid below is
    # the server's own.
    chown -R postgres: "$run"
    server=(setpriv --reuid=postgres --regid=postgres --init-groups -- "${server[@]}")
  fi
  nohup "${server[@]}" >>"$run/postgres.log" 2>&1 </dev/null &
  await_server $! "$run" "$port" "$deadline" "${WEIR_PG_OWNER_PID:-}"
}

cmd_start() {
  [[ "$HOST" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "WEIR_PG_HOST=$HOST is no IPv4 address"
  [[ -z "${WEIR_PG_CLIENTS:-}" || "$WEIR_PG_CLIENTS" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] ||
    die "WEIR_PG_CLIENTS=$WEIR_PG_CLIENTS is no IPv4 address range (A.B.C.D/N)"
  BIN="$(bindir)"
  local run try port deadline
  run="$(new_run_dir "${1:-}")" || exit 1
  rm -rf "$run/data"
  mkdir -p "$run/data"
  if [[ "$(id -u)" == 0 ]]; then chown -R postgres: "$run"; fi
  if ! as_server "$BIN/initdb" -D "$run/data" -U weir --auth=trust --no-sync -E UTF8 \
    --locale=C >"$run/initdb.log" 2>&1; then
    cat "$run/initdb.log" >&2
    die "initdb failed (run dir $run)"
  fi
  for try in 1 2 3; do # a picked port may be taken before the server binds it
    port="$(free_ports 1)" || true
    [[ "$port" =~ ^[0-9]+$ ]] || die "python3 could not pick a free port"
    : >"$run/postgres.log"
    write_config "$run" "$port"
    echo "$port" >"$run/port"
    deadline=$((SECONDS + READY_TIMEOUT))
    if launch "$run" "$port" "$deadline"; then
      create_database "$port" || die "the server is up but CREATE DATABASE weir failed (run dir $run)"
      echo "dir=$run"
      url "$port"
      return 0
    fi
    kill -KILL "$(cat "$run/$SERVER_PID_FILE")" 2>/dev/null || true
    if ((SECONDS >= deadline)) || ! grep -qs "could not bind\|Address already in use" "$run/postgres.log"; then
      break
    fi
    echo "postgres.sh: port clash, retrying (attempt $try)" >&2
  done
  echo "postgres.sh: server did not come up within ${READY_TIMEOUT}s (run dir $run)" >&2
  tail -n 40 "$run/postgres.log" >&2 2>/dev/null || true
  exit 1
}

# create_database PORT: the `weir` database (the superuser's own `postgres` one is there).
create_database() {
  "$BIN/psql" -q -h "$HOST" -p "$1" -U weir -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE weir" >/dev/null
}

cmd_pause() {
  local run
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/$SERVER_MARK" ]] || die "no server directory to pause"
  # SIGQUIT: the postmaster ends its backends at once and exits without a checkpoint; the
  # next start recovers from the write-ahead log, as after a crash.
  halt "$run" QUIT
}

cmd_resume() {
  BIN="$(bindir)"
  local run port
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/$SERVER_MARK" && -f "$run/port" ]] || die "no paused server directory"
  [[ -z "$(live_pid "$run")" ]] || die "the server in $run is running"
  port="$(cat "$run/port")"
  if [[ -f "$run/host" ]]; then HOST="$(cat "$run/host")"; fi
  if ! launch "$run" "$port" $((SECONDS + READY_TIMEOUT)); then
    tail -n 40 "$run/postgres.log" >&2 2>/dev/null || true
    die "server did not come back within ${READY_TIMEOUT}s (run dir $run)"
  fi
  url "$port"
}

cmd_status() {
  BIN="$(bindir)"
  local run
  run="$(run_dir "${1:-}")"
  if [[ -n "$run" && -f "$run/host" ]]; then HOST="$(cat "$run/host")"; fi
  if [[ -n "$run" && -n "$(live_pid "$run")" ]] && ready "$(cat "$run/port")"; then
    echo "running $(url "$(cat "$run/port")")"
  else
    echo "stopped"
    return 1
  fi
}

dispatch "$@"
