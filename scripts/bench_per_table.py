#!/usr/bin/env python3
"""gpbackup's per-table pattern (no --single-data-file, --jobs) through the plugin.

Each backend runs what gpbackup and gprestore run, in their order:

  lanes  backup: setup_plugin_for_backup for the coordinator, then for each
         segment in scope segment_host (gpbackup runs it once per segment),
         then in scope segment, each phase in parallel; backup_file of the
         backup's config; then JOBS x SEGMENTS lanes at once, each writing
         OBJECTS small objects with backup_data, one process per object (28%
         empty, the rest 2 KiB to 1 MiB, log-uniform); then the cleanup hooks
         in the same three phases. Restore: the same with the restore hooks,
         restore_file of the config and restore_data of every object (each
         checked byte for byte).
  hooks  the time and appliance calls of each hook with 100, 1,000 and
         10,000 objects (and their checksum records) in the backup folder.

Backends side by side in one run: the local backend, and the mock Data Domain
at 0 and at 5 ms per call, a login 20 ms more (DDBOOST_MOCK_LATENCY_MS,
DDBOOST_MOCK_CONNECT_MS), with the connection broker off and (lanes only) on. Appliance calls come from DDBOOST_MOCK_TRACE (the
SDK's local calls left out). The added cost of an object is
(wall time of all lanes on the mock - the same on the local backend) / objects
per lane. With --baseline BIN an earlier build runs too, side by side.
Tables and PNG charts go to --out (docs/bench): per_table_lanes, per_table_hooks.

  scripts/bench_per_table.py [--parts lanes,hooks] [--jobs 4] [--segments 2]
      [--objects 12] [--sizes 100,1000,10000] [--runs 1] [--baseline BIN]
      [--connect-ms 20] [--out docs/bench] [--no-build] [--dir /tmp]
      [--backends local,mock0,mock5,mock0-broker,mock5-broker] [--connections 0]

--backends picks the lanes' backends (local always runs); --connections N,M
runs each broker backend with broker_connections N, then M (0: the default).

--connect-ms 0 shows what a login costs beyond its round trip (what sharing
logins between processes would save).
"""
import argparse
import concurrent.futures as cf
import ctypes
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from bench_restore import plt, save  # noqa: E402

TS = "20250301120000"
CONNECT_MS = "20"
LOCAL_CALLS = {"init", "shutdown", "instance_create", "instance_destroy", "log_init"}
# (label, mock latency in ms or None for the local backend)
BACKENDS = [("local", None), ("mock 0 ms", 0), ("mock 5 ms", 5)]
# The lanes also run on the mock with the connection broker (option broker:
# on, started by the segment_host setup hooks); the rows above have it off.
BROKER_BACKENDS = [("mock 0 ms broker", 0), ("mock 5 ms broker", 5)]
# --backends names them: local, mock0, mock5, mock0-broker, mock5-broker.
SHORT = {"local": "local", "mock 0 ms": "mock0", "mock 5 ms": "mock5",
         "mock 0 ms broker": "mock0-broker", "mock 5 ms broker": "mock5-broker"}
WANTED = set(SHORT.values())
# --connections: the brokers' broker_connections (0: the default), each a backend.
CONNECTIONS = [0]


def folder(root):
    return f"{root}/backups/{TS[:8]}/{TS}"


