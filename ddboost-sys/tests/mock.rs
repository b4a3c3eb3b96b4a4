//! The safe layer against the mock libDDBoost (`ddboost-sys/mock`).
//!
//! The mock library is taken from `DDBOOST_MOCK_LIB` (and its admin command
//! from `DDBOOST_MOCK_CLI`) when set; otherwise both are built with
//! `cargo build -p ddboost-mock` into this build's target directory. Tests are
//! skipped, with a note on stderr, only when the mock cannot be built or its
//! admin command cannot create a system.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use ddboost_sys::{
    filecopy, set_log_sink, Connection, Instance, Library, OpenMode, Severity, MAX_IO_SIZE,
};

const USER: &str = "boost";
const PASSWORD: &str = "s3cret-Pa55";
const SU: &str = "GPDB";

struct Mock {
    lib: Library,
    cli: PathBuf,
    root: PathBuf,
}

static MOCK: OnceLock<Result<Mock, Setup>> = OnceLock::new();

/// Why the mock is not available.
#[derive(Debug)]
enum Setup {
    /// `cargo build -p ddboost-mock` failed: the mock is not ready yet.
    Skip(String),
    /// Anything else is a real failure.
    Fail(String),
}
static LOG: Mutex<Vec<(Severity, String)>> = Mutex::new(Vec::new());

fn log_sink(severity: Severity, message: &str) {
    LOG.lock().unwrap().push((severity, message.to_owned()));
}

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

fn setup() -> Result<Mock, Setup> {
    let (lib_path, cli) = build_mock().map_err(Setup::Skip)?;
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ddboost-sys-mock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| Setup::Fail(format!("{}: {e}", root.display())))?;
    // Set before any test thread calls into the library (they all wait on
    // this initialisation).
    std::env::set_var("DDBOOST_MOCK_ROOT", &root);
    let lib = Library::load(&lib_path).map_err(|e| Setup::Fail(e.to_string()))?;
    let _ = set_log_sink(log_sink);
    let mock = Mock { lib, cli, root };
    mock.create_system("probe-host").map_err(Setup::Fail)?;
    Ok(mock)
}

impl Mock {
    fn create_system(&self, host: &str) -> Result<(), String> {
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

    fn instance(&self) -> Instance {
        Instance::new(
            &self.lib,
            "ddboost-sys-tests",
            "ddboost-sys integration tests",
        )
        .expect("instance")
    }

    /// A fresh system named after the test, and a connection to it.
    fn system(&self, host: &str) -> (Instance, Connection) {
        self.create_system(host).expect("create-system");
        let inst = self.instance();
        let conn = Connection::connect(&inst, host, USER, PASSWORD).expect("connect");
        (inst, conn)
    }
}

/// The mock, or `None` (with a note) when it cannot be built yet. Any other
/// problem (a `DDBOOST_MOCK_LIB` that does not load, an admin command that
/// cannot create a system) fails the test.
fn mock() -> Option<&'static Mock> {
    match MOCK.get_or_init(setup) {
        Ok(m) => Some(m),
        Err(Setup::Skip(why)) => {
            eprintln!("note: skipping test, the mock libDDBoost cannot be built yet: {why}");
            None
        }
        Err(Setup::Fail(why)) => panic!("mock libDDBoost setup failed: {why}"),
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
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

fn write_file(conn: &Connection, path: &str, data: &[u8]) {
    let f = conn
        .open_file(SU, path, OpenMode::CreateReadWrite, 0o600)
        .expect("open for write");
    assert_eq!(f.write_at(data, 0).expect("write"), data.len());
    f.close().expect("close");
}

fn read_file(conn: &Connection, path: &str) -> Vec<u8> {
    let f = conn
        .open_file(SU, path, OpenMode::Read, 0)
        .expect("open for read");
    let size = f.fstat().expect("fstat").size as usize;
    let mut buf = vec![0u8; size + 17];
    let n = f.read_at(&mut buf, 0).expect("read");
    buf.truncate(n);
    buf
}

#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    send::<Library>();
    send::<Instance>();
    send::<Connection>();
    send::<ddboost_sys::File>();
    send::<ddboost_sys::Dir>();
}

#[test]
fn connect_and_mkdir_reports_exist() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("mkdir-host");
    assert_eq!(conn.host(), "mkdir-host");
    conn.mkdir(SU, "backups", 0o755).expect("mkdir");
    let err = conn.mkdir(SU, "/backups", 0o755).unwrap_err();
    assert!(err.is_exist(), "{err}");
    assert_eq!(err.name, Some("DD_ERR_EXIST"));
    assert_eq!(
        err.to_string(),
        format!("ddp_mkdir /{SU}/backups: DD_ERR_EXIST ({})", err.code)
    );
    let st = conn.stat(SU, "backups").expect("stat");
    assert!(st.is_dir);
}

