# Shared by scripts/kafka.sh, scripts/zookeeper.sh, scripts/postgres.sh and scripts/s3.sh
# (sourced, not run): the run directory, pid and readiness bookkeeping of one throwaway
# server on loopback (or on an address of a network namespace the caller created).
#
# The sourcing script sets, before sourcing:
#   SERVER_NAME      the script's name, for messages (kafka.sh)
#   SERVER_NOUN      what the server is called in messages (broker)
#   SERVER_MARK      the file in the run dir whose path is on the server's command line
#   SERVER_PID_FILE  the file in the run dir holding the server's pid
#   LAST             the file recording the last started run dir
#   STOP_TIMEOUT     seconds a stop waits before KILL
#   STOP_SIGNAL      the signal a stop sends first (optional, default TERM)
#   SELF             the absolute path of the sourcing script (the owner watcher runs it)
#   TMPROOT          where fresh run dirs are made

die() { echo "$SERVER_NAME: $*" >&2; exit 1; }

# The run dir for stop/status, absolute: DIR if given, else the last started one.
run_dir() {
  local d="${1:-}"
  [[ -n "$d" || ! -f "$LAST" ]] || d="$(cat "$LAST")"
  if [[ -d "$d" ]]; then (cd "$d" && pwd); fi
}

# is_server PID RUN: PID is alive and is RUN's server (a zombie has no cmdline).
is_server() {
  kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$2/$SERVER_MARK"
}

# The pid in RUN's pid file if that process is still RUN's server, else nothing.
live_pid() {
  local pid
  pid="$(cat "$1/$SERVER_PID_FILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_server "$pid" "$1"; then echo "$pid"; fi
}

# new_run_dir [DIR]: prints the run dir of a start, absolute (DIR, which must not hold a
# live server, else a fresh temporary one) and records it as the last started run.
new_run_dir() {
  local run
  if [[ -n "${1:-}" ]]; then
    mkdir -p "$1"
    run="$(cd "$1" && pwd)"
    [[ -z "$(live_pid "$run")" ]] || die "a $SERVER_NOUN is already running in $run"
  else
    run="$(mktemp -d "$TMPROOT/weir-${SERVER_NAME%.sh}.XXXXXX")"
  fi
  echo "$run" >"$LAST"
  echo "$run"
}

# free_ports N: prints N distinct free loopback ports (all held while picking); in a
# network namespace of the caller's own, where the server binds another address, a port is
# as free there (a port clash is retried by the scripts anyway).
free_ports() {
  python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))' "$1"
}

# wait_exec PID RUN DEADLINE: until the child has exec'd the server its command line is still
# ours; wait for that first, or a loaded machine makes the server look dead at once.
wait_exec() {
  while kill -0 "$1" 2>/dev/null && ! is_server "$1" "$2" && ((SECONDS < $3)); do
    sleep 0.05
  done
}

# await_server PID RUN PORT DEADLINE [OWNER]: records PID, the server just launched for RUN,
# and waits until it answers (`ready PORT`, which the sourcing script defines) or DEADLINE
# (in $SECONDS) passes; with OWNER, a watcher then stops it once that process is gone.
await_server() {
  local pid="$1" run="$2" port="$3" deadline="$4" owner="${5:-}"
  echo "$pid" >"$run/$SERVER_PID_FILE"
  wait_exec "$pid" "$run" "$deadline"
  while ! ready "$port" && is_server "$pid" "$run" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  ready "$port" || return 1
  if [[ -n "$owner" ]]; then watch_owner "$owner" "$pid" "$run"; fi
}

# watch_owner OWNER PID RUN: a detached watcher stops RUN (as `stop RUN` does) once the
# process OWNER is gone, unless the server PID ended first.
watch_owner() {
  export -f is_server
  export SERVER_MARK
  # shellcheck disable=SC2016
  nohup bash -c 'while kill -0 "$1" 2>/dev/null && is_server "$2" "$4"; do sleep 1; done
    if is_server "$2" "$4"; then exec bash "$3" stop "$4"; fi' _ \
    "$1" "$2" "$SELF" "$3" >/dev/null 2>&1 </dev/null &
}

# halt RUN SIGNAL: stops RUN's server (SIGNAL, KILL after the timeout), keeping its directory.
halt() {
  local run="$1" signal="$2" pid deadline
  pid="$(live_pid "$run")"
  [[ -n "$pid" ]] || return 0
  kill "-$signal" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while is_server "$pid" "$run" && ((SECONDS < deadline)); do sleep 0.1; done
  if is_server "$pid" "$run"; then
    kill -KILL "$pid" 2>/dev/null || true
    while is_server "$pid" "$run" && ((SECONDS < deadline + 10)); do sleep 0.1; done
  fi
}

# cmd_stop [DIR]: stops the server and removes its run dir (only one that looks like ours).
cmd_stop() {
  local run
  run="$(run_dir "${1:-}")"
  [[ -n "$run" ]] || return 0
  halt "$run" "${STOP_SIGNAL:-TERM}"
  if [[ -f "$run/$SERVER_MARK" || -f "$run/$SERVER_PID_FILE" ]]; then rm -rf "$run"; else rmdir "$run" 2>/dev/null || true; fi
  if [[ -f "$LAST" && "$(cat "$LAST")" == "$run" ]]; then rm -f "$LAST"; fi
}

# dispatch COMMAND [DIR]: runs the sourcing script's cmd_start, cmd_stop, cmd_status,
# cmd_pause or cmd_resume with DIR; anything else is a usage error (exit 2).
dispatch() {
  case "${1:-}" in
  start | stop | status | pause | resume) "cmd_$1" "${2:-}" ;;
  *)
    echo "usage: $SERVER_NAME start|stop|status|pause|resume [DIR]" >&2
    exit 2
    ;;
  esac
}
