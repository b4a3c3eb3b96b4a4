#!/usr/bin/env python3
"""list_backups at a Data Domain's latency: how long a DBA waits for the list.

Fills one mock Data Domain with --backups backups of --objects data objects
each (per-table, 2 segments, gpbackup's five manifest files too): one backup is
stored through the plugin, the others are copies of its folder in the mock's
namespace (renamed to their own timestamps), which the mock serves like any
other file. Then times, at DDBOOST_MOCK_LATENCY_MS (default 5 ms per call):

  list_backups CFG            (finds the folders, reads each backup's config)
  list_backups CFG --sizes    (also lists and stats every object of every backup)

and counts the SDK calls of each with DDBOOST_MOCK_TRACE. --sizes costs calls per
object: at full scale and 5 ms it runs for an hour, so it is timed on
--sizes-backups backups (a second folder) and the full figure is extrapolated
from its call count (calls x latency + the time the same run takes at 0 ms).

  scripts/bench_list_backups.py [--backups 100] [--objects 2000] [--latency-ms 5] [--sizes-backups 2] [--no-sizes]
"""
import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402

SEGMENTS = 2


def config_yaml(ts, tables):
    fqns = "".join(f"  - public.t{i}\n" for i in range(tables))
    return (
        "backupdir: \"\"\nbackupversion: 1.30.0\ncompressed: false\ncompressiontype: gzip\n"
        f"databasename: bench\ndatabaseversion: 6.24.3\nsegmentcount: {SEGMENTS}\ndataonly: false\n"
        "incremental: false\nleafpartitiondata: false\nmetadataonly: false\n"
        "plugin: gpbackup_ddboost_plugin\npluginversion: 0.1.0\n"
        f"restoreplan:\n- timestamp: \"{ts}\"\n  tablefqns:\n{fqns}"
        f"singledatafile: false\ntimestamp: \"{ts}\"\nendtime: \"{ts}\"\n"
        "withoutglobals: false\nwithstatistics: false\nstatus: Success\n"
    )


def toc_yaml(tables):
    entries = "".join(
        f"- schema: public\n  name: t{i}\n  oid: {20000 + i}\n  attributestring: (id)\n"
        f"  rowscopied: 1\n  partitionroot: \"\"\n  isreplicated: false\n  distbyenum: false\n"
        for i in range(tables)
    )
    return f"globalentries: []\npredataentries: []\npostdataentries: []\nstatisticsentries: []\ndataentries:\n{entries}"


def timestamps(n, day="20250101"):
    return [f"{day}{1000 + i:06d}" for i in range(n)]


def store_template(cfg, env, work, ts, tables):
    """One backup through the plugin: manifest files with backup_file, data with backup_data."""
    folder = os.path.join(work, "seg", "backups", ts[:8], ts)
    os.makedirs(folder, exist_ok=True)
    files = {
        f"gpbackup_{ts}_config.yaml": config_yaml(ts, tables),
        f"gpbackup_{ts}_toc.yaml": toc_yaml(tables),
        f"gpbackup_{ts}_metadata.sql": "SET client_encoding = 'UTF8';\n",
        f"gpbackup_{ts}_report": "Backup Report\n",
        f"gpbackup_{ts}_plugin_config.yaml": "executablepath: x\noptions: {}\n",
    }
    for name, text in files.items():
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        subprocess.run([b.PLUGIN, "backup_file", cfg, path], env=env, check=True)

    def one(job):
        seg, i = job
        key = os.path.join(folder, f"gpbackup_{seg}_{ts}_{20000 + i}")
        subprocess.run([b.PLUGIN, "backup_data", cfg, key], env=env, check=True,
                       input=f"{i},row of table t{i} on segment {seg}\n".encode())

    jobs = [(s, i) for i in range(tables) for s in range(SEGMENTS)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, jobs))


def copy_backup(namespace, src_ts, dst_ts):
    """Copies a backup folder in the mock's namespace under another timestamp."""
    src = os.path.join(namespace, "backups", src_ts[:8], src_ts)
    dst = os.path.join(namespace, "backups", dst_ts[:8], dst_ts)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copytree(src, dst)
    for name in os.listdir(dst):
        if src_ts in name:
            os.rename(os.path.join(dst, name), os.path.join(dst, name.replace(src_ts, dst_ts)))