class World:
    """One build on one backend: a storage (local folder or mock system), a
    config, a home for the log, and the hosts' local folders."""

    def __init__(self, base, plugin, latency, broker=False, connections=0):
        self.dir = base
        self.broker = broker
        self.plugin = plugin
        self.latency = latency
        self.home = os.path.join(base, "home")
        self.root = os.path.join(base, "dd")
        self.store = os.path.join(base, "store")
        self.cfg = os.path.join(base, "plugin.yaml")
        os.makedirs(self.home, exist_ok=True)
        if latency is None:
            os.makedirs(self.store, exist_ok=True)
            with open(self.cfg, "w") as f:
                f.write(f"executablepath: {plugin}\noptions:\n  backend: local\n  directory: {self.store}\n")
        else:
            bl.create_system(self.root)
            bl.write_config(self.cfg)
            with open(self.cfg) as f:
                text = f.read().replace(bl.PLUGIN, plugin)
            if not broker:
                text += "  broker: off\n"
            elif connections:
                text += f"  broker_connections: {connections}\n"
            with open(self.cfg, "w") as f:
                f.write(text)

    def env(self, trace=None, latency=True):
        e = bl.plugin_env(self.home, self.root)
        if self.latency is not None and latency:
            e["DDBOOST_MOCK_LATENCY_MS"] = str(self.latency)
            e["DDBOOST_MOCK_CONNECT_MS"] = CONNECT_MS
        if trace:
            e["DDBOOST_MOCK_TRACE"] = trace
        return e

    def local_dir(self, content):
        """The local backup folder gpbackup passes: the coordinator's or a segment's."""
        host = "master/gpseg-1" if content < 0 else f"data/gpseg{content}"
        return folder(os.path.join(self.dir, host))

    def run(self, args, env, data=None, want=None):
        r = subprocess.run([self.plugin] + args, input=data, env=env, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {r.stderr.decode(errors='replace').strip()}")
        if want is not None and r.stdout != want:
            raise RuntimeError(f"{args[0]} {args[-1]}: restored bytes differ")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def cpu_timed(fn):
    """fn's wall time and the machine's busy CPU seconds meanwhile."""
    c = bl.busy_secs()
    wall = timed(fn)
    return wall, bl.busy_secs() - c


def parallel(jobs):
    """Runs the callables at once; returns when all are done."""
    with cf.ThreadPoolExecutor(max_workers=max(1, len(jobs))) as ex:
        for f in [ex.submit(j) for j in jobs]:
            f.result()


def hook_phases(w, hook, segments, env):
    """gpbackup's three phases of a hook; seconds of each."""
    def one(scope, content):
        args = [hook, w.cfg, w.local_dir(content), scope]
        if content >= 0:
            args.append(str(content))
        return lambda: w.run(args, env)
    return [
        timed(one("coordinator", -1)),
        timed(lambda: parallel([one("segment_host", s) for s in range(segments)])),
        timed(lambda: parallel([one("segment", s) for s in range(segments)])),
    ]


def payloads(lanes, per_lane):
    rnd = random.Random(15)
    out = []
    for _ in range(lanes):
        lane = []
        for _ in range(per_lane):
            if rnd.random() < 0.28:
                lane.append(b"")
            else:
                lane.append(rnd.randbytes(int(2048 * 512 ** rnd.random())))
        out.append(lane)
    return out


def appliance_calls(trace):
    if not trace or not os.path.exists(trace):
        return 0
    with open(trace) as f:
        calls = [line.split()[0][3:] for line in f if line.startswith("op=")]
    # Emptied, not removed: a broker keeps appending to it.
    open(trace, "w").close()
    return sum(1 for c in calls if c not in LOCAL_CALLS)


def run_lanes(w, data, jobs, segments, work):
    """One backup and one restore the per-table way; a dict of results."""
    lanes = [(lane % segments, lane) for lane in range(jobs * segments)]

    def key(seg, lane, i):
        return f"{w.local_dir(seg)}/gpbackup_{seg}_{TS}_{16384 + lane * 1000 + i}"

    traced = w.latency is not None
    trace = os.path.join(work, "trace") if traced else None
    res = {}
    env = w.env()
    cfg_file = os.path.join(w.local_dir(-1), f"gpbackup_{TS}_config.yaml")
    os.makedirs(os.path.dirname(cfg_file), exist_ok=True)
    with open(cfg_file, "w") as f:
        f.write("backupversion: 1.30.0\n")
    # A broker started by the hooks has their environment: the trace too.
    hook_env = w.env(trace) if w.broker else env
    res["backup hooks"] = sum(hook_phases(w, "setup_plugin_for_backup", segments, hook_env))
    appliance_calls(trace)
    w.run(["backup_file", w.cfg, cfg_file], env)

    def backup_lane(seg, lane):
        e = w.env(trace)
        return lambda: [w.run(["backup_data", w.cfg, key(seg, lane, i)], e, d) for i, d in enumerate(data[lane])]
    res["backup_data"], res["backup_data cpu"] = cpu_timed(
        lambda: parallel([backup_lane(s, l) for s, l in lanes]))
    res["backup_data calls"] = appliance_calls(trace)
    res["backup cleanup"] = sum(hook_phases(w, "cleanup_plugin_for_backup", segments, w.env(trace)))
    res["backup cleanup calls"] = appliance_calls(trace)
    res["restore hooks"] = sum(hook_phases(w, "setup_plugin_for_restore", segments, w.env(trace)))
    res["restore hooks calls"] = appliance_calls(trace)
    os.remove(cfg_file)
    w.run(["restore_file", w.cfg, cfg_file], env)

    def restore_lane(seg, lane):
        e = w.env(trace)
        return lambda: [w.run(["restore_data", w.cfg, key(seg, lane, i)], e, want=d) for i, d in enumerate(data[lane])]
    res["restore_data"], res["restore_data cpu"] = cpu_timed(
        lambda: parallel([restore_lane(s, l) for s, l in lanes]))
    res["restore_data calls"] = appliance_calls(trace)
    res["restore cleanup"] = sum(hook_phases(w, "cleanup_plugin_for_restore", segments, env))
    return res


def lane_backends(build):
    """The backends of the lanes (--backends, the broker ones for each of
    --connections), every build the same."""
    chosen = [b for b in BACKENDS if SHORT[b[0]] in WANTED]
    for label, latency in BROKER_BACKENDS:
        if SHORT[label] in WANTED:
            for n in CONNECTIONS:
                chosen.append((f"{label} {n}" if n else label, latency))
    return chosen


def part_lanes(args, builds, work):
    lanes = args.jobs * args.segments
    data = payloads(lanes, args.objects)
    objects = lanes * args.objects
    results = {}
    # Per run: the added ms/object against the same build's local lanes of
    # that run (the machine's load moves both alike).
    per_run = {}
    for run in range(args.runs):
        this_run = {}
        # Each backend of every build next to each other, the builds' order
        # turned around every other run.
        order = [(b, p, lb) for lb in lane_backends(None) for b, p in (builds if run % 2 == 0 else builds[::-1])]
        for bname, plugin, (label, latency) in order:
            base = os.path.join(work, f"lanes-{bname}-{label.replace(' ', '')}-{run}")
            broker = " broker" in label
            n = int(label.rsplit(" ", 1)[1]) if broker and not label.endswith("broker") else 0
            w = World(base, plugin, latency, broker=broker, connections=n)
            r = run_lanes(w, data, args.jobs, args.segments, work)
            bl.remove(base)
            this_run[(bname, label)] = r
            local = this_run.get((bname, "local"))
            if local is not None and label != "local":
                per_run.setdefault((bname, label), []).append(
                    [(r[c] - local[c]) * 1000 / args.objects for c in ("backup_data", "restore_data")]
                    + [(r[f"{c} cpu"] - local[f"{c} cpu"]) * 1000 / objects for c in ("backup_data", "restore_data")])
            prev = results.get((bname, label))
            if prev is None or r["backup_data"] + r["restore_data"] < prev["backup_data"] + prev["restore_data"]:
                results[(bname, label)] = r
            print(f"  {bname:8} {label:16} backup_data {r['backup_data']:6.2f} s  restore_data "
                  f"{r['restore_data']:6.2f} s  hooks {r['backup hooks'] + r['backup cleanup']:5.2f} / "
                  f"{r['restore hooks'] + r['restore cleanup']:5.2f} s", flush=True)
    sizes = [len(d) for lane in data for d in lane]
    lines = [
        f"gpbackup's per-table pattern: {args.jobs} jobs x {args.segments} segments = {lanes} lanes at once, "
        f"{args.objects} objects each ({objects} objects, {sum(1 for s in sizes if s == 0)} empty, the rest "
        f"{min(s for s in sizes if s) // 1024}-{max(sizes) // 1024} KiB), one plugin process per object; "
        "the hooks as gpbackup runs them (coordinator, each segment in scope segment_host, each segment). "
        f"Mock: DDBOOST_MOCK_LATENCY_MS 0 or 5, DDBOOST_MOCK_CONNECT_MS {CONNECT_MS}. "
        f"Best of {args.runs} run(s). Added per object = (lanes' wall time on the mock - on local) / "
        f"{args.objects} objects per lane.",
        "",
        "| build | backend | backup hooks s | backup_data s | added ms/object | calls/object | cleanup s "
        "| restore hooks s | restore_data s | added ms/object | calls/object |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (bname, label), r in results.items():
        local = results[(bname, "local")]
        added = [(r[c] - local[c]) * 1000 / args.objects for c in ("backup_data", "restore_data")]
        calls = [r[f"{c} calls"] / objects if label != "local" else 0 for c in ("backup_data", "restore_data")]
        show = (lambda v, f: f.format(v)) if label != "local" else (lambda v, f: "")
        lines.append(
            f"| {bname} | {label} | {r['backup hooks']:.2f} | {r['backup_data']:.2f} | {show(added[0], '{:.1f}')} "
            f"| {show(calls[0], '{:.1f}')} | {r['backup cleanup']:.2f} | {r['restore hooks']:.2f} "
            f"| {r['restore_data']:.2f} | {show(added[1], '{:.1f}')} | {show(calls[1], '{:.1f}')} |")
    lines += ["", "Added ms/object of each run against the local lanes of the same run: median (range). "
              "Added CPU: the machine's busy CPU time over the lanes, per object, against the local lanes' "
              f"(where the lanes keep all {os.cpu_count()} cores busy, the wall time added per object is "
              f"about the CPU added x {lanes} lanes / {os.cpu_count()} cores).", "",
              "| build | backend | backup_data added ms/object | restore_data added ms/object "
              "| backup_data added CPU ms/object | restore_data added CPU ms/object |",
              "|---|---|---:|---:|---:|---:|"]
    for (bname, label), runs in per_run.items():
        cells = []
        for i in range(4):
            v = sorted(x[i] for x in runs)
            d = 1 if i < 2 else 2
            cells.append(f"{v[len(v) // 2]:.{d}f} ({v[0]:.{d}f} to {v[-1]:.{d}f})")
        lines.append(f"| {bname} | {label} | {' | '.join(cells)} |")
    print("\n".join(lines))
    p = plt()
    fig, ax = p.subplots(figsize=(9, 4.5))
    groups = [(b, l) for b, _ in builds for l, _ in lane_backends(b)]
    phases = [("backup hooks", "#bbbbbb"), ("backup_data", "#1f77b4"), ("backup cleanup", "#888888"),
              ("restore hooks", "#dddddd"), ("restore_data", "#ff7f0e"), ("restore cleanup", "#666666")]
    for gi, g in enumerate(groups):
        r = results[g]
        bottom = 0
        for phase, color in phases:
            ax.bar(gi, r[phase], bottom=bottom, color=color, label=phase if gi == 0 else None)
            bottom += r[phase]
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{l.split(' broker')[0]}\n{'before' if b == 'baseline' else 'now'}"
                        f"{' broker' + l.split(' broker')[1] if ' broker' in l else ''}"
                        for b, l in groups], fontsize=8)
    ax.set_ylabel("seconds (wall, stacked phases)")
    ax.set_title(f"per-table backup and restore: {lanes} lanes x {args.objects} small objects")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    save(args.out, "per_table_lanes", lines, fig)


