#!/usr/bin/env python3
"""Where the time went, measured: gpbackup's per-table pattern through the
connection broker on the mock Data Domain at 0 and at 5 ms per call, with
option metrics_textfile_dir set.

The lanes run as a segment runs them: a shell per lane, starting one plugin
process per table (`sh -c` as COPY ... TO PROGRAM and gpbackup_helper do),
all lanes at once. The same lanes with /bin/true in the plugin's place
measure what starting a process costs the caller (its fork and wait), which
is outside any plugin process.

For each latency: the backup's and the restore's per-host summary as the
cleanup hooks wrote them (gpbackup_ddboost_plugin_backup.prom and
..._restore.prom): the objects' time by part (ms per object), the lanes'
time between objects, and the summary's lanes (the most objects in flight at
once) against the lanes run. The split (objects' parts and time between
them: the summary's lanes x its elapsed time) is set against what the lanes
took (lanes x wall time of the phase), and so is the objects' time alone,
with and without the callers' cost of starting the processes. The storage
share should follow the mock's latency; input/output and the plugin's own
work should not, as long as the cores are not all busy (the last column:
the machine's cores busy over the lanes, any process); where they are, the
plugin's part and the time between objects grow with the queue for a core.

  scripts/bench_metrics.py [--jobs 4] [--segments 2] [--objects 25]
      [--latencies 0,5] [--connections N] [--keep DIR] [--no-build]

--connections N runs the broker with broker_connections N (0: the default):
below the lanes' needs, requests wait for a connection (the connection_wait
part, and the broker's connections in use and requests waiting).

--keep DIR leaves the metrics files of the last latency there (for
scripts/dashboard_preview.py).

  scripts/bench_metrics.py --cost OFF_BIN [--runs 5] [--size-mib 1024]

What the summary and the facts cost: this build against OFF_BIN (a build
without them), side by side, runs alternating: 400 backup_data of 1,000
bytes one after another on the local backend (median wall and CPU time per
process), the per-table lanes above on the local backend and on the mock at
5 ms per call through the broker (best of --runs), and one --size-mib
backup_data on the local backend with fsync off (best of --runs).
"""
import argparse
import os
import random
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

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


def summarize(metrics, lanes, wall, busy, start_wall):
    objects = pick(metrics, "gpbackup_ddboost_objects_total")
    parts = {p: pick(metrics, "gpbackup_ddboost_object_seconds_total", part=p) for p in PARTS}
    total = sum(parts.values())
    calls = pick(metrics, "gpbackup_ddboost_storage_call_seconds_count")
    broker = {n: max((v for (m, _), v in metrics.items() if m == f"gpbackup_ddboost_broker_{n}"), default=0)
              for n in ("connections_in_use_max", "requests_waiting_max")}
    between = pick(metrics, "gpbackup_ddboost_between_objects_seconds_total")
    return {
        "broker": broker,
        "objects": objects,
        "ms": {p: v * 1000 / max(objects, 1) for p, v in (parts | {"between": between}).items()},
        "object s": total,
        "split s": total + between,
        "summary lanes": pick(metrics, "gpbackup_ddboost_lanes"),
        "lanes s": lanes * wall,
        "busy": busy,
        "start s": lanes * start_wall,
        "calls/object": calls / max(objects, 1),
    }


# Its own backup timestamp, so that other benchmarks' hooks on this host
# never take its facts.
pt.TS = "20250305120000"


def key(w, seg, lane, i):
    return f"{w.local_dir(seg)}/gpbackup_{seg}_{pt.TS}_{16384 + lane * 1000 + i}"


def shell_lanes(lanes, env):
    """Runs each lane's shell script at once: the wall time of them all, and
    the share of the machine's cores busy meanwhile (any process)."""
    def run():
        procs = [subprocess.Popen(["sh", "-c", script], env=env) for script in lanes]
        failed = [p for p in procs if p.wait() != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} lane(s) failed")
    wall, cpu = pt.cpu_timed(run)
    return wall, cpu / (wall * os.cpu_count())


