#!/usr/bin/env python3
"""Isolated synthetic stream test: parallel backup_data streams into one DD system.

The method of the field results (docs: "isolated synthetic stream test"):
random binary data is piped straight into the plugin, the way gpbackup_helper
feeds it, with no gpbackup in the way, so only the plugin plus the (mock)
DD Boost library are measured.

For each stream count S (default 1, 2, 4, 10, 20) and each run, a fresh
emulated Data Domain system (host dd1, storage unit GPDB) is created and S
concurrent processes are started:

  cat STREAM_i | gpbackup_ddboost_plugin backup_data CFG /data/gpseg<i>/backups/.../gpbackup_<i>_<ts>

Each stream gets its own random data (generated once into files kept in the
page cache, so generation is not measured and no stream deduplicates against
another). Each configuration runs without a bandwidth cap and with
DDBOOST_MOCK_STREAM_MBPS=<cap> (default 150 MB/s per stream, what one stream
reaches on a real appliance).

Default sizes: 256 MiB per stream, but at most --total-mib (2048) per run, so
10 streams write 204.8 MiB each and 20 streams 102.4 MiB each.
--mib-per-stream fixes the size for every stream count.

Table columns (MB/s = 10^6 bytes per second; the median run of --runs, by aggregate):
  streams        concurrent backup_data processes
  cap            per-stream cap in MB/s ("none" = uncapped)
  MiB/stream     bytes fed to each process
  aggregate      all bytes / (last process exit - first process start)
  agg range      lowest-highest aggregate over the runs
  per-stream     mean over streams of bytes / that stream's own wall time
  min stream     the slowest stream's MB/s
  CPU s/GiB      plugin CPU time (user+sys, all processes) per GiB written
  peak RSS       largest peak RSS of any single plugin process (all runs)
  other CPU      CPUs used by other processes during the run (max over runs);
                 well above 0.1 means the run shared the machine: rerun when idle
Per-stream and aggregate MB/s include process start-up, login and close.
After each run the mock's totals are checked: logical bytes written must equal
the bytes fed (plus the plugin's small checksum files), and unique segment
bytes must be about the same (no dedup between streams).

  scripts/bench_ddboost_streams.py [--streams 1,2,4,10,20] [--mib-per-stream N]
      [--total-mib 2048] [--cap 150] [--runs 3] [--system-mbps R] [--wait-idle 120]
      [--dir /tmp] [--no-build]
"""
import argparse
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

TIMESTAMP = "20250101120000"


def ensure_size(path, size, seed):
    """Makes path exactly size bytes of random data (truncating or appending)."""
    have = os.path.getsize(path) if os.path.exists(path) else 0
    if have > size:
        os.truncate(path, size)
    elif have < size:
        rnd = random.Random(f"{seed}/{have}")
        with open(path, "ab") as f:
            left = size - have
            while left > 0:
                n = min(left, 4 * bl.MiB)
                f.write(rnd.randbytes(n))
                left -= n


def run_streams(work, files, size, cap, system_mbps, run_id):
    """One run: len(files) concurrent backup_data processes into a fresh system.
    Returns dict with aggregate/per-stream MB/s, CPU seconds and peak RSS."""
    root = os.path.join(work, f"dd_{run_id}")
    bl.create_system(root)
    cfg = bl.write_config(os.path.join(work, "cfg.yaml"))
    extra = {}
    if cap:
        extra["DDBOOST_MOCK_STREAM_MBPS"] = str(cap)
    if system_mbps:
        extra["DDBOOST_MOCK_SYSTEM_MBPS"] = str(system_mbps)
    env = bl.plugin_env(os.path.join(work, "home"), root, extra)
    bl.settle()
    other = bl.OtherLoad().start()
    procs = []
    ends = [None] * len(files)
    stats = [os.path.join(work, f"stats_{i}") for i in range(len(files))]
    start = time.perf_counter()
    for i, src in enumerate(files):
        cat = subprocess.Popen(["cat", src], stdout=subprocess.PIPE)
        plug = subprocess.Popen(
            bl.measured([bl.PLUGIN, "backup_data", cfg, bl.key_path(i, TIMESTAMP)], stats[i]),
            stdin=cat.stdout, env=env)
        cat.stdout.close()
        procs.append((cat, plug))

    def waiter(i):
        cat, plug = procs[i]
        rc = plug.wait()
        ends[i] = (time.perf_counter(), rc, cat.wait())

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other = other.stop()
    failed = [i for i, (_, rc, crc) in enumerate(ends) if rc != 0 or crc != 0]
    if failed:
        raise RuntimeError(f"stream(s) {failed} failed (see {env['HOME']}/gpAdminLogs)")
    last = max(e[0] for e in ends)
    per = [size / (e[0] - start) / bl.MB for e in ends]
    rss, cpu = 0, 0.0
    for f in stats:
        r, c = bl.read_stats(f)
        rss, cpu = max(rss, r), cpu + c
    t = bl.totals(root)
    total = size * len(files)
    # The plugin also writes a small checksum file next to each data file.
    written = t.get("logical_bytes_written", 0)
    if not total <= written <= total + 4096 * len(files):
        raise RuntimeError(f"mock wrote {written} bytes, expected {total} (+ checksum files)")
    unique = t.get("unique_segment_bytes", 0) / total
    bl.remove(root)
    return {
        "aggregate": total / (last - start) / bl.MB,
        "per_mean": sum(per) / len(per),
        "per_min": min(per),
        "cpu_per_gib": cpu / (total / 2**30),
        "rss_kib": rss,
        "size": size,
        "other": other,
        "unique": unique,
    }


