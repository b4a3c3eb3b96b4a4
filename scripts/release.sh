#!/usr/bin/env bash
# Builds the release artifacts into dist/:
#   gpbackup_ddboost_plugin-<version>-linux-x86_64.tar.gz   binary, README.md,
#       plugin_config.example.yaml, LICENSE, install.sh (packaging/install.sh)
#   gpbackup-ddboost-plugin_<version>-1_amd64.deb           installs into <prefix>/bin
#   gpbackup-ddboost-plugin-<version>-1.x86_64.rpm          same, relocatable (rpm --prefix)
#   SHA256SUMS
# The binary is linked against glibc 2.17 (RHEL/CentOS 7 and every later Linux)
# with cargo-zigbuild, and checked: it needs no glibc symbol newer than 2.17, it
# runs here, it backs up and restores through the mock libDDBoost loaded from
# <bindir>/../lib, and the packages hold it where they should.
#
# Usage: scripts/release.sh [--prefix DIR]
#   --prefix DIR   where the packages install (default /usr/local/greenplum-db)
#
# Installs what it needs when missing: cargo-zigbuild (cargo install, into
# target/release-tools), zig (the ziglang package from PyPI, into a virtual
# environment there), and, as root with apt-get, Debian's binutils, rpm, dpkg
# and python3-venv. Otherwise it says what to install. Takes a few minutes.
set -euo pipefail

readonly CARGO_ZIGBUILD_VERSION=0.24.1
readonly ZIGLANG_VERSION=0.17.1
readonly RUST_TARGET=x86_64-unknown-linux-gnu
readonly GLIBC_MAX=2.17
readonly PKG_RELEASE=1
readonly MAINTAINER="gpbackup_ddboost_plugin maintainers"
readonly NAME=gpbackup_ddboost_plugin
readonly PKG_NAME=gpbackup-ddboost-plugin

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
tools=$target_dir/release-tools
dist=$repo/dist
prefix=/usr/local/greenplum-db

