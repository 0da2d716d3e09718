#!/usr/bin/env bash
# Runs every test, then the state-backend tests again with the RocksDB backend compiled
# in: installs libclang (which the `rocksdb` crate needs to compile RocksDB) when it is
# missing.
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
# The conformance suite and the cross-backend tests against RocksDB.
cargo test -p weir-state-backends --locked --features rocksdb "$@"
