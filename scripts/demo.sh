#!/usr/bin/env bash
# Builds the plugin and the mock Data Domain, then runs gpbackup-style backups
# and restores with generated table data, calling the plugin as gpbackup,
# gprestore and gpbackup_helper do (no Data Domain needed):
#  1. the local backend, a single-data-file backup: the setup hooks, one
#     backup_data per segment, gpbackup's manifest with backup_file,
#     restore_data and restore_data_subset compared byte for byte,
#     verify_backup (COMPLETE), delete_backup;
#  2. a Data Domain (the mock libDDBoost, emulating one system), a per-table
#     backup through the host's connection broker, 8 processes at a time as
#     `--jobs 8`: the same data backed up twice (the second stores almost
#     nothing: deduplication), the per-host summary and metrics file the
#     cleanup hook writes, a restore compared byte for byte, verify_backup
#     and list_backups.
#   scripts/demo.sh [size in MiB per segment, default 256] [tables, default 200]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-256}
tables=${2:-200}
cargo build --release --quiet -p gpbackup_ddboost_plugin -p ddboost-mock
plugin=$PWD/target/release/gpbackup_ddboost_plugin
mock=$PWD/target/release/ddboost-mock
mocklib=$PWD/target/release/libddboost_mock.so
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
echo "== gpbackup's manifest (backup_file): config, TOC, each segment's TOC, metadata, report"
manifest() { # folder ts single-data-file tables sizes...
  python3 - "$@" <<'PY'
import sys
folder, ts, sdf, tables, sizes = sys.argv[1], sys.argv[2], sys.argv[3] == "true", int(sys.argv[4]), sys.argv[5:]
fqns = "".join(f"  - public.t{i}\n" for i in range(tables))
w = lambda name, text: open(f"{folder}/gpbackup_{ts}_{name}", "w").write(text)
w("config.yaml", "backupdir: \"\"\nbackupversion: 1.30.5\ncompressed: false\ncompressiontype: gzip\n"
  "databasename: demo\ndatabaseversion: 6.24.3\nsegmentcount: 2\ndataonly: false\nincremental: false\n"
  "leafpartitiondata: false\nmetadataonly: false\nplugin: gpbackup_ddboost_plugin\npluginversion: 0.1.0\n"
  f"restoreplan:\n- timestamp: \"{ts}\"\n  tablefqns:\n{fqns}singledatafile: {str(sdf).lower()}\n"
  f"timestamp: \"{ts}\"\nendtime: \"{ts}\"\nwithoutglobals: false\nwithstatistics: false\nstatus: Success\n")
w("toc.yaml", "globalentries: []\npredataentries: []\npostdataentries: []\nstatisticsentries: []\ndataentries:\n" + "".join(
  f"- schema: public\n  name: t{i}\n  oid: {16384 + i}\n  attributestring: (id)\n  rowscopied: 1\n"
  "  partitionroot: \"\"\n  isreplicated: false\n  distbyenum: false\n" for i in range(tables)))
w("metadata.sql", "SET client_encoding = 'UTF8';\n")
w("report", "Backup Report\n")
for c, size in enumerate(sizes):  # a single data file's table ranges, per segment
    open(f"{folder}/gpbackup_{c}_{ts}_toc.yaml", "w").write(f"dataentries:\n  16384: {{startbyte: 0, endbyte: {size}}}\n")
PY
}
manifest "$coord" "$ts" true 1 $(stat -c %s "$work/segment0.csv" "$work/segment1.csv")
for f in config.yaml toc.yaml metadata.sql report; do
  "$plugin" backup_file "$cfg" "$coord/gpbackup_${ts}_$f"
done
for c in 0 1; do "$plugin" backup_file "$cfg" "$coord/gpbackup_${c}_${ts}_toc.yaml"; done
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
echo "== verify_backup (the manifest's objects present, each against its checksum record)"
"$plugin" verify_backup "$cfg" "$ts"
"$plugin" delete_backup "$cfg" "$ts"

echo
echo "######## A Data Domain: the mock libDDBoost emulating system dd1 (deduplicating, 5 ms per call)"
export DDBOOST_MOCK_ROOT=$work/dd DDBOOST_MOCK_LATENCY_MS=5
"$mock" create-system --root "$DDBOOST_MOCK_ROOT" --host dd1 --user gpbackup --password demo-secret --storage-unit GPDB >/dev/null
ddcfg=$work/ddboost-dd.yaml
mkdir -p "$work/metrics"
cat > "$ddcfg" <<YAML
executablepath: $plugin
options:
  hostname: dd1
  username: gpbackup
  password: demo-secret
  storage_unit: GPDB
  directory: gpdb
  ddboost_library: $mocklib
  metrics_textfile_dir: $work/metrics
