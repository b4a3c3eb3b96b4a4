//! encrypt_password: encrypts a DD Boost password for `password_encryption: on`
//! where gpbackup_manager is not shipped (Cloudberry, Greengage, WarehousePG).
//!
//! The password is read from standard input, or asked for twice without echo
//! when standard input is a terminal; it never comes from the command line.
//! The key is the `gpbackup_ddboost_plugin` entry of the coordinator's
//! `.encrypt`, created when missing and reused when present (see
//! [`keyfile::ensure_key`]). The hex printed on standard output goes into
//! the plugin config as `password` (or `remote_password`).

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::keyfile::{self, KeyOrigin};
use crate::crypto::pgp;
use crate::crypto::{DATA_DIR_VARS, KEY_FILE_NAME, KEY_OPTION};
use crate::error::{is_broken_pipe, Error, Result};

/// Runs `encrypt_password`. `key_file` is the `--key-file` argument; without
/// it the key file is `.encrypt` in `$COORDINATOR_DATA_DIRECTORY` (or
/// `$MASTER_DATA_DIRECTORY`). Takes no plugin config. Prints the encrypted
/// password as one line of hex on standard output.
pub fn run(key_file: Option<&Path>) -> Result<()> {
    let path = key_file_path(key_file)?;
    // A key file that cannot be used fails before the password is asked for.
    keyfile::check_key_file(&path)?;
    let password = read_password()?;
    pgp::check_password(&password)?;
    let (key, origin) = keyfile::ensure_key(&path)?;
    let key = Zeroizing::new(key);
    let hex = pgp::encrypt_password(&password, &key)?;
    // What goes into the config must come back out: check it here rather
    // than at the next backup.
    match pgp::decrypt_password(&hex, &key) {
        Ok(back) if back.as_bytes() == password.as_bytes() => {}
        _ => {
            return Err(Error::invalid(
                "the encrypted password does not decrypt back to the password; nothing to paste",
            ))
        }
    }
    match origin {
        KeyOrigin::Existing => log::info!(
            "encrypt_password: encrypted a password with the existing {KEY_OPTION} key of {}",
            path.display()
        ),
        KeyOrigin::Created => log::info!(
            "encrypt_password: created the {KEY_OPTION} key in {} and encrypted a password with it",
            path.display()
        ),
    }
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{hex}").and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if is_broken_pipe(&e) => Err(Error::broken_pipe()),
        Err(e) => Err(Error::io(format!("cannot write standard output: {e}"))),
    }
}

/// `--key-file`, else `.encrypt` in the coordinator data directory.
fn key_file_path(key_file: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = key_file {
        return Ok(p.to_path_buf());
    }
    keyfile::key_file_for(&keyfile::data_dirs_from_env()).ok_or_else(|| {
        Error::invalid(format!(
            "no key file: set {} (or {}) to the coordinator data directory, whose {KEY_FILE_NAME} gpbackup reads, or name the file with --key-file PATH",
            DATA_DIR_VARS[0], DATA_DIR_VARS[1]
        ))
    })
}

/// The password from a terminal (asked twice, no echo) or from standard
/// input (one line; the final line break is not part of it).
fn read_password() -> Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        let first = prompt("DD Boost password: ")?;
        if first.is_empty() {
            return Err(Error::invalid("no password entered"));
        }
        let again = prompt("Repeat the password: ")?;
        if *first != *again {
            return Err(Error::invalid(
                "the two passwords differ; nothing was encrypted",
            ));
        }
        return Ok(first);
    }
    let mut raw = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_INPUT)
        .read_to_end(&mut raw)
        .map_err(|e| Error::io(format!("cannot read the password from standard input: {e}")))?;
    if raw.is_empty() {
        return Err(Error::invalid(
            "no password on standard input: pipe the password in, or run encrypt_password on a terminal to be asked for it",
        ));
    }
    let text = std::str::from_utf8(&raw)
        .map_err(|_| Error::invalid("the password on standard input is not UTF-8 text"))?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Zeroizing::new(line.to_string()))
}

/// More than the longest password accepted, so a longer one is refused
/// rather than cut.
const MAX_INPUT: u64 = 64 * 1024 + 3;

/// Asks for one line on the terminal with echo off (the line break is still
/// shown). The terminal is restored afterwards, also when a signal ends the
/// process while it waits.
fn prompt(text: &str) -> Result<Zeroizing<String>> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let tty_error = |e: nix::Error| Error::io(format!("cannot switch off terminal echo: {e}"));
    let saved = tcgetattr(std::io::stdin().as_fd()).map_err(tty_error)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // Behind a lock: cleanups may be looked at from any thread.
    let saved = std::sync::Mutex::new(saved);
    let restore = crate::process::signals::CleanupGuard::new(move || {
        if let Ok(saved) = saved.lock() {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &saved);
        }
    });
    tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &quiet).map_err(tty_error)?;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|_| err.flush());
    drop(err);
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().read_line(&mut line);
    drop(restore); // echo back on
    read.map_err(|e| Error::io(format!("cannot read the password from the terminal: {e}")))?;
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}
