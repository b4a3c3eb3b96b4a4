#!/usr/bin/env python3
"""Restore and small-object benchmark on the mock Data Domain with latency per call.

The mock's model (see ddboost-sys/mock/README.md): every call that reaches the
system sleeps DDBOOST_MOCK_LATENCY_MS (5 ms is a real appliance's 1 MiB call,
as measured in the field), a login costs DDBOOST_MOCK_CONNECT_MS more
(15 here: 20 ms in all at 5 ms per call), DDBOOST_MOCK_STREAM_MBPS caps each
stream. Each part prints a table and writes it, with a PNG chart, to --out
(docs/bench by default):

  read_ahead  restore_data of a 256 MiB object: MB/s against read_ahead 1-16
              at 0, 2 and 5 ms per call, and with a 150 MB/s per-stream cap;
              peak RSS; every configuration's output checked by SHA-256 once
  subset      a 64 MiB object of 2,000 tables at 2 ms per call: restore_data
              against restore_data_subset of all 2,000 tables, of 1,000 (every
              other one), of tables in every fourth 1 MiB block only (the
              blocks between are skipped) and of 10, with the default
              read_ahead and with 1
  backup      backup_data of 512 MiB of table rows at 5 ms per call against
              the mock's own sequential write rate (its `throughput` example,
              one thread, 1 MiB per ddp_write, the same rows), side by side
  per_table   500 small objects (gpbackup's one file per table), one process
              each, at 5 ms per call: backup_data of each, then restore_data
              of each; milliseconds per object and appliance calls per object
              (from DDBOOST_MOCK_TRACE) against the minimum call sequence (the
              calls that keep the plugin's guarantees, each at its cost)

With --baseline BIN (an earlier build), per_table, backup and subset also run
that build, side by side. Charts need matplotlib; it is installed with pip
when missing (or the script says what to install).

  scripts/bench_restore.py [--parts read_ahead,subset,backup,per_table]
      [--out docs/bench] [--runs 2] [--baseline BIN] [--no-build] [--dir /tmp]
"""
import argparse
import hashlib
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

TS = "20250101120000"
CONNECT_MS = "15"
THROUGHPUT = os.path.join(bl.RELEASE, "examples", "throughput")