#[test]
fn write_three_mib_and_read_back_at_offsets() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("io-host");
    let data = pattern(3 * MAX_IO_SIZE, 1);
    let f = conn
        .open_file(SU, "big.bin", OpenMode::CreateReadWrite, 0o600)
        .expect("open");
    // Two writes, the first larger than one SDK call allows.
    let first = MAX_IO_SIZE + MAX_IO_SIZE / 2 + 3;
    assert_eq!(f.write_at(&data[..first], 0).unwrap(), first);
    assert_eq!(
        f.write_at(&data[first..], first as u64).unwrap(),
        data.len() - first
    );
    f.close().expect("close finalises the file");

    let st = conn.stat(SU, "big.bin").expect("stat");
    assert_eq!(st.size, data.len() as u64);
    assert!(!st.is_dir);

    let f = conn
        .open_file(SU, "big.bin", OpenMode::Read, 0)
        .expect("open for read");
    assert_eq!(f.fstat().unwrap().size, data.len() as u64);
    // Whole file through a larger buffer: stops at the end.
    let mut all = vec![0u8; 4 * MAX_IO_SIZE];
    let n = f.read_at(&mut all, 0).expect("read all");
    assert_eq!(n, data.len());
    assert!(all[..n] == data[..], "content differs");
    // Reads at offsets, across the 1 MiB boundaries.
    for &(off, len) in &[
        (0usize, 10usize),
        (MAX_IO_SIZE - 5, 10),
        (MAX_IO_SIZE + 12_345, 2 * MAX_IO_SIZE - 20_000),
    ] {
        let mut buf = vec![0u8; len];
        assert_eq!(f.read_at(&mut buf, off as u64).unwrap(), len);
        assert!(buf[..] == data[off..off + len], "content differs at {off}");
    }
    // A read running past the end is short; at the end it is empty.
    let mut buf = vec![0u8; 100];
    assert_eq!(f.read_at(&mut buf, data.len() as u64 - 40).unwrap(), 40);
    assert_eq!(f.read_at(&mut buf, data.len() as u64).unwrap(), 0);
    f.close().unwrap();
}

#[test]
fn readdir_lists_entries_without_dot_entries() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("dir-host");
    conn.mkdir(SU, "d", 0o755).unwrap();
    write_file(&conn, "d/a", b"a");
    write_file(&conn, "d/b", b"bb");
    conn.mkdir(SU, "d/c", 0o755).unwrap();
    let mut names: Vec<String> = conn
        .open_dir(SU, "d")
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(conn.open_dir(SU, "d/c").unwrap().count(), 0);
    let err = conn.open_dir(SU, "missing").unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("ddp_open_dir /{SU}/missing: ")),
        "{err}"
    );
}

