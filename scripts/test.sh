#!/usr/bin/env bash
# Runs every test without optional features, then every test again with all features
# (the RocksDB state backend compiled in: its conformance suite, incremental checkpoints,
# bounded memory, the examples' exactly-once and savepoint tests on RocksDB). Installs
# libclang (which the `rocksdb` crate needs to compile RocksDB) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; then
  echo "== installing libclang-dev (needed to compile RocksDB)"
  sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libclang-dev
fi

cargo test --workspace --locked "$@"
cargo test --workspace --locked --all-features "$@"
