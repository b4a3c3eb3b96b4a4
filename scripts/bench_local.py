#!/usr/bin/env python3
"""Local-backend benchmark: the plugin against `cat` on the same stream.

Generates one stream (default 2 GiB of CSV-like table rows, kept in the page
cache), then measures side by side, alternating runs:

  backup:  cat SRC | gpbackup_ddboost_plugin backup_data CFG KEY
      vs   cat SRC | cat > FILE
  restore: gpbackup_ddboost_plugin restore_data CFG KEY | cat > /dev/null
      vs   cat FILE | cat > /dev/null

The plugin runs with `fsync: off` against plain cat, and with the default
`fsync: on` against `cat > FILE && sync FILE`. Prints MB/s (best of N runs),
the ratio plugin/cat, and the plugin's peak RSS.

With `--baseline BIN`, another build of the plugin (an earlier release, say)
runs in the same loop against its own store, and its figures and the ratio
new/baseline are printed too.

  scripts/bench_local.py [--size-mib 2048] [--runs 3] [--dir /tmp] [--baseline BIN]
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


def generate(path, mib):
    rnd = random.Random(7)
    rows = "".join(
        f"{i},{rnd.randrange(10**9)},customer_{rnd.randrange(10**6):07d},{rnd.random():.6f},2025-01-{1 + i % 28:02d}\n"
        for i in range(250_000)
    ).encode()
    left, n = mib << 20, 0
    with open(path, "wb") as f:
        while left > 0:
            part = (b"%d|" % n) + rows
            f.write(part[:left])
            left -= len(part)
            n += 1


def measured(cmd, rss_file):
    """Wraps cmd so GNU time writes its peak RSS (KiB) to rss_file."""
    return ["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd


def peak_kib(rss_file):
    with open(rss_file) as f:
        return int(f.read().split()[-1])


def warm(*paths):
    """Reads files so they are in the page cache (the kernel may have
    reclaimed them since they were written)."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass


def timed_pipeline(producer, consumer, stdout=None, inputs=(), replaces=()):
    """Runs producer | consumer with `inputs` in the page cache, the files in
    `replaces` removed first (both sides then write a new file, and the page
    cache does not fill up with old copies) and a clean writeback state;
    returns seconds."""
    for p in replaces:
        if os.path.exists(p):
            os.remove(p)
    warm(*inputs)
    os.sync()
    start = time.perf_counter()
    p1 = subprocess.Popen(producer, stdout=subprocess.PIPE)
    p2 = subprocess.Popen(consumer, stdin=p1.stdout, stdout=stdout)
    p1.stdout.close()
    r2 = p2.wait()
    r1 = p1.wait()
    secs = time.perf_counter() - start
    if r1 != 0 or r2 != 0:
        sys.exit(f"failed: {producer} | {consumer}")
    return secs


def shell(cmd):
    return ["bash", "-c", cmd]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--baseline", help="another plugin binary to measure in the same runs")
    a = ap.parse_args()
    if not os.path.exists("/usr/bin/time"):
        sys.exit("needs GNU time: apt-get install time")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    plugins = {"plugin": PLUGIN}
    if a.baseline:
        plugins["baseline"] = os.path.abspath(a.baseline)
    work = tempfile.mkdtemp(prefix="bench_local.", dir=a.dir)
    try:
        src = os.path.join(work, "stream.csv")
        generate(src, a.size_mib)
        os.environ["HOME"] = os.path.join(work, "home")
        key = os.path.join(work, "seg/backups/20250101/20250101120000/gpbackup_0_20250101120000")
        cfgs, stored = {}, {}
        for who, binary in plugins.items():
            store = os.path.join(work, f"store_{who}")
            os.makedirs(store)
            stored[who] = os.path.join(store, "backups/20250101/20250101120000/gpbackup_0_20250101120000")
            for fs in ("off", "on"):
                cfgs[who, fs] = os.path.join(work, f"cfg_{who}_{fs}.yaml")
                with open(cfgs[who, fs], "w") as f:
                    f.write(f"executablepath: {binary}\noptions:\n  backend: local\n  directory: {store}\n  fsync: \"{fs}\"\n")
        out = os.path.join(work, "cat_copy.csv")
        size = os.path.getsize(src)
        best = {}
        rss = {}

        def record(name, secs, peak=None):
            best[name] = min(best.get(name, 1e9), secs)
            if peak is not None:
                rss[name] = max(rss.get(name, 0), peak)

        rf = os.path.join(work, "rss")
        for _ in range(a.runs):
            for who, binary in plugins.items():
                for fs in ("off", "on"):
                    s = timed_pipeline(["cat", src], measured([binary, "backup_data", cfgs[who, fs], key], rf), inputs=[src], replaces=[stored[who]])
                    record(f"{who} backup_data (fsync {fs})", s, peak_kib(rf))
            s = timed_pipeline(["cat", src], shell(f"cat > {out}"), inputs=[src], replaces=[out])
            record("cat > file", s)
            s = timed_pipeline(["cat", src], shell(f"cat > {out} && sync {out}"), inputs=[src], replaces=[out])
            record("cat > file && sync file", s)
            for who, binary in plugins.items():
                s = timed_pipeline(measured([binary, "restore_data", cfgs[who, "off"], key], rf), ["cat"], stdout=subprocess.DEVNULL, inputs=[stored[who]])
                record(f"{who} restore_data", s, peak_kib(rf))
            s = timed_pipeline(["cat", out], ["cat"], stdout=subprocess.DEVNULL, inputs=[out])
            record("cat file", s)
        mbps = {k: size / v / 1e6 for k, v in best.items()}
        print(f"stream: {size / 2**20:.0f} MiB, best of {a.runs} runs, MB/s = 10^6 bytes/s")
        print(f"{'what':36} {'MB/s':>8} {'ratio':>7} {'vs base':>8} {'peak RSS':>10}")
        rows = []
        for who in plugins:
            rows.append((f"{who} backup_data (fsync off)", "cat > file"))
        rows.append(("cat > file", None))
        for who in plugins:
            rows.append((f"{who} backup_data (fsync on)", "cat > file && sync file"))
        rows.append(("cat > file && sync file", None))
        for who in plugins:
            rows.append((f"{who} restore_data", "cat file"))
        rows.append(("cat file", None))
        for name, base in rows:
            ratio = f"{mbps[name] / mbps[base]:.2f}" if base else ""
            peak = f"{rss[name] / 1024:.1f} MiB" if name in rss else ""
            other = name.replace("plugin ", "baseline ", 1)
            vs = f"{mbps[name] / mbps[other]:.2f}" if name.startswith("plugin ") and other in mbps else ""
            print(f"{name:36} {mbps[name]:8.0f} {ratio:>7} {vs:>8} {peak:>10}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
