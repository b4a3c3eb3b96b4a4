#!/usr/bin/env python3
"""A warehouse's per-table backup on a Data Domain: what each DBA command costs.

Fills one mock Data Domain (host dd1) with one per-table backup of --objects
data objects (2 segments, one object per table and segment, --size bytes each)
with the checksum records the plugin writes (`ddboost-mock fill --records`,
as many writer processes leave them), plus the manifest gpbackup stores
(config, TOC, metadata, report, plugin config, through the plugin's
backup_file) naming exactly those objects, so verify_backup finds nothing
missing. A second system (dd2) is the replica. The filled systems are made
once per size and copied for every run (the deletes destroy them).

Then times, at DDBOOST_MOCK_LATENCY_MS (default 5) with a login
DDBOOST_MOCK_CONNECT_MS (default 20) more, with the plugin's default settings,
in this order:

  list_backups CFG --sizes      list_directory CFG        verify_backup CFG TS
  replicate_backup CFG TS       delete_replica CFG TS     delete_backup CFG TS

For each: wall seconds, seconds per file (objects and their records), the SDK calls by op from DDBOOST_MOCK_TRACE (the SDK's local calls
left out), the plugin process's peak RSS (wait4), and whether the result is
right: list_backups shows the backup with its object count, list_directory
lists every object, verify exits 0 with every object OK, after replicate the
replica lists as the primary and a sample of objects restores from it byte for
byte as from the primary, after each delete nothing is left below the backup
folder. The reference is one call per file in sequence (files x latency) and
the ratio wall / reference. Files are the objects and their checksum records
(two per object).

--readdir-batch N[,M...] runs with DDBOOST_MOCK_READDIR_BATCH=N (the entries a
directory listing returns per round trip; 1, the default, charges every entry a
round trip). --baseline BIN runs a second plugin build side by side on the same
data, at --baseline-objects (default: the smallest size) and with
--baseline-commands (default: --commands). --timeout S stops a command after S
seconds (recorded as such). Writes --out/NAME.md and NAME.png (default
docs/bench/warehouse).

  scripts/bench_warehouse.py [--objects 10000,100000] [--size 4000] [--latency-ms 5]
      [--connect-ms 20] [--readdir-batch 1] [--commands list_backups,...]
      [--baseline BIN] [--baseline-objects 10000] [--baseline-commands ...]
      [--sample 20] [--timeout S] [--out docs/bench] [--name warehouse]
      [--no-build] [--dir /tmp]
"""
import argparse
import collections
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from bench_list_backups import SEGMENTS, config_yaml, toc_yaml  # noqa: E402
from bench_restore import plt, save  # noqa: E402

TS = "20250401120000"
DIRECTORY = "gpdb"
REPLICA_HOST = "dd2"
FIRST_OID = 20000  # toc_yaml's table oids
LOCAL_CALLS = {"init", "shutdown", "instance_create", "instance_destroy", "log_init"}
COMMANDS = ["list_backups", "list_directory", "verify_backup", "replicate_backup", "delete_replica",
            "delete_backup"]
MANIFEST = ["config.yaml", "toc.yaml", "metadata.sql", "report", "plugin_config.yaml"]


def folder_rel():
    return f"backups/{TS[:8]}/{TS}"


def namespace(root, host):
    """The backup folder in a mock system's namespace (files there are the objects)."""
    return os.path.join(root, host, "su", bl.STORAGE_UNIT, DIRECTORY, folder_rel())


def create_replica_system(root):
    subprocess.run(
        [bl.MOCK_ADMIN, "create-system", "--root", root, "--host", REPLICA_HOST, "--user", bl.USER,
         "--password", bl.PASSWORD, "--storage-unit", bl.STORAGE_UNIT],
        check=True, stdout=subprocess.DEVNULL)


