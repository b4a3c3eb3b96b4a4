//! encrypt_password through the binary: the key it keeps in `.encrypt`, the
//! hex it prints, and that a password encrypted this way logs in to the
//! (mock) Data Domain with `password_encryption: on`, the key read from
//! `.encrypt` as gpbackman does, or injected as gpbackup does.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use gpbackup_ddboost_plugin::crypto::keyfile::find_key;
use gpbackup_ddboost_plugin::crypto::pgp::decrypt_password;
use support::*;

const TS: &str = "20250101120000";

/// A coordinator data directory and a home for the plugin's log.
struct Coordinator {
    env: Env,
    data_dir: PathBuf,
}

impl Coordinator {
    fn new(backend: Backend) -> Coordinator {
        let env = Env::new(backend);
        let data_dir = env.tmp.path().join("coordinator/gpseg-1");
        std::fs::create_dir_all(&data_dir).unwrap();
        Coordinator { env, data_dir }
    }

    fn key_file(&self) -> PathBuf {
        self.data_dir.join(".encrypt")
    }

    /// Runs encrypt_password with `input` on stdin and `vars` set; no data
    /// directory variables are inherited.
    fn encrypt(&self, args: &[&str], input: &[u8], vars: &[(&str, &Path)]) -> Output {
        let mut all = vec!["encrypt_password"];
        all.extend_from_slice(args);
        let vars: Vec<(&str, &str)> = vars
            .iter()
            .map(|(k, v)| (*k, v.to_str().unwrap()))
            .collect();
        let mut cmd_vars = vec![
            ("COORDINATOR_DATA_DIRECTORY", ""),
            ("MASTER_DATA_DIRECTORY", ""),
        ];
        cmd_vars.extend(vars);
        self.env.run_stdin_env(&all, input, &cmd_vars)
    }

    /// Encrypts `password` with the key file found through
    /// COORDINATOR_DATA_DIRECTORY; returns the hex printed.
    fn encrypt_ok(&self, password: &str) -> String {
        let out = self.encrypt(
            &[],
            format!("{password}\n").as_bytes(),
            &[("COORDINATOR_DATA_DIRECTORY", &self.data_dir)],
        );
        hex_of(&out)
    }

    /// The key as gpbackup reads it from `.encrypt`.
    fn key(&self) -> String {
        find_key(None, std::slice::from_ref(&self.data_dir)).unwrap()
    }
}

