#!/usr/bin/env bash
# Start/stop a throwaway single-node Apache Kafka 4.4.0 broker (KRaft, combined
# broker+controller) on 127.0.0.1 for tests.
#
#   scripts/kafka.sh start  [DIR]  # prints "dir=<RUN>", then (last line) 127.0.0.1:PORT
#   scripts/kafka.sh status [DIR]  # "running 127.0.0.1:PORT" (exit 0) or "stopped" (exit 1)
#   scripts/kafka.sh stop   [DIR]  # TERM (KILL after 30 s), removes DIR; idempotent
#   scripts/kafka.sh pause  [DIR]  # stops the broker, keeping DIR (its data and ports)
#   scripts/kafka.sh resume [DIR]  # starts a paused broker again: same data, same address
#   scripts/kafka.sh fetch         # fills the jar cache (as start does first), e.g. before
#                                  # a start inside a network namespace with no way out
#
# DIR defaults to a fresh mktemp dir on start and to the last started run
# (recorded in ${TMPDIR:-/tmp}/weir-kafka.last) on stop/status. Several brokers
# can run at once: each has its own run dir and free ports. The only shared
# state is the jar cache $HOME/.cache/weir-kafka/4.4.0/libs, filled once from
# Maven Central by `mvn dependency:copy-dependencies` under an flock.
# Logs: DIR/server.log (log4j2, INFO), DIR/kafka.out (JVM stdout/stderr).
# Env: WEIR_KAFKA_READY_TIMEOUT (s, default 90); WEIR_KAFKA_OWNER_PID: stop the
# broker (as `stop DIR` does) once that process exits, e.g. the test binary;
# WEIR_KAFKA_HOST: the address to serve on instead of 127.0.0.1 (inside a network
# namespace the caller created; kept in DIR for resume and status).
# Needs java 17+, mvn, python3, flock.
set -euo pipefail

KAFKA_VERSION=4.4.0
LOG4J_VERSION=2.25.5 # the log4j-core/api version kafka_2.13 4.4.0 depends on
CACHE="$HOME/.cache/weir-kafka/$KAFKA_VERSION"
LIBS="$CACHE/libs"
TMPROOT="${TMPDIR:-/tmp}"
LAST="$TMPROOT/weir-kafka.last"
READY_TIMEOUT="${WEIR_KAFKA_READY_TIMEOUT:-90}"
HOST="${WEIR_KAFKA_HOST:-127.0.0.1}"
STOP_TIMEOUT=30
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SERVER_NAME=kafka.sh
SERVER_NOUN=broker
SERVER_MARK=server.properties
SERVER_PID_FILE=kafka.pid
# shellcheck source=lib/server.sh
source "$(dirname "$SELF")/lib/server.sh"