def write_configs(work):
    """The config of the runs (primary dd1, remote_* options naming dd2, defaults otherwise)
    and one whose primary is the replica (to read it back)."""
    cfg = bl.write_config(os.path.join(work, "plugin.yaml"), DIRECTORY)
    with open(cfg, "a") as f:
        f.write(f"  remote_hostname: {REPLICA_HOST}\n  remote_username: {bl.USER}\n"
                f"  remote_password: {bl.PASSWORD}\n  remote_storage_unit: {bl.STORAGE_UNIT}\n"
                f"  remote_directory: {DIRECTORY}\n")
    replica = bl.write_config(os.path.join(work, "replica.yaml"), DIRECTORY)
    with open(replica) as f:
        text = f.read().replace(f"hostname: {bl.HOST}\n", f"hostname: {REPLICA_HOST}\n")
    with open(replica, "w") as f:
        f.write(text)
    return cfg, replica


def data_names(objects):
    tables = objects // SEGMENTS
    return [f"gpbackup_{s}_{TS}_{FIRST_OID + i}" for s in range(SEGMENTS) for i in range(tables)]


def make_template(work, objects, size, cfg):
    """Fills a mock root with the backup (dd1) and an empty replica (dd2); returns
    (root, fill seconds)."""
    root = os.path.join(work, f"template_{objects}")
    bl.create_system(root)
    create_replica_system(root)
    tables = objects // SEGMENTS
    t0 = time.perf_counter()
    for seg in range(SEGMENTS):
        subprocess.run(
            [bl.MOCK_ADMIN, "fill", "--root", root, "--host", bl.HOST, "--storage-unit", bl.STORAGE_UNIT,
             "--folder", f"{DIRECTORY}/{folder_rel()}", "--prefix", f"gpbackup_{seg}_{TS}_",
             "--first", str(FIRST_OID), "--objects", str(tables), "--size", str(size),
             "--seed", str(seg + 1), "--records"],
            check=True, stderr=subprocess.DEVNULL)
    fill_secs = time.perf_counter() - t0
    # gpbackup's manifest, stored as gpbackup stores it (backup_file from the coordinator).
    local = os.path.join(work, "coordinator", folder_rel())
    os.makedirs(local, exist_ok=True)
    texts = {"config.yaml": config_yaml(TS, tables), "toc.yaml": toc_yaml(tables),
             "metadata.sql": "SET client_encoding = 'UTF8';\n", "report": "Backup Report\n",
             "plugin_config.yaml": "executablepath: x\noptions: {}\n"}
    env = bl.plugin_env(os.path.join(work, "home"), root)
    for suffix in MANIFEST:
        path = os.path.join(local, f"gpbackup_{TS}_{suffix}")
        with open(path, "w") as f:
            f.write(texts[suffix])
        subprocess.run([bl.PLUGIN, "backup_file", cfg, path], env=env, check=True)
    return root, fill_secs