# ---------------------------------------------------------------- hooks

class MockFiller:
    """Writes small files into a mock system through its C ABI, in this process."""

    def __init__(self, root):
        os.environ["DDBOOST_MOCK_ROOT"] = root
        for k in ("DDBOOST_MOCK_LATENCY_MS", "DDBOOST_MOCK_CONNECT_MS", "DDBOOST_MOCK_TRACE"):
            os.environ.pop(k, None)
        self.lib = ctypes.CDLL(bl.MOCK_LIB)
        inst, conn = ctypes.c_int(-1), ctypes.c_int(-1)
        self.check(self.lib.ddp_init(b"bench"), "init")
        self.check(self.lib.ddp_instance_create(ctypes.c_uint32(64 << 20), None, ctypes.byref(inst)), "instance")
        self.check(self.lib.ddp_connect_with_user_pwd(inst, bl.HOST.encode(), None, bl.USER.encode(),
                                                      bl.PASSWORD.encode(), ctypes.byref(conn)), "connect")
        self.conn = conn

    @staticmethod
    def check(rc, what):
        if rc != 0:
            raise RuntimeError(f"mock {what} failed: {rc}")

    def put(self, path, data):
        class Path(ctypes.Structure):
            _fields_ = [("su_name", ctypes.c_char_p), ("path_name", ctypes.c_char_p)]
        p = Path(bl.STORAGE_UNIT.encode(), path.encode())
        fd, n = ctypes.c_int(-1), ctypes.c_uint64(0)
        self.check(self.lib.ddp_open_file(self.conn, ctypes.byref(p), 2 | 4, 0o600, ctypes.byref(fd)), "open")
        self.check(self.lib.ddp_write(fd, data, ctypes.c_uint64(len(data)), ctypes.c_uint64(0), ctypes.byref(n)),
                   "write")
        self.check(self.lib.ddp_close_file(fd), "close")


