"""Shared helpers for the DD Boost benchmarks (Python 3 stdlib only).

Builds the plugin and the mock libDDBoost, creates emulated Data Domain
systems, writes plugin configs, makes gpbackup-style key paths, reads the
mock's totals and measures peak RSS / CPU time with GNU time.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
PLUGIN = os.path.join(RELEASE, "gpbackup_ddboost_plugin")
MOCK_LIB = os.path.join(RELEASE, "libddboost_mock.so")
MOCK_ADMIN = os.path.join(RELEASE, "ddboost-mock")
GNU_TIME = "/usr/bin/time"

HOST = "dd1"
USER = "gpbackup"
PASSWORD = "secret"
STORAGE_UNIT = "GPDB"

MB = 1e6
MiB = 1 << 20


def build():
    """cargo build --release of the plugin and the mock (waits if cargo is locked)."""
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "-p", "gpbackup_ddboost_plugin", "-p", "ddboost-mock"],
        cwd=ROOT,
        check=True,
    )
    for path in (PLUGIN, MOCK_LIB, MOCK_ADMIN):
        if not os.path.exists(path):
            sys.exit(f"missing after build: {path}")


def need_gnu_time():
    if not os.path.exists(GNU_TIME):
        sys.exit("needs GNU time: apt-get install time")


def workdir(prefix, parent=None):
    return tempfile.mkdtemp(prefix=prefix, dir=parent or tempfile.gettempdir())


def remove(path):
    shutil.rmtree(path, ignore_errors=True)


def create_system(root):
    """Creates an empty emulated Data Domain system (host dd1) under root."""
    os.makedirs(root, exist_ok=True)
    subprocess.run(
        [MOCK_ADMIN, "create-system", "--root", root, "--host", HOST, "--user", USER,
         "--password", PASSWORD, "--storage-unit", STORAGE_UNIT],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def totals(root):
    """The mock's totals for host dd1 as a dict of ints."""
    out = subprocess.run(
        [MOCK_ADMIN, "totals", "--root", root, "--host", HOST],
        check=True, capture_output=True, text=True,
    ).stdout
    result = {}
    for line in out.splitlines():
        k, _, v = line.partition("=")
        if v.strip().isdigit():
            result[k.strip()] = int(v)
    return result


def write_config(path, directory="gpdb", library=None):
    with open(path, "w") as f:
        f.write(
            f"executablepath: {PLUGIN}\n"
            "options:\n"
            "  backend: ddboost\n"
            f"  hostname: {HOST}\n"
            f"  username: {USER}\n"
            f"  password: {PASSWORD}\n"
            f"  storage_unit: {STORAGE_UNIT}\n"
            f"  directory: {directory}\n"
            f"  ddboost_library: {library or MOCK_LIB}\n"
        )
    return path


def key_path(segment, timestamp):
    """gpbackup_helper's data file path for segment N of backup TIMESTAMP."""
    return f"/data/gpseg{segment}/backups/{timestamp[:8]}/{timestamp}/gpbackup_{segment}_{timestamp}"


def plugin_env(home, mock_root, extra=None):
    env = dict(os.environ)
    env["HOME"] = home
    env["DDBOOST_MOCK_ROOT"] = mock_root
    for k in ("DDBOOST_MOCK_STREAM_MBPS", "DDBOOST_MOCK_SYSTEM_MBPS", "DDBOOST_MOCK_LATENCY_MS",
              "DDBOOST_MOCK_FAULTS", "DDBOOST_MOCK_TRACE"):
        env.pop(k, None)
    env.update(extra or {})
    os.makedirs(home, exist_ok=True)
    return env


def measured(cmd, stats_file):
    """Wraps cmd so GNU time writes 'peak-RSS-KiB user-s sys-s' to stats_file."""
    return [GNU_TIME, "-f", "%M %U %S", "-o", stats_file] + list(cmd)


def read_stats(stats_file):
    """(peak RSS in KiB, CPU seconds user+sys) from a measured() run."""
    with open(stats_file) as f:
        fields = f.read().split()
    # GNU time prefixes "Command exited with non-zero status N" on failure.
    rss, user, sys_ = fields[-3:]
    return int(rss), float(user) + float(sys_)


def pipeline(producer, consumer, env=None, stdin=None, stdout=None):
    """Runs producer | consumer, returns wall seconds; exits on failure."""
    start = time.perf_counter()
    p1 = subprocess.Popen(producer, stdin=stdin, stdout=subprocess.PIPE, env=env)
    p2 = subprocess.Popen(consumer, stdin=p1.stdout, stdout=stdout, env=env)
    p1.stdout.close()
    r2 = p2.wait()
    r1 = p1.wait()
    secs = time.perf_counter() - start
    if r1 != 0 or r2 != 0:
        raise RuntimeError(f"failed ({r1}, {r2}): {' '.join(producer)} | {' '.join(consumer)}")
    return secs


def du_bytes(path):
    """Apparent size in bytes of everything under path (like du -sb)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def settle():
    """Flushes dirty pages so earlier writes do not slow the next measurement."""
    os.sync()


def _cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v), idle


def busy_secs():
    """CPU seconds the machine has been busy (any process, all cores)."""
    total, idle = _cpu_times()
    return (total - idle) / os.sysconf("SC_CLK_TCK")


def cpu_busy(seconds=1.0):
    """Fraction of all CPUs busy (any process) over the next `seconds`."""
    t0, i0 = _cpu_times()
    time.sleep(seconds)
    t1, i1 = _cpu_times()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


class OtherLoad:
    """CPU used by processes other than this one and its (waited-for) children
    between start() and stop(), in CPUs (1.0 = one core busy all the time).
    Tells whether compilers, tests or other benchmarks ran during a measurement;
    kernel threads doing our own writeback are counted too."""

    def start(self):
        self.machine0 = busy_secs()
        self.own0 = self._own_secs()
        self.wall0 = time.perf_counter()
        return self

    def stop(self):
        machine = busy_secs() - self.machine0
        own = self._own_secs() - self.own0
        wall = time.perf_counter() - self.wall0
        return max(0.0, machine - own) / max(wall, 1e-9)

    @staticmethod
    def _own_secs():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system


def wait_quiet(max_wait, threshold=0.15):
    """Waits up to max_wait seconds for the machine to be idle (CPU use below
    threshold over one second); returns the last CPU use seen."""
    deadline = time.time() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.time() < deadline:
        print(f"  machine busy ({busy:.0%} CPU used by other processes), waiting ...", file=sys.stderr, flush=True)
        time.sleep(4)
        busy = cpu_busy()
    return busy
