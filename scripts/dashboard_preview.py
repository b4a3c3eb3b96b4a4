#!/usr/bin/env python3
"""What the Grafana dashboard (packaging/grafana/gpbackup_ddboost_plugin.json)
shows, drawn from a benchmark run: a small per-table backup and restore
through the connection broker on the mock Data Domain at 5 ms per call, with
option metrics_textfile_dir set, then verify_backup and
`list_backups --format openmetrics`. The panels are drawn from the metrics
files as the dashboard's expressions read them, into docs/dashboard_preview.png.

  scripts/dashboard_preview.py [--jobs 2] [--segments 2] [--objects 15]
      [--latency 5] [--connections 0] [--out docs/dashboard_preview.png]
      [--no-build]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import bench_metrics as bm  # noqa: E402
from bench_restore import plt  # noqa: E402

BG, FG, GRID = "#181b1f", "#ccccdc", "#2c3235"
COLORS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#b877d9", "#f2495c"]


def style(ax, title):
    ax.set_facecolor(BG)
    ax.set_title(title, color=FG, fontsize=9, loc="left")
    ax.tick_params(colors=FG, labelsize=7)
    for s in ax.spines.values():
        s.set_color(GRID)
    ax.grid(axis="y", color=GRID)


def labelled(metrics, name, key):
    """{label value: sample} of `name` by the label `key`."""
    out = {}
    for (n, labels), v in metrics.items():
        if n == name:
            d = dict(labels)
            out[d.get(key, "")] = out.get(d.get(key, ""), 0) + v
    return out


def draw(keep, out):
    m = {}
    for op in ("backup", "restore"):
        m[op] = bm.read_metrics(os.path.join(keep, f"gpbackup_ddboost_plugin_{op}.prom"))
    storage = bm.read_metrics(os.path.join(keep, "storage.prom"))
    p = plt()
    fig, axes = p.subplots(2, 5, figsize=(19, 6.5))
    fig.patch.set_facecolor(BG)
    fig.suptitle("gpbackup DD Boost plugin (mock Data Domain, 5 ms per call, connection broker)",
                 color=FG, fontsize=11, x=0.01, ha="left")
    top_row(axes[0], m)
    bottom_row(axes[1], m, storage)
    broker_panels(axes[0][4], axes[1][4], m)
    fig.tight_layout()
    fig.savefig(out, dpi=90, facecolor=BG)
    print(f"wrote {out}")


def top_row(axes, m):
    """Throughput, where the time went, stream waits and retries, failures."""
    ax = axes[0]
    style(ax, "Throughput per host (MB/s)")
    for i, op in enumerate(("backup", "restore")):
        b = labelled(m[op], "gpbackup_ddboost_bytes_total", "host")
        e = labelled(m[op], "gpbackup_ddboost_elapsed_seconds", "host")
        for j, h in enumerate(sorted(b)):
            ax.bar(i + j * 0.4, b[h] / max(e.get(h, 0), 1e-9) / 1e6, 0.4, color=COLORS[i], label=f"{op} {h}")
    ax.set_xticks([0, 1], ["backup", "restore"])
    ax = axes[1]
    style(ax, "Where the lanes' time went (share)")
    for i, op in enumerate(("backup", "restore")):
        parts = labelled(m[op], "gpbackup_ddboost_object_seconds_total", "part")
        parts["between objects"] = bm.pick(m[op], "gpbackup_ddboost_between_objects_seconds_total")
        total = max(sum(parts.values()), 1e-9)
        bottom = 0
        for k, part in enumerate(bm.PARTS + ("between objects",)):
            share = parts.get(part, 0) / total
            ax.bar(i, share, bottom=bottom, color=COLORS[k], label=part if i == 0 else None)
            bottom += share
    ax.set_xticks([0, 1], ["backup", "restore"])
    ax.legend(fontsize=7, facecolor=BG, labelcolor=FG)
    ax = axes[2]
    style(ax, "Stream waits and retries")
    vals = [bm.pick(m[op], n) for op in ("backup", "restore")
            for n in ("gpbackup_ddboost_stream_waits_total", "gpbackup_ddboost_retries_total")]
    ax.bar(range(4), vals, color=[COLORS[2], COLORS[3]] * 2)
    ax.set_xticks(range(4), ["backup\nwaits", "backup\nretries", "restore\nwaits", "restore\nretries"])
    ax = axes[3]
    style(ax, "Failures by kind")
    kinds = {}
    for op in ("backup", "restore"):
        for k, v in labelled(m[op], "gpbackup_ddboost_failures_total", "kind").items():
            kinds[k] = kinds.get(k, 0) + v
    if kinds:
        ax.bar(range(len(kinds)), list(kinds.values()), color=COLORS[5])
        ax.set_xticks(range(len(kinds)), list(kinds))
    else:
        ax.text(0.5, 0.5, "0", color=COLORS[0], fontsize=40, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])


def bottom_row(axes, m, storage):
    """Storage call latency, backup sizes, age of the last good verify, incomplete backups."""
    ax = axes[0]
    style(ax, "Storage call latency (calls per bucket)")
    for i, op in enumerate(("backup", "restore")):
        buckets = sorted(((float(k.replace("+Inf", "inf")), v) for k, v in
                          labelled(m[op], "gpbackup_ddboost_storage_call_seconds_bucket", "le").items()))
        counts = [v - (buckets[j - 1][1] if j else 0) for j, (_, v) in enumerate(buckets)]
        xs = [x + i * 0.4 for x in range(len(buckets))]
        ax.bar(xs, counts, 0.4, color=COLORS[i], label=op)
        ax.set_xticks(range(len(buckets)), [f"≤{b * 1000:g}ms" if b != float("inf") else "+Inf"
                                            for b, _ in buckets], rotation=60)
    ax.legend(fontsize=7, facecolor=BG, labelcolor=FG)
    ax = axes[1]
    style(ax, "Backup sizes on the storage (KB)")
    sizes = labelled(storage, "gpbackup_ddboost_backup_size_bytes", "backup")
    ax.bar(range(len(sizes)), [v / 1e3 for v in sizes.values()], color=COLORS[2])
    ax.set_xticks(range(len(sizes)), list(sizes), fontsize=7)
    ax = axes[2]
    style(ax, "Age of the last good verify_backup (s)")
    at = labelled(storage, "gpbackup_ddboost_backup_last_verify_timestamp_seconds", "backup")
    good = labelled(storage, "gpbackup_ddboost_backup_last_verify_ok", "backup")
    ages = {b: time.time() - t for b, t in at.items() if good.get(b) == 1}
    if ages:
        ax.bar(range(len(ages)), list(ages.values()), color=COLORS[0])
        ax.set_xticks(range(len(ages)), list(ages), fontsize=7)
    else:
        ax.text(0.5, 0.5, "no good verify", color=COLORS[5], fontsize=14, ha="center", va="center",
                transform=ax.transAxes)
    ax = axes[3]
    style(ax, "Backups not complete on the storage")
    incomplete = sum(1 for v in labelled(storage, "gpbackup_ddboost_backup_complete", "backup").values() if v == 0)
    ax.text(0.5, 0.5, str(incomplete), color=COLORS[0] if incomplete == 0 else COLORS[5], fontsize=40,
            ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def broker_panels(ax, below, m):
    """The broker's connections in use and requests waiting; time waiting for a connection."""
    style(ax, "Connection broker: in use, waiting")
    names = [("connections_in_use_max", "in use\n(most)"), ("connections_in_use_mean", "in use\n(mean)"),
             ("requests_waiting_max", "waiting\n(most)"), ("requests_waiting_mean", "waiting\n(mean)")]
    for i, op in enumerate(("backup", "restore")):
        vals = [bm.pick(m[op], f"gpbackup_ddboost_broker_{n}") for n, _ in names]
        ax.bar([x + i * 0.4 for x in range(len(names))], vals, 0.4, color=COLORS[i], label=op)
    ax.set_xticks(range(len(names)), [label for _, label in names])
    ax.legend(fontsize=7, facecolor=BG, labelcolor=FG)
    style(below, "Time waiting for a broker connection (s)")
    waits = [bm.pick(m[op], "gpbackup_ddboost_object_seconds_total", part="connection_wait")
             for op in ("backup", "restore")]
    below.bar(range(2), waits, color=[COLORS[0], COLORS[1]])
    below.set_xticks(range(2), ["backup", "restore"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--segments", type=int, default=2)
    ap.add_argument("--objects", type=int, default=15)
    ap.add_argument("--latency", type=int, default=5)
    ap.add_argument("--connections", type=int, default=0, help="broker_connections (0: the default)")
    ap.add_argument("--out", default=os.path.join(bl.ROOT, "docs", "dashboard_preview.png"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    plt()
    if not args.no_build:
        bl.build()
    work = tempfile.mkdtemp(prefix="dashboard-preview-")
    keep = os.path.join(work, "keep")
    try:
        bm.run(args, args.latency, work, keep)
        draw(keep, args.out)
    finally:
        bl.remove(work)


if __name__ == "__main__":
    main()
