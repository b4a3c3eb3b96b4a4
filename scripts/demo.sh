#!/usr/bin/env bash
# Builds the plugin and runs a gpbackup-style backup and restore on the local
# backend with generated table data (no Data Domain needed):
# the setup hooks, one backup_data per segment, backup_file of metadata,
# restore_data and restore_data_subset, verify_backup, delete_backup, then a
# byte comparison.
#   scripts/demo.sh [size in MiB per segment, default 256]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-256}
cargo build --release --quiet
plugin=$PWD/target/release/gpbackup_ddboost_plugin
work=$(mktemp -d /tmp/gpbackup_ddboost_plugin_demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home
mkdir -p "$HOME" "$work/store"
cfg=$work/ddboost.yaml
cat > "$cfg" <<YAML
executablepath: $plugin
options:
  backend: local
  directory: $work/store
YAML
ts=$(date +%Y%m%d%H%M%S)
coord=$work/data/gpseg-1/backups/${ts:0:8}/$ts
mkdir -p "$coord"

echo "== version handshake"
"$plugin" plugin_api_version
"$plugin" --version

echo "== check the config and the storage"
"$plugin" check "$cfg"

echo "== setup hooks (master, segment_host, segment)"
"$plugin" setup_plugin_for_backup "$cfg" "$coord" master '"-1"'
for c in 0 1; do
  "$plugin" setup_plugin_for_backup "$cfg" "$work/data/gpseg$c/backups/${ts:0:8}/$ts" segment_host
  "$plugin" setup_plugin_for_backup "$cfg" "$work/data/gpseg$c/backups/${ts:0:8}/$ts" segment "\"$c\""
done

echo "== generating ${size_mib} MiB of table rows per segment"
python3 - "$work" "$size_mib" <<'PY'
import random, sys
work, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
block = "".join(f"{i},{rnd.randrange(10**9)},customer_{rnd.randrange(10**6):07d},{rnd.random():.6f},2025-01-{1+i%28:02d}\n" for i in range(200000)).encode()
for c in (0, 1):
    with open(f"{work}/segment{c}.csv", "wb") as f:
        left, n = mib << 20, 0
        while left > 0:
            part = (b"%d|" % (n * 2 + c)) + block
            f.write(part[:left]); left -= len(part); n += 1
PY

echo "== backup_data, both segments in parallel"
start=$(date +%s.%N)
for c in 0 1; do
  "$plugin" backup_data "$cfg" "$work/data/gpseg$c/backups/${ts:0:8}/$ts/gpbackup_${c}_${ts}" < "$work/segment$c.csv" &
done
wait
end=$(date +%s.%N)
python3 -c "print(f'   {2*$size_mib/($end-$start):.0f} MiB/s aggregate')"
echo "metadata" > "$coord/gpbackup_${ts}_metadata.sql"
"$plugin" backup_file "$cfg" "$coord/gpbackup_${ts}_metadata.sql"
"$plugin" cleanup_plugin_for_backup "$cfg" "$coord" master '"-1"'

echo "== restore_data and compare"
for c in 0 1; do
  "$plugin" restore_data "$cfg" "/other/host/gpseg$c/backups/${ts:0:8}/$ts/gpbackup_${c}_${ts}" | cmp - "$work/segment$c.csv"
done
echo "   identical"
echo "== restore_data_subset (two tables)"
printf '2 10 20 1000 1010' > "$work/offsets"
"$plugin" restore_data_subset "$cfg" "$coord/../../../../gpseg0/backups/${ts:0:8}/$ts/gpbackup_0_${ts}" "$work/offsets" \
  | cmp - <(python3 -c "import sys; d=open('$work/segment0.csv','rb').read(); sys.stdout.buffer.write(d[10:20]+d[1000:1010])")
echo "   identical"
echo "== stored objects"
"$plugin" list_directory "$cfg"
echo "== verify_backup (every object against its checksum record)"
"$plugin" verify_backup "$cfg" "$ts"
"$plugin" delete_backup "$cfg" "$ts"
echo "== log ($HOME/gpAdminLogs)"
tail -n 4 "$HOME"/gpAdminLogs/*.log
echo "demo OK"
