//! The plugin log: `~/gpAdminLogs/gpbackup_ddboost_plugin_YYYYMMDD.log`.
//!
//! One line per event in gplog format:
//! `YYYYMMDD:HH:MM:SS gpbackup_ddboost_plugin:<user>:<host>:<pid>-[LEVEL]:-<message>`.
//! Dozens of plugin processes append to the same file at once, so each line
//! is written with a single `write` on a file opened with O_APPEND.
//!
//! A log problem never fails a command. When `~/gpAdminLogs` is not writable
//! the log goes to `<temp dir>/gpbackup_ddboost_plugin-<uid>/` (`$TMPDIR` or
//! `/tmp`), a folder only this user may write (see [`crate::process::private`]
//! for the checks on the folder and on every log file), and failing that
//! keeps no log file.

use std::fs::{DirBuilder, File};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Metadata, Record};

use crate::about::PLUGIN_NAME;
use crate::process::private::{open_append, private_dir};
use crate::process::scope::Scope;

/// Log verbosity, option `logger_verbosity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Error,
    Info,
    Verbose,
    Debug,
}

struct PluginLogger {
    file: Mutex<Option<File>>,
    path: Option<PathBuf>,
    /// `<plugin>:<user>:<host>`; the process id follows.
    prefix: String,
    max_level: AtomicUsize,
}

static LOGGER: OnceLock<PluginLogger> = OnceLock::new();

/// Opens the log file and installs the logger (level INFO until the config is read).
pub fn init() {
    let (file, path) = match open_log_file() {
        Some((f, p)) => (Some(f), Some(p)),
        None => (None, None),
    };
    let user = user_name();
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let prefix = format!("{PLUGIN_NAME}:{user}:{host}");
    let logger = LOGGER.get_or_init(|| PluginLogger {
        file: Mutex::new(file),
        path,
        prefix,
        max_level: AtomicUsize::new(LevelFilter::Info as usize),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Applies option `logger_verbosity`.
pub fn set_verbosity(v: Verbosity) {
    let filter = match v {
        Verbosity::Error => LevelFilter::Error,
        Verbosity::Info => LevelFilter::Info,
        Verbosity::Verbose => LevelFilter::Debug,
        Verbosity::Debug => LevelFilter::Trace,
    };
    if let Some(l) = LOGGER.get() {
        l.max_level.store(filter as usize, Ordering::Relaxed);
    }
    log::set_max_level(filter);
}

/// Where the log is written, if anywhere.
pub fn log_path() -> Option<&'static Path> {
    LOGGER.get().and_then(|l| l.path.as_deref())
}

pub fn flush() {
    if let Some(l) = LOGGER.get() {
        if let Ok(mut f) = l.file.lock() {
            if let Some(f) = f.as_mut() {
                let _ = f.flush();
            }
        }
    }
}

fn user_name() -> String {
    if let Some(u) = std::env::var_os("USER").or_else(|| std::env::var_os("LOGNAME")) {
        if !u.is_empty() {
            return u.to_string_lossy().into_owned();
        }
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string())
}

fn home_dir() -> Option<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
        _ => nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.dir),
    }
}

fn open_log_file() -> Option<(File, PathBuf)> {
    let date = chrono::Local::now().format("%Y%m%d");
    let name = format!("{PLUGIN_NAME}_{date}.log");
    if let Some(home) = home_dir() {
        let dir = home.join("gpAdminLogs");
        // Only the last level: a missing home is not created.
        let _ = DirBuilder::new().mode(0o700).create(&dir);
        let path = dir.join(&name);
        if let Ok(f) = open_append(&path) {
            return Some((f, path));
        }
    }
    let path = private_dir(&std::env::temp_dir())?.join(&name);
    open_append(&path).ok().map(|f| (f, path))
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug => "VERBOSE",
        Level::Trace => "DEBUG",
    }
}

impl log::Log for PluginLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        (m.level() as usize) <= self.max_level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = chrono::Local::now().format("%Y%m%d:%H:%M:%S");
        let msg = record.args().to_string().replace(['\n', '\r'], " ");
        // A request of the connection broker logs as its client.
        let scope = Scope::current();
        let (pid, by) = match &scope.log_as {
            Some((client, command)) => (
                *client,
                format!("(broker {}, {command}) ", std::process::id()),
            ),
            None => (std::process::id(), String::new()),
        };
        let line = format!(
            "{now} {}:{pid:06}-[{}]:-{by}{msg}\n",
            self.prefix,
            level_name(record.level())
        );
        if let Ok(mut guard) = self.file.lock() {
            if let Some(f) = guard.as_mut() {
                // One write per line keeps lines whole with O_APPEND.
                let _ = f.write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// The per-object summary line: a rate for objects large enough for one to
/// mean something, milliseconds for small ones (a metadata file's "0.1 MB/s"
/// says nothing about the storage).
pub fn log_summary(command: &str, object: &str, bytes: u64, started: std::time::Instant) {
    log::info!(
        "{}",
        summary_text(command, object, bytes, started.elapsed().as_secs_f64())
    );
}

pub fn summary_text(command: &str, object: &str, bytes: u64, secs: f64) -> String {
    const RATE_FROM: u64 = 16 << 20;
    if bytes < RATE_FROM {
        return format!(
            "{command} {object}: {bytes} bytes in {:.0} ms",
            secs * 1000.0
        );
    }
    let mbps = if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    };
    format!("{command} {object}: {bytes} bytes in {secs:.3} s ({mbps:.1} MB/s)")
}

#[cfg(test)]
mod summary_tests {
    #[test]
    fn small_objects_log_milliseconds_large_ones_a_rate() {
        assert_eq!(
            super::summary_text("backup_file", "x", 336, 0.0042),
            "backup_file x: 336 bytes in 4 ms"
        );
        assert_eq!(
            super::summary_text("backup_data", "y", 100_000_000, 0.5),
            "backup_data y: 100000000 bytes in 0.500 s (200.0 MB/s)"
        );
    }
}
