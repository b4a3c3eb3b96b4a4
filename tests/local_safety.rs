//! What the local backend and the log file must never do, whatever the umask
//! or what another user planted: give others access to backups, follow a
//! symbolic link out of `directory`, or write the log through a link or block
//! on a FIFO. Run through the built binary, as gpbackup runs it.

mod support;

use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

const TS: &str = "20250101120000";
const TS2: &str = "20250101120001";

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// `env.command(args)` run under `umask`.
fn with_umask(env: &Env, umask: u32, args: &[&str]) -> Command {
    let mut c = env.command(args);
    // SAFETY: umask is async-signal-safe and touches nothing else.
    unsafe {
        c.pre_exec(move || {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
            Ok(())
        });
    }
    c
}

/// Runs `cmd` with `input` on stdin, failing the test if it takes more than 20 s.
fn run_bounded(cmd: Command, input: &[u8]) -> Output {
    use std::io::Read;
    let (mut child, feeder) = spawn_fed(cmd, input);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the plugin hung for more than 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    feeder.join().unwrap();
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Every file and folder below `root` (not `root` itself), links not followed.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Asserts every file below `root` has `file` and every folder `dir` permissions.
#[track_caller]
fn assert_modes(root: &Path, file: u32, dir: u32) {
    let all = tree(root);
    assert!(all.len() > 4, "{all:?}");
    for p in all {
        let want = if p.is_dir() { dir } else { file };
        assert_eq!(mode(&p), want, "{} is {:o}", p.display(), mode(&p));
    }
}

// ---- permissions -------------------------------------------------------------

#[test]
fn objects_records_and_folders_are_owner_only_under_any_umask() {
    let env = Env::new(Backend::Local);
    std::fs::set_permissions(&env.store, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (umask, ts) in [(0o022, TS), (0o000, TS2)] {
        let dir = env.backup_dir(ts);
        let out = with_umask(&env, umask, &["setup_plugin_for_backup", env.cfg(), &dir])
            .args(["segment", "0"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&out);
        let key = env.key(ts, "gpbackup_0_data");
        ok(&feed(
            with_umask(&env, umask, &["backup_data", env.cfg(), &key]),
            &bytes(100_000, 1),
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = format!("{dir}/gpbackup_{ts}_metadata.sql");
        std::fs::write(&file, b"CREATE TABLE t();").unwrap();
        ok(&with_umask(&env, umask, &["backup_file", env.cfg(), &file])
            .stdin(Stdio::null())
            .output()
            .unwrap());
    }
    // Objects, their checksum records and every folder made: owner only.
    let names: Vec<String> = tree(&env.store)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with('.') && n.ends_with(".checksum")),
        "{names:?}"
    );
    assert_modes(&env.store, 0o600, 0o700);
    // The configured directory belongs to the DBA: not changed.
    assert_eq!(mode(&env.store), 0o755);
    // And they restore.
    assert_eq!(env.restore_data(TS2, "gpbackup_0_data"), bytes(100_000, 1));
}

#[test]
fn temporaries_are_owner_only_while_being_written() {
    use std::io::Write;
    let env = Env::new(Backend::Local);
    let key = env.key(TS, "big");
    let mut child = with_umask(&env, 0, &["backup_data", env.cfg(), &key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes(1 << 20, 2)).unwrap();
    let folder = env.store.join(format!("backups/{}/{TS}", &TS[..8]));
    let started = Instant::now();
    let temp = loop {
        let found = std::fs::read_dir(&folder).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(".big"))
        });
        if let Some(t) = found {
            break t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no temporary appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(mode(&temp), 0o600, "{}", temp.display());
    drop(stdin);
    ok(&child.wait_with_output().unwrap());
    assert_modes(&env.store, 0o600, 0o700);
}

#[test]
fn file_mode_0640_gives_the_group_read_access() {
    let env = Env::with_options(Backend::Local, "  file_mode: \"0640\"\n");
    // Even a umask that would take the group bits away.
    ok(&feed(
        with_umask(
            &env,
            0o077,
            &["backup_data", env.cfg(), &env.key(TS, "obj")],
        ),
        b"rows",
    ));
    assert_modes(&env.store, 0o640, 0o750);
    assert_eq!(env.restore_data(TS, "obj"), b"rows");
}

#[test]
fn bad_file_mode_is_one_clear_error_and_stores_nothing() {
    let env = Env::new(Backend::Local);
    for bad in ["0644", "0755", "0700", "4600", "0400", "rw-------", "06400"] {
        env.write_config(&format!(
            "{}  file_mode: \"{bad}\"\n",
            env.backend_options()
        ));
        let out = env.run_stdin(&["backup_data", env.cfg(), &env.key(TS, "obj")], b"x");
        let err = fails(&out);
        assert!(
            err.contains("\"file_mode\"") && err.contains(bad),
            "{bad}: {err}"
        );
    }
    assert!(env.raw_snapshot().is_empty(), "{:?}", env.raw_snapshot());
}

// ---- symbolic links ------------------------------------------------------------

/// A folder outside `directory` with `inner/file` in it, and its contents.
fn outside(env: &Env) -> PathBuf {
    let out = env.tmp.path().join("outside");
    std::fs::create_dir_all(out.join("inner")).unwrap();
    std::fs::write(out.join("inner/file"), b"precious").unwrap();
    std::fs::write(out.join("top"), b"also precious").unwrap();
    out
}

#[track_caller]
fn assert_untouched(out: &Path) {
    assert_eq!(std::fs::read(out.join("inner/file")).unwrap(), b"precious");
    assert_eq!(std::fs::read(out.join("top")).unwrap(), b"also precious");
}

#[test]
fn delete_directory_never_follows_a_link_out_of_directory() {
    let env = Env::new(Backend::Local);
    let out = outside(&env);
    symlink(&out, env.store.join("evil")).unwrap();
    for arg in ["evil/inner", "evil", "evil/inner/file"] {
        let err = fails(&env.run(&["delete_directory", env.cfg(), arg]));
        assert!(err.contains("symbolic link"), "{arg}: {err}");
        assert_untouched(&out);
    }
    assert!(std::fs::symlink_metadata(env.store.join("evil")).is_ok());
}

#[test]
fn list_directory_never_follows_a_link() {
    let env = Env::new(Backend::Local);
    let out = outside(&env);
    env.backup_data(TS, "obj", b"data");
    symlink(&out, env.store.join("evil")).unwrap();
    for arg in ["evil", "evil/inner"] {
        let res = env.run(&["list_directory", env.cfg(), arg]);
        let err = fails(&res);
        assert!(res.stdout.is_empty(), "{arg}");
        assert!(err.contains("symbolic link"), "{arg}: {err}");
    }
    // A listing of everything skips the link.
    let listing = env.listing();
    assert!(listing.contains("obj\t4"), "{listing}");
    assert!(
        !listing.contains("evil") && !listing.contains("file"),
        "{listing}"
    );
}

#[test]
fn delete_backup_removes_a_link_inside_the_backup_not_its_target() {
    let env = Env::new(Backend::Local);
    let out = outside(&env);
    env.backup_data(TS, "obj", b"data");
    let folder = env.store.join(format!("backups/{}/{TS}", &TS[..8]));
    symlink(&out, folder.join("dirlink")).unwrap();
    symlink(out.join("top"), folder.join("filelink")).unwrap();
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert!(std::fs::symlink_metadata(&folder).is_err(), "backup left");
    assert_untouched(&out);
    assert_eq!(tree(&out).len(), 3);
}

#[test]
fn writes_and_reads_through_a_linked_backups_folder_are_refused() {
    let env = Env::new(Backend::Local);
    let elsewhere = env.tmp.path().join("elsewhere");
    let planted = elsewhere.join(format!("{}/{TS}", &TS[..8]));
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::write(planted.join("old"), b"planted").unwrap();
    symlink(&elsewhere, env.store.join("backups")).unwrap();

    let err = fails(&env.run_stdin(&["backup_data", env.cfg(), &env.key(TS, "obj")], b"rows"));
    assert!(err.contains("symbolic link"), "{err}");
    let res = env.run(&["restore_data", env.cfg(), &env.key(TS, "old")]);
    let err = fails(&res);
    assert!(
        err.contains("symbolic link") && res.stdout.is_empty(),
        "{err}"
    );
    let err = fails(&env.run(&["delete_backup", env.cfg(), TS]));
    assert!(err.contains("symbolic link"), "{err}");
    // Nothing written or removed there.
    assert_eq!(tree(&elsewhere).len(), 3, "{:?}", tree(&elsewhere));
    assert_eq!(std::fs::read(planted.join("old")).unwrap(), b"planted");
}

#[test]
fn directory_itself_may_be_a_link() {
    let env = Env::new(Backend::Local);
    let link = env.tmp.path().join("mnt");
    symlink(&env.store, &link).unwrap();
    env.write_config(&format!(
        "  backend: local\n  directory: {}\n",
        link.display()
    ));
    env.backup_data(TS, "obj", b"rows");
    assert_eq!(env.restore_data(TS, "obj"), b"rows");
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert_eq!(env.raw_snapshot(), vec![("backups/".to_string(), 0)]);
}

#[test]
fn a_folder_or_fifo_in_place_of_an_object_or_record_is_a_clear_error() {
    let env = Env::new(Backend::Local);
    env.backup_data(TS, "obj", b"rows");
    let folder = env.store.join(format!("backups/{}/{TS}", &TS[..8]));
    // A folder where the checksum record should be must not pass as "no record".
    std::fs::remove_file(folder.join(".obj.checksum")).unwrap();
    std::fs::create_dir(folder.join(".obj.checksum")).unwrap();
    let res = env.run(&["restore_data", env.cfg(), &env.key(TS, "obj")]);
    let err = fails(&res);
    assert!(err.contains("not a regular file"), "{err}");
    assert!(res.stdout.is_empty());
    // A folder where the object should be: not "not found".
    std::fs::create_dir(folder.join("dir")).unwrap();
    let err = fails(&env.run(&["restore_data", env.cfg(), &env.key(TS, "dir")]));
    assert!(
        err.contains("not a regular file") && !err.contains("not found"),
        "{err}"
    );
    // A FIFO does not block the restore.
    nix::unistd::mkfifo(&folder.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let res = run_bounded(
        env.command(&["restore_data", env.cfg(), &env.key(TS, "fifo")]),
        b"",
    );
    let err = fails(&res);
    assert!(err.contains("not a regular file"), "{err}");
}

// ---- the fallback log ---------------------------------------------------------

/// An environment whose home cannot hold gpAdminLogs (HOME is a file; root
/// can write anywhere else) and whose TMPDIR is a test folder.
struct NoHome {
    env: Env,
    tmpdir: PathBuf,
    home: PathBuf,
}

impl NoHome {
    fn new() -> NoHome {
        let env = Env::new(Backend::Local);
        let tmpdir = env.tmp.path().join("tmpdir");
        std::fs::create_dir(&tmpdir).unwrap();
        let home = env.tmp.path().join("home-is-a-file");
        std::fs::write(&home, b"").unwrap();
        NoHome { env, tmpdir, home }
    }

    fn folder(&self) -> PathBuf {
        self.tmpdir
            .join(format!("gpbackup_ddboost_plugin-{}", nix::unistd::getuid()))
    }

    /// The log file name of today (as the plugin names it).
    fn log_name() -> String {
        format!(
            "gpbackup_ddboost_plugin_{}.log",
            chrono::Local::now().format("%Y%m%d")
        )
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(args);
        c.env("HOME", &self.home).env("TMPDIR", &self.tmpdir);
        c
    }

    /// Commands that log something (list_directory, backup_data), each
    /// bounded in time; both must succeed.
    fn backup(&self, name: &str) {
        let key = self.env.key(TS, name);
        ok(&run_bounded(
            self.command(&["list_directory", self.env.cfg()]),
            b"",
        ));
        ok(&run_bounded(
            self.command(&["backup_data", self.env.cfg(), &key]),
            b"rows",
        ));
    }
}

#[test]
fn fallback_log_is_in_a_private_folder_of_tmpdir() {
    let t = NoHome::new();
    t.backup("a");
    let folder = t.folder();
    assert_eq!(mode(&folder), 0o700);
    let files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let log = &files[0];
    let name = log.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("gpbackup_ddboost_plugin_") && name.ends_with(".log"),
        "{name}"
    );
    assert_eq!(mode(log), 0o600);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("[INFO]:-backup_data"), "{text}");
    // Nothing else in TMPDIR.
    assert_eq!(tree(&t.tmpdir).len(), 2, "{:?}", tree(&t.tmpdir));
}

#[test]
fn a_link_planted_at_the_log_path_is_not_followed() {
    let t = NoHome::new();
    let victim = t.env.tmp.path().join("victim");
    std::fs::write(&victim, b"do not append").unwrap();
    std::fs::create_dir(t.folder()).unwrap();
    std::fs::set_permissions(t.folder(), std::fs::Permissions::from_mode(0o700)).unwrap();
    symlink(&victim, t.folder().join(NoHome::log_name())).unwrap();
    t.backup("a");
    assert_eq!(std::fs::read(&victim).unwrap(), b"do not append");
    assert!(
        std::fs::symlink_metadata(t.folder().join(NoHome::log_name()))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_fifo_at_the_log_path_does_not_hang_commands() {
    let t = NoHome::new();
    std::fs::create_dir(t.folder()).unwrap();
    std::fs::set_permissions(t.folder(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let fifo = t.folder().join(NoHome::log_name());
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // No reader (open would block), and with a reader (writes would).
    t.backup("a");
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    t.backup("b");
    drop(reader);
    assert_eq!(t.env.restore_data(TS, "b"), b"rows");
}

#[test]
fn an_unsafe_fallback_folder_is_not_used() {
    // Writable by others.
    let t = NoHome::new();
    std::fs::create_dir(t.folder()).unwrap();
    std::fs::set_permissions(t.folder(), std::fs::Permissions::from_mode(0o777)).unwrap();
    t.backup("a");
    assert!(tree(&t.folder()).is_empty(), "{:?}", tree(&t.folder()));
    assert_eq!(mode(&t.folder()), 0o777, "the folder was changed");

    // A link to a private folder.
    let t = NoHome::new();
    let real = t.env.tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    symlink(&real, t.folder()).unwrap();
    t.backup("a");
    assert!(tree(&real).is_empty(), "{:?}", tree(&real));

    // Owned by another user, and a log file owned by another user in a good
    // folder: these need chown to set up, so only when the tests run as root.
    if nix::unistd::getuid().is_root() {
        let t = NoHome::new();
        std::fs::create_dir(t.folder()).unwrap();
        std::fs::set_permissions(t.folder(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(t.folder(), Some(54321), Some(54321)).unwrap();
        t.backup("a");
        assert!(tree(&t.folder()).is_empty(), "{:?}", tree(&t.folder()));

        let t = NoHome::new();
        std::fs::create_dir(t.folder()).unwrap();
        std::fs::set_permissions(t.folder(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let log = t.folder().join(NoHome::log_name());
        std::fs::write(&log, b"").unwrap();
        std::os::unix::fs::chown(&log, Some(54321), Some(54321)).unwrap();
        t.backup("a");
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
    }
}
