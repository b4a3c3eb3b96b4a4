#!/usr/bin/env bash
# The whole test suite: formatting, lints, the check that the checked-in DD
# Boost bindings match ddboost-sys/include/ddp_api.h, and every test of every
# crate (unit tests, the conformance suite on the local and the ddboost
# backend against the mock libDDBoost, the mock's own tests).
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# have_libclang
source scripts/lib/libclang.sh

# What a fresh Debian machine lacks, installed when run as root: a C compiler
# (the mock libDDBoost), libclang (the bindings check), and the real
# Prometheus tools the metrics tests start (promtool, node_exporter).
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  missing=()
  command -v gcc >/dev/null || missing+=(gcc)
  have_libclang || missing+=(libclang-dev)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
  if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo clippy without test-support (what release builds compile)"
cargo clippy -p gpbackup_ddboost_plugin --quiet -- -D warnings
echo "== DD Boost bindings are current"
scripts/regen-ddboost-bindings.sh --check
echo "== build (the tests load the mock libDDBoost from target/debug)"
cargo build --workspace --quiet
echo "== tests"
cargo test --workspace
