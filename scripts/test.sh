#!/usr/bin/env bash
# The whole test suite: formatting, lints, the check that the checked-in DD
# Boost bindings match ddboost-sys/include/ddp_api.h, and every test of every
# crate (unit tests, the conformance suite on the local and the ddboost
# backend against the mock libDDBoost, the mock's own tests).
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# True when a libclang that bindgen can load is installed: libclang.so,
# libclang.so.N, libclang-N.so or libclang-N.so.M (the names clang-sys looks
# for). libclang-cpp.so.N, which Debian installs with clang itself, is the C++
# API and does not count.
have_libclang() {
  local f
  while read -r f; do
    [[ ${f##*/} =~ ^libclang(-[0-9][0-9.]*)?\.so(\.[0-9][0-9.]*)?$ ]] && return 0
  done < <(
    ldconfig -p 2>/dev/null | sed -n 's/.* => //p'
    compgen -G '/usr/lib/llvm-*/lib/libclang*.so*'
    compgen -G '/usr/lib*/libclang*.so*'
    compgen -G '/usr/lib/*-linux-gnu/libclang*.so*'
    [[ -n ${LIBCLANG_PATH:-} ]] && compgen -G "$LIBCLANG_PATH/libclang*.so*"
  )
  return 1
}

if ! have_libclang && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "== installing libclang-dev (for the bindings check)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== DD Boost bindings are current"
scripts/regen-ddboost-bindings.sh --check
echo "== build (the tests load the mock libDDBoost from target/debug)"
cargo build --workspace --quiet
echo "== tests"
cargo test --workspace
