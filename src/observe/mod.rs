//! What a DBA and their monitoring see of where the time went.
//!
//! Each object a command stores or reads ends with one summary line in the
//! log, its wall time split into waiting for input/output, the storage's
//! calls, waiting for streams and the plugin's own work
//! (`process::metrics`), and one line of bounded size appended to the backup's
//! facts file on this host ([`record`]). The cleanup hook reads that file as
//! a stream, logs the host's summary of the backup ([`host`]), writes it as
//! metrics into a node_exporter textfile folder when option
//! `metrics_textfile_dir` names one ([`textfile`]), and removes it.

pub mod host;
pub mod lanes;
pub mod record;
pub mod textfile;
pub mod verified;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind};
use crate::process::journal::Options;
use crate::process::metrics;

/// The kind of a failure, as the metrics' `kind` label and the facts file
/// name it: the name of its error code (`stream_limit` for `DDB-204`; the
/// README's troubleshooting table lists them all).
pub fn failure_kind(e: &Error) -> &'static str {
    e.failure().name()
}

/// Whether a command stores objects of a backup or reads them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Backup,
    Restore,
}

impl Operation {
    /// The operation of the command `name`, if it moves one object.
    pub fn of_command(name: &str) -> Option<Operation> {
        match name {
            "backup_data" | "backup_file" => Some(Operation::Backup),
            "restore_data" | "restore_file" | "restore_data_subset" => Some(Operation::Restore),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::Backup => "backup",
            Operation::Restore => "restore",
        }
    }
}

/// One object's command as it ends.
pub struct ObjectEnd<'a> {
    pub command: &'a str,
    pub options: Options<'a>,
    pub timestamp: &'a str,
    /// The object's path on the storage.
    pub object: &'a str,
    /// When the command started (its time counts from its process's start).
    pub started: Instant,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ObjectEnd<'_> {
    fn facts(&self, bytes: u64, kind: &str) -> record::Facts {
        // From the start of the process that asked (its own, or the
        // connection broker's client): its start and handoff are the
        // plugin's own work.
        let wall = metrics::began(self.started).elapsed();
        let counts = metrics::current();
        let start = SystemTime::now().checked_sub(wall).unwrap_or(UNIX_EPOCH);
        let name = Path::new(self.object)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        record::Facts {
            start_ms: unix_ms(start),
            split: counts.split(wall),
            bytes,
            counts,
            kind: kind.to_string(),
            name,
        }
    }

    /// The object is done: logs its summary line with where its time went,
    /// and appends its facts for the cleanup hook.
    pub fn done(&self, bytes: u64) {
        let facts = self.facts(bytes, record::OK);
        log::info!("{}", summary_line(self.command, self.object, &facts));
        self.append(&facts);
    }

    /// The object's command failed with `e`: its facts are appended (the
    /// failure's line is the command's own).
    pub fn failed(&self, e: &Error) {
        if e.kind() == ErrorKind::BrokenPipe {
            return;
        }
        self.append(&self.facts(0, failure_kind(e)));
    }

    fn append(&self, facts: &record::Facts) {
        if let Some(op) = Operation::of_command(self.command) {
            record::append(self.options, self.timestamp, op, facts);
        }
    }
}

/// `backup_data <object>: N bytes in S s (input/output .., storage .., stream
/// waits .., plugin ..; N storage calls)`.
fn summary_line(command: &str, object: &str, f: &record::Facts) -> String {
    let secs = Duration::from_nanos(f.split.wall_ns).as_secs_f64();
    let head = crate::process::logging::summary_text(command, object, f.bytes, secs);
    format!(
        "{head} ({}; {} storage calls)",
        f.split.describe(),
        f.counts.calls
    )
}

/// Where a cleanup hook finds its backup's facts and puts its summary.
pub struct HostReport<'a> {
    /// The hook, as its log lines name it.
    pub who: &'a str,
    pub options: Options<'a>,
    pub timestamp: &'a str,
    pub operation: Operation,
    /// Option `metrics_textfile_dir`.
    pub metrics_dir: Option<&'a Path>,
}

impl HostReport<'_> {
    /// Takes the backup's facts file on this host (one hook of those that
    /// run at once gets it), logs the host's summary and writes its metrics.
    /// Nothing here fails the hook: a problem is one warning.
    pub fn run(&self) {
        let Some(path) = record::path(self.options, self.timestamp, self.operation) else {
            return;
        };
        let summary = match host::take(&path) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                log::warn!("{}: cannot read {}: {e}", self.who, path.display());
                return;
            }
        };
        let what = format!(
            "{}: {} {} on this host",
            self.who,
            self.operation.name(),
            self.timestamp
        );
        for line in summary.describe(&what) {
            log::info!("{line}");
        }
        if let Some(dir) = self.metrics_dir {
            let host = hostname();
            let text = textfile::render(&summary, &host, self.timestamp, self.operation.name());
            let name = format!(
                "{}_{}.prom",
                crate::about::PLUGIN_NAME,
                self.operation.name()
            );
            match textfile::write_atomically(dir, &name, &text) {
                Ok(()) => log::debug!(
                    "{}: metrics written to {}",
                    self.who,
                    dir.join(&name).display()
                ),
                Err(e) => log::warn!(
                    "{}: metrics not written (option metrics_textfile_dir): {e}",
                    self.who
                ),
            }
        }
    }
}

/// This host's name, as the metrics' `host` label has it.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".to_string())
}