def run_list(cfg, env, extra, latency_ms, trace):
    env = dict(env)
    env["DDBOOST_MOCK_LATENCY_MS"] = str(latency_ms)
    env["DDBOOST_MOCK_TRACE"] = trace
    if os.path.exists(trace):
        os.remove(trace)
    started = time.monotonic()
    out = subprocess.run([b.PLUGIN, "list_backups", cfg] + extra, env=env, check=True,
                         capture_output=True, text=True)
    secs = time.monotonic() - started
    with open(trace) as f:
        calls = sum(1 for _ in f)
    return secs, calls, out.stdout


def fill(cfg, env, work, namespace, count, tables):
    tss = timestamps(count)
    store_template(cfg, env, work, tss[0], tables)
    for ts in tss[1:]:
        copy_backup(namespace, tss[0], ts)
        # Each copy gets its own config (its timestamp in the restore plan).
        folder = os.path.join(work, "seg", "backups", ts[:8], ts)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"gpbackup_{ts}_config.yaml")
        with open(path, "w") as f:
            f.write(config_yaml(ts, tables))
        subprocess.run([b.PLUGIN, "backup_file", cfg, path], env=env, check=True)
    return tss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backups", type=int, default=100)
    ap.add_argument("--objects", type=int, default=2000, help="data objects per backup (2 segments)")
    ap.add_argument("--latency-ms", type=float, default=5)
    ap.add_argument("--sizes-backups", type=int, default=2)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--no-sizes", action="store_true", help="time only list_backups without --sizes")
    args = ap.parse_args()
    b.build()
    work = b.workdir("bench_list_backups_", args.dir)
    try:
        root = os.path.join(work, "dd")
        b.create_system(root)
        env = b.plugin_env(os.path.join(work, "home"), root)
        tables = args.objects // SEGMENTS
        results = {}
        sets = [("all", args.backups, "gpdb"), ("few", args.sizes_backups, "gpdb_few")]
        for label, count, directory in sets[:1] if args.no_sizes else sets:
            cfg = b.write_config(os.path.join(work, f"{label}.yaml"), directory)
            namespace = os.path.join(root, b.HOST, "su", b.STORAGE_UNIT, directory)
            t0 = time.monotonic()
            fill(cfg, env, work, namespace, count, tables)
            print(f"filled {count} backups of {args.objects + 5} objects in {time.monotonic() - t0:.0f} s",
                  file=sys.stderr)
            results[label] = cfg
        trace = os.path.join(work, "trace")

        cfg = results["all"]
        secs, calls, out = run_list(cfg, env, [], args.latency_ms, trace)
        rows = len(out.splitlines()) - 1
        assert rows == args.backups, out[:500]
        lat = args.latency_ms
        print(f"list_backups, {args.backups} backups of {args.objects + 5} objects, {lat:g} ms per call:")
        print(f"  without --sizes: {secs:.2f} s, {calls} calls ({calls / args.backups:.1f} per backup), measured")
        if args.no_sizes:
            return
        zsecs, zcalls, _ = run_list(cfg, env, ["--sizes"], 0, trace)
        few = results["few"]
        fsecs, fcalls, fout = run_list(few, env, ["--sizes"], args.latency_ms, trace)
        fzsecs, _, _ = run_list(few, env, ["--sizes"], 0, trace)
        assert f"  {args.objects + 5}  " in fout, fout
        per_backup_calls = fcalls / args.sizes_backups
        per_call = (fsecs - fzsecs) / fcalls if fcalls else 0
        extrapolated = zsecs + zcalls * args.latency_ms / 1000

        print(f"  with --sizes:    {extrapolated:.0f} s = {zcalls} calls x {lat:g} ms + {zsecs:.2f} s at 0 ms "
              f"(extrapolated; {zcalls / args.backups:.0f} calls per backup)")
        print(f"  with --sizes, {args.sizes_backups} backups measured: {fsecs:.1f} s, {fcalls} calls "
              f"({per_backup_calls:.0f} per backup, {per_call * 1000:.2f} ms per call)")
        print(f"  ratio --sizes / plain: {extrapolated / secs:.0f}x")
    finally:
        b.remove(work)


if __name__ == "__main__":
    main()