def fill(w, start, end, filler):
    """Objects start..end and their records, as the plugin leaves them (the
    first is the backup's config, which setup_plugin_for_restore looks for)."""
    for i in range(start, end):
        name = f"gpbackup_{i % 2}_{TS}_{16384 + i}" if i else f"gpbackup_{TS}_config.yaml"
        for n in (name, f".{name}.checksum"):
            if filler:
                filler.put(f"{folder('gpdb')}/{n}", b"x" * 100)
            else:
                with open(os.path.join(folder(w.store), n), "wb") as f:
                    f.write(b"x" * 100)


HOOKS = [("setup_plugin_for_backup", "coordinator"), ("setup_plugin_for_restore", "coordinator"),
         ("cleanup_plugin_for_backup", "segment"), ("cleanup_plugin_for_restore", "coordinator")]


def part_hooks(args, builds, work):
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for label, latency in [b for b in BACKENDS if b[1] != 0]:
        base = os.path.join(work, f"hooks-{label.replace(' ', '')}")
        w = World(base, bl.PLUGIN, latency)
        w.run(["setup_plugin_for_backup", w.cfg, w.local_dir(-1), "coordinator"], w.env())
        filler = None
        if latency is not None:
            filler = MockFiller(w.root)
        have = 0
        for size in sizes:
            fill(w, have, size, filler)
            have = size
            for bname, plugin in builds:
                w.plugin = plugin
                trace = os.path.join(work, "trace-hooks") if latency is not None else None
                for hook, scope in HOOKS:
                    content = -1 if scope == "coordinator" else 0
                    a = [hook, w.cfg, w.local_dir(content), scope] + ([] if content < 0 else ["0"])
                    secs = timed(lambda: w.run(a, w.env(trace)))
                    calls = appliance_calls(trace) if trace else None
                    rows.append((bname, label, size, hook, secs, calls))
                    print(f"  {bname:8} {label:9} {size:6} objects  {hook:27} {secs:7.3f} s  "
                          f"{'' if calls is None else f'{calls} calls'}", flush=True)
        bl.remove(base)
    lines = [
        "Each hook once (setup hooks for the coordinator, cleanup_plugin_for_backup in scope segment), with N "
        "objects and their checksum records in the backup folder; appliance calls from DDBOOST_MOCK_TRACE at "
        f"5 ms per call, a login {CONNECT_MS} ms more.",
        "",
        "| build | backend | hook | " + " | ".join(f"{s:,} objects s (calls)" for s in sizes) + " |",
        "|---|---|---|" + "---:|" * len(sizes),
    ]
    for bname, _ in builds:
        for label, latency in [b for b in BACKENDS if b[1] != 0]:
            for hook, _ in HOOKS:
                cells = []
                for s in sizes:
                    r = next(r for r in rows if r[:4] == (bname, label, s, hook))
                    cells.append(f"{r[4]:.3f}" + ("" if r[5] is None else f" ({r[5]})"))
                lines.append(f"| {bname} | {label} | {hook} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    p = plt()
    fig, ax = p.subplots(figsize=(8, 4.5))
    for bname, _ in builds:
        for hook, _ in HOOKS:
            ys = [next(r[4] for r in rows if r[:4] == (bname, "mock 5 ms", s, hook)) for s in sizes]
            ax.plot(sizes, ys, marker="o", linestyle="--" if bname == "baseline" else "-",
                    label=f"{hook} ({'before' if bname == 'baseline' else 'now'})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("objects in the backup folder")
    ax.set_ylabel("seconds per hook (mock, 5 ms per call)")
    ax.set_title("hook time against the size of the backup")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(args.out, "per_table_hooks", lines, fig)


def main():
    global CONNECT_MS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="lanes,hooks")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--segments", type=int, default=2)
    ap.add_argument("--objects", type=int, default=12)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--baseline")
    ap.add_argument("--connect-ms", default=CONNECT_MS)
    ap.add_argument("--out", default=os.path.join(bl.ROOT, "docs", "bench"))
    ap.add_argument("--dir", default=None)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--backends", default=",".join(SHORT.values()),
                    help="lanes on: local (always), mock0, mock5, mock0-broker, mock5-broker")
    ap.add_argument("--connections", default="0",
                    help="broker_connections of the broker backends, each a backend of its own (0: the default)")
    args = ap.parse_args()
    CONNECT_MS = str(args.connect_ms)
    WANTED.clear()
    WANTED.update(["local"] + args.backends.split(","))
    CONNECTIONS[:] = [int(n) for n in args.connections.split(",")]
    plt()  # fail early when charts cannot be drawn
    if not args.no_build:
        bl.build()
    builds = [("plugin", bl.PLUGIN)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    work = bl.workdir("bench_per_table-", args.dir)
    try:
        for part in args.parts.split(","):
            print(f"== {part}", flush=True)
            {"lanes": part_lanes, "hooks": part_hooks}[part](args, builds, work)
    finally:
        bl.remove(work)


if __name__ == "__main__":
    main()