#[test]
fn rename_moves_and_replaces() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("rename-host");
    write_file(&conn, "tmp.1", b"first");
    write_file(&conn, "final", b"old");
    conn.rename(SU, "tmp.1", "final").expect("rename");
    assert_eq!(read_file(&conn, "final"), b"first");
    let err = conn.stat(SU, "tmp.1").unwrap_err();
    assert_eq!(err.op, "ddp_stat");
    assert_eq!(err.path, format!("/{SU}/tmp.1"));
    assert!(err.name.is_some(), "{err}");
}

#[test]
fn unlink_and_rmdir_errors() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("rm-host");
    conn.mkdir(SU, "d", 0o755).unwrap();
    write_file(&conn, "d/f", b"x");
    let err = conn.rmdir(SU, "d").unwrap_err();
    assert!(err.is_not_empty(), "{err}");
    let err = conn.unlink(SU, "d").unwrap_err();
    assert!(err.is_file_is_dir(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("ddp_unlink /{SU}/d: DD_ERR_FILE_IS_DIR ({})", err.code)
    );
    conn.unlink(SU, "d/f").expect("unlink");
    let err = conn.unlink(SU, "d/f").unwrap_err();
    assert!(!err.is_local() && !err.is_file_is_dir(), "{err}");
    conn.rmdir(SU, "d").expect("rmdir");
    assert!(conn.stat(SU, "d").is_err());
}

#[test]
fn stat_statfs_and_stream_counts() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("stat-host");
    write_file(&conn, "f", &pattern(1000, 2));
    let st = conn.stat(SU, "f").unwrap();
    assert_eq!(st.size, 1000);
    assert!(!st.is_dir);
    let fs = conn.statfs().expect("statfs");
    assert!(fs.free_blocks <= fs.blocks, "{fs:?}");
    let _open = conn.open_file(SU, "f", OpenMode::Read, 0).unwrap();
    let counts = conn.stream_counts().expect("stream counts");
    assert!(counts.inuse.read_streams >= 1, "{counts:?}");
}

#[test]
fn filecopy_between_two_systems() {
    let Some(m) = mock() else { return };
    m.create_system("copy-src").unwrap();
    m.create_system("copy-dst").unwrap();
    let inst = m.instance();
    let src_conn = Connection::connect(&inst, "copy-src", USER, PASSWORD).unwrap();
    let dst_conn = Connection::connect(&inst, "copy-dst", USER, PASSWORD).unwrap();
    let data = pattern(2 * MAX_IO_SIZE + 777, 3);
    write_file(&src_conn, "obj", &data);

    let src = src_conn.open_file(SU, "obj", OpenMode::Read, 0).unwrap();
    let dst = dst_conn
        .open_file(SU, "obj.copy", OpenMode::CreateReadWrite, 0o600)
        .unwrap();
    let mut seen = Vec::new();
    let copied = filecopy(&src_conn, &src, &dst, |done, total| {
        seen.push((done, total))
    })
    .expect("filecopy");
    assert_eq!(copied, data.len() as u64);
    assert!(!seen.is_empty());
    assert_eq!(
        seen.last().copied(),
        Some((data.len() as u64, data.len() as u64))
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "progress goes forward"
    );
    dst.close().expect("close copy");
    drop(src);
    assert_eq!(read_file(&dst_conn, "obj.copy"), data);
}

#[test]
fn filecopy_needs_one_instance() {
    let Some(m) = mock() else { return };
    let (_i1, c1) = m.system("copy-inst-a");
    let (_i2, c2) = m.system("copy-inst-b");
    write_file(&c1, "x", b"data");
    let src = c1.open_file(SU, "x", OpenMode::Read, 0).unwrap();
    let dst = c2
        .open_file(SU, "x", OpenMode::CreateReadWrite, 0o600)
        .unwrap();
    let err = filecopy(&c1, &src, &dst, |_, _| {}).unwrap_err();
    assert!(err.is_local(), "{err}");
}

