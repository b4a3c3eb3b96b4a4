//! The mock libDDBoost (`ddboost-sys/mock`) for the integration tests.
//!
//! The mock library is taken from `DDBOOST_MOCK_LIB` (and its admin command
//! from `DDBOOST_MOCK_CLI`) when set; otherwise both are built with
//! `cargo build -p ddboost-mock` into this build's target directory. A test
//! that cannot get the mock (it does not build, its library does not load, its
//! admin command cannot create a system) fails. Each test binary loads the library
//! once, so a binary whose tests need a mock configuration (`DDBOOST_MOCK_*`
//! variables, read at `ddp_init`) is a file of its own.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use ddboost::{Connection, Instance, Library, OpenMode};

pub const USER: &str = "boost";
pub const PASSWORD: &str = "s3cret-Pa55";
pub const SU: &str = "GPDB";

pub struct Mock {
    pub lib: Library,
    pub cli: PathBuf,
    pub root: PathBuf,
}

static MOCK: OnceLock<Result<Mock, String>> = OnceLock::new();

/// The target directory of this build (`<target>`, holding `debug/`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(2).expect("profile dir").to_path_buf()
}

fn build_mock() -> Result<(PathBuf, PathBuf), String> {
    let env_lib = std::env::var_os("DDBOOST_MOCK_LIB").map(PathBuf::from);
    let env_cli = std::env::var_os("DDBOOST_MOCK_CLI").map(PathBuf::from);
    if let (Some(lib), Some(cli)) = (&env_lib, &env_cli) {
        return Ok((lib.clone(), cli.clone()));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = profile_dir();
    let profile = profile
        .file_name()
        .and_then(|p| p.to_str())
        .unwrap_or("debug");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "ddboost-mock"]);
    if profile != "debug" {
        cmd.args(["--profile", profile]);
    }
    let out = cmd
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(format!(
            "`cargo build -p ddboost-mock` failed:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let dir = target_dir().join(profile);
    Ok((
        env_lib.unwrap_or_else(|| dir.join("libddboost_mock.so")),
        env_cli.unwrap_or_else(|| dir.join("ddboost-mock")),
    ))
}

/// Builds (or finds) the mock, sets `env` and `DDBOOST_MOCK_ROOT`, and loads
/// the library (which reads its `DDBOOST_MOCK_*` configuration at `ddp_init`).
fn setup(env: &[(&str, &str)]) -> Result<Mock, String> {
    let (lib_path, cli) = build_mock()?;
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ddboost-mock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    // Set before any test thread calls into the library (they all wait on
    // this initialisation).
    std::env::set_var("DDBOOST_MOCK_ROOT", &root);
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let lib = Library::load(&lib_path).map_err(|e| e.to_string())?;
    let mock = Mock { lib, cli, root };
    mock.create_system("probe-host")?;
    Ok(mock)
}

impl Mock {
    pub fn create_system(&self, host: &str) -> Result<(), String> {
        let out = Command::new(&self.cli)
            .arg("create-system")
            .arg("--root")
            .arg(&self.root)
            .args([
                "--host",
                host,
                "--user",
                USER,
                "--password",
                PASSWORD,
                "--storage-unit",
                SU,
            ])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.cli.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} create-system failed: {}",
                self.cli.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    pub fn instance(&self) -> Instance {
        Instance::new(&self.lib, "ddboost-tests", "ddboost integration tests").expect("instance")
    }

    /// A fresh system named after the test, and a connection to it.
    pub fn system(&self, host: &str) -> (Instance, Connection) {
        self.create_system(host).expect("create-system");
        let inst = self.instance();
        let conn = Connection::connect(&inst, host, USER, PASSWORD).expect("connect");
        (inst, conn)
    }
}

/// The mock of this test binary, loaded with `env` set (the first call's
/// `env` counts). Any problem getting it (the mock does not build, a library
/// that does not load, an admin command that cannot create a system) fails
/// the test: a test that cannot run does not pass.
pub fn mock_with(env: &[(&str, &str)]) -> &'static Mock {
    match MOCK.get_or_init(|| setup(env)) {
        Ok(m) => m,
        Err(why) => panic!("mock libDDBoost setup failed: {why}"),
    }
}

pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn write_file(conn: &Connection, path: &str, data: &[u8]) {
    let f = conn
        .open_file(SU, path, OpenMode::CreateReadWrite, 0o600)
        .expect("open for write");
    assert_eq!(f.write_at(data, 0).expect("write"), data.len());
    f.close().expect("close");
}

pub fn read_file(conn: &Connection, path: &str) -> Vec<u8> {
    let f = conn
        .open_file(SU, path, OpenMode::Read, 0)
        .expect("open for read");
    let size = f.fstat().expect("fstat").size as usize;
    let mut buf = vec![0u8; size + 17];
    let n = f.read_at(&mut buf, 0).expect("read");
    buf.truncate(n);
    buf
}
