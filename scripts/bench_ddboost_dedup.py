#!/usr/bin/env python3
"""Deduplication benchmark: the plugin on a mock DD system against borg and restic.

Generates two streams of CSV-like table rows (`id,int,text,float,date`),
default 2 GiB each, kept in the page cache:

  original  ~64 MiB of random rows (random.Random) are the row pool; the stream
            is that pool repeated with sequential ids and a different rotation
            per block, so every 8 KiB piece of the stream is unique
  modified  the same table after updates: 10 clustered runs of 0.5% of the rows
            each (5% in all; --change-pct, --change-runs) rewritten with other
            values, and 3 x 20 new rows inserted near the start

and measures, side by side in the same run, each tool on each step:

  first     backup of the original into an empty repository / DD system
  repeated  backup of the same original again (new name / timestamp)
  modified  backup of the modified stream
  restore   full restore of the modified backup, piped to `cat > /dev/null`

  plugin  cat SRC | gpbackup_ddboost_plugin backup_data CFG KEY
          gpbackup_ddboost_plugin restore_data CFG KEY | cat > /dev/null
  borg    cat SRC | borg create --compression lz4 --stdin-name table.csv REPO::NAME -
          borg extract --stdout REPO::NAME | cat > /dev/null          (repo: --encryption none)
  restic  cat SRC | restic backup --stdin --stdin-filename table.csv
          restic dump latest /table.csv | cat > /dev/null             (repo v2, compression auto)

Table columns:
  MB/s          input bytes / wall seconds (10^6 bytes/s); for restore, bytes restored
  new/in raw    new bytes stored per input byte, before compression:
                  plugin: delta of the mock's unique_segment_bytes
                  borg:   delta of unique_size (borg info --json)
                  restic: delta of the uncompressed length of all blobs in the index
                          (total_uncompressed_size of restic stats --mode raw-data)
  new/in disk   new bytes stored per input byte, after compression:
                  plugin: delta of the mock's stored_bytes
                  borg, restic: delta of du -sb of the repository
  peak RSS      peak RSS of the tool's process (GNU time)
  CPU s         user + system CPU seconds of the tool's process (GNU time)
  other CPU     CPUs used by other processes during the step; well above 0.1
                means the step shared the machine: rerun when idle
Then the plugin's results are checked against the targets (first >= 400 MB/s,
repeated >= 1000, modified >= 800, restore >= 800, modified new/in raw <= 0.11,
peak RSS <= 150 MiB). Restores are verified by SHA-256 in an extra untimed pass.
A tool that is not installed (apt-get install borgbackup restic) shows "n/a".

  scripts/bench_ddboost_dedup.py [--size-mib 2048] [--tools plugin,borg,restic] [--steps ...]
      [--change-pct 5] [--change-runs 10] [--wait-idle 120] [--dir /tmp]
      [--no-verify] [--no-build] [--baseline-mock-lib PATH]

--baseline-mock-lib PATH adds the tool "mockbase": the same plugin binary with another
mock libDDBoost (for example one built from an earlier commit), run right after
"plugin" in every step, so the two mocks are compared in the same run; its system is
read with this build's ddboost-mock totals (the on-disk formats are compatible).
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

POOL_MIB = 64
STEPS = ("first", "repeated", "modified", "restore")
TARGETS = {  # step: (min MB/s)
    "first": 400, "repeated": 1000, "modified": 800, "restore": 800,
}
TARGET_MODIFIED_RAW = 0.11
TARGET_RSS_MIB = 150

# ---------------------------------------------------------------- data

def make_pool(mib, seed=1):
    """Random row tails ',int,text,float,date\\n' (everything but the id), about mib MiB."""
    rnd = random.Random(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "de", "pa", "ge", "zu", "shi", "mor", "an", "el"]
    words = ["".join(rnd.choice(syll) for _ in range(rnd.randint(2, 4))) for _ in range(4000)]
    cities = [w.capitalize() for w in words[:300]]
    tails, total, want = [], 0, mib * bl.MiB
    rr, ri, rc = rnd.random, rnd.randrange, rnd.choice
    while total < want:
        t = (f",{ri(-2**31, 2**31)},{rc(words)} {rc(words)} {rc(cities)} {ri(100000)}"
             f",{rr() * 10**ri(1, 7):.4f},20{ri(10, 26)}-{ri(1, 13):02d}-{ri(1, 29):02d}\n").encode()
        tails.append(t)
        total += len(t)
    return tails


class Changes:
    """What turns the original table into the modified one (all rows kept, same ids)."""

    def __init__(self, rows, pool_rows, seed=2, runs=10, run_frac=0.005, inserts=((1000, 20), (20000, 20), (90000, 20))):
        rnd = random.Random(seed)
        run_len = max(1, int(rows * run_frac))
        # One run in each tenth of the table, at a random place inside it.
        span = rows // runs
        self.runs = []
        for i in range(runs):
            lo = i * span + rnd.randrange(max(1, span - run_len))
            self.runs.append((lo, min(rows, lo + run_len)))
        self.shift = pool_rows // 2 + 7919  # changed rows take another row's values
        self.inserts = [(at, n) for at, n in inserts if at < rows]
        self.new_rows = []
        next_id = rows + 1
        for at, n in self.inserts:
            block = []
            for _ in range(n):
                block.append(b"%d,%d,inserted row %d,%.4f,2026-01-01\n"
                             % (next_id, rnd.randrange(10**9), rnd.randrange(10**6), rnd.random() * 1000))
                next_id += 1
            self.new_rows.append(block)
        self.changed_rows = sum(hi - lo for lo, hi in self.runs)


def write_stream(path, pool, size=None, rows=None, changes=None):
    """Writes the table: row r has id r+1 and the tail pool[(r + rot(block)) % P].
    Stops at size bytes (cut at a row end) or after `rows` rows.
    Returns (bytes written, rows from the table, sha256 hex)."""
    P = len(pool)
    h = hashlib.sha256()
    written = done = block = 0
    with open(path, "wb") as f:
        while True:
            lo = block * P
            n = P if rows is None else min(P, rows - lo)
            if n <= 0:
                break
            rot = (block * 1_000_003) % P
            tails = pool[rot:] + pool[:rot]
            if n < P:
                del tails[n:]
            if changes:
                for a, b in changes.runs:
                    a, b = max(a, lo), min(b, lo + n)
                    for start in range(a, b, 65536):
                        end = min(b, start + 65536)
                        s, k = (start - lo + rot + changes.shift) % P, end - start
                        tails[start - lo:end - lo] = pool[s:s + k] if s + k <= P else pool[s:] + pool[:s + k - P]
            ids = ("\n".join(map(str, range(lo + 1, lo + n + 1)))).encode().split(b"\n")
            out = [None] * (2 * n)
            out[0::2] = ids
            out[1::2] = tails
            if changes:
                for (at, _), new in sorted(zip(changes.inserts, changes.new_rows), reverse=True):
                    if lo <= at < lo + n:
                        out[2 * (at - lo):2 * (at - lo)] = new
            data = b"".join(out)
            if size is not None and written + len(data) >= size:
                data = data[:size - written]
                data = data[:data.rfind(b"\n") + 1]
                n = data.count(b"\n")
                f.write(data)
                h.update(data)
                written += len(data)
                done += n
                break
            f.write(data)
            h.update(data)
            written += len(data)
            done += n
            block += 1
    return written, done, h.hexdigest()


# ---------------------------------------------------------------- tools

class Tool:
    name = "?"

    def __init__(self, work):
        self.work = work
        self.stats = os.path.join(work, f"stats_{self.name}")

    def backup(self, step, src):
        secs = bl.pipeline(["cat", src], bl.measured(self.backup_cmd(step), self.stats), env=self.env)
        return (secs, *bl.read_stats(self.stats))

    def restore(self, step):
        secs = bl.pipeline(bl.measured(self.restore_cmd(step), self.stats), ["cat"], env=self.env,
                           stdout=subprocess.DEVNULL)
        return (secs, *bl.read_stats(self.stats))

    def restore_digest(self, step):
        p = subprocess.Popen(self.restore_cmd(step), stdout=subprocess.PIPE, env=self.env)
        h = hashlib.sha256()
        while True:
            b = p.stdout.read(4 * bl.MiB)
            if not b:
                break
            h.update(b)
        if p.wait() != 0:
            raise RuntimeError(f"{self.name}: restore for verification failed")
        return h.hexdigest()


class Plugin(Tool):
    name = "plugin"
    TS = {"first": "20250101120000", "repeated": "20250102120000", "modified": "20250103120000"}
    library = None  # the mock libDDBoost of this build

    def setup(self):
        self.root = os.path.join(self.work, "dd")
        bl.create_system(self.root)
        self.cfg = bl.write_config(os.path.join(self.work, "plugin.yaml"), library=self.library)
        self.env = bl.plugin_env(os.path.join(self.work, "home_plugin"), self.root)

    def key(self, step):
        return bl.key_path(0, self.TS["modified" if step == "restore" else step])

    def backup_cmd(self, step):
        return [bl.PLUGIN, "backup_data", self.cfg, self.key(step)]

    def restore_cmd(self, step):
        return [bl.PLUGIN, "restore_data", self.cfg, self.key(step)]

    def stored(self):
        t = bl.totals(self.root)
        return t["unique_segment_bytes"], t["stored_bytes"]


class PluginBaseMock(Plugin):
    """The same plugin on another mock libDDBoost (--baseline-mock-lib)."""
    name = "mockbase"


class Borg(Tool):
    name = "borg"

    def setup(self):
        self.repo = os.path.join(self.work, "borg")
        self.env = dict(os.environ, HOME=os.path.join(self.work, "home_borg"),
                        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")
        os.makedirs(self.env["HOME"])
        subprocess.run(["borg", "init", "--encryption", "none", self.repo], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def backup_cmd(self, step):
        return ["borg", "create", "--compression", "lz4", "--stdin-name", "table.csv",
                f"{self.repo}::{step}", "-"]

    def restore_cmd(self, step):
        return ["borg", "extract", "--stdout", f"{self.repo}::modified"]

    def stored(self):
        out = subprocess.run(["borg", "info", "--json", self.repo], env=self.env, check=True,
                             capture_output=True, text=True).stdout
        s = json.loads(out)["cache"]["stats"]
        return s["unique_size"], bl.du_bytes(self.repo)


class Restic(Tool):
    name = "restic"

    def setup(self):
        self.repo = os.path.join(self.work, "restic")
        home = os.path.join(self.work, "home_restic")
        os.makedirs(home)
        self.env = dict(os.environ, HOME=home, RESTIC_REPOSITORY=self.repo, RESTIC_PASSWORD="bench",
                        RESTIC_CACHE_DIR=os.path.join(home, "cache"))
        subprocess.run(["restic", "init"], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def backup_cmd(self, step):
        return ["restic", "backup", "--quiet", "--host", "bench", "--stdin", "--stdin-filename", "table.csv"]

    def restore_cmd(self, step):
        return ["restic", "dump", "--quiet", "latest", "/table.csv"]

    def restic(self, *args):
        return subprocess.run(["restic", "--quiet", *args], env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def stored(self):
        # `restic stats --mode raw-data` reports total_uncompressed_size only in newer
        # versions; the index files give every blob's uncompressed length in any v2 repo.
        s = json.loads(self.restic("stats", "--mode", "raw-data", "--json"))
        if "total_uncompressed_size" in s:
            return s["total_uncompressed_size"], bl.du_bytes(self.repo)
        blobs = {}
        for idx in self.restic("list", "index").split():
            for pack in json.loads(self.restic("cat", "index", idx)).get("packs", []):
                for b in pack.get("blobs", []):
                    # Uncompressed blobs only carry length, which includes 32 bytes of IV + MAC.
                    blobs[b["id"]] = b.get("uncompressed_length") or b["length"] - 32
        return sum(blobs.values()), bl.du_bytes(self.repo)


TOOLS = {"plugin": Plugin, "mockbase": PluginBaseMock, "borg": Borg, "restic": Restic}
EXECUTABLE = {"borg": "borg", "restic": "restic"}


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(
        description="Deduplication: the plugin on a mock DD system against borg and restic.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--size-mib", type=int, default=2048, help="size of each stream in MiB (default 2048)")
    ap.add_argument("--tools", default="plugin,borg,restic",
                    help="comma-separated subset of plugin,borg,restic (mockbase: see --baseline-mock-lib)")
    ap.add_argument("--dir", default=None, help="parent of the temporary work directory (default $TMPDIR or /tmp)")
    ap.add_argument("--no-verify", action="store_true", help="skip the untimed SHA-256 check of each restore")
    ap.add_argument("--change-pct", type=float, default=5.0,
                    help="percent of rows changed in the modified stream (default 5)")
    ap.add_argument("--change-runs", type=int, default=10,
                    help="number of clustered runs the changed rows form (default 10; more = more scattered)")
    ap.add_argument("--wait-idle", type=float, default=120,
                    help="seconds to wait for other CPU load to go away before starting (default 120)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--steps", default=",".join(STEPS),
                    help="comma-separated subset of first,repeated,modified,restore (restore needs modified)")
    ap.add_argument("--baseline-mock-lib", default=None, metavar="PATH",
                    help="also run the plugin with this mock libDDBoost (tool \"mockbase\"), side by side")
    a = ap.parse_args()
    names = [t.strip() for t in a.tools.split(",") if t.strip()]
    steps = [s.strip() for s in a.steps.split(",") if s.strip()]
    if any(s not in STEPS for s in steps) or ("restore" in steps and "modified" not in steps):
        sys.exit(f"--steps: a subset of {','.join(STEPS)}; restore needs modified")
    steps = [s for s in STEPS if s in steps]
    if a.baseline_mock_lib:
        if not os.path.isfile(a.baseline_mock_lib):
            sys.exit(f"--baseline-mock-lib: no such file: {a.baseline_mock_lib}")
        PluginBaseMock.library = os.path.abspath(a.baseline_mock_lib)
        if "mockbase" not in names:
            names.insert(names.index("plugin") + 1 if "plugin" in names else 0, "mockbase")
    if "mockbase" in names and not a.baseline_mock_lib:
        sys.exit("--tools mockbase needs --baseline-mock-lib PATH")
    for n in names:
        if n not in TOOLS:
            sys.exit(f"--tools: unknown tool {n}")
    bl.need_gnu_time()
    if ("plugin" in names or "mockbase" in names) and not a.no_build:
        bl.build()

    work = bl.workdir("bench_ddboost_dedup.", a.dir)
    try:
        print(f"generating {a.size_mib} MiB streams ...", file=sys.stderr, flush=True)
        pool = make_pool(min(POOL_MIB, max(1, a.size_mib // 4)))
        orig = os.path.join(work, "original.csv")
        mod = os.path.join(work, "modified.csv")
        size_o, rows, sha_o = write_stream(orig, pool, size=a.size_mib * bl.MiB)
        changes = Changes(rows, len(pool), runs=a.change_runs, run_frac=a.change_pct / 100 / a.change_runs)
        size_m, _, sha_m = write_stream(mod, pool, rows=rows, changes=changes)
        inserted = sum(n for _, n in changes.inserts)
        print(f"original: {size_o} bytes, {rows} rows; modified: {size_m} bytes, "
              f"{changes.changed_rows} rows changed in {len(changes.runs)} runs "
              f"({changes.changed_rows / rows:.1%}), {inserted} rows inserted", file=sys.stderr, flush=True)
        del pool

        tools, missing = {}, {}
        for n in names:
            exe = EXECUTABLE.get(n)
            if exe and not shutil.which(exe):
                missing[n] = f"{exe} not installed"
                continue
            t = TOOLS[n](os.path.join(work, n))
            os.makedirs(t.work)
            try:
                t.setup()
                tools[n] = t
            except Exception as e:  # noqa: BLE001 - report and continue with the other tools
                missing[n] = f"setup failed: {e}"
        for n, why in missing.items():
            print(f"{n}: n/a ({why})", file=sys.stderr)

        bl.settle()
        busy = bl.wait_quiet(a.wait_idle)
        if busy > 0.15:
            print(f"warning: the machine was {busy:.0%} busy with other work at the start", file=sys.stderr)
        results = {}  # (tool, step) -> dict
        inputs = {"first": (orig, size_o), "repeated": (orig, size_o), "modified": (mod, size_m),
                  "restore": (None, size_m)}
        for step in steps:
            for n in names:
                t = tools.get(n)
                if t is None:
                    continue
                src, size = inputs[step]
                try:
                    raw0, disk0 = t.stored()
                    bl.settle()
                    other = bl.OtherLoad().start()
                    if step == "restore":
                        secs, rss, cpu = t.restore(step)
                    else:
                        secs, rss, cpu = t.backup(step, src)
                    other = other.stop()
                    raw1, disk1 = t.stored()
                except Exception as e:  # noqa: BLE001
                    print(f"{n} {step}: failed: {e}", file=sys.stderr)
                    missing[n] = f"failed at {step}"
                    tools.pop(n)
                    continue
                r = {"mbps": size / secs / bl.MB, "secs": secs, "rss": rss, "cpu": cpu,
                     "raw": (raw1 - raw0) / size, "disk": (disk1 - disk0) / size, "other": other}
                results[(n, step)] = r
                print(f"  {n:8} {step:9} {r['mbps']:7.0f} MB/s  {secs:6.2f} s  raw {r['raw']:.3f}  "
                      f"disk {r['disk']:.3f}  RSS {rss / 1024:.1f} MiB  CPU {cpu:.2f} s", file=sys.stderr, flush=True)

        verified = {}
        if not a.no_verify and "restore" in steps:
            for n, t in tools.items():
                try:
                    verified[n] = t.restore_digest("restore") == sha_m
                except Exception:  # noqa: BLE001
                    verified[n] = False

        print()
        print(f"dedup benchmark: {size_o / bl.MiB:.0f} MiB of CSV rows ({rows} rows), modified stream "
              f"{size_m / bl.MiB:.0f} MiB ({changes.changed_rows / rows:.1%} of rows changed in "
              f"{len(changes.runs)} runs, {inserted} inserted); MB/s = 10^6 bytes/s; {os.cpu_count()} CPUs")
        hdr = (f"{'tool':8} {'step':9} {'MB/s':>7} {'seconds':>8} {'new/in raw':>10} "
               f"{'new/in disk':>11} {'peak RSS':>10} {'CPU s':>7} {'other CPU':>9}")
        print(hdr)
        print("-" * len(hdr))
        for n in names:
            for step in steps:
                r = results.get((n, step))
                if r is None:
                    print(f"{n:8} {step:9} {'n/a':>7} {'n/a':>8} {'n/a':>10} {'n/a':>11} {'n/a':>10}")
                    continue
                raw = f"{r['raw']:.3f}" if step != "restore" else "-"
                disk = f"{r['disk']:.3f}" if step != "restore" else "-"
                print(f"{n:8} {step:9} {r['mbps']:7.0f} {r['secs']:8.2f} {raw:>10} {disk:>11} "
                      f"{r['rss'] / 1024:>6.1f} MiB {r['cpu']:>7.2f} {r['other']:>9.2f}")
        for n, why in missing.items():
            print(f"{n}: n/a ({why})")
        if verified:
            print("restore verified (SHA-256 of the modified stream): "
                  + ", ".join(f"{n} {'ok' if ok else 'MISMATCH'}" for n, ok in verified.items()))

        if "mockbase" in names:
            print()
            print(f"this mock against {PluginBaseMock.library}, same run (MB/s ratio; CPU seconds of")
            print("the plugin process, which runs the mock inside it: less sensitive to other load):")
            for step in steps:
                r, b = results.get(("plugin", step)), results.get(("mockbase", step))
                if r and b:
                    print(f"  {step:9} {r['mbps']:7.0f} / {b['mbps']:7.0f} MB/s = {r['mbps'] / b['mbps']:.2f}x   "
                          f"CPU {r['cpu']:6.2f} / {b['cpu']:6.2f} s = {r['cpu'] / b['cpu']:.2f}x")

        if "plugin" in names:
            print()
            print("plugin targets:")
            checks = []
            for step, want in TARGETS.items():
                if step not in steps:
                    continue
                r = results.get(("plugin", step))
                got = r["mbps"] if r else None
                checks.append((f"{step} >= {want} MB/s", got is not None and got >= want,
                               f"{got:.0f} MB/s" if got is not None else "n/a"))
            r = results.get(("plugin", "modified"))
            checks.append((f"modified new/in raw <= {TARGET_MODIFIED_RAW}",
                           r is not None and r["raw"] <= TARGET_MODIFIED_RAW,
                           f"{r['raw']:.3f}" if r else "n/a"))
            rss = max((results[("plugin", s)]["rss"] for s in STEPS if ("plugin", s) in results), default=None)
            checks.append((f"peak RSS <= {TARGET_RSS_MIB} MiB", rss is not None and rss / 1024 <= TARGET_RSS_MIB,
                           f"{rss / 1024:.1f} MiB" if rss is not None else "n/a"))
            for what, ok, got in checks:
                print(f"  {what:32} {got:>12}  {'ok' if ok else 'MISSED'}")
    finally:
        bl.remove(work)


if __name__ == "__main__":
    main()