def run_measured(argv, env, out_path, timeout):
    """Runs argv with stdout to out_path; (exit code or None on timeout, wall s, peak RSS KiB).

    The peak comes from GNU time, which starts the plugin itself: Linux counts
    the RSS a process had before exec in its peak, so a plugin started straight
    from this (large) Python process would report this process's size."""
    stats = out_path + ".time"
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(bl.measured(argv, stats), env=env, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # GNU time and the plugin
            p.wait()
            rc = None
        wall = time.perf_counter() - t0
    try:
        rss, _cpu = bl.read_stats(stats)
    except (OSError, ValueError):
        rss = 0
    return rc, wall, rss


def trace_ops(trace):
    if not os.path.exists(trace):
        return collections.Counter()
    with open(trace) as f:
        ops = collections.Counter(line.split(" ", 1)[0][3:] for line in f if line.startswith("op="))
    os.remove(trace)
    for op in LOCAL_CALLS:
        ops.pop(op, None)
    return ops


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class Run:
    """One build on one copy of the filled systems at one readdir batch."""

    def __init__(self, args, work, plugin, template, objects, batch, cfg, replica_cfg):
        self.args, self.work, self.plugin = args, work, plugin
        self.objects, self.batch = objects, batch
        # Every stored object has its checksum record: two files each.
        self.stored = objects + len(MANIFEST)
        self.files = 2 * self.stored
        self.cfg, self.replica_cfg = cfg, replica_cfg
        self.root = os.path.join(work, "run")
        bl.remove(self.root)
        t0 = time.perf_counter()
        subprocess.run(["cp", "-a", template, self.root], check=True)
        self.copy_secs = time.perf_counter() - t0
        self.home = os.path.join(work, "home")
        self.trace = os.path.join(work, "trace")
        self.replicated = False

    def env(self, timed=True):
        e = bl.plugin_env(self.home, self.root)
        for k in ("DDBOOST_MOCK_CONNECT_MS", "DDBOOST_MOCK_READDIR_BATCH"):
            e.pop(k, None)
        if timed:
            e["DDBOOST_MOCK_LATENCY_MS"] = str(self.args.latency_ms)
            e["DDBOOST_MOCK_CONNECT_MS"] = str(self.args.connect_ms)
            e["DDBOOST_MOCK_READDIR_BATCH"] = str(self.batch)
            e["DDBOOST_MOCK_TRACE"] = self.trace
        return e

    def plain(self, argv, cfg=None):
        """A command at no latency, untimed (preparations and checks): (exit code, stdout bytes)."""
        r = subprocess.run([self.plugin, argv[0], cfg or self.cfg] + argv[1:], env=self.env(False),
                           capture_output=True)
        return r.returncode, r.stdout

    def argv(self, command):
        return {
            "list_backups": ["list_backups", self.cfg, "--sizes"],
            "list_directory": ["list_directory", self.cfg],
            "verify_backup": ["verify_backup", self.cfg, TS],
            "replicate_backup": ["replicate_backup", self.cfg, TS],
            "delete_replica": ["delete_replica", self.cfg, TS],
            "delete_backup": ["delete_backup", self.cfg, TS],
        }[command]

    def measure(self, command):
        if command == "delete_replica" and not self.replicated:
            rc, _ = self.plain(["replicate_backup", TS])
            assert rc == 0, "replicate_backup (to prepare delete_replica) failed"
        if os.path.exists(self.trace):
            os.remove(self.trace)
        out = os.path.join(self.work, "out")
        rc, wall, rss = run_measured([self.plugin] + self.argv(command), self.env(), out, self.args.timeout)
        ops = trace_ops(self.trace)
        if rc is None:
            correct = f"stopped after {self.args.timeout:g} s"
        else:
            correct = self.check(command, rc, read(out), read(out + ".err"))
        if command == "replicate_backup":
            self.replicated = True
        ref = self.files * self.args.latency_ms / 1000
        return {"command": command, "wall": wall, "per_file": wall / self.files, "calls": sum(ops.values()),
                "ops": ops, "rss_kib": rss, "correct": correct, "reference": ref,
                "ratio": wall / ref if ref else float("nan"),
                "timed_out": rc is None}

    def check(self, command, rc, out, err):
        if rc != 0:
            return f"no: exit {rc}: {err.strip().splitlines()[-1][:120] if err.strip() else ''}"
        lines = out.splitlines()
        if command == "list_backups":
            row = [line for line in lines if line.startswith(TS)]
            ok = len(row) == 1 and f" {self.stored} " in f" {row[0]} "
            return "yes" if ok else f"no: {row[:1]}"
        if command == "list_directory":
            paths = [line.split("\t")[0] for line in lines if line.strip()]
            want = {f"{folder_rel()}/{n}" for n in data_names(self.objects)}
            want |= {f"{folder_rel()}/gpbackup_{TS}_{s}" for s in MANIFEST}
            got = set(paths)
            return "yes" if got == want and len(paths) == len(want) else \
                f"no: {len(want - got)} missing, {len(got - want)} more"
        if command == "verify_backup":
            count = collections.Counter(line.split(" ", 1)[0] for line in lines)
            bad = {k: count[k] for k in ("MISSING", "FAILED", "UNRECORDED") if count[k]}
            ok = count["OK"] == self.objects + 4 and not bad
            return "yes" if ok else f"no: {count['OK']} OK, {bad}"
        if command == "replicate_backup":
            return self.check_replica()
        if command in ("delete_replica", "delete_backup"):
            host = REPLICA_HOST if command == "delete_replica" else bl.HOST
            left = []
            for dirpath, _, names in os.walk(namespace(self.root, host)):
                left += names
            return "yes" if not left else f"no: {len(left)} files left"
        return "?"

    def check_replica(self):
        rc, primary = self.plain(["list_directory"])
        rc2, replica = self.plain(["list_directory"], self.replica_cfg)
        if rc or rc2 or sorted(primary.splitlines()) != sorted(replica.splitlines()):
            return "no: the replica lists differently"
        names = data_names(self.objects)
        step = max(1, len(names) // self.args.sample)
        sample = names[::step][: self.args.sample] + [f"gpbackup_{TS}_toc.yaml"]
        for name in sample:
            key = f"/data/gpseg0/{folder_rel()}/{name}"
            rc, a = self.plain(["restore_data", key])
            rc2, b = self.plain(["restore_data", key], self.replica_cfg)
            if rc or rc2 or a != b or not a and name.endswith("toc.yaml"):
                return f"no: {name} restores differently from the replica"
        return f"yes ({len(sample)} restored)"


def ops_text(ops, most=None):
    """The calls by op, the most frequent first (the first `most` of them)."""
    shown = ops.most_common(most)
    return ", ".join(f"{op} {n}" for op, n in shown) + (", ..." if len(shown) < len(ops) else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", default="10000,100000", help="data objects of the backup (2 segments)")
    ap.add_argument("--size", type=int, default=4000, help="bytes per data object")
    ap.add_argument("--latency-ms", type=float, default=5)
    ap.add_argument("--connect-ms", type=float, default=20)
    ap.add_argument("--readdir-batch", default="1", help="DDBOOST_MOCK_READDIR_BATCH values, comma-separated")
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--baseline", help="a second plugin binary, run side by side")
    ap.add_argument("--baseline-objects", help="sizes the baseline runs at (default: the smallest)")
    ap.add_argument("--baseline-commands", help="commands the baseline runs (default: --commands)")
    ap.add_argument("--sample", type=int, default=20, help="objects restored from the replica to check it")
    ap.add_argument("--timeout", type=float, default=None, help="stop a command after this many seconds")
    ap.add_argument("--out", default=os.path.join(bl.ROOT, "docs", "bench"))
    ap.add_argument("--name", default="warehouse")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    bl.need_gnu_time()
    sizes = [int(s) for s in args.objects.split(",")]
    if any(s % SEGMENTS for s in sizes):
        sys.exit(f"--objects: each size must be a multiple of {SEGMENTS} (one object per table and segment)")
    batches = [int(b) for b in args.readdir_batch.split(",")]
    commands = [c for c in COMMANDS if c in args.commands.split(",")]
    unknown = set(args.commands.split(",")) - set(COMMANDS)
    if unknown:
        sys.exit(f"unknown commands: {', '.join(sorted(unknown))} (known: {', '.join(COMMANDS)})")
    builds = [("now", bl.PLUGIN, sizes, commands)]
    if args.baseline:
        bsizes = [int(s) for s in args.baseline_objects.split(",")] if args.baseline_objects else [min(sizes)]
        bcmds = [c for c in COMMANDS if c in (args.baseline_commands or args.commands).split(",")]
        builds.append(("baseline", os.path.abspath(args.baseline), bsizes, bcmds))
    plt()  # fail early when charts cannot be drawn
    if not args.no_build:
        bl.build()
    work = bl.workdir("bench_warehouse-", args.dir)
    rows, fills = [], {}
    try:
        cfg, replica_cfg = write_configs(work)
        for objects in sizes:
            template, fill_secs = make_template(work, objects, args.size, cfg)
            fills[objects] = fill_secs
            print(f"filled {objects} objects of {args.size} bytes with their records in {fill_secs:.1f} s "
                  f"({objects / fill_secs:.0f} objects/s)", flush=True)
            for bname, plugin, bsizes, bcmds in builds:
                if objects not in bsizes:
                    continue
                for batch in batches:
                    run = Run(args, work, plugin, template, objects, batch, cfg, replica_cfg)
                    print(f"  {bname} {objects} objects, readdir batch {batch} (copied the systems in "
                          f"{run.copy_secs:.1f} s)", flush=True)
                    for command in bcmds:
                        r = run.measure(command)
                        r.update(build=bname, objects=objects, batch=batch)
                        rows.append(r)
                        print(f"    {command:16} {r['wall']:8.2f} s  {r['per_file'] * 1000:7.3f} ms/file  "
                              f"{r['calls']:7} calls ({ops_text(r['ops'], 4)})  {r['rss_kib'] / 1024:6.1f} MiB  "
                              f"x{r['ratio']:.2f} of one call per file  correct: {r['correct']}", flush=True)
                    bl.remove(run.root)
            bl.remove(template)
    finally:
        bl.remove(work)
    report(args, rows, fills, batches)


def report(args, rows, fills, batches):
    fill_text = ", ".join(f"{n:,} objects in {s:.0f} s" for n, s in fills.items())
    lines = [
        f"One per-table backup ({SEGMENTS} segments, one object of {args.size} bytes per table and segment, "
        f"each with its checksum record, plus gpbackup's manifest: config, TOC, metadata, report, plugin "
        f"config) on a mock Data Domain at {args.latency_ms:g} ms per call, a login {args.connect_ms:g} ms "
        f"more (DDBOOST_MOCK_LATENCY_MS, DDBOOST_MOCK_CONNECT_MS); DDBOOST_MOCK_READDIR_BATCH "
        f"{', '.join(map(str, batches))} (entries a directory listing returns per round trip). "
        "The plugin's default settings. Files = the backup's objects and their checksum records; "
        "reference = one call per file in sequence (files x latency); calls = SDK calls from "
        "DDBOOST_MOCK_TRACE (local calls left out), the most frequent ops first; RSS = the plugin "
        f"process's peak. Filled with `ddboost-mock fill --records`: {fill_text}.",
        "",
        "`" + " ".join(["scripts/bench_warehouse.py"] + sys.argv[1:]) + "`",
        "",
        "| build | files | readdir batch | command | wall s | ms/file | reference s | ratio | calls | "
        "calls by op | peak RSS MiB | correct |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        files = 2 * (r["objects"] + len(MANIFEST))
        wall = f"{r['wall']:.2f}" + (" (stopped)" if r["timed_out"] else "")
        lines.append(
            f"| {r['build']} | {files:,} | {r['batch']} | {r['command']} | {wall} | {r['per_file'] * 1000:.3f} "
            f"| {r['reference']:.1f} | {r['ratio']:.2f} | {r['calls']:,} | {ops_text(r['ops'])} "
            f"| {r['rss_kib'] / 1024:.1f} | {r['correct']} |")
    print("\n".join(lines))
    p = plt()
    fig, ax = p.subplots(figsize=(10, 4.8))
    groups = []
    for r in rows:
        g = (r["build"], r["objects"], r["batch"])
        if g not in groups:
            groups.append(g)
    commands = [c for c in COMMANDS if any(r["command"] == c for r in rows)]
    width = 0.8 / max(1, len(groups))
    for gi, g in enumerate(groups):
        xs, ys = [], []
        for ci, c in enumerate(commands):
            r = next((r for r in rows if (r["build"], r["objects"], r["batch"]) == g and r["command"] == c), None)
            if r:
                xs.append(ci + (gi - (len(groups) - 1) / 2) * width)
                ys.append(r["wall"])
        ax.bar(xs, ys, width=width, hatch="//" if g[0] == "baseline" else None,
               label=f"{'before' if g[0] == 'baseline' else 'now'}, {g[1]:,} objects, readdir batch {g[2]}")
    for objects in sorted({g[1] for g in groups}):
        ref = 2 * (objects + len(MANIFEST)) * args.latency_ms / 1000
        ax.axhline(ref, linestyle="--", linewidth=0.8, color="gray")
        ax.text(len(commands) - 0.5, ref, f"one call per file, {objects:,}", fontsize=7, va="bottom", ha="right")
    ax.set_xticks(range(len(commands)))
    ax.set_xticklabels(commands, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(f"wall seconds (mock, {args.latency_ms:g} ms per call)")
    ax.set_title("DBA commands on one per-table backup")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    save(args.out, args.name, lines, fig)


if __name__ == "__main__":
    main()