# Download kafka_2.13 + kafka-tools (CLI classes) + the slf4j->log4j2 binding
# into a temp dir, then rename it into place. Racing starts serialise on the lock.
ensure_libs() {
  [[ -f "$LIBS/.complete" ]] && return 0
  mkdir -p "$CACHE"
  (
    flock 9
    [[ -f "$LIBS/.complete" ]] && exit 0
    rm -rf "$CACHE"/tmp.* # leftovers of an interrupted download
    tmp="$(mktemp -d "$CACHE/tmp.XXXXXX")"
    cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>weir</groupId><artifactId>weir-kafka-libs</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
    echo "kafka.sh: downloading Kafka $KAFKA_VERSION jars into $LIBS (once)" >&2
    if ! mvn -B -q -f "$tmp/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
      tail -n 40 "$tmp/mvn.log" >&2
      rm -rf "$tmp"
      die "mvn dependency:copy-dependencies failed"
    fi
    touch "$tmp/libs/.complete"
    rm -rf "$LIBS"
    mv "$tmp/libs" "$LIBS"
    rm -rf "$tmp"
  ) 9>"$CACHE/.lock"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
ready() { port_open "$2" && grep -qF "Kafka Server started" "$1/server.log" 2>/dev/null; }

# write_config RUN PORT CONTROLLER_PORT
write_config() {
  cat >"$1/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$3
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$2,CONTROLLER://$HOST:$3
advertised.listeners=PLAINTEXT://$HOST:$2
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$1/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
# Single node: internal topics with RF 1 and one partition (fast to create).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Exactly-once: transaction.max.timeout.ms stays at its default (900000);
# transactions past their timeout are aborted within ~1 s instead of ~10 s.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# Fast consumer-group joins; allow short session/heartbeat settings in tests.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
group.consumer.min.session.timeout.ms=3000
# Small heap: shrink the log cleaner's 128 MiB dedupe buffer.
log.cleaner.dedupe.buffer.size=16777216
EOF
  cat >"$1/log4j2.properties" <<EOF
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $1/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

# jvm_cmd RUN: sets the array jvm to the java command line of RUN's tools and broker.
jvm_cmd() {
  jvm=(java -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true "-XX:ErrorFile=$1/hs_err_%p.log"
    "-Dlog4j2.configurationFile=$1/log4j2.properties" -cp "$LIBS/*")
}

# launch RUN PORT DEADLINE: starts RUN's broker (detached from our stdio, so a caller
# reading our output gets EOF when we exit) and waits until it answers on PORT or
# DEADLINE (in $SECONDS) passes; with WEIR_KAFKA_OWNER_PID, a watcher stops it (as `stop
# RUN` does) once that process is gone.
launch() {
  local run="$1" port="$2" deadline="$3" pid jvm
  jvm_cmd "$run"
  nohup "${jvm[@]}" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    kafka.Kafka "$run/server.properties" >"$run/kafka.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$run/kafka.pid"
  wait_exec "$pid" "$run" "$deadline"
  while ! ready "$run" "$port" && is_server "$pid" "$run" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  ready "$run" "$port" || return 1
  if [[ -n "${WEIR_KAFKA_OWNER_PID:-}" ]]; then watch_owner "$WEIR_KAFKA_OWNER_PID" "$pid" "$run"; fi
}

cmd_start() {
  [[ "$HOST" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "WEIR_KAFKA_HOST=$HOST is no IPv4 address"
  command -v java >/dev/null || die "java not found"
  ensure_libs
  local run try port cport cluster_id deadline
  run="$(new_run_dir "${1:-}")" || exit 1
  local jvm
  jvm_cmd "$run"
  for try in 1 2 3; do # a picked port may be taken before the broker binds it
    # Two distinct free loopback ports and a cluster id.
    read -r port cport < <(free_ports 2) || true
    # Never with a leading '-', which the storage tool would take for an option.
    cluster_id="$(python3 -c '
import base64, uuid
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)')" || true
    [[ "$port" =~ ^[0-9]+$ && "$cport" =~ ^[0-9]+$ && -n "$cluster_id" ]] || die "python3 could not pick free ports"
    rm -rf "$run/data" "$run/server.log" "$run/kafka.out"
    write_config "$run" "$port" "$cport"
    if ! "${jvm[@]}" -Xmx256m -XX:TieredStopAtLevel=1 kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$run/server.properties" --standalone >"$run/format.log" 2>&1 </dev/null; then
      cat "$run/format.log" >&2
      die "storage format failed (run dir $run)"
    fi
    echo "$HOST:$port" >"$run/bootstrap"
    deadline=$((SECONDS + READY_TIMEOUT))
    if launch "$run" "$port" "$deadline"; then
      echo "dir=$run"
      echo "$HOST:$port"
      return 0
    fi
    kill -KILL "$(cat "$run/kafka.pid")" 2>/dev/null || true
    if ((SECONDS >= deadline)) || ! grep -qs "Address already in use" "$run/server.log" "$run/kafka.out"; then
      break
    fi
    echo "kafka.sh: port clash, retrying (attempt $try)" >&2
  done
  echo "kafka.sh: broker did not come up within ${READY_TIMEOUT}s (run dir $run)" >&2
  tail -n 40 "$run/server.log" "$run/kafka.out" >&2 2>/dev/null || true
  exit 1
}

cmd_pause() {
  local run
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/server.properties" ]] || die "no broker directory to pause"
  halt "$run" TERM
}

cmd_resume() {
  local run addr
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/server.properties" && -f "$run/bootstrap" ]] || die "no paused broker directory"
  [[ -z "$(live_pid "$run")" ]] || die "the broker in $run is running"
  ensure_libs
  addr="$(cat "$run/bootstrap")"
  HOST="${addr%:*}"
  # A fresh log, so that readiness is this start's.
  mv -f "$run/server.log" "$run/server.log.1" 2>/dev/null || true
  if ! launch "$run" "${addr##*:}" $((SECONDS + READY_TIMEOUT)); then
    kill -KILL "$(cat "$run/kafka.pid")" 2>/dev/null || true
    echo "kafka.sh: broker did not come back within ${READY_TIMEOUT}s (run dir $run)" >&2
    tail -n 40 "$run/server.log" "$run/kafka.out" >&2 2>/dev/null || true
    exit 1
  fi
  echo "dir=$run"
  echo "$addr"
}

cmd_status() {
  local run addr
  run="$(run_dir "${1:-}")"
  if [[ -n "$run" && -n "$(live_pid "$run")" ]]; then
    addr="$(cat "$run/bootstrap")"
    HOST="${addr%:*}"
    if port_open "${addr##*:}"; then echo "running $addr"; return 0; fi
  fi
  echo "stopped"
  return 1
}

if [[ "${1:-}" == fetch ]]; then
  ensure_libs
  exit 0
fi
dispatch "$@"