#[test]
fn wrong_password_names_host_not_password() {
    let Some(m) = mock() else { return };
    m.create_system("auth-host").unwrap();
    let inst = m.instance();
    let wrong = "not-the-Pa55word";
    let err = Connection::connect(&inst, "auth-host", USER, wrong).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.op, "ddp_connect_with_user_pwd");
    assert_eq!(err.path, "auth-host");
    assert!(
        text.starts_with("ddp_connect_with_user_pwd auth-host: DD_ERR_"),
        "{text}"
    );
    assert_eq!(err.name, Some("DD_ERR_AUTH"), "{text}");
    for shown in [text, format!("{err:?}")] {
        assert!(!shown.contains(wrong), "{shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
}

#[test]
fn unknown_host_fails_to_connect() {
    let Some(m) = mock() else { return };
    let inst = m.instance();
    let err = Connection::connect(&inst, "no-such-host", USER, PASSWORD).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ddp_connect_with_user_pwd no-such-host: "),
        "{err}"
    );
}

#[test]
fn sdk_log_messages_reach_the_sink() {
    let Some(m) = mock() else { return };
    let (_inst, _conn) = m.system("log-host");
    let log = LOG.lock().unwrap();
    assert!(
        log.iter().any(|(_, msg)| msg.contains("log-host")),
        "no log message mentions the host: {log:?}"
    );
}

#[test]
fn names_with_nul_bytes_are_rejected_before_the_sdk() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("nul-host");
    let err = conn.mkdir(SU, "a\0b", 0o755).unwrap_err();
    assert!(err.is_local(), "{err}");
}

#[test]
fn only_a_missing_object_is_not_found() {
    let Some(m) = mock() else { return };
    let (_inst, conn) = m.system("notfound-host");
    write_file(&conn, "f", b"x");
    for err in [
        conn.stat(SU, "missing").unwrap_err(),
        conn.unlink(SU, "missing").unwrap_err(),
        conn.rmdir(SU, "dir/missing").unwrap_err(),
        conn.open_file(SU, "missing", OpenMode::Read, 0)
            .unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err}");
        assert!(!err.is_transient(), "{err}");
    }
    // A file where a folder is expected: DD_ERR_NOTDIR, which rmdir and
    // open_dir also return for a file that exists, so it is not "absent".
    for err in [
        conn.stat(SU, "f/x").unwrap_err(),
        conn.rmdir(SU, "f").unwrap_err(),
        conn.open_dir(SU, "f").unwrap_err(),
    ] {
        assert_eq!(err.name, Some("DD_ERR_NOTDIR"), "{err}");
        assert!(!err.is_not_found(), "{err}");
    }
    // A local error says nothing about existence.
    assert!(!conn.stat(SU, "a\0b").unwrap_err().is_not_found());
}

#[test]
fn login_errors_are_not_transient_but_unreachable_hosts_are() {
    let Some(m) = mock() else { return };
    m.create_system("classify-host").unwrap();
    let inst = m.instance();
    let err = Connection::connect(&inst, "classify-host", USER, "wrong").unwrap_err();
    assert!(err.is_auth() && !err.is_transient(), "{err}");
    let err = Connection::connect(&inst, "classify-nowhere", USER, PASSWORD).unwrap_err();
    assert!(err.is_transient() && !err.is_auth(), "{err}");
}

#[test]
fn reconnect_gives_a_new_connection_to_the_same_host() {
    let Some(m) = mock() else { return };
    let (inst, conn) = m.system("reconnect-host");
    write_file(&conn, "f", b"data");
    // The connection alone is enough: the Instance value may be gone.
    drop(inst);
    let again = conn.reconnect(USER, PASSWORD).expect("reconnect");
    assert_eq!(again.host(), "reconnect-host");
    drop(conn);
    assert_eq!(read_file(&again, "f"), b"data");
    again.unlink(SU, "f").expect("unlink on the new connection");
    let err = again.reconnect(USER, "wrong-Pa55").unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-Pa55"));
}
