#!/usr/bin/env bash
# Runs every test (the Kafka and PostgreSQL connectors are compiled in, as the examples
# enable them by default, and their tests start real servers), then, with all features (the
# RocksDB state backend compiled in: the only optional feature the first pass lacks), the
# unit tests and the test suites that also run on RocksDB: the state backends' conformance
# suite, bounded memory and snapshots, incremental checkpoints, the API tests that run on
# every backend, the examples' exactly-once and savepoint tests and the Nexmark queries.
# Suites that never touch RocksDB (clusters, chaos, connectors) run once. Installs
# libclang (which the `rocksdb` crate needs to compile RocksDB), Java 17 with Maven
# (which scripts/kafka.sh needs to fetch and run Apache Kafka), Debian's zookeeper
# (scripts/zookeeper.sh), postgresql (scripts/postgres.sh), python3-venv (scripts/s3.sh) and
# chromium when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# libclang compiles RocksDB; Java 17, Maven and python3 run the Kafka broker of the
# connector tests (scripts/kafka.sh).
missing=()
ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' || missing+=(libclang-dev)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# scripts/s3.sh installs its S3-compatible server (moto, from PyPI) into a virtualenv.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# Debian's ZooKeeper runs the high-availability tests' servers (scripts/zookeeper.sh).
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
# Debian's PostgreSQL runs the PostgreSQL sink tests' servers (scripts/postgres.sh).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
# Debian's chromium drives the web dashboard's test (cli/tests/dashboard.rs).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# The test targets whose tests take RocksDB when it is compiled in (`cfg(feature =
# "rocksdb")` or the API tests' `common::backends()`); a new one belongs in this list.
rocksdb_suites=(
  conformance bounded_memory cross_backend streamed_full_snapshot
  incremental_checkpoints incremental_checkpoints_s3 configuration
  broadcast_state count_windows interval_join joins state_ttl triggers window_pre_aggregation
  sensor_pipeline_exactly_once sensor_pipeline_savepoint
  queries
)
# A suite that mentions RocksDB but is missing from the list would silently lose its RocksDB
# cases: refuse to start (a test helper's folder, such as `common/`, is not a suite; a helper
# that hides RocksDB behind another name must be named here by hand).
mentions=$(grep -rlE 'feature = "rocksdb"|backends\(\)|RocksDb|rocksdb' --include='*.rs' -- */tests) || {
  [ $? -eq 1 ] || { echo "scripts/test.sh: cannot search the test suites" >&2; exit 1; }
}
while IFS= read -r file; do
  [ -n "$file" ] || continue
  suite=${file#*/tests/}
  suite=${suite%%/*}
  suite=${suite%.rs}
  [ "$suite" = common ] && continue
  if [[ " ${rocksdb_suites[*]} " != *" $suite "* ]]; then
    echo "scripts/test.sh: $file mentions RocksDB but its suite '$suite' is not in rocksdb_suites" >&2
    exit 1
  fi
done <<<"$mentions"
cargo test --workspace --locked "$@"
# Those suites run the examples' binaries, which a filtered `cargo test` does not build.
cargo build --workspace --locked --all-features --examples
cargo test --workspace --locked --all-features --lib --bins "${rocksdb_suites[@]/#/--test=}" "$@"