def plt():
    """matplotlib's pyplot (Agg), installed with pip when missing."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is missing: pip install matplotlib", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"])
        if r.returncode != 0:
            sys.exit("cannot install matplotlib: run `pip install matplotlib` (PyPI) and try again")
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as p
    return p


class World:
    """A mock system, a home, and configs (per read_ahead) for one plugin build."""

    def __init__(self, base, plugin):
        self.dir = base
        self.plugin = plugin
        self.root = os.path.join(base, "dd")
        self.home = os.path.join(base, "home")
        bl.create_system(self.root)
        os.makedirs(self.home, exist_ok=True)

    def config(self, read_ahead=None):
        path = os.path.join(self.dir, f"cfg_{read_ahead or 'default'}.yaml")
        if not os.path.exists(path):
            bl.write_config(path)
            with open(path) as f:
                text = f.read().replace(bl.PLUGIN, self.plugin)
            if read_ahead:
                text += f"  read_ahead: {read_ahead}\n"
            with open(path, "w") as f:
                f.write(text)
        return path

    def env(self, latency=0, extra=None):
        e = bl.plugin_env(self.home, self.root, extra)
        if latency:
            e["DDBOOST_MOCK_LATENCY_MS"] = str(latency)
            e["DDBOOST_MOCK_CONNECT_MS"] = CONNECT_MS
        return e

    def run(self, args, env, stdin=None, stdout=subprocess.DEVNULL):
        r = subprocess.run([self.plugin] + args, env=env, stdin=stdin, stdout=stdout,
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} failed: {r.stderr.decode(errors='replace')}")
        return r

    def backup(self, key, src, env=None):
        with open(src, "rb") as f:
            self.run(["backup_data", self.config(), key], env or self.env(), stdin=f)

    def timed_restore(self, args, env, stats):
        """Seconds of `plugin args | cat > /dev/null`, peak RSS (KiB) of the plugin."""
        t = time.perf_counter()
        p1 = subprocess.Popen(bl.measured([self.plugin] + args, stats), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p2 = subprocess.Popen(["cat"], stdin=p1.stdout, stdout=subprocess.DEVNULL)
        p1.stdout.close()
        err = p1.stderr.read()
        r1, r2 = p1.wait(), p2.wait()
        secs = time.perf_counter() - t
        if r1 or r2:
            raise RuntimeError(f"{args[0]} failed: {err.decode(errors='replace')}")
        return secs, bl.read_stats(stats)[0]

    def digest(self, args, env):
        h = hashlib.sha256()
        p = subprocess.Popen([self.plugin] + args, env=env, stdout=subprocess.PIPE)
        for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
            h.update(chunk)
        if p.wait():
            raise RuntimeError(f"{args[0]} failed")
        return h.hexdigest()


def sha256_file(path, ranges=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if ranges is None:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            for s, e in ranges:
                f.seek(s)
                h.update(f.read(e - s))
    return h.hexdigest()


def write_random(path, mib, seed):
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(rnd.randbytes(1 << 20))


def save(out, name, lines, fig):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    fig.savefig(os.path.join(out, name + ".png"), dpi=110, bbox_inches="tight")
    print(f"  wrote {os.path.join(out, name)}.md and .png\n")


def best(fn, runs):
    results = [fn() for _ in range(runs)]
    return min(results, key=lambda r: r[0])


# ---------------------------------------------------------------- read_ahead

def part_read_ahead(args, work):
    w = World(os.path.join(work, "ra"), bl.PLUGIN)
    src = os.path.join(work, "obj256")
    write_random(src, 256, 1)
    key = bl.key_path(0, TS)
    w.backup(key, src)
    want = sha256_file(src)
    size = os.path.getsize(src)
    values = [1, 2, 4, 6, 8, 12, 16]
    cases = [("0 ms", 0, None), ("2 ms", 2, None), ("5 ms", 5, None),
             ("150 MB/s per stream", 0, {"DDBOOST_MOCK_STREAM_MBPS": "150"})]
    stats = os.path.join(work, "stats")
    table = {}
    for label, lat, extra in cases:
        env = w.env(lat, extra)
        for ra in values:
            restore = ["restore_data", w.config(ra), key]
            if w.digest(restore, env) != want:
                sys.exit(f"read_ahead {ra}, {label}: restored bytes differ")
            secs, rss = best(lambda: w.timed_restore(restore, env, stats), args.runs)
            table[(label, ra)] = (size / secs / bl.MB, rss / 1024)
            print(f"  {label:22} read_ahead {ra:2}: {size / secs / bl.MB:7.0f} MB/s  peak RSS {rss / 1024:5.1f} MiB", flush=True)
    lines = [
        "restore_data of a 256 MiB object (random bytes) on the mock Data Domain, piped to `cat > /dev/null`;",
        f"best of {args.runs} runs; MB/s = 10^6 bytes/s; peak RSS of the plugin in parentheses. "
        "Each configuration's output was checked by SHA-256.",
        "",
        "| read_ahead | " + " | ".join(c[0] for c in cases) + " |",
        "|---:|" + "---:|" * len(cases),
    ]
    for ra in values:
        cells = [f"{table[(c[0], ra)][0]:.0f} ({table[(c[0], ra)][1]:.0f} MiB)" for c in cases]
        lines.append(f"| {ra}{' (default)' if ra == 8 else ''} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, _, _ in cases:
        r = table[(label, 8)][0] / table[(label, 1)][0]
        lines.append(f"- {label}: read_ahead 8 restores {r:.1f} times as fast as read_ahead 1.")
    print("\n".join(lines))
    p = plt()
    fig, ax = p.subplots(figsize=(7, 4.2))
    for label, _, _ in cases:
        ax.plot(values, [table[(label, v)][0] for v in values], marker="o", label=label)
    ax.axvline(8, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("read_ahead (reads in flight)")
    ax.set_ylabel("restore_data MB/s")
    ax.set_title("restore_data of 256 MiB on the mock Data Domain")
    ax.set_xticks(values)
    ax.grid(alpha=0.3)
    ax.legend()
    save(args.out, "restore_read_ahead", lines, fig)


# ---------------------------------------------------------------- subset

def tables(size, count, seed):
    """Table boundaries like a segment's TOC: `count` tables of varied sizes covering size bytes."""
    rnd = random.Random(seed)
    weights = [rnd.paretovariate(1.2) for _ in range(count)]
    total = sum(weights)
    bounds, pos = [], 0
    for i, wt in enumerate(weights):
        end = size if i == count - 1 else min(size, pos + int(size * wt / total))
        bounds.append((pos, end))
        pos = end
    return bounds


