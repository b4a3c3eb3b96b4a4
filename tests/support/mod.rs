//! Test harness: runs the built plugin the way gpbackup, gprestore and
//! gpbackup_helper run it, against one backend.
#![allow(dead_code)]

pub mod broker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_gpbackup_ddboost_plugin");

/// Which storage a test environment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    /// The `ddboost` backend against the mock libDDBoost.
    DdBoostMock,
}

/// The mock library and its admin command, built once per test process.
pub struct Mock {
    pub lib: PathBuf,
    pub cli: PathBuf,
}

/// Locates (or builds) `libddboost_mock.so` and `ddboost-mock`:
/// `DDBOOST_MOCK_LIB`/`DDBOOST_MOCK_CLI` when set, else beside the plugin
/// binary, else `cargo build -p ddboost-mock`.
pub fn mock() -> &'static Mock {
    static MOCK: std::sync::OnceLock<Mock> = std::sync::OnceLock::new();
    MOCK.get_or_init(|| {
        let dir = Path::new(PLUGIN).parent().unwrap().to_path_buf();
        let lib = std::env::var_os("DDBOOST_MOCK_LIB")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("libddboost_mock.so"));
        let cli = std::env::var_os("DDBOOST_MOCK_CLI")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("ddboost-mock"));
        if !lib.exists() || !cli.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let profile = dir.file_name().unwrap().to_str().unwrap().to_string();
            let mut c = Command::new(cargo);
            c.args(["build", "--quiet", "-p", "ddboost-mock"]);
            if profile != "debug" {
                c.args(["--profile", &profile]);
            }
            c.env("CARGO_TARGET_DIR", dir.parent().unwrap());
            let out = c.current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
            assert!(
                out.status.success(),
                "cannot build the mock: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Mock { lib, cli }
    })
}

pub const DD_USER: &str = "gpbackup";
pub const DD_PASSWORD: &str = "Pa55-w0rd-dd";
pub const DD_SU: &str = "GPDB";

/// Creates an emulated Data Domain system `host` under `root`.
pub fn create_system(root: &Path, host: &str) {
    create_system_with_password(root, host, DD_PASSWORD);
}

