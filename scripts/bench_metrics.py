#!/usr/bin/env python3
"""Where the time went, measured: gpbackup's per-table pattern through the
connection broker on the mock Data Domain at 0 and at 5 ms per call, with
option metrics_textfile_dir set.

For each latency: the backup's and the restore's per-host summary as the
cleanup hooks wrote them (gpbackup_ddboost_plugin_backup.prom and
..._restore.prom): the objects' time by part (ms per object), whether the
parts add up to the objects' wall time, and that wall time against what the
lanes took as gpbackup sees it (lanes x wall time of the phase). The storage
share should follow the mock's latency; input/output and the plugin's own
work should not.

  scripts/bench_metrics.py [--jobs 4] [--segments 2] [--objects 25]
      [--latencies 0,5] [--connections N] [--out docs/bench] [--keep DIR]
      [--no-build]

--connections N runs the broker with broker_connections N (0: the default):
below the lanes' needs, requests wait for a connection (the connection_wait
part, and the broker's connections in use and requests waiting).

--keep DIR leaves the metrics files of the last latency there (for
scripts/dashboard_preview.py).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import bench_per_table as pt  # noqa: E402

PARTS = ("io", "storage", "stream_wait", "connection_wait", "plugin")
SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


def read_metrics(path):
    """{(name, frozenset of label pairs): value} of a metrics file."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            m = SAMPLE.match(line.strip())
            if m:
                labels = frozenset(tuple(p.split("=", 1)) for p in m.group(2).split(",") if p)
                labels = frozenset((k, v.strip('"')) for k, v in labels)
                out[(m.group(1), labels)] = float(m.group(3))
    return out


def pick(metrics, name, **want):
    """The sum of the samples of `name` whose labels include `want`."""
    total = 0.0
    for (n, labels), v in metrics.items():
        d = dict(labels)
        if n == name and all(d.get(k) == v2 for k, v2 in want.items()):
            total += v
    return total


def summarize(metrics, lanes, wall):
    objects = pick(metrics, "gpbackup_ddboost_objects_total")
    parts = {p: pick(metrics, "gpbackup_ddboost_object_seconds_total", part=p) for p in PARTS}
    total = sum(parts.values())
    calls = pick(metrics, "gpbackup_ddboost_storage_call_seconds_count")
    broker = {n: max((v for (m, _), v in metrics.items() if m == f"gpbackup_ddboost_broker_{n}"), default=0)
              for n in ("connections_in_use_max", "requests_waiting_max")}
    return {
        "broker": broker,
        "objects": objects,
        "ms": {p: parts[p] * 1000 / max(objects, 1) for p in PARTS},
        "object s": total,
        "lanes s": lanes * wall,
        "calls/object": calls / max(objects, 1),
    }


def run(args, latency, work, keep=None):
    base = os.path.join(work, f"metrics-{latency}")
    w = pt.World(base, bl.PLUGIN, latency, broker=True, connections=args.connections)
    textfile = os.path.join(base, "textfile")
    os.makedirs(textfile, exist_ok=True)
    with open(w.cfg, "a") as f:
        f.write(f"  metrics_textfile_dir: {textfile}\n")
    lanes = args.jobs * args.segments
    data = pt.payloads(lanes, args.objects)
    r = pt.run_lanes(w, data, args.jobs, args.segments, work)
    out = {}
    for op, phase in (("backup", "backup_data"), ("restore", "restore_data")):
        m = read_metrics(os.path.join(textfile, f"gpbackup_ddboost_plugin_{op}.prom"))
        out[op] = summarize(m, lanes, r[phase])
    if keep:
        os.makedirs(keep, exist_ok=True)
        for name in os.listdir(textfile):
            shutil.copy(os.path.join(textfile, name), keep)
        listing = os.path.join(keep, "storage.prom")
        # A verify_backup first, so that the listing has its time and result.
        subprocess.run([bl.PLUGIN, "verify_backup", w.cfg, pt.TS, "--allow-unrecorded"],
                       env=w.env(latency=False), capture_output=True)
        with open(listing, "w") as f:
            subprocess.run([bl.PLUGIN, "list_backups", w.cfg, "--format", "openmetrics"],
                           env=w.env(latency=False), stdout=f, check=True)
    bl.remove(base)
    return out


def table(results):
    lines = [
        "| latency | operation | objects | io ms/object | storage ms/object | stream wait ms/object "
        "| connection wait ms/object | plugin ms/object | calls/object | parts = object time "
        "| object time / (lanes x wall) | connections in use (most) | requests waiting (most) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for latency, ops in results.items():
        for op, s in ops.items():
            ms = s["ms"]
            parts_sum = sum(ms.values()) * s["objects"] / 1000
            lines.append(
                f"| {latency} ms | {op} | {s['objects']:.0f} | {ms['io']:.2f} | {ms['storage']:.2f} "
                f"| {ms['stream_wait']:.2f} | {ms['connection_wait']:.2f} | {ms['plugin']:.2f} "
                f"| {s['calls/object']:.1f} "
                f"| {parts_sum / max(s['object s'], 1e-9) * 100:.1f}% "
                f"| {s['object s'] / max(s['lanes s'], 1e-9) * 100:.1f}% "
                f"| {s['broker']['connections_in_use_max']:.0f} | {s['broker']['requests_waiting_max']:.0f} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--segments", type=int, default=2)
    ap.add_argument("--objects", type=int, default=25)
    ap.add_argument("--latencies", default="0,5")
    ap.add_argument("--connections", type=int, default=0)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--keep", default=None)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        bl.build()
    work = tempfile.mkdtemp(prefix="bench-metrics-", dir=args.dir)
    try:
        latencies = [int(x) for x in args.latencies.split(",")]
        results = {}
        for i, latency in enumerate(latencies):
            keep = args.keep if i == len(latencies) - 1 else None
            results[latency] = run(args, latency, work, keep)
        print("\n".join(table(results)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