/// The one line of lowercase hex a successful run prints, nothing on stderr.
#[track_caller]
fn hex_of(out: &Output) -> String {
    ok(out);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    let hex = text.trim_end().to_string();
    assert!(
        hex.starts_with("c30d04090302")
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "{hex}"
    );
    hex
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

#[test]
fn key_file_with_other_entries_keeps_them_and_gains_ours() {
    let c = Coordinator::new(Backend::Local);
    let before = "# written by gpbackup_manager\ngpbackup_s3_plugin: 4142434445\nsome_other_plugin: \"quoted value\"\n";
    std::fs::write(c.key_file(), before).unwrap();
    std::fs::set_permissions(c.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let hex = c.encrypt_ok("DDboost_Pa55!");
    let after = std::fs::read_to_string(c.key_file()).unwrap();
    let key = c.key();
    assert_eq!(after, format!("{before}gpbackup_ddboost_plugin: {key}\n"));
    assert_eq!(mode(&c.key_file()), 0o600);
    assert_eq!(decrypt_password(&hex, &key).unwrap(), "DDboost_Pa55!");
    // The key has the form of gpbackup's test bench key: hex of 30 characters.
    assert_eq!(key.len(), 60, "{key}");
    // Only the key file: no temporaries left.
    let names: Vec<String> = std::fs::read_dir(&c.data_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![".encrypt".to_string()]);
}

#[test]
fn missing_key_file_is_created_with_mode_600() {
    let c = Coordinator::new(Backend::Local);
    // MASTER_DATA_DIRECTORY alone is enough (Greenplum 6 and its forks).
    let out = c.encrypt(
        &[],
        b"pw-from-a-pipe",
        &[("MASTER_DATA_DIRECTORY", &c.data_dir)],
    );
    let hex = hex_of(&out);
    assert_eq!(mode(&c.key_file()), 0o600);
    assert_eq!(decrypt_password(&hex, &c.key()).unwrap(), "pw-from-a-pipe");
    // --key-file names any file; CRLF line ends are not part of the password.
    let other = c.env.tmp.path().join("keys.yaml");
    let out = c.encrypt(&["--key-file", other.to_str().unwrap()], b"crlf\r\n", &[]);
    let hex = hex_of(&out);
    let text = std::fs::read_to_string(&other).unwrap();
    let key = text
        .trim_end()
        .strip_prefix("gpbackup_ddboost_plugin: ")
        .unwrap();
    assert_eq!(decrypt_password(&hex, key).unwrap(), "crlf");
    assert_eq!(mode(&other), 0o600);
}

#[test]
fn existing_key_is_reused() {
    let c = Coordinator::new(Backend::Local);
    let first = c.encrypt_ok("first password");
    let text = std::fs::read_to_string(c.key_file()).unwrap();
    let second = c.encrypt_ok("second password");
    assert_eq!(
        std::fs::read_to_string(c.key_file()).unwrap(),
        text,
        "the key file is not rewritten"
    );
    let key = c.key();
    assert_eq!(decrypt_password(&first, &key).unwrap(), "first password");
    assert_eq!(decrypt_password(&second, &key).unwrap(), "second password");
    // A key put there by gpbackup_manager (or by hand) is used as it is.
    std::fs::write(
        c.key_file(),
        "gpbackup_ddboost_plugin: k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8\n",
    )
    .unwrap();
    let hex = c.encrypt_ok("DDboost_Pa55!");
    assert_eq!(
        decrypt_password(&hex, "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8").unwrap(),
        "DDboost_Pa55!"
    );
}

#[test]
fn runs_at_the_same_time_share_one_key() {
    let c = &Coordinator::new(Backend::Local);
    let hexes: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..6)
            .map(|i| s.spawn(move || (i, c.encrypt_ok(&format!("password {i}")))))
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .map(|(i, h)| {
                assert!(!h.is_empty(), "{i}");
                h
            })
            .collect()
    });
    let key = c.key();
    for (i, hex) in hexes.iter().enumerate() {
        assert_eq!(
            decrypt_password(hex, &key).unwrap(),
            format!("password {i}")
        );
    }
}