/// Creates a mock system whose user has `password`.
pub fn create_system_with_password(root: &Path, host: &str, password: &str) {
    let out = Command::new(&mock().cli)
        .args([
            "create-system",
            "--root",
            root.to_str().unwrap(),
            "--host",
            host,
            "--user",
            DD_USER,
            "--password",
            password,
            "--storage-unit",
            DD_SU,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "create-system: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A connection to the mock system `host` (made with [`create_system`]),
/// in the folder `dir`, for tests in-process.
pub fn open_mock(host: &str, dir: &str) -> Box<dyn gpbackup_ddboost_plugin::storage::Storage> {
    let text = format!(
        "options:\n  hostname: {host}\n  username: {DD_USER}\n  password: {DD_PASSWORD}\n  storage_unit: {DD_SU}\n  directory: {dir}\n  ddboost_library: {}\n",
        mock().lib.display()
    );
    let cfg =
        gpbackup_ddboost_plugin::backends::PluginConfig::parse(&text, Path::new("t.yaml")).unwrap();
    cfg.backend
        .open(gpbackup_ddboost_plugin::storage::Remote::Never)
        .unwrap()
}

/// The plugin's temporaries in `storage` (in-process), sorted.
pub fn temporaries_in(storage: &dyn gpbackup_ddboost_plugin::storage::Storage) -> Vec<String> {
    let mut t: Vec<String> = storage
        .list_all(&gpbackup_ddboost_plugin::storage::StoragePath::root())
        .unwrap()
        .into_iter()
        .map(|o| o.path.to_string())
        .filter(|p| p.contains(".tmp-"))
        .collect();
    t.sort();
    t
}

/// The calls of an overwrite the fault wrapper fails in turn
/// (`GPBACKUP_DDBOOST_PLUGIN_FAULTS`).
pub const OVERWRITE_CALLS: [&str; 11] = [
    "create:nth=1",
    "create:nth=2",
    "write:nth=1",
    "write:nth=3",
    "close:nth=1",
    "close:nth=2",
    "commit:nth=1",
    "commit:nth=2",
    "rename:nth=1",
    "stat:nth=1",
    "open:nth=1",
];

/// Fault wrapper rules failing each of `calls`, as an error and as
/// not-found, before and after its effect.
pub fn failing_in_turn(calls: &[&str]) -> Vec<String> {
    calls
        .iter()
        .flat_map(|c| {
            ["io", "notfound"]
                .into_iter()
                .flat_map(move |e| ["before", "after"].map(|w| format!("{c}:err={e}:when={w}")))
        })
        .collect()
}

/// The totals of a mock system as key=value pairs.
pub fn totals(root: &Path, host: &str) -> std::collections::HashMap<String, u64> {
    let out = Command::new(&mock().cli)
        .args(["totals", "--root", root.to_str().unwrap(), "--host", host])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "totals: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.trim().to_string(), v.trim().parse().ok()?)))
        .collect()
}

/// A temporary world: a home for logs, a config, a storage target and a
/// segment-like local directory.
pub struct Env {
    pub backend: Backend,
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
    /// Where the local backend stores objects.
    pub store: PathBuf,
    /// A fake segment data directory.
    pub segdir: PathBuf,
}

impl Env {
    pub fn new(backend: Backend) -> Env {
        Self::with_options(backend, "")
    }

    /// `extra` is appended to the options map (indented YAML lines).
    pub fn with_options(backend: Backend, extra: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let store = tmp.path().join("store");
        let segdir = tmp.path().join("data/gpseg0");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(&segdir).unwrap();
        let config = tmp.path().join("plugin_config.yaml");
        if backend == Backend::DdBoostMock {
            create_system(&tmp.path().join("dd"), "dd-primary");
        }
        let env = Env {
            backend,
            tmp,
            home,
            config,
            store,
            segdir,
        };
        env.write_config(&format!("{}{extra}", env.backend_options()));
        env
    }

    /// The options lines that select this environment's backend.
    pub fn backend_options(&self) -> String {
        match self.backend {
            Backend::Local => format!("  backend: local\n  directory: {}\n", self.store.display()),
            Backend::DdBoostMock => self.dd_options("dd-primary", "gpdb/backups"),
        }
    }

    /// The mock systems' root.
    pub fn dd_root(&self) -> PathBuf {
        self.tmp.path().join("dd")
    }

    /// Options for the mock system `host`, directory `dir`.
    pub fn dd_options(&self, host: &str, dir: &str) -> String {
        format!(
            "  backend: ddboost\n  hostname: {host}\n  username: {DD_USER}\n  password: {DD_PASSWORD}\n  storage_unit: {DD_SU}\n  directory: {dir}\n  ddboost_library: {}\n",
            mock().lib.display()
        )
    }

    /// The namespace folder of the configured directory on the mock system.
    fn dd_namespace(&self) -> PathBuf {
        self.dd_root()
            .join(format!("dd-primary/su/{DD_SU}/gpdb/backups"))
    }

    /// A connection to the mock system, for tests that reach past the plugin.
    pub fn dd_connect(&self, host: &str) -> (ddboost::Instance, ddboost::Connection) {
        std::env::set_var("DDBOOST_MOCK_ROOT", self.dd_root());
        let lib = ddboost::Library::load(&mock().lib).unwrap();
        let inst = ddboost::Instance::new(&lib, "tests", "tests").unwrap();
        let conn = ddboost::Connection::connect(&inst, host, DD_USER, DD_PASSWORD).unwrap();
        (inst, conn)
    }

    /// Replaces a file on the mock system with `data`, leaving its checksum record.
    pub fn dd_overwrite(&self, rel: &str, data: &[u8]) {
        let (_i, conn) = self.dd_connect("dd-primary");
        let path = format!("gpdb/backups/{rel}");
        let _ = conn.unlink(DD_SU, &path);
        let f = conn
            .open_file(DD_SU, &path, ddboost::OpenMode::CreateReadWrite, 0o644)
            .unwrap();
        let mut off = 0;
        for c in data.chunks(1 << 20) {
            f.write_at(c, off).unwrap();
            off += c.len() as u64;
        }
        f.close().unwrap();
    }

    pub fn dd_read(&self, rel: &str) -> Vec<u8> {
        let (_i, conn) = self.dd_connect("dd-primary");
        let f = conn
            .open_file(
                DD_SU,
                &format!("gpdb/backups/{rel}"),
                ddboost::OpenMode::Read,
                0,
            )
            .unwrap();
        let size = f.fstat().unwrap().size as usize;
        let mut buf = vec![0u8; size];
        let mut got = 0;
        while got < size {
            let n = f.read_at(&mut buf[got..], got as u64).unwrap();
            assert!(n > 0);
            got += n;
        }
        buf
    }

    pub fn write_config(&self, options: &str) {
        std::fs::write(
            &self.config,
            format!("executablepath: /usr/local/greenplum-db/bin/gpbackup_ddboost_plugin\noptions:\n{options}"),
        )
        .unwrap();
    }

    /// A config file at another path with the given options text.
    pub fn other_config(&self, name: &str, options: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(
            &p,
            format!("executablepath: /x/gpbackup_ddboost_plugin\noptions:\n{options}"),
        )
        .unwrap();
        p
    }

    pub fn cfg(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// The local backup directory of a timestamp on this "segment".
    pub fn backup_dir(&self, ts: &str) -> String {
        format!("{}/backups/{}/{ts}", self.segdir.display(), &ts[..8])
    }

    /// The path gpbackup passes for file `name` of backup `ts`.
    pub fn key(&self, ts: &str, name: &str) -> String {
        format!("{}/{name}", self.backup_dir(ts))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(PLUGIN);
        c.args(args).env("HOME", &self.home).env("USER", "gpadmin");
        c.env("DDBOOST_MOCK_ROOT", self.dd_root());
        // Each test's own journal of temporaries (debug builds).
        c.env("GPBACKUP_DDBOOST_PLUGIN_RUN_DIR", self.tmp.path());
        c
    }

    /// Runs with no stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        self.run_stdin_env(args, input, &[])
    }

    /// Runs with `input` on stdin and extra environment variables.
    pub fn run_stdin_env(&self, args: &[&str], input: &[u8], vars: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        feed(cmd, input)
    }

    pub fn spawn_stdin(&self, args: &[&str]) -> Child {
        spawn_piped(self.command(args))
    }

    pub fn backup_data(&self, ts: &str, name: &str, data: &[u8]) {
        let out = self.run_stdin(&["backup_data", self.cfg(), &self.key(ts, name)], data);
        ok(&out);
    }

    pub fn restore_data(&self, ts: &str, name: &str) -> Vec<u8> {
        let out = self.run(&["restore_data", self.cfg(), &self.key(ts, name)]);
        ok(&out);
        out.stdout
    }

    pub fn subset(&self, ts: &str, name: &str, offsets: &str) -> Output {
        let f = self.tmp.path().join(format!("offsets_{}", rand_u32()));
        std::fs::write(&f, offsets).unwrap();
        self.run(&[
            "restore_data_subset",
            self.cfg(),
            &self.key(ts, name),
            f.to_str().unwrap(),
        ])
    }

    /// The objects the plugin lists (path and size), as text.
    pub fn listing(&self) -> String {
        let out = self.run(&["list_directory", self.cfg()]);
        ok(&out);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Everything the backend holds, hidden names included.
    pub fn raw_snapshot(&self) -> Vec<(String, u64)> {
        match self.backend {
            Backend::Local => walk(&self.store),
            Backend::DdBoostMock => walk(&self.dd_namespace()),
        }
    }

    /// Changes one byte of a stored object without updating its checksum.
    pub fn corrupt(&self, ts: &str, name: &str) {
        match self.backend {
            Backend::Local => {
                let p = self.store.join(format!("backups/{}/{ts}/{name}", &ts[..8]));
                let mut d = std::fs::read(&p).unwrap();
                let i = d.len() / 2;
                d[i] ^= 0x55;
                std::fs::write(&p, d).unwrap();
            }
            Backend::DdBoostMock => {
                let rel = format!("backups/{}/{ts}/{name}", &ts[..8]);
                let mut d = self.dd_read(&rel);
                let i = d.len() / 2;
                d[i] ^= 0x55;
                self.dd_overwrite(&rel, &d);
            }
        }
    }

    /// Removes the checksum record of an object, as if another tool wrote it.
    pub fn drop_checksum(&self, ts: &str, name: &str) {
        match self.backend {
            Backend::Local => {
                let p = self
                    .store
                    .join(format!("backups/{}/{ts}/.{name}.checksum", &ts[..8]));
                std::fs::remove_file(p).unwrap();
            }
            Backend::DdBoostMock => {
                let (_i, conn) = self.dd_connect("dd-primary");
                let rec = format!("gpdb/backups/backups/{}/{ts}/.{name}.checksum", &ts[..8]);
                conn.unlink(DD_SU, &rec).unwrap();
            }
        }
    }

    /// Removes a file of the backend directly (path relative to `directory`).
    pub fn remove_raw(&self, rel: &str) {
        match self.backend {
            Backend::Local => std::fs::remove_file(self.store.join(rel)).unwrap(),
            Backend::DdBoostMock => {
                let (_i, conn) = self.dd_connect("dd-primary");
                conn.unlink(DD_SU, &format!("gpdb/backups/{rel}")).unwrap();
            }
        }
    }

    /// Writes a file of the backend directly (path relative to `directory`).
    pub fn put_raw(&self, rel: &str, data: &[u8]) {
        match self.backend {
            Backend::Local => {
                let p = self.store.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, data).unwrap();
            }
            Backend::DdBoostMock => self.dd_overwrite(rel, data),
        }
    }

    /// Reads a file of the backend directly; None when it is not there.
    pub fn get_raw(&self, rel: &str) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Local => std::fs::read(self.store.join(rel)).ok(),
            Backend::DdBoostMock => {
                let (_i, conn) = self.dd_connect("dd-primary");
                conn.stat(DD_SU, &format!("gpdb/backups/{rel}")).ok()?;
                Some(self.dd_read(rel))
            }
        }
    }

    /// The hidden temporaries the backend holds (names with `.tmp-`).
    pub fn temporaries(&self) -> Vec<String> {
        self.raw_snapshot()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.contains(".tmp-"))
            .collect()
    }

    pub fn log_text(&self) -> String {
        let dir = self.home.join("gpAdminLogs");
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }
}