def offsets_text(ranges):
    return " ".join([str(len(ranges))] + [f"{s} {e}" for s, e in ranges])


def part_subset(args, work):
    builds = [("plugin", bl.PLUGIN)] + ([("baseline", args.baseline)] if args.baseline else [])
    src = os.path.join(work, "obj64")
    write_random(src, 64, 2)
    size = os.path.getsize(src)
    toc = tables(size, 2000, 3)
    mib = 1 << 20
    sets = [
        ("all 2,000 tables", toc),
        ("1,000 tables (every other)", toc[::2]),
        ("tables in every 4th MiB block", [t for t in toc if (t[0] // mib) % 4 == 0 and (t[1] - 1) // mib == t[0] // mib]),
        ("10 tables", toc[::200]),
    ]
    key = bl.key_path(0, TS)
    stats = os.path.join(work, "stats")
    rows = []
    for bname, plugin in builds:
        w = World(os.path.join(work, "subset-" + bname), plugin)
        w.backup(key, src)
        env = w.env(2)
        for ra in ([None, 1] if bname == "plugin" else [None]):
            cfg = w.config(ra)
            ra_label = "default (8)" if ra is None else str(ra)
            if bname == "baseline":
                ra_label = "baseline"
            full = ["restore_data", cfg, key]
            if w.digest(full, env) != sha256_file(src):
                sys.exit("full restore differs")
            secs, _ = best(lambda: w.timed_restore(full, env, stats), args.runs)
            rows.append((ra_label, "restore_data (whole object)", size, secs))
            print(f"  {ra_label:12} {'restore_data':32} {secs:6.3f} s", flush=True)
            for name, ranges in sets:
                of = os.path.join(work, f"offsets-{len(ranges)}")
                with open(of, "w") as f:
                    f.write(offsets_text(ranges))
                sub = ["restore_data_subset", cfg, key, of]
                if w.digest(sub, env) != sha256_file(src, ranges):
                    sys.exit(f"subset {name} differs")
                secs, _ = best(lambda: w.timed_restore(sub, env, stats), args.runs)
                nbytes = sum(e - s for s, e in ranges)
                rows.append((ra_label, f"subset: {name}", nbytes, secs))
                print(f"  {ra_label:12} {name:32} {secs:6.3f} s ({len(ranges)} ranges, {nbytes / bl.MB:.1f} MB)", flush=True)
    lines = [
        "A 64 MiB object of 2,000 tables (sizes Pareto-distributed) at 2 ms per call; restore_data against",
        f"restore_data_subset; best of {args.runs} runs; every output checked by SHA-256.",
        "",
        "| read_ahead | what | MB output | seconds |",
        "|---|---|---:|---:|",
    ]
    for ra_label, what, nbytes, secs in rows:
        lines.append(f"| {ra_label} | {what} | {nbytes / bl.MB:.1f} | {secs:.3f} |")
    print("\n".join(lines))
    p = plt()
    fig, ax = p.subplots(figsize=(8, 4.5))
    groups = sorted({r[0] for r in rows}, key=lambda g: [r[0] for r in rows].index(g))
    whats = [r[1] for r in rows if r[0] == groups[0]]
    width = 0.8 / len(groups)
    for gi, g in enumerate(groups):
        vals = [next(r[3] for r in rows if r[0] == g and r[1] == wt) for wt in whats]
        label = "before (one read at a time)" if g == "baseline" else f"read_ahead {g}"
        ax.bar([i + gi * width for i in range(len(whats))], vals, width, label=label)
    ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(whats))])
    short = {
        "restore_data (whole object)": "restore_data\n(whole object)",
        "subset: all 2,000 tables": "subset:\nall 2,000 tables",
        "subset: 1,000 tables (every other)": "subset:\n1,000 tables\n(every other)",
        "subset: tables in every 4th MiB block": "subset: tables\nin every 4th\nMiB block",
        "subset: 10 tables": "subset:\n10 tables",
    }
    ax.set_xticklabels([short.get(wt, wt) for wt in whats], fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title("64 MiB object, 2,000 tables, 2 ms per call")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    save(args.out, "restore_subset", lines, fig)


# ---------------------------------------------------------------- backup

def part_backup(args, work):
    if not os.path.exists(THROUGHPUT):
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ddboost-mock", "--example", "throughput"],
                       cwd=bl.ROOT, check=True)
    gib = 0.5
    src = os.path.join(work, "rows")
    with open(src, "wb") as f:
        subprocess.run([THROUGHPUT, str(gib), "--emit"], stdout=f, check=True)
    size = os.path.getsize(src)
    builds = [("plugin", bl.PLUGIN)] + ([("baseline", args.baseline)] if args.baseline else [])
    results = {}
    for run in range(args.runs):
        env = dict(os.environ, DDBOOST_MOCK_LATENCY_MS="5", BENCH_DIR=work)
        out = subprocess.run([THROUGHPUT, str(gib), "--first-only"], env=env, capture_output=True,
                             text=True, check=True).stdout
        mbps = float(next(l for l in out.splitlines() if l.startswith("first write")).split()[2])
        results.setdefault("SDK (throughput example)", []).append(mbps)
        for bname, plugin in builds:
            w = World(os.path.join(work, f"backup-{bname}-{run}"), plugin)
            env = w.env(5)
            env.pop("DDBOOST_MOCK_CONNECT_MS")  # the example's login costs one call too
            t = time.perf_counter()
            w.backup(bl.key_path(0, TS), src, env)
            results.setdefault(f"{bname} backup_data", []).append(size / (time.perf_counter() - t) / bl.MB)
            bl.remove(w.dir)
        print("  run", run + 1, {k: round(v[-1]) for k, v in results.items()}, flush=True)
    sdk = max(results["SDK (throughput example)"])
    lines = [
        f"Writing {size >> 20} MiB of table rows (the throughput example's stream) at 5 ms per call into a new",
        f"mock system, side by side in one run; best of {args.runs}; MB/s = 10^6 bytes/s.",
        "",
        "| writer | MB/s | of the SDK's rate |",
        "|---|---:|---:|",
    ]
    for k, v in results.items():
        lines.append(f"| {k} | {max(v):.0f} | {max(v) / sdk:.2f} |")
    print("\n".join(lines))
    p = plt()
    fig, ax = p.subplots(figsize=(6, 3.5))
    ks = list(results)
    ax.barh(ks, [max(results[k]) for k in ks], color=["grey"] + ["C0", "C1"][: len(ks) - 1])
    ax.set_xlabel("MB/s at 5 ms per call")
    ax.set_title("backup_data against the SDK's sequential write rate")
    ax.grid(axis="x", alpha=0.3)
    save(args.out, "backup_vs_sdk", lines, fig)


