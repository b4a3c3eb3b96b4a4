#!/usr/bin/env python3
"""A large object through the connection broker against the same without it.

backup_data of one object of --mib MiB (random bytes, read from a file) and
restore_data of it (to /dev/null), on the mock Data Domain at 0 ms per call,
with `broker: off` (the process works directly) and with the broker (started
by setup_plugin_for_backup in scope segment_host, as gpbackup runs it),
side by side in each run; the best of --runs of each. CPU is the process's
(and with the broker, the broker's growth over the request, from
/proc/PID/stat) user + system time; page faults likewise (minor faults).

After the runs of each build with the broker: the broker's resident memory
(VmRSS) right after the large objects and --settle seconds later (first run),
right after a burst of --burst concurrent
backup_data of 1 MiB each, and --settle seconds later (the memory it keeps
between bursts).

With --baseline BIN (an earlier build) that build runs too, side by side.

  scripts/bench_broker_large.py [--mib 256] [--runs 5] [--burst 32]
      [--settle 3] [--baseline BIN] [--no-build] [--dir /tmp]
"""
import argparse
import concurrent.futures as cf
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import bench_per_table as pt  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(CPU seconds user + system, minor faults) of process `pid`, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is field 3; minflt 10, utime 14, stime 15.
    minflt, utime, stime = int(fields[7]), int(fields[11]), int(fields[12])
    return (utime + stime) / TICK, minflt


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def broker_pid(cfg):
    """The pid of the broker serving `cfg` (started by the setup hook)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 3 and argv[1] == b"broker" and argv[2] == cfg.encode():
            return int(d)
    raise RuntimeError(f"no broker serves {cfg}")


def measured(w, args, env, stdin, stdout, broker):
    """Runs one command; (wall s, CPU s, minor faults), the broker's share included."""
    before = proc_stat(broker) if broker else (0.0, 0)
    t = time.perf_counter()
    p = subprocess.Popen([w.plugin] + args, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise RuntimeError(f"{args[0]} failed: {err.decode(errors='replace').strip()}")
    cpu, flt = ru.ru_utime + ru.ru_stime, ru.ru_minflt
    if broker:
        # The broker answers before its last steps; they are part of the cost.
        time.sleep(0.05)
        after = proc_stat(broker)
        cpu += after[0] - before[0]
        flt += after[1] - before[1]
    return wall, cpu, flt


def one_run(plugin, broker, data_file, work, tag, settle):
    """backup_data and restore_data of the large object; a dict of results."""
    base = os.path.join(work, tag)
    w = pt.World(base, plugin, 0, broker=broker)
    env = w.env()
    pid = None
    if broker:
        w.run(["setup_plugin_for_backup", w.cfg, w.local_dir(0), "segment_host", "0"], env)
        pid = broker_pid(w.cfg)
    key = f"{w.local_dir(0)}/gpbackup_0_{pt.TS}_16384"
    res = {}
    try:
        if broker:
            # A broker in use: its connections logged in (by a small
            # object's write and read, as in a per-table backup).
            small = f"{w.local_dir(0)}/gpbackup_0_{pt.TS}_16385"
            w.run(["backup_data", w.cfg, small], env, b"x" * 20000)
            w.run(["restore_data", w.cfg, small], env)
        with open(data_file, "rb") as src:
            res["backup"] = measured(w, ["backup_data", w.cfg, key], env, src, subprocess.DEVNULL, pid)
        with open(os.devnull, "wb") as sink:
            res["restore"] = measured(w, ["restore_data", w.cfg, key], env, subprocess.DEVNULL, sink, pid)
        if broker:
            res["rss large"] = rss_kib(pid)
            time.sleep(settle)
            res["rss large settled"] = rss_kib(pid)
    finally:
        if broker:
            w.run(["cleanup_plugin_for_backup", w.cfg, w.local_dir(0), "segment_host", "0"], env)
        bl.remove(base)
    return res


def burst(plugin, work, tag, n, settle):
    """The broker's VmRSS (KiB) before, right after and `settle` s after n
    concurrent backup_data of 1 MiB each."""
    base = os.path.join(work, tag)
    w = pt.World(base, plugin, 0, broker=True)
    env = w.env()
    w.run(["setup_plugin_for_backup", w.cfg, w.local_dir(0), "segment_host", "0"], env)
    try:
        pid = broker_pid(w.cfg)
        first = rss_kib(pid)
        data = random.Random(3).randbytes(1 << 20)

        def one(i):
            w.run(["backup_data", w.cfg, f"{w.local_dir(0)}/gpbackup_0_{pt.TS}_{20000 + i}"], env, data)
        with cf.ThreadPoolExecutor(max_workers=n) as ex:
            list(ex.map(one, range(n)))
        time.sleep(0.1)
        right_after = rss_kib(pid)
        time.sleep(settle)
        later = rss_kib(pid)
    finally:
        w.run(["cleanup_plugin_for_backup", w.cfg, w.local_dir(0), "segment_host", "0"], env)
        bl.remove(base)
    return first, right_after, later


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--burst", type=int, default=32)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--baseline")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        bl.build()
    builds = [("plugin", bl.PLUGIN)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    work = bl.workdir("bench_broker_large-", args.dir)
    try:
        data_file = os.path.join(work, "object")
        with open(data_file, "wb") as f:
            rnd = random.Random(256)
            for _ in range(args.mib):
                f.write(rnd.randbytes(1 << 20))
        best = {}
        rss = {}
        for run in range(args.runs):
            # Side by side, the order turned around every other run.
            order = [(b, p, m) for b, p in builds for m in (False, True)]
            if run % 2:
                order.reverse()
            for bname, plugin, broker in order:
                r = one_run(plugin, broker, data_file, work, f"{bname}-{int(broker)}-{run}", args.settle if run == 0 else 0)
                mode = "broker" if broker else "off"
                line = []
                for cmd in ("backup", "restore"):
                    k = (bname, mode, cmd)
                    prev = best.get(k)
                    best[k] = r[cmd] if prev is None else tuple(min(a, b) for a, b in zip(prev, r[cmd]))
                    line.append(f"{cmd} {r[cmd][0]:6.3f} s {r[cmd][1]:5.2f} CPU-s {r[cmd][2]:7d} faults")
                if broker and run == 0:
                    rss[bname] = (r["rss large"], r["rss large settled"])
                print(f"  run {run} {bname:8} {mode:6} " + "  ".join(line), flush=True)
        print(f"\n{args.mib} MiB object, mock at 0 ms, best of {args.runs} (wall and CPU each their best)\n")
        print("| build | command | off wall s | broker wall s | wall ratio | off CPU s | broker CPU s "
              "| CPU ratio | off faults | broker faults |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for bname, _ in builds:
            for cmd in ("backup", "restore"):
                off, on = best[(bname, "off", cmd)], best[(bname, "broker", cmd)]
                print(f"| {bname} | {cmd}_data | {off[0]:.3f} | {on[0]:.3f} | {on[0] / off[0]:.2f} "
                      f"| {off[1]:.2f} | {on[1]:.2f} | {on[1] / max(off[1], 1e-9):.2f} | {off[2]} | {on[2]} |")
        if args.burst:
            print(f"\nBroker VmRSS MiB: right after and {args.settle:g} s after the {args.mib} MiB objects (first run); "
                  f"before, right after and {args.settle:g} s after {args.burst} concurrent backup_data of 1 MiB\n")
            print("| build | after large | settled | before burst | after burst | settled |")
            print("|---|---:|---:|---:|---:|---:|")
            for bname, plugin in builds:
                a, b, c = burst(plugin, work, f"burst-{bname}", args.burst, args.settle)
                big, calm = rss[bname]
                print(f"| {bname} | {big / 1024:.1f} | {calm / 1024:.1f} | {a / 1024:.1f} | {b / 1024:.1f} | {c / 1024:.1f} |")
    finally:
        bl.remove(work)


if __name__ == "__main__":
    main()