while (($#)); do
  case $1 in
    --prefix) (($# >= 2)) || { echo "release: --prefix needs a directory" >&2; exit 2; }; prefix=${2%/}; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--prefix DIR]" >&2; exit 2 ;;
  esac
done
[[ $prefix == /* ]] || { echo "release: --prefix must be absolute" >&2; exit 2; }

say() { echo "== $*"; }
die() {
  echo "release: error: $*" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- tools -----------------------------------------------------------------

is_root_with_apt() { [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; }

apt_updated=0
apt_install() {
  ((apt_updated)) || { apt-get update -qq >/dev/null; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Commands from the system, with the Debian package and the RHEL package that
# bring each.
ensure_system_tools() {
  local -a missing=() debs=() hints=()
  local spec cmd deb rhel
  for spec in objdump:binutils:binutils dpkg-deb:dpkg:dpkg rpmbuild:rpm:rpm-build \
    rpm:rpm:rpm sha256sum:coreutils:coreutils tar:tar:tar gzip:gzip:gzip cmp:diffutils:diffutils; do
    IFS=: read -r cmd deb rhel <<<"$spec"
    command -v "$cmd" >/dev/null && continue
    missing+=("$cmd")
    [[ " ${debs[*]-} " == *" $deb "* ]] || debs+=("$deb")
    hints+=("$cmd (Debian/Ubuntu: $deb; RHEL: $rhel)")
  done
  ((${#missing[@]})) || return 0
  if is_root_with_apt; then
    say "installing ${debs[*]}"
    apt_install "${debs[@]}" || die "apt-get install ${debs[*]} failed"
    return 0
  fi
  die "missing: ${hints[*]}; install them (or run this script as root on Debian/Ubuntu)"
}

# zig, from the ziglang package of PyPI, in a virtual environment of its own.
zig_python=""
ensure_zig() {
  local venv=$tools/zig-venv
  if [[ ! -x $venv/bin/python ]]; then
    command -v python3 >/dev/null || die "python3 is missing: it brings zig (pip package ziglang); install python3"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      is_root_with_apt && { say "installing python3-venv"; apt_install python3-venv; }
      python3 -m venv "$venv" >/dev/null 2>&1 ||
        die "cannot create a Python virtual environment ($venv): install python3-venv (Debian/Ubuntu) or python3-virtualenv"
    fi
  fi
  if [[ $("$venv/bin/python" -m ziglang version 2>/dev/null) != "$ZIGLANG_VERSION" ]]; then
    say "installing zig $ZIGLANG_VERSION (pip install ziglang==$ZIGLANG_VERSION)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "ziglang==$ZIGLANG_VERSION" ||
      die "pip install ziglang==$ZIGLANG_VERSION failed (needs PyPI)"
  fi
  zig_python=$venv/bin/python
}

# cargo-zigbuild at the pinned version: the one on PATH if it is that version,
# else one installed into target/release-tools.
zigbuild=""
ensure_zigbuild() {
  local want="cargo-zigbuild $CARGO_ZIGBUILD_VERSION"
  if [[ $(cargo-zigbuild --version 2>/dev/null) == "$want" ]]; then
    zigbuild=$(command -v cargo-zigbuild)
  elif [[ $("$tools/bin/cargo-zigbuild" --version 2>/dev/null) == "$want" ]]; then
    zigbuild=$tools/bin/cargo-zigbuild
  else
    say "installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION (cargo install)"
    cargo install --locked --quiet --root "$tools" --version "$CARGO_ZIGBUILD_VERSION" cargo-zigbuild ||
      die "cargo install cargo-zigbuild failed (needs crates.io)"
    zigbuild=$tools/bin/cargo-zigbuild
  fi
}

ensure_rust_target() {
  rustup target list --installed 2>/dev/null | grep -qx "$RUST_TARGET" && return 0
  command -v rustup >/dev/null || die "the Rust target $RUST_TARGET is missing and rustup is not there to add it"
  say "adding the Rust target $RUST_TARGET"
  rustup target add "$RUST_TARGET" >/dev/null || die "rustup target add $RUST_TARGET failed"
}

command -v cargo >/dev/null || die "cargo is missing: install a Rust toolchain (rustup)"
ensure_system_tools
ensure_rust_target
ensure_zig
ensure_zigbuild

version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == sys.argv[1]))' "$NAME")
[[ -n $version ]] || die "cannot read the version of $NAME from Cargo.toml"
# One timestamp for every file of the release, for reproducible archives.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
say "release $NAME $version (prefix $prefix)"

# --- build -----------------------------------------------------------------

say "building with cargo-zigbuild for $RUST_TARGET.$GLIBC_MAX"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# Paths of this machine stay out of the binary (panic messages name sources).
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$repo=/build"
CARGO_ZIGBUILD_PYTHON_PATH=$zig_python "$zigbuild" zigbuild --locked --release \
  --target "$RUST_TARGET.$GLIBC_MAX" -p "$NAME" --bin "$NAME"
unset RUSTFLAGS
bin=$target_dir/$RUST_TARGET/release/$NAME
[[ -x $bin ]] || die "the build left no $bin"

# --- check the binary --------------------------------------------------------

say "checking the glibc versions it needs"
glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
[[ -n $glibc ]] || die "objdump -T $bin shows no GLIBC_ symbol version"
[[ $(printf '%s\n%s\n' "$glibc" "$GLIBC_MAX" | sort -V | tail -n 1) == "$GLIBC_MAX" ]] ||
  die "$bin needs GLIBC_$glibc, newer than $GLIBC_MAX: $(objdump -T "$bin" | grep "GLIBC_$glibc" | head -n 3)"
echo "newest glibc symbol version: GLIBC_$glibc (at most $GLIBC_MAX)"
needed=$(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }' | tr '\n' ' ')
for lib in $needed; do
  case $lib in
    libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libutil.so.1 | libgcc_s.so.1 | ld-linux-x86-64.so.2) ;;
    *) die "$bin links $lib, which not every host has (needs: $needed)" ;;
  esac
done
echo "shared libraries: $needed"

say "checking that it runs"
got=$("$bin" --version) || die "$bin --version failed"
[[ $got == "$NAME version $version" ]] || die "$bin --version printed '$got', expected '$NAME version $version'"
echo "$got"

say "smoke test: backup_data and restore_data through the mock libDDBoost"
cargo build --locked --release --quiet -p ddboost-mock
mock_lib=$target_dir/release/libddboost_mock.so
mock_cli=$target_dir/release/ddboost-mock
[[ -f $mock_lib && -x $mock_cli ]] || die "the mock build left no $mock_lib or $mock_cli"
# The installed layout: <GPHOME>/bin/<plugin>, <GPHOME>/lib/libDDBoost.so, and a
# config without ddboost_library, so the plugin finds the library by itself.
smoke=$work/smoke
mkdir -p "$smoke/gphome/bin" "$smoke/gphome/lib" "$smoke/home" "$smoke/dd"
cp "$bin" "$smoke/gphome/bin/$NAME"
cp "$mock_lib" "$smoke/gphome/lib/libDDBoost.so"
"$mock_cli" create-system --root "$smoke/dd" --host dd1 --user gpbackup --password secret --storage-unit GPDB >/dev/null
cat >"$smoke/ddboost.yaml" <<EOF
executablepath: $smoke/gphome/bin/$NAME
options:
  backend: ddboost
  hostname: dd1
  username: gpbackup
  password: secret
  storage_unit: GPDB
  directory: gpdb
EOF
head -c 3500001 /dev/urandom >"$smoke/data"
key=$smoke/seg0/backups/20250101/20250101120000/gpbackup_0_20250101120000
(
  export DDBOOST_MOCK_ROOT=$smoke/dd HOME=$smoke/home
  "$smoke/gphome/bin/$NAME" backup_data "$smoke/ddboost.yaml" "$key" <"$smoke/data"
  "$smoke/gphome/bin/$NAME" restore_data "$smoke/ddboost.yaml" "$key" >"$smoke/restored"
) || die "the smoke test failed (log: $(cat "$smoke"/home/gpAdminLogs/* 2>/dev/null | tail -n 5))"
cmp -s "$smoke/data" "$smoke/restored" || die "the smoke test restored other bytes than it backed up"
totals=$("$mock_cli" totals --root "$smoke/dd" --host dd1)
[[ $totals =~ (^|$'\n')files=[1-9] ]] || die "the smoke test left no file on the mock Data Domain: $totals"
echo "3500001 bytes backed up to and restored from the mock Data Domain; libDDBoost.so found in <bindir>/../lib"

# --- artifacts ---------------------------------------------------------------

rm -rf "$dist"
mkdir -p "$dist"
stamp() { find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; }

say "tarball"
tar_dir=$NAME-$version-linux-x86_64
mkdir -p "$work/$tar_dir"
install -m 0755 "$bin" "$work/$tar_dir/$NAME"
install -m 0755 packaging/install.sh "$work/$tar_dir/install.sh"
install -m 0644 README.md plugin_config.example.yaml LICENSE "$work/$tar_dir/"
stamp "$work/$tar_dir"
tarball=$dist/$tar_dir.tar.gz
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  --format=gnu -cf - "$tar_dir" | gzip -9n >"$tarball"

# Fills the @FIELD@s of a packaging template.
fill() {
  sed -e "s|@VERSION@|$version|g" -e "s|@RELEASE@|$PKG_RELEASE|g" -e "s|@PREFIX@|$prefix|g" \
    -e "s|@MAINTAINER@|$MAINTAINER|g" -e "s|@INSTALLED_SIZE@|${installed_size:-0}|g" "$1"
}
docdir=share/doc/$NAME

say "deb"
root=$work/deb
mkdir -p "$root/DEBIAN" "$root$prefix/bin" "$root$prefix/$docdir"
install -m 0755 "$bin" "$root$prefix/bin/$NAME"
install -m 0644 README.md LICENSE plugin_config.example.yaml "$root$prefix/$docdir/"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
fill packaging/deb/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
  xargs md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
stamp "$root"
deb=$dist/${PKG_NAME}_${version}-${PKG_RELEASE}_amd64.deb
dpkg-deb --root-owner-group -Zxz -b "$root" "$deb" >/dev/null

say "rpm"
top=$work/rpmbuild
mkdir -p "$top/SOURCES" "$top/SPECS"
install -m 0755 "$bin" "$top/SOURCES/$NAME"
install -m 0644 README.md LICENSE plugin_config.example.yaml "$top/SOURCES/"
fill packaging/rpm/$PKG_NAME.spec.in >"$top/SPECS/$PKG_NAME.spec"
rpmbuild --quiet -bb --define "_topdir $top" "$top/SPECS/$PKG_NAME.spec" >"$work/rpmbuild.log" 2>&1 ||
  { cat "$work/rpmbuild.log" >&2; die "rpmbuild failed"; }
rpm=$dist/$PKG_NAME-$version-$PKG_RELEASE.x86_64.rpm
cp "$top/RPMS/x86_64/$(basename "$rpm")" "$rpm"

# --- check the artifacts -------------------------------------------------------

say "checking the artifacts"
check=$work/check
mkdir -p "$check/tar" "$check/deb"
tar -C "$check/tar" -xzf "$tarball"
for f in "$NAME" install.sh README.md plugin_config.example.yaml LICENSE; do
  [[ -f $check/tar/$tar_dir/$f ]] || die "the tarball lacks $tar_dir/$f"
done
[[ $("$check/tar/$tar_dir/$NAME" --version) == "$NAME version $version" ]] || die "the tarball's binary does not run"

dpkg-deb -x "$deb" "$check/deb"
[[ $("$check/deb$prefix/bin/$NAME" --version) == "$NAME version $version" ]] ||
  die "the deb does not hold a working $prefix/bin/$NAME"
[[ -z $(dpkg-deb -f "$deb" Depends Pre-Depends) ]] || die "the deb declares dependencies"

rpm_prefixes=$(rpm -qp --qf '[%{PREFIXES}\n]' "$rpm" 2>/dev/null)
[[ $rpm_prefixes == "$prefix" ]] || die "the rpm is not relocatable from $prefix (prefixes: $rpm_prefixes)"
rpm_requires=$(rpm -qp --requires "$rpm" 2>/dev/null | grep -v '^rpmlib(' || true)
[[ -z $rpm_requires ]] || die "the rpm requires packages: $rpm_requires"
rpm -qp --requires "$rpm" 2>/dev/null | grep -q 'PayloadIsZstd' && die "the rpm payload is zstd, which RHEL 7 cannot read"
if [[ $(id -u) == 0 ]]; then
  # Install it elsewhere with --prefix, into a throw-away rpm database.
  # (Debian's rpm warns against installing anything unless told --force-debian.)
  force=()
  rpm --help 2>&1 | grep -q -- --force-debian && force=(--force-debian)
  rpm -i "${force[@]}" --nodeps --nosignature --dbpath "$check/rpmdb" --prefix "$check/relocated" "$rpm" ||
    die "rpm -i --prefix failed"
  [[ $("$check/relocated/bin/$NAME" --version) == "$NAME version $version" ]] ||
    die "rpm -i --prefix $check/relocated did not install a working bin/$NAME"
  echo "rpm -i --prefix DIR installs DIR/bin/$NAME"
else
  echo "not root: the relocated rpm install is not tried"
fi

(cd "$dist" && sha256sum -- *.tar.gz *.deb *.rpm >SHA256SUMS)
say "done: $dist"
(cd "$dist" && ls -l && cat SHA256SUMS)