# ---------------------------------------------------------------- per_table

MIN_CALLS = {
    # The fewest calls that keep the guarantees: atomic commit (temporary +
    # rename), a checksum record staged and published in its own renames, a
    # staged record of an interrupted write carried over (looked up), and
    # readers that check the record (and the staged one only when the record
    # does not describe the object).
    "backup_data": ["connect", "open", "write", "open", "open", "write", "close", "rename",
                    "close", "rename", "rename", "disconnect"],
    "restore_data": ["connect", "open", "read", "close", "open", "read", "close", "disconnect"],
}
LOCAL_CALLS = {"init", "shutdown", "instance_create", "instance_destroy", "log_init"}


def call_cost_ms(calls, latency):
    return sum(latency + (int(CONNECT_MS) if c == "connect" else 0) for c in calls)


def part_per_table(args, work, count=500):
    builds = [("plugin", bl.PLUGIN)] + ([("baseline", args.baseline)] if args.baseline else [])
    rnd = random.Random(5)
    payloads = [rnd.randbytes(rnd.randrange(200, 60_000)) for _ in range(count)]
    rows = []
    for bname, plugin in builds:
        w = World(os.path.join(work, "pt-" + bname), plugin)
        cfg = w.config()
        seg = f"/data/gpseg0/backups/{TS[:8]}/{TS}"
        w.run(["setup_plugin_for_backup", cfg, seg, "segment", "0"], w.env())
        trace = os.path.join(work, f"trace-{bname}")
        for cmd in ("backup_data", "restore_data"):
            if os.path.exists(trace):
                os.remove(trace)
            env = w.env(5, {"DDBOOST_MOCK_TRACE": trace})
            t = time.perf_counter()
            for i, data in enumerate(payloads):
                key = f"{seg}/gpbackup_0_{TS}_{16384 + i}"
                if cmd == "backup_data":
                    r = subprocess.run([plugin, cmd, cfg, key], input=data, env=env, capture_output=True)
                else:
                    r = subprocess.run([plugin, cmd, cfg, key], env=env, capture_output=True)
                    if r.stdout != data:
                        sys.exit(f"{bname} restore_data of table {i} differs")
                if r.returncode:
                    sys.exit(f"{bname} {cmd} failed: {r.stderr.decode(errors='replace')}")
            secs = time.perf_counter() - t
            with open(trace) as f:
                calls = [l.split()[0][3:] for l in f if l.startswith("op=")]
            calls = [c for c in calls if c not in LOCAL_CALLS]
            per = len(calls) / count
            floor = call_cost_ms(MIN_CALLS[cmd], 5)
            rows.append((bname, cmd, secs, secs * 1000 / count, per, floor))
            print(f"  {bname:8} {cmd:13} {secs:6.1f} s  {secs * 1000 / count:6.1f} ms/object  {per:5.1f} calls/object", flush=True)
    lines = [
        f"{count} small objects (200 B-60 KB, one per table as gpbackup without --single-data-file), one plugin",
        "process each, one after the other, at 5 ms per call (a login 20 ms); calls counted from DDBOOST_MOCK_TRACE",
        "(calls that reach the system only). The floor is the minimum call sequence that keeps the guarantees,",
        f"each call at its cost: backup_data {len(MIN_CALLS['backup_data'])} calls = {call_cost_ms(MIN_CALLS['backup_data'], 5)} ms, "
        f"restore_data {len(MIN_CALLS['restore_data'])} calls = {call_cost_ms(MIN_CALLS['restore_data'], 5)} ms.",
        "",
        "| build | command | seconds for all | ms per object | calls per object | floor ms | above the floor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for bname, cmd, secs, ms, per, floor in rows:
        lines.append(f"| {bname} | {cmd} | {secs:.1f} | {ms:.1f} | {per:.1f} | {floor} | {ms - floor:.1f} ms |")
    print("\n".join(lines))
    p = plt()
    fig, ax = p.subplots(figsize=(7, 4))
    cmds = ["backup_data", "restore_data"]
    width = 0.8 / len(builds)
    for bi, (bname, _) in enumerate(builds):
        vals = [next(r[3] for r in rows if r[0] == bname and r[1] == c) for c in cmds]
        ax.bar([i + bi * width for i in range(2)], vals, width, label="before" if bname == "baseline" else "now")
    for i, c in enumerate(cmds):
        ax.hlines(call_cost_ms(MIN_CALLS[c], 5), i - width / 2, i + width * (len(builds) - 0.5),
                  colors="black", linestyles="--", label="minimum call sequence" if i == 0 else None)
    ax.set_xticks([i + width * (len(builds) - 1) / 2 for i in range(2)])
    ax.set_xticklabels(cmds)
    ax.set_ylabel("ms per object")
    ax.set_title(f"{count} small objects, one process each, 5 ms per call")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    save(args.out, "per_table", lines, fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="read_ahead,subset,backup,per_table")
    ap.add_argument("--out", default=os.path.join(bl.ROOT, "docs", "bench"))
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--baseline")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    bl.need_gnu_time()
    plt()  # fail early when charts cannot be drawn
    if not args.no_build:
        bl.build()
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ddboost-mock", "--example", "throughput"],
                       cwd=bl.ROOT, check=True)
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
    work = bl.workdir("bench_restore-", args.dir)
    try:
        for part in args.parts.split(","):
            print(f"== {part}", flush=True)
            {"read_ahead": part_read_ahead, "subset": part_subset, "backup": part_backup,
             "per_table": part_per_table}[part](args, work)
    finally:
        bl.remove(work)


if __name__ == "__main__":
    main()