def lane_scripts(w, files, segments, line):
    """A shell script per lane: `line(key, file)` for each of its objects."""
    scripts = []
    for lane, lane_files in enumerate(files):
        seg = lane % segments
        lines = [line(shlex.quote(key(w, seg, lane, i)), shlex.quote(f)) + " || exit 1"
                 for i, f in enumerate(lane_files)]
        scripts.append("\n".join(lines))
    return scripts


def write_inputs(base, data):
    """Each lane's payloads as files in `base`: a list of paths per lane."""
    files = []
    for lane, payloads in enumerate(data):
        files.append([])
        for i, d in enumerate(payloads):
            path = os.path.join(base, f"in-{lane}-{i}")
            with open(path, "wb") as f:
                f.write(d)
            files[-1].append(path)
    return files


def per_table(w, plugin, segments, files, outputs):
    """The per-table backup of `files` and its restore into `outputs`, as
    gpbackup and gprestore run them: the hooks, and the lanes as shell
    loops; the wall time of each phase's lanes and the cores busy meanwhile."""
    env = w.env()
    env["P"], env["C"] = plugin, w.cfg
    for seg in range(segments):
        os.makedirs(w.local_dir(seg), exist_ok=True)
    pt.hook_phases(w, "setup_plugin_for_backup", segments, env)
    wall = {"backup": shell_lanes(lane_scripts(
        w, files, segments, lambda k, f: f'"$P" backup_data "$C" {k} < {f}'), env)}
    pt.hook_phases(w, "cleanup_plugin_for_backup", segments, env)
    pt.hook_phases(w, "setup_plugin_for_restore", segments, env)
    wall["restore"] = shell_lanes(lane_scripts(
        w, outputs, segments, lambda k, f: f'"$P" restore_data "$C" {k} > {f}'), env)
    pt.hook_phases(w, "cleanup_plugin_for_restore", segments, env)
    return wall


def run(args, latency, work, keep=None):
    base = os.path.join(work, f"metrics-{latency}")
    w = pt.World(base, bl.PLUGIN, latency, broker=True, connections=args.connections)
    textfile = os.path.join(base, "textfile")
    os.makedirs(textfile, exist_ok=True)
    with open(w.cfg, "a") as f:
        f.write(f"  metrics_textfile_dir: {textfile}\n")
    lanes = args.jobs * args.segments
    data = pt.payloads(lanes, args.objects)
    files = write_inputs(base, data)
    restored = [[f + ".restored" for f in lane] for lane in files]
    # The callers' cost of starting a process per object, alone.
    start, _ = shell_lanes(lane_scripts(w, files, args.segments, lambda k, f: f"/bin/true < {f}"), w.env())
    wall = per_table(w, bl.PLUGIN, args.segments, files, restored)
    for lane, payloads in enumerate(data):
        for path, d in zip(restored[lane], payloads):
            with open(path, "rb") as f:
                if f.read() != d:
                    raise RuntimeError(f"restore_data {path}: restored bytes differ")
    out = {}
    for op in ("backup", "restore"):
        m = read_metrics(os.path.join(textfile, f"gpbackup_ddboost_plugin_{op}.prom"))
        out[op] = summarize(m, lanes, *wall[op], start)
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
        "| connection wait ms/object | plugin ms/object | calls/object "
        "| between objects ms/object | lanes (summary) "
        "| split (objects + between) / (lanes x wall) "
        "| object time / (lanes x wall) | callers' process starts / (lanes x wall) "
        "| connections in use (most) | requests waiting (most) | cores busy |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for latency, ops in results.items():
        for op, s in ops.items():
            ms = s["ms"]
            lanes = max(s["lanes s"], 1e-9)
            lines.append(
                f"| {latency} ms | {op} | {s['objects']:.0f} | {ms['io']:.2f} | {ms['storage']:.2f} "
                f"| {ms['stream_wait']:.2f} | {ms['connection_wait']:.2f} | {ms['plugin']:.2f} "
                f"| {s['calls/object']:.1f} | {ms['between']:.2f} | {s['summary lanes']:.0f} "
                f"| {s['split s'] / lanes * 100:.1f}% "
                f"| {s['object s'] / lanes * 100:.1f}% | {s['start s'] / lanes * 100:.1f}% "
                f"| {s['broker']['connections_in_use_max']:.0f} | {s['broker']['requests_waiting_max']:.0f} "
                f"| {s['busy'] * 100:.0f}% |")
    return lines


