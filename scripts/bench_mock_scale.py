#!/usr/bin/env python3
"""Mock scale benchmark: one small object through the plugin on a new mock system and on
systems that already hold many objects.

For each system size N (default 0, 10000, 100000) the script creates a mock Data Domain
system and fills it with `ddboost-mock fill`: N objects of --fill-size bytes in the
backup folder the measured objects go to, each written with a container and index log of
its own and compacted as processes opening the system compact them (the state many
per-table `backup_data` processes leave). Then, round robin over the systems so that
machine noise falls on all of them alike, it runs --runs times:

  backup_data   gpbackup_ddboost_plugin backup_data CFG KEY < 20 KB of new table rows
  restore_data  gpbackup_ddboost_plugin restore_data CFG KEY > /dev/null (the same object)

through the plugin's release binary with no latency (DDBOOST_MOCK_LATENCY_MS unset), and
prints the median wall time of each (after --warmup discarded runs) and its ratio to the
new system's. Target: backup_data on 100,000 objects <= 1.2x the new system.

  scripts/bench_mock_scale.py [--objects 0,10000,100000] [--runs 41] [--warmup 3]
      [--size 20000] [--fill-size 20000] [--dir /tmp] [--no-build] [--keep]
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

TS = "20250101120000"
FOLDER = f"gpdb/backups/{TS[:8]}/{TS}"
PREFIX = f"gpbackup_0_{TS}_"


def rows(seed, size):
    rnd = random.Random(seed)
    out, n = [], 0
    while n < size:
        line = f"{seed},{n},{rnd.randrange(10**9)},{rnd.random() * 1000:.3f},2026-01-{rnd.randrange(1, 29):02d}\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


class System:
    def __init__(self, work, objects, fill_size):
        self.objects = objects
        self.root = os.path.join(work, f"dd_{objects}")
        bl.create_system(self.root)
        if objects:
            t0 = time.perf_counter()
            subprocess.run([bl.MOCK_ADMIN, "fill", "--root", self.root, "--host", bl.HOST,
                            "--storage-unit", bl.STORAGE_UNIT, "--folder", FOLDER,
                            "--objects", str(objects), "--size", str(fill_size),
                            "--prefix", PREFIX, "--first", "1000000"],
                           check=True, stderr=subprocess.DEVNULL)
            print(f"  filled {objects} objects in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        self.cfg = bl.write_config(os.path.join(work, f"plugin_{objects}.yaml"))
        self.env = bl.plugin_env(os.path.join(work, f"home_{objects}"), self.root)
        self.backup, self.restore = [], []

    def run(self, i, data_file, record):
        key = f"/data/gpseg0/backups/{TS[:8]}/{TS}/{PREFIX}{i}"
        with open(data_file, "rb") as f:
            t0 = time.perf_counter()
            subprocess.run([bl.PLUGIN, "backup_data", self.cfg, key], stdin=f, env=self.env, check=True)
            t1 = time.perf_counter()
        subprocess.run([bl.PLUGIN, "restore_data", self.cfg, key], stdout=subprocess.DEVNULL,
                       env=self.env, check=True)
        t2 = time.perf_counter()
        if record:
            self.backup.append(t1 - t0)
            self.restore.append(t2 - t1)


def main():
    ap = argparse.ArgumentParser(
        description="Time of one small backup_data / restore_data on mock systems of growing size.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--objects", default="0,10000,100000", help="system sizes, comma-separated (first is the reference)")
    ap.add_argument("--runs", type=int, default=41, help="measured runs per system (default 41)")
    ap.add_argument("--warmup", type=int, default=3, help="discarded runs per system first (default 3)")
    ap.add_argument("--size", type=int, default=20000, help="bytes per measured object (default 20000)")
    ap.add_argument("--fill-size", type=int, default=20000, help="bytes per fill object (default 20000)")
    ap.add_argument("--dir", default=None, help="parent of the work directory (default $TMPDIR or /tmp)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    sizes = [int(x) for x in a.objects.split(",") if x.strip()]
    if not a.no_build:
        bl.build()
    work = bl.workdir("bench_mock_scale.", a.dir)
    try:
        systems = []
        for n in sizes:
            print(f"system with {n} objects ...", file=sys.stderr, flush=True)
            systems.append(System(work, n, a.fill_size))
        total = a.warmup + a.runs
        inputs = []
        for i in range(total):
            path = os.path.join(work, f"in_{i}")
            with open(path, "wb") as f:
                f.write(rows(i, a.size))
            inputs.append(path)
        bl.settle()
        other = bl.OtherLoad().start()
        for i in range(total):
            for s in systems:
                s.run(i, inputs[i], i >= a.warmup)
        other = other.stop()

        ref = systems[0]
        rb, rr = statistics.median(ref.backup), statistics.median(ref.restore)
        print()
        print(f"mock scale: one {a.size}-byte object per process through the plugin's release binary, "
              f"no latency; median of {a.runs} runs (after {a.warmup} warm-up); other CPU load {other:.2f}")
        hdr = f"{'objects held':>12} {'backup_data ms':>15} {'x new':>6} {'restore_data ms':>16} {'x new':>6}"
        print(hdr)
        print("-" * len(hdr))
        for s in systems:
            b, r = statistics.median(s.backup), statistics.median(s.restore)
            print(f"{s.objects:>12} {b * 1000:>15.1f} {b / rb:>6.2f} {r * 1000:>16.1f} {r / rr:>6.2f}")
        last = systems[-1]
        ratio = statistics.median(last.backup) / rb
        print(f"target: backup_data at {last.objects} objects <= 1.2x new: {ratio:.2f}x "
              f"{'ok' if ratio <= 1.2 else 'MISSED'}")
    finally:
        if a.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            bl.remove(work)


if __name__ == "__main__":
    main()