/// Starts `cmd` (a write) with `input` on its stdin and the test pause point
/// `point` asked for, and waits until it stops there (at most a minute).
/// Its stdout and stderr are pipes; the marker file it made is returned.
pub fn stopped_at(env: &Env, mut cmd: Command, point: &str, input: &[u8]) -> (Child, PathBuf) {
    let marker = env.tmp.path().join(format!("at-{point}-{}", rand_u32()));
    cmd.env(
        "GPBACKUP_DDBOOST_PLUGIN_PAUSE",
        format!("{point}={}", marker.display()),
    );
    let (child, _feeder) = spawn_fed(cmd, input);
    let started = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "pause point {point} not reached"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, marker)
}

/// Starts `cmd` with its standard streams piped.
pub fn spawn_piped(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts `cmd` with piped stdio and `input` fed to its stdin from a thread
/// (so a command that stops reading early cannot block the test).
pub fn spawn_fed(cmd: Command, input: &[u8]) -> (Child, std::thread::JoinHandle<()>) {
    let mut child = spawn_piped(cmd);
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    (child, feeder)
}

/// Runs `cmd` with `input` on stdin and collects its output.
pub fn feed(cmd: Command, input: &[u8]) -> Output {
    let (child, feeder) = spawn_fed(cmd, input);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// Files below `root` with sizes, hidden ones included, sorted.
pub fn walk(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.push((format!("{rel}/"), 0));
                stack.push(p);
            } else {
                out.push((rel, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    out.sort();
    out
}

/// The lines that start with `status`, sorted.
pub fn with_status(lines: &[String], status: &str) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with(&format!("{status} ")))
        .cloned()
        .collect();
    v.sort();
    v
}

/// Runs verify_backup of `ts` with `extra` arguments: the output and its
/// stdout lines.
pub fn verify_lines(env: &Env, ts: &str, extra: &[&str]) -> (Output, Vec<String>) {
    let mut args = vec!["verify_backup", env.cfg(), ts];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (out, lines)
}

/// Asserts success with silent stderr.
#[track_caller]
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr on success: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a clean failure: non-zero exit, one clear stderr line, no panic.
#[track_caller]
pub fn fails(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "unexpected success; stderr: {err}");
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}",
        out.status
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "panic: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("gpbackup_ddboost_plugin"), "{err}");
    err
}

