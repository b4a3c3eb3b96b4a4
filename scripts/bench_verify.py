#!/usr/bin/env python3
"""verify_backup against restore_data on the same backup (local backend).

Stores a backup of N segment objects (default 4 x 512 MiB = 2 GiB of CSV-like
table rows) with backup_data, then times, alternating runs:

  verify:           gpbackup_ddboost_plugin verify_backup CFG TS     (reads 4 objects at once)
  restore, serial:  restore_data CFG KEY > /dev/null, one object after the other
  restore, 4 at once: the N restore_data processes started together
                    (as gprestore's helpers read the segments of one host)

Each is run with the objects in the page cache ("warm") and, as root and with
--cold, after dropping the page cache ("cold": the disk's read speed). Prints
seconds and MB/s (10^6 bytes/s) for the best of --runs runs, and peak RSS.

  scripts/bench_verify.py [--objects 4] [--size-mib 512] [--runs 3] [--dir /tmp] [--cold]
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.path.join(ROOT, "target", "release", "gpbackup_ddboost_plugin")
TS = "20250101120000"


def rows_block():
    rnd = random.Random(7)
    return "".join(
        f"{i},{rnd.randrange(10**9)},customer_{rnd.randrange(10**6):07d},{rnd.random():.6f},2025-01-{1 + i % 28:02d}\n"
        for i in range(250_000)
    ).encode()


def store_object(cfg, key, mib, rows, env, seed):
    """Streams `mib` MiB of table rows into backup_data."""
    p = subprocess.Popen([PLUGIN, "backup_data", cfg, key], stdin=subprocess.PIPE, env=env)
    left, n = mib << 20, 0
    while left > 0:
        part = (b"%d|%d|" % (seed, n)) + rows
        p.stdin.write(part[:left])
        left -= len(part)
        n += 1
    p.stdin.close()
    if p.wait() != 0:
        sys.exit(f"backup_data {key} failed")


def key(seg):
    return f"/data/gpseg{seg}/backups/{TS[:8]}/{TS}/gpbackup_{seg}_{TS}"


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm(store):
    for d, _, files in os.walk(store):
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                while f.read(1 << 20):
                    pass


def timed(cmds, env):
    """Starts every command at once (stdout to /dev/null); returns (seconds,
    the largest peak RSS in KiB)."""
    start = time.perf_counter()
    procs = []
    for i, c in enumerate(cmds):
        rss = os.path.join(env["HOME"], f"rss{i}")
        procs.append((subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss] + c,
                                       stdout=subprocess.DEVNULL, env=env), rss))
    for p, _ in procs:
        if p.wait() != 0:
            sys.exit(f"failed: {p.args}")
    secs = time.perf_counter() - start
    peak = 0
    for _, rss in procs:
        with open(rss) as f:
            peak = max(peak, int(f.read().split()[-1]))
    return secs, peak


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=4)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--cold", action="store_true", help="also measure with the page cache dropped (root)")
    args = ap.parse_args()
    if args.cold and os.geteuid() != 0:
        sys.exit("--cold needs root (it writes /proc/sys/vm/drop_caches)")
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "gpbackup_ddboost_plugin"],
                   cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="bench_verify_", dir=args.dir)
    try:
        store = os.path.join(work, "store")
        home = os.path.join(work, "home")
        os.makedirs(store)
        os.makedirs(home)
        cfg = os.path.join(work, "cfg.yaml")
        with open(cfg, "w") as f:
            f.write(f"executablepath: {PLUGIN}\noptions:\n  backend: local\n  directory: {store}\n  fsync: \"off\"\n")
        env = dict(os.environ, HOME=home)
        rows = rows_block()
        for seg in range(args.objects):
            store_object(cfg, key(seg), args.size_mib, rows, env, seg)
        total = args.objects * (args.size_mib << 20)
        print(f"backup: {args.objects} objects x {args.size_mib} MiB = {total / 2**30:.2f} GiB "
              f"in {store}; {args.runs} runs each, best shown")

        cases = [
            ("verify_backup (4 readers)", [[[PLUGIN, "verify_backup", cfg, TS]]]),
            ("restore_data, one after the other",
             [[[PLUGIN, "restore_data", cfg, key(s)]] for s in range(args.objects)]),
            (f"restore_data, {args.objects} at once",
             [[[PLUGIN, "restore_data", cfg, key(s)] for s in range(args.objects)]]),
        ]
        modes = ["warm"] + (["cold"] if args.cold else [])
        best = {}
        for _ in range(args.runs):
            for mode in modes:
                for name, steps in cases:
                    secs, peak = 0.0, 0
                    for cmds in steps:
                        if mode == "cold":
                            drop_caches()
                        else:
                            warm(store)
                        s, p = timed(cmds, env)
                        secs += s
                        peak = max(peak, p)
                    b = best.get((mode, name))
                    if b is None or secs < b[0]:
                        best[(mode, name)] = (secs, peak)
        for mode in modes:
            print(f"\npage cache {mode}:")
            base = best[(mode, cases[0][0])][0]
            for name, _ in cases:
                secs, peak = best[(mode, name)]
                print(f"  {name:40s} {secs:7.3f} s  {total / secs / 1e6:8.1f} MB/s  "
                      f"x{secs / base:4.2f} of verify  peak RSS {peak / 1024:.1f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