#[test]
fn no_terminal_and_empty_stdin_fails_clearly() {
    let c = Coordinator::new(Backend::Local);
    for input in [&b""[..], b"\n", b"\r\n"] {
        let out = c.encrypt(&[], input, &[("COORDINATOR_DATA_DIRECTORY", &c.data_dir)]);
        let err = fails(&out);
        assert!(
            err.contains("no password on standard input") || err.contains("password is empty"),
            "{input:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    // stdin closed altogether (not a terminal either).
    let out = c
        .env
        .command(&["encrypt_password"])
        .env("COORDINATOR_DATA_DIRECTORY", &c.data_dir)
        .output()
        .unwrap();
    assert!(fails(&out).contains("no password on standard input"));
    assert!(!c.key_file().exists(), "no key is made for nothing");
}

#[test]
fn bad_passwords_and_arguments_fail_without_showing_the_password() {
    let c = Coordinator::new(Backend::Local);
    let dir = [("COORDINATOR_DATA_DIRECTORY", c.data_dir.as_path())];
    for (input, why) in [
        (&b"two\nlines\n"[..], "single line"),
        (b"bad\xffutf8", "not UTF-8"),
        (b"nul\0inside", "NUL"),
    ] {
        let err = fails(&c.encrypt(&[], input, &dir));
        assert!(err.contains(why), "{err}");
        assert!(!err.contains("lines") && !err.contains("inside"), "{err}");
    }
    let err = fails(&c.encrypt(&[], &vec![b'x'; 70_000], &dir));
    assert!(err.contains("longer than"), "{err}");
    // The password never comes from the command line.
    for args in [
        &["s3cr3t"][..],
        &["--key-file"],
        &["--key-file", "/a", "/b"],
        &["--password", "s3cr3t"],
    ] {
        let err = fails(&c.encrypt(args, b"pw\n", &dir));
        assert!(err.contains("usage") && !err.contains("s3cr3t"), "{err}");
    }
}

#[test]
fn unusable_key_file_locations_fail_clearly() {
    let c = Coordinator::new(Backend::Local);
    // Neither variable nor --key-file.
    let err = fails(&c.encrypt(&[], b"pw\n", &[]));
    assert!(
        err.contains("COORDINATOR_DATA_DIRECTORY") && err.contains("--key-file"),
        "{err}"
    );
    // A folder that does not exist.
    let missing = c.env.tmp.path().join("no/such/dir");
    let err = fails(&c.encrypt(&[], b"pw\n", &[("COORDINATOR_DATA_DIRECTORY", &missing)]));
    assert!(err.contains("cannot create it"), "{err}");
    // A folder nothing can be written to.
    let err = fails(&c.encrypt(&["--key-file", "/proc/gpbackup_key"], b"pw\n", &[]));
    assert!(err.contains("key file /proc/gpbackup_key"), "{err}");
    if !is_root() {
        let ro = c.env.tmp.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        let err = fails(&c.encrypt(&[], b"pw\n", &[("COORDINATOR_DATA_DIRECTORY", &ro)]));
        assert!(err.contains("cannot write it"), "{err}");
    }
    // A symbolic link, and what it points to, are left alone.
    let real = c.env.tmp.path().join("elsewhere.yaml");
    std::fs::write(&real, "gpbackup_s3_plugin: x\n").unwrap();
    std::os::unix::fs::symlink(&real, c.key_file()).unwrap();
    let err = fails(&c.encrypt(&[], b"pw\n", &[("COORDINATOR_DATA_DIRECTORY", &c.data_dir)]));
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "gpbackup_s3_plugin: x\n"
    );
    std::fs::remove_file(c.key_file()).unwrap();
    // Not a regular file.
    std::fs::create_dir(c.key_file()).unwrap();
    let err = fails(&c.encrypt(&[], b"pw\n", &[("COORDINATOR_DATA_DIRECTORY", &c.data_dir)]));
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir(c.key_file()).unwrap();
    // Not a YAML map: not overwritten.
    std::fs::write(c.key_file(), "just some text\n").unwrap();
    let err = fails(&c.encrypt(&[], b"pw\n", &[("COORDINATOR_DATA_DIRECTORY", &c.data_dir)]));
    assert!(err.contains("not a YAML map"), "{err}");
    assert_eq!(
        std::fs::read_to_string(c.key_file()).unwrap(),
        "just some text\n"
    );
    if is_root() {
        // Another user's key file, or root creating one in another user's
        // folder, would leave gpbackup unable to read its key.
        std::fs::write(c.key_file(), "a: b\n").unwrap();
        std::os::unix::fs::chown(c.key_file(), Some(12345), None).unwrap();
        let err = fails(&c.encrypt(&[], b"pw\n", &[("COORDINATOR_DATA_DIRECTORY", &c.data_dir)]));
        assert!(err.contains("belongs to user id 12345"), "{err}");
        std::fs::remove_file(c.key_file()).unwrap();
        std::os::unix::fs::chown(&c.data_dir, Some(12345), None).unwrap();
        let err = fails(&c.encrypt(&[], b"pw\n", &[("COORDINATOR_DATA_DIRECTORY", &c.data_dir)]));
        assert!(err.contains("refusing to create it as root"), "{err}");
        assert!(!c.key_file().exists());
    }
}

/// A password encrypted by encrypt_password logs in to the mock Data Domain
/// with `password_encryption: on`: with the key from `.encrypt` (gpbackman,
/// gpbackup_manager: COORDINATOR_DATA_DIRECTORY) and with the key injected
/// into the config (gpbackup, gprestore).
#[test]
fn encrypted_password_connects_to_the_mock() {
    let c = Coordinator::new(Backend::DdBoostMock);
    let env = &c.env;
    let password = "Enc-rypted pass: 1\"";
    create_system_with_password(&env.dd_root(), "dd-enc", password);
    let hex = c.encrypt_ok(password);
    let base = env.dd_options("dd-enc", "enc").replace(
        &format!("password: {DD_PASSWORD}"),
        &format!("password: \"{hex}\""),
    );
    let direct = env.other_config(
        "direct.yaml",
        &format!("{base}  password_encryption: \"on\"\n"),
    );
    let with_dir = |args: &[&str], input: &[u8]| {
        env.run_stdin_env(
            args,
            input,
            &[("COORDINATOR_DATA_DIRECTORY", c.data_dir.to_str().unwrap())],
        )
    };
    ok(&with_dir(
        &["backup_data", direct.to_str().unwrap(), &env.key(TS, "e")],
        b"encrypted login",
    ));
    let out = with_dir(
        &["restore_data", direct.to_str().unwrap(), &env.key(TS, "e")],
        b"",
    );
    ok(&out);
    assert_eq!(out.stdout, b"encrypted login");
    // As gpbackup runs it: the key injected under the plugin's name.
    let injected = env.other_config(
        "injected.yaml",
        &format!(
            "{base}  password_encryption: \"on\"\n  gpbackup_ddboost_plugin: {}\n",
            c.key()
        ),
    );
    let out = env.run(&[
        "restore_data",
        injected.to_str().unwrap(),
        &env.key(TS, "e"),
    ]);
    ok(&out);
    assert_eq!(out.stdout, b"encrypted login");
    // verify_backup takes the same config (this folder has no gpbackup
    // manifest: it says so on stderr and succeeds).
    let out = with_dir(&["verify_backup", direct.to_str().unwrap(), TS], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another key does not open it; nothing secret in the error.
    let wrong = env.other_config(
        "wrong.yaml",
        &format!("{base}  password_encryption: \"on\"\n  gpbackup_ddboost_plugin: 6162636465666768696a6b6c6d6e6f707172737475767778797a30313233\n"),
    );
    let err = fails(&env.run(&["restore_data", wrong.to_str().unwrap(), &env.key(TS, "e")]));
    assert!(
        err.contains("cannot be decrypted") && !err.contains(password),
        "{err}"
    );
}

/// Runs encrypt_password with a terminal as stdin and stderr, typing each of
/// `lines` once the prompt before it appeared. Returns the output and what
/// the terminal showed.
fn on_terminal(c: &Coordinator, lines: &[&str]) -> (Output, String) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let pty = nix::pty::openpty(None, None).unwrap();
    let child = c
        .env
        .command(&["encrypt_password"])
        .env("COORDINATOR_DATA_DIRECTORY", &c.data_dir)
        .stdin(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = shown.clone();
        let mut master = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            // Ends with EIO once the child closed the terminal.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let prompts = ["DD Boost password: ", "Repeat the password: "];
    for (line, prompt) in lines.iter().zip(prompts) {
        let started = std::time::Instant::now();
        while !String::from_utf8_lossy(&shown.lock().unwrap()).contains(prompt) {
            assert!(started.elapsed().as_secs() < 30, "no prompt {prompt:?}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        master.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    drop(master);
    reader.join().unwrap();
    let shown = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    (out, shown)
}

#[test]
fn terminal_asks_twice_without_echo() {
    let c = Coordinator::new(Backend::Local);
    let (out, shown) = on_terminal(&c, &["typed secret", "typed secret"]);
    assert!(out.status.success(), "{shown}");
    let hex = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        decrypt_password(hex.trim_end(), &c.key()).unwrap(),
        "typed secret"
    );
    assert!(shown.contains("DD Boost password: "), "{shown:?}");
    assert!(!shown.contains("typed secret"), "echoed: {shown:?}");

    let (out, shown) = on_terminal(&c, &["one secret", "another secret"]);
    assert!(!out.status.success());
    assert!(shown.contains("the two passwords differ"), "{shown:?}");
    assert!(
        !shown.contains("secret\r") && !shown.contains("one secret"),
        "{shown:?}"
    );
    assert!(out.stdout.is_empty());
}