pub fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    t ^ (std::process::id() << 8) ^ N.fetch_add(7919, Ordering::Relaxed)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// CSV-like rows, as gpbackup streams table data.
pub fn csv_rows(n: usize, seed: u64) -> Vec<u8> {
    let mut s = String::new();
    let r = bytes(n * 4, seed);
    for i in 0..n {
        s.push_str(&format!(
            "{i},{},name_{:08},{}\n",
            r[i * 4] as u32 * 977,
            r[i * 4 + 1],
            r[i * 4 + 2] % 97
        ));
    }
    s.into_bytes()
}

/// Instantiates each case (a `fn(&Env)`) once per backend, as tests in a
/// module named after the backend:
/// `per_backend!(local, Backend::Local, [case_a, case_b]);`
#[allow(unused_macros)]
macro_rules! per_backend {
    ($backend_mod:ident, $backend:expr, [$($case:ident),* $(,)?]) => {
        mod $backend_mod {
            $(
                #[test]
                fn $case() {
                    let env = super::Env::new($backend);
                    super::$case(&env);
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use per_backend;

/// The calls in the mock's trace at `trace` that reach the system, in
/// order (the SDK's local calls, init, instances and the log, left out);
/// the trace is removed, so that the next command's calls start afresh.
pub fn taken_appliance_calls(trace: &Path) -> Vec<String> {
    const LOCAL: [&str; 5] = [
        "init",
        "shutdown",
        "instance_create",
        "instance_destroy",
        "log_init",
    ];
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let _ = std::fs::remove_file(trace);
    text.lines()
        .filter_map(|l| l.strip_prefix("op="))
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .filter(|op| !LOCAL.contains(&op.as_str()))
        .collect()
}