def alternate(builds, runs, fn):
    """{build name: [fn(build) for each run]}, the builds taking turns."""
    out = {name: [] for name in builds}
    for _ in range(runs):
        for name, plugin in builds.items():
            out[name].append(fn(plugin))
    return out


def local_world(base, plugin):
    w = pt.World(base, plugin, None)
    with open(w.cfg, "a") as f:
        f.write("  fsync: \"off\"\n")
    return w


def small_objects(plugin, work, n=400):
    """Wall and CPU seconds of each of n backup_data of 1,000 bytes."""
    base = tempfile.mkdtemp(dir=work)
    w = local_world(base, plugin)
    env = w.env()
    data = random.Random(3).randbytes(1000)
    walls, cpus = [], []
    for i in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        w.run(["backup_data", w.cfg, key(w, 0, 0, i)], env, data)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    bl.remove(base)
    return walls, cpus


def lanes_wall(plugin, work, args, latency):
    """Wall time of the per-table lanes' backup and restore."""
    base = tempfile.mkdtemp(dir=work)
    if latency is None:
        w = local_world(base, plugin)
    else:
        w = pt.World(base, plugin, latency, broker=True)
    files = write_inputs(base, pt.payloads(args.jobs * args.segments, args.objects))
    wall = per_table(w, plugin, args.segments, files, [["/dev/null"] * len(lane) for lane in files])
    bl.remove(base)
    return wall["backup"][0] + wall["restore"][0]


def large_object(plugin, work, source):
    base = tempfile.mkdtemp(dir=work)
    w = local_world(base, plugin)
    with open(source, "rb") as f:
        t = time.perf_counter()
        subprocess.run([plugin, "backup_data", w.cfg, key(w, 0, 0, 0)], stdin=f, env=w.env(), check=True)
        wall = time.perf_counter() - t
    bl.remove(base)
    return wall


def cost(args, work):
    builds = {"this build": bl.PLUGIN, "without": os.path.abspath(args.cost)}
    rows = ["| what | this build | without the summary and facts | ratio |", "|---|---:|---:|---:|"]

    def row(what, unit, a, b):
        rows.append(f"| {what} | {a:.3f} {unit} | {b:.3f} {unit} | {a / b:.3f}x |")
    small = alternate(builds, args.runs, lambda p: small_objects(p, work))
    for i, what in enumerate(("1,000-byte backup_data, median wall per process",
                              "1,000-byte backup_data, median CPU per process")):
        a, b = (statistics.median(x for run in small[n] for x in run[i]) * 1000 for n in builds)
        row(what, "ms", a, b)
    for label, latency in (("local", None), ("mock 5 ms, broker", 5)):
        lanes = alternate(builds, args.runs, lambda p: lanes_wall(p, work, args, latency))
        a, b = (min(lanes[n]) for n in builds)
        row(f"per-table lanes ({args.jobs * args.segments} x {args.objects}), backup + restore, {label}, best", "s", a, b)
    source = os.path.join(work, "large")
    with open(source, "wb") as f:
        chunk = random.Random(5).randbytes(1 << 20)
        for _ in range(args.size_mib):
            f.write(chunk)
    large = alternate(builds, args.runs, lambda p: large_object(p, work, source))
    a, b = (min(large[n]) for n in builds)
    row(f"{args.size_mib} MiB backup_data, local, fsync off, best", "s", a, b)
    os.remove(source)
    return rows


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
    ap.add_argument("--cost", default=None, metavar="OFF_BIN")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    if not args.no_build:
        bl.build()
    work = tempfile.mkdtemp(prefix="bench-metrics-", dir=args.dir)
    try:
        if args.cost:
            print("\n".join(cost(args, work)))
            return
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