def main():
    ap = argparse.ArgumentParser(
        description="Parallel backup_data streams of random data into one mock DD system.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--streams", default="1,2,4,10,20", help="comma-separated stream counts (default 1,2,4,10,20)")
    ap.add_argument("--mib-per-stream", type=float, default=None,
                    help="MiB fed to each stream (default: min(256, total-mib / streams))")
    ap.add_argument("--total-mib", type=float, default=2048,
                    help="upper bound of MiB per run when --mib-per-stream is not given (default 2048)")
    ap.add_argument("--cap", type=float, default=150,
                    help="DDBOOST_MOCK_STREAM_MBPS for the capped runs; 0 = uncapped runs only (default 150)")
    ap.add_argument("--system-mbps", type=float, default=0,
                    help="also set DDBOOST_MOCK_SYSTEM_MBPS (shared system cap) in every run (default off)")
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration; the median is shown (default 3)")
    ap.add_argument("--dir", default=None, help="parent of the temporary work directory (default $TMPDIR or /tmp)")
    ap.add_argument("--wait-idle", type=float, default=120,
                    help="seconds to wait for other CPU load to go away before starting (default 120)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    a = ap.parse_args()
    counts = [int(x) for x in a.streams.split(",") if x.strip()]
    if not counts or min(counts) < 1:
        sys.exit("--streams: positive integers")
    bl.need_gnu_time()
    if not a.no_build:
        bl.build()

    def stream_bytes(s):
        mib = a.mib_per_stream if a.mib_per_stream else min(256.0, a.total_mib / s)
        return int(mib * bl.MiB)

    caps = [0] + ([a.cap] if a.cap else [])
    work = bl.workdir("bench_ddboost_streams.", a.dir)
    results = {}
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        for s in counts:
            for i in range(s):
                ensure_size(os.path.join(data, f"stream_{i}.bin"), stream_bytes(s), seed=i)
        bl.settle()
        busy = bl.wait_quiet(a.wait_idle)
        run_id = 0
        for s in counts:
            size = stream_bytes(s)
            files = [os.path.join(data, f"stream_{i}.bin") for i in range(s)]
            for i, f in enumerate(files):
                ensure_size(f, size, seed=i)
            for r in range(a.runs):
                for cap in caps:
                    run_id += 1
                    res = run_streams(work, files, size, cap, a.system_mbps, run_id)
                    print(f"  streams={s} cap={cap or 'none'} run={r + 1}: aggregate {res['aggregate']:.0f} MB/s, "
                          f"per-stream {res['per_mean']:.0f} MB/s, peak RSS {res['rss_kib'] / 1024:.1f} MiB",
                          file=sys.stderr, flush=True)
                    results.setdefault((s, cap), []).append(res)
        print()
        print(f"isolated synthetic stream test: random data, one mock DD system, median of {a.runs} run(s); "
              f"MB/s = 10^6 bytes/s; {os.cpu_count()} CPUs"
              + (f"; system cap {a.system_mbps:g} MB/s" if a.system_mbps else ""))
        hdr = (f"{'streams':>7} {'cap':>6} {'MiB/stream':>10} {'aggregate':>10} {'agg range':>10} {'per-stream':>10} "
               f"{'min stream':>10} {'CPU s/GiB':>9} {'peak RSS':>10} {'other CPU':>9}")
        print(hdr)
        print("-" * len(hdr))
        for s in counts:
            for cap in caps:
                runs = sorted(results[(s, cap)], key=lambda x: x["aggregate"])
                r = runs[len(runs) // 2]
                rng = f"{runs[0]['aggregate']:.0f}-{runs[-1]['aggregate']:.0f}"
                rss = max(x["rss_kib"] for x in runs)
                other = max(x["other"] for x in runs)
                print(f"{s:>7} {(f'{cap:g}' if cap else 'none'):>6} {r['size'] / bl.MiB:>10.1f} "
                      f"{r['aggregate']:>10.0f} {rng:>10} {r['per_mean']:>10.0f} {r['per_min']:>10.0f} "
                      f"{r['cpu_per_gib']:>9.2f} {rss / 1024:>6.1f} MiB {other:>9.2f}")
        worst = min(x["unique"] for runs in results.values() for x in runs)
        if busy > 0.15:
            print(f"warning: the machine was {busy:.0%} busy with other work at the start")
        print(f"unique segment bytes / bytes written (should be ~1, no dedup between streams): min {worst:.3f}")
    finally:
        bl.remove(work)


if __name__ == "__main__":
    main()
