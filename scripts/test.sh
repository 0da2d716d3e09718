#!/usr/bin/env bash
# Runs every test without optional features, then every test again with all features
# (the RocksDB state backend compiled in: its conformance suite, incremental checkpoints,
# bounded memory, the examples' exactly-once and savepoint tests on RocksDB; the Kafka
# connector against a real broker that its tests start with scripts/kafka.sh). Installs
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

cargo test --workspace --locked "$@"
cargo test --workspace --locked --all-features "$@"
