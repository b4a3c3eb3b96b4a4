#!/usr/bin/env bash
# Regenerates ddboost-sys/src/bindings.rs from ddboost-sys/include/ddp_api.h,
# through the same build.rs code path (and bindgen options) that a vendor SDK
# build uses: `DDBOOST_SDK_DIR=<dir> cargo check -p ddboost-sys --features
# buildtime-bindgen`.
#
# Usage:
#   scripts/regen-ddboost-bindings.sh           rewrite the checked-in bindings
#   scripts/regen-ddboost-bindings.sh --check   exit non-zero if they are stale;
#       also shows that DDBOOST_SDK_DIR works: bindgen runs on a copy of the
#       header in a temporary SDK directory (found in include/, and by the
#       recursive search), a directory without ddp_api.h fails clearly, and
#       DDBOOST_SDK_DIR without the buildtime-bindgen feature fails naming it.
#
# Needs libclang. As root with CI=true the script installs it with apt-get;
# otherwise it says how. Uses $CARGO_TARGET_DIR (default: <repo>/target).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
crate=$repo/ddboost-sys
header=$crate/include/ddp_api.h
checked_in=$crate/src/bindings.rs
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

die() { echo "regen-ddboost-bindings: $*" >&2; exit 1; }
say() { echo "regen-ddboost-bindings: $*"; }

# have_libclang
source "$repo/scripts/lib/libclang.sh"

ensure_libclang() {
  have_libclang && return 0
  if [[ ${CI:-} == true && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "libclang missing; installing libclang-dev"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
    have_libclang && return 0
  fi
  die "libclang not found. Install it (Debian/Ubuntu: apt-get install libclang-dev; RHEL: dnf install clang-devel) or set LIBCLANG_PATH to the directory holding libclang.so"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_build SDK_DIR [CARGO ARGS...]: cargo check of ddboost-sys with its
# buildtime-bindgen feature and DDBOOST_SDK_DIR=SDK_DIR (other features with
# extra arguments); JSON messages go to $tmp/out.json, the human output to
# $tmp/err.txt. Returns cargo's status.
run_build() {
  local dir=$1
  shift
  local args=("$@")
  [[ ${#args[@]} -gt 0 ]] || args=(--features buildtime-bindgen)
  (cd "$repo" && DDBOOST_SDK_DIR=$dir cargo check -p ddboost-sys "${args[@]}" \
    --message-format=json >"$tmp/out.json" 2>"$tmp/err.txt")
}

# The OUT_DIR of ddboost-sys's build script in the last run.
out_dir() {
  grep '"reason":"build-script-executed"' "$tmp/out.json" |
    grep -E '"package_id":"[^"]*(/ddboost-sys#|#ddboost-sys@)' |
    sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1
}

# generate SDK_DIR EXPECTED_HEADER: runs bindgen through build.rs, checks that
# it read EXPECTED_HEADER, prints the generated file's path.
generate() {
  run_build "$1" || { cat "$tmp/err.txt" >&2; die "build with DDBOOST_SDK_DIR=$1 failed"; }
  grep -qF "generated bindings from $2" "$tmp/err.txt" ||
    { cat "$tmp/err.txt" >&2; die "build.rs did not report generating bindings from $2"; }
  local dir
  dir=$(out_dir)
  [[ -n $dir && -f $dir/bindings.rs ]] || die "cannot find the generated bindings (OUT_DIR '$dir')"
  echo "$dir/bindings.rs"
}

ensure_libclang

# A throw-away SDK directory holding a copy of the project header.
mkdir -p "$tmp/sdk/include"
cp "$header" "$tmp/sdk/include/ddp_api.h"
generated=$(generate "$tmp/sdk" "$tmp/sdk/include/ddp_api.h")

if [[ $mode == write ]]; then
  cp "$generated" "$checked_in"
  say "wrote ${checked_in#"$repo"/} from ${header#"$repo"/}"
  exit 0
fi

say "ok: bindgen ran on $tmp/sdk/include/ddp_api.h (DDBOOST_SDK_DIR=$tmp/sdk)"
if ! cmp -s "$generated" "$checked_in"; then
  diff -u "$checked_in" "$generated" | head -n 60 >&2 || true
  die "${checked_in#"$repo"/} is stale: run scripts/regen-ddboost-bindings.sh and commit the result"
fi
say "ok: ${checked_in#"$repo"/} matches ${header#"$repo"/}"

# The recursive search finds a header in a vendor-style nested layout.
mkdir -p "$tmp/nested/DDBoostSDK/7.7/include"
cp "$header" "$tmp/nested/DDBoostSDK/7.7/include/ddp_api.h"
generate "$tmp/nested" "$tmp/nested/DDBoostSDK/7.7/include/ddp_api.h" >/dev/null
say "ok: the recursive search found $tmp/nested/DDBoostSDK/7.7/include/ddp_api.h"

# A directory without the header fails the build with a clear message.
mkdir -p "$tmp/empty"
if run_build "$tmp/empty"; then
  die "a build with DDBOOST_SDK_DIR=$tmp/empty (no header) succeeded"
fi
grep -q "no ddp_api.h found in DDBOOST_SDK_DIR=$tmp/empty" "$tmp/err.txt" ||
  { cat "$tmp/err.txt" >&2; die "a missing header did not give the expected message"; }
say "ok: a directory without ddp_api.h fails: $(grep -m1 'error: ddboost-sys' "$tmp/err.txt" | sed 's/^ *//')"

# DDBOOST_SDK_DIR without the feature fails with a message naming the feature.
if run_build "$tmp/sdk" --no-default-features; then
  die "a build with DDBOOST_SDK_DIR set and without the buildtime-bindgen feature succeeded"
fi
grep -q "features ddboost-sys/buildtime-bindgen" "$tmp/err.txt" ||
  { cat "$tmp/err.txt" >&2; die "DDBOOST_SDK_DIR without the feature did not name the feature"; }
say "ok: DDBOOST_SDK_DIR without the feature fails: $(grep -m1 'error: ddboost-sys' "$tmp/err.txt" | sed 's/^ *//' | cut -c1-160)..."

# Leave the target directory built with the checked-in bindings again.
(cd "$repo" && env -u DDBOOST_SDK_DIR cargo check -q -p ddboost-sys) || die "default build failed"
say "check passed"