YAML
echo "== check the config and the Data Domain"
"$plugin" check "$ddcfg"
python3 - "$work" "$tables" <<'PY'
import random, sys
work, tables = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
for c in (0, 1):
    for t in range(tables):
        rows = rnd.randrange(0, 3000) if t % 4 else 0  # a quarter of the tables empty
        with open(f"{work}/seg{c}_t{t}.csv", "w") as f:
            f.writelines(f"{c}|{t}|{i}|customer_{rnd.randrange(10**6):07d}|{rnd.random():.6f}\n" for i in range(rows))
PY
totals() { # what the backups sent, and what the Data Domain stored after deduplication and compression
  "$mock" totals --root "$DDBOOST_MOCK_ROOT" --host dd1 --json | python3 -c '
import json, sys
t = json.load(sys.stdin)
w, s = t["logical_bytes_written"], t["stored_bytes"]
print(f"   written by the backups so far: {w:,} bytes; stored on the Data Domain: {s:,} bytes")'
}
per_table_backup() { # ts
  local ts=$1 c t
  local coord=$work/dd-data/gpseg-1/backups/${ts:0:8}/$ts
  mkdir -p "$coord"
  "$plugin" setup_plugin_for_backup "$ddcfg" "$coord" master '"-1"'
  "$plugin" setup_plugin_for_backup "$ddcfg" "$work/dd-data/gpseg0/backups/${ts:0:8}/$ts" segment_host
  local start=$(date +%s.%N)
  for c in 0 1; do for t in $(seq 0 $((tables - 1))); do
    echo "$c $t"
  done; done | xargs -P 8 -n 2 sh -c '"$0" backup_data "$1" "$2/gpseg$5/backups/$3/$4/gpbackup_$5_$4_$((16384 + $6))" < "$2/../seg$5_t$6.csv"' \
      "$plugin" "$ddcfg" "$work/dd-data" "${ts:0:8}" "$ts"
  local end=$(date +%s.%N)
  python3 -c "print(f'   {2 * $tables} objects in {$end - $start:.1f} s, 8 at a time')"
  manifest "$coord" "$ts" false "$tables"
  for f in config.yaml toc.yaml metadata.sql report; do "$plugin" backup_file "$ddcfg" "$coord/gpbackup_${ts}_$f"; done
  "$plugin" cleanup_plugin_for_backup "$ddcfg" "$work/dd-data/gpseg0/backups/${ts:0:8}/$ts" segment_host
  "$plugin" cleanup_plugin_for_backup "$ddcfg" "$coord" master '"-1"'
}
ts1=$(date +%Y%m%d%H%M%S)
echo "== per-table backup $ts1: $tables tables x 2 segments through the connection broker"
per_table_backup "$ts1"
totals
echo "== the host's summary of the backup (cleanup_plugin_for_backup, in the log)"
grep -h "backup $ts1 on this host" "$HOME"/gpAdminLogs/*.log | sed 's/^.*-\[INFO\]:-/   /'
echo "== its metrics, for node_exporter's textfile collector ($work/metrics)"
grep -v '^#' "$work/metrics/gpbackup_ddboost_plugin_backup.prom" | grep -E 'objects_total|bytes_total|object_seconds_total|between_objects|_lanes\{' | sed 's/^/   /'
sleep 1
ts2=$(date +%Y%m%d%H%M%S)
echo "== the same data backed up again ($ts2): deduplicated, it stores almost nothing new"
per_table_backup "$ts2"
totals
echo "== restore_data of every table of $ts2 (8 at a time), compared"
"$plugin" setup_plugin_for_restore "$ddcfg" "$work/dd-data/gpseg0/backups/${ts2:0:8}/$ts2" segment_host
for c in 0 1; do for t in $(seq 0 $((tables - 1))); do echo "$c $t"; done; done | xargs -P 8 -n 2 sh -c \
  '"$0" restore_data "$1" "$2/gpseg$5/backups/$3/$4/gpbackup_$5_$4_$((16384 + $6))" | cmp -s - "$2/../seg$5_t$6.csv" || { echo "   table $6 of segment $5 differs"; exit 255; }' \
  "$plugin" "$ddcfg" "$work/dd-data" "${ts2:0:8}" "$ts2"
"$plugin" cleanup_plugin_for_restore "$ddcfg" "$work/dd-data/gpseg0/backups/${ts2:0:8}/$ts2" segment_host
echo "   $((2 * tables)) tables identical"
echo "== verify_backup $ts2"
"$plugin" verify_backup "$ddcfg" "$ts2" | tail -n 2
echo "== list_backups --sizes"
"$plugin" list_backups "$ddcfg" --sizes
echo "== log ($HOME/gpAdminLogs)"
tail -n 3 "$HOME"/gpAdminLogs/*.log
echo "demo OK"
