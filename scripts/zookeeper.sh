#!/usr/bin/env bash
# Start/stop a throwaway standalone ZooKeeper server (Debian's `zookeeper` package) on
# 127.0.0.1 for tests.
#
#   scripts/zookeeper.sh start  [DIR]  # prints "dir=<RUN>", then (last line) 127.0.0.1:PORT
#   scripts/zookeeper.sh status [DIR]  # "running 127.0.0.1:PORT" (exit 0) or "stopped" (exit 1)
#   scripts/zookeeper.sh stop   [DIR]  # TERM (KILL after 30 s), removes DIR; idempotent
#   scripts/zookeeper.sh pause  [DIR]  # kills the server (-9), keeping DIR (data and port)
#   scripts/zookeeper.sh resume [DIR]  # starts a paused server again: same data, same address
#
# DIR defaults to a fresh mktemp dir on start and to the last started run (recorded in
# ${TMPDIR:-/tmp}/weir-zookeeper.last) on stop/status. Several servers can run at once,
# each with its own run dir and free port. Logs: DIR/zookeeper.log (log4j), DIR/zk.out.
# Env: WEIR_ZK_READY_TIMEOUT (s, default 60); WEIR_ZK_OWNER_PID: stop the server (as
# `stop DIR` does) once that process exits, e.g. the test binary; WEIR_ZK_HOST: the address
# to serve on instead of 127.0.0.1 (inside a network namespace the caller created, whose
# other namespaces reach it through their own links).
# Needs java 17+, python3 and Debian's zookeeper package (/usr/share/java/zookeeper.jar).
set -euo pipefail

JARS="/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
TMPROOT="${TMPDIR:-/tmp}"
LAST="$TMPROOT/weir-zookeeper.last"
READY_TIMEOUT="${WEIR_ZK_READY_TIMEOUT:-60}"
HOST="${WEIR_ZK_HOST:-127.0.0.1}"
STOP_TIMEOUT=30
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SERVER_NAME=zookeeper.sh
SERVER_NOUN=server
SERVER_MARK=zoo.cfg
SERVER_PID_FILE=zookeeper.pid
# shellcheck source=lib/server.sh
source "$(dirname "$SELF")/lib/server.sh"

# ready PORT: the server answers the `ruok` four-letter word with `imok`.
ready() {
  local answer
  answer="$({ exec 3<>"/dev/tcp/$HOST/$1" && printf ruok >&3 && timeout 2 cat <&3; } 2>/dev/null)" || return 1
  [[ "$answer" == imok ]]
}

# write_config RUN PORT
write_config() {
  cat >"$1/zoo.cfg" <<EOF
tickTime=500
dataDir=$1/data
clientPort=$2
clientPortAddress=$HOST
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
# Sessions from 1 s (2 ticks) to 60 s, so tests can expire sessions quickly.
minSessionTimeout=1000
maxSessionTimeout=60000
EOF
  cat >"$1/log4j.properties" <<EOF
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$1/zookeeper.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# launch RUN PORT DEADLINE: starts RUN's server (detached from our stdio) and waits until
# it answers on PORT or DEADLINE (in $SECONDS) passes; with WEIR_ZK_OWNER_PID, a watcher
# stops it (as `stop RUN` does) once that process is gone.
launch() {
  local run="$1" port="$2" deadline="$3"
  mkdir -p "$run/data"
  nohup java -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true -Xms32m -Xmx256m \
    "-XX:ErrorFile=$run/hs_err_%p.log" "-Dlog4j.configuration=file:$run/log4j.properties" \
    -cp "$JARS" org.apache.zookeeper.server.ZooKeeperServerMain "$run/zoo.cfg" \
    >"$run/zk.out" 2>&1 </dev/null &
  await_server $! "$run" "$port" "$deadline" "${WEIR_ZK_OWNER_PID:-}"
}

cmd_start() {
  command -v java >/dev/null || die "java not found"
  [[ -f /usr/share/java/zookeeper.jar ]] || die "Debian's zookeeper package is not installed (apt-get install zookeeper)"
  local run try port deadline
  run="$(new_run_dir "${1:-}")" || exit 1
  for try in 1 2 3; do # a picked port may be taken before the server binds it
    port="$(free_ports 1)" || true
    [[ "$port" =~ ^[0-9]+$ ]] || die "python3 could not pick a free port"
    rm -rf "$run/data" "$run/zookeeper.log" "$run/zk.out"
    write_config "$run" "$port"
    echo "$HOST:$port" >"$run/address"
    deadline=$((SECONDS + READY_TIMEOUT))
    if launch "$run" "$port" "$deadline"; then
      echo "dir=$run"
      echo "$HOST:$port"
      return 0
    fi
    kill -KILL "$(cat "$run/$SERVER_PID_FILE")" 2>/dev/null || true
    if ((SECONDS >= deadline)) || ! grep -qs "Address already in use" "$run/zookeeper.log" "$run/zk.out"; then
      break
    fi
    echo "zookeeper.sh: port clash, retrying (attempt $try)" >&2
  done
  echo "zookeeper.sh: server did not come up within ${READY_TIMEOUT}s (run dir $run)" >&2
  tail -n 40 "$run/zookeeper.log" "$run/zk.out" >&2 2>/dev/null || true
  exit 1
}

cmd_pause() {
  local run
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/zoo.cfg" ]] || die "no server directory to pause"
  halt "$run" KILL
}

cmd_resume() {
  local run addr port
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/zoo.cfg" && -f "$run/address" ]] || die "no paused server directory"
  [[ -z "$(live_pid "$run")" ]] || die "the server in $run is running"
  addr="$(cat "$run/address")"
  port="${addr##*:}"
  HOST="${addr%:*}"
  if ! launch "$run" "$port" $((SECONDS + READY_TIMEOUT)); then
    tail -n 40 "$run/zookeeper.log" "$run/zk.out" >&2 2>/dev/null || true
    die "server did not come back within ${READY_TIMEOUT}s (run dir $run)"
  fi
  echo "$addr"
}

cmd_status() {
  local run
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/address" ]] && HOST="$(cut -d: -f1 "$run/address")"
  if [[ -n "$run" && -n "$(live_pid "$run")" ]] && ready "$(cut -d: -f2 "$run/address")"; then
    echo "running $(cat "$run/address")"
  else
    echo "stopped"
    return 1
  fi
}

dispatch "$@"
