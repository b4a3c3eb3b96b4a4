//! Metrics in the Prometheus text format, as node_exporter's textfile
//! collector reads them (`*.prom` files in the folder named by its
//! `--collector.textfile.directory`), and the file written into that folder:
//! a temporary first, then renamed over the old one, mode 0644, never
//! through a link.
//!
//! Labels are few and bounded: `host`, `backup` (the timestamp), `operation`
//! (backup, restore), `part` (five), `kind` (the failure kinds), `le` (the
//! histogram's buckets); never an object.

use std::fmt::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::Error;
use crate::process::private::write_new_file;
use crate::process::signals::CleanupGuard;

use crate::process::metrics::BUCKETS;

use super::host::Summary;

/// Metric names' common prefix.
pub const PREFIX: &str = "gpbackup_ddboost";

/// Text of metrics: families, each with its HELP and TYPE once.
#[derive(Default)]
pub struct Text {
    out: String,
}

/// `name="value"` pairs, values escaped as the format wants.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl Text {
    /// Starts the family `name` (with the prefix) of `kind` (counter,
    /// gauge, histogram).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {PREFIX}_{name} {help}");
        let _ = writeln!(self.out, "# TYPE {PREFIX}_{name} {kind}");
        self
    }

    /// One sample of the family `name` (a histogram's: with its suffix).
    pub fn sample(&mut self, name: &str, labels: &str, value: f64) -> &mut Self {
        let _ = writeln!(self.out, "{PREFIX}_{name}{labels} {value}");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The metrics of a host's summary of a backup (or restore).
pub fn render(s: &Summary, host: &str, backup: &str, operation: &str) -> String {
    let base = [("host", host), ("backup", backup), ("operation", operation)];
    let l = labels(&base);
    let with = |k: &str, v: &str| {
        let mut all = base.to_vec();
        all.push((k, v));
        labels(&all)
    };
    let secs = |ns: u64| ns as f64 / 1e9;
    let mut t = Text::default();
    t.family(
        "objects_total",
        "counter",
        "Objects stored or read on this host.",
    )
    .sample("objects_total", &l, s.objects as f64);
    t.family(
        "bytes_total",
        "counter",
        "Bytes of the objects stored or read.",
    )
    .sample("bytes_total", &l, s.bytes as f64);
    t.family(
        "object_seconds_total",
        "counter",
        "The objects' wall time by part: io (waiting for gpbackup or gprestore), storage (its calls), stream_wait, connection_wait (for a connection of the connection broker), plugin (the rest).",
    );
    for (part, ns) in s.split.parts() {
        t.sample("object_seconds_total", &with("part", part), secs(ns));
    }
    t.family(
        "between_objects_seconds_total",
        "counter",
        "The lanes' time between objects (lanes x elapsed less the objects' time): outside the plugin, in the database, gpbackup_helper and starting each process.",
    )
    .sample("between_objects_seconds_total", &l, secs(s.between_ns()));
    t.family(
        "lanes",
        "gauge",
        "The most objects in flight at once on this host: the lanes (segments x --jobs) its callers ran.",
    )
    .sample("lanes", &l, s.lanes() as f64);
    t.family(
        "elapsed_seconds",
        "gauge",
        "From the first object's start to the last one's end on this host.",
    )
    .sample("elapsed_seconds", &l, s.elapsed_secs());
    t.family(
        "end_time_seconds",
        "gauge",
        "When the last object ended (Unix time).",
    )
    .sample("end_time_seconds", &l, s.last_ms as f64 / 1000.0);
    t.family(
        "stream_waits_total",
        "counter",
        "Pauses waiting for a storage stream.",
    )
    .sample("stream_waits_total", &l, s.counts.waits as f64);
    t.family("retries_total", "counter", "Storage calls tried again.")
        .sample("retries_total", &l, s.counts.retries as f64);
    t.family(
        "failures_total",
        "counter",
        "Objects whose command failed, by kind of failure.",
    );
    for (kind, n) in &s.failures {
        t.sample("failures_total", &with("kind", kind), *n as f64);
    }
    t.family(
        "storage_call_seconds",
        "histogram",
        "Latency of storage (DD Boost SDK) calls.",
    );
    let mut cumulative = 0;
    for (i, n) in s.counts.buckets.iter().enumerate() {
        cumulative = n.saturating_add(cumulative);
        let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
        t.sample(
            "storage_call_seconds_bucket",
            &with("le", &le),
            cumulative as f64,
        );
    }
    t.sample("storage_call_seconds_sum", &l, secs(s.counts.storage_ns))
        .sample("storage_call_seconds_count", &l, s.counts.calls as f64);
    broker(&mut t, s, &l);
    t.finish()
}

/// What the objects that went through the connection broker met as they
/// took their first connection; nothing when none did (the broker off, or
/// not running: each process worked directly).
fn broker(t: &mut Text, s: &Summary, l: &str) {
    let b = &s.counts.broker;
    if b.requests == 0 {
        return;
    }
    t.family(
        "broker_requests_total",
        "counter",
        "Objects that took a connection of the connection broker (what the broker gauges sample).",
    )
    .sample("broker_requests_total", l, b.requests as f64);
    let gauges = [
        (
            "broker_connections_in_use_max",
            "The most connections of the connection broker in use that an object met as it took its first (its own included).",
            b.in_use_max as f64,
        ),
        (
            "broker_connections_in_use_mean",
            "The mean of the broker's connections in use that the objects met as they took their first (their own included).",
            b.in_use_mean(),
        ),
        (
            "broker_requests_waiting_max",
            "The most requests waiting for a connection of the connection broker that an object met as it asked for its first (itself included when it waited).",
            b.waiting_max as f64,
        ),
        (
            "broker_requests_waiting_mean",
            "The mean of the requests waiting for a broker connection that the objects met as they asked for their first (their own included when they waited).",
            b.waiting_mean(),
        ),
    ];
    for (name, help, value) in gauges {
        t.family(name, "gauge", help).sample(name, l, value);
    }
}

/// Writes `text` as `name` in the folder `dir`: to a temporary in it, then
/// renamed into place, mode 0644. A link in the folder's place is refused,
/// the temporary is created new (never through a link), and the rename
/// replaces whatever had the name, a link included, without following it.
pub fn write_atomically(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let shown = dir.display();
    let folder = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(dir)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR) => {
                format!("{shown} is not a folder (a link is not followed)")
            }
            _ => format!("cannot open folder {shown}: {e}"),
        })?;
    let temp = dir.join(crate::process::temp::temp_name(name));
    let guard = CleanupGuard::remove_file(temp.clone());
    write_new_file(&temp, 0o644, text.as_bytes())
        .map_err(|e| format!("cannot write {name} in {shown}: {e}"))?;
    guard
        .disarm_with(|| {
            std::fs::rename(&temp, dir.join(name))
                .and_then(|()| folder.sync_all())
                .map_err(|e| Error::io(format!("cannot write {name} in {shown}: {e}")))
        })
        .map_err(|e| e.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::record::{Facts, OK};
    use crate::process::metrics::{BrokerSeen, Counts, Split};

    fn summary_of(objects: u64) -> Summary {
        let mut s = Summary::default();
        for i in 0..objects {
            let kind = match i % 50 {
                7 => "storage",
                9 => "stream_limit",
                _ => OK,
            };
            s.add(Facts {
                start_ms: 1_000 + i,
                split: Split {
                    wall_ns: 1_000_000 + i,
                    storage_ns: 1_000_000,
                    own_ns: i,
                    ..Split::default()
                },
                bytes: i,
                counts: Counts {
                    calls: 3,
                    broker: match i % 3 {
                        0 => BrokerSeen::default(),
                        n => BrokerSeen::one(n, i % 5),
                    },
                    ..Counts::default()
                },
                kind: kind.to_string(),
                name: format!("gpbackup_0_20250101120000_{i}"),
            });
        }
        s
    }

    /// The series written: each sample's name and labels, without its value.
    fn series(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
            .collect()
    }

    #[test]
    fn as_many_series_at_100_000_objects_as_at_100() {
        let few = render(&summary_of(100), "h1", "20250101120000", "backup");
        let many = render(&summary_of(100_000), "h1", "20250101120000", "backup");
        assert_eq!(series(&few), series(&many));
        assert_eq!(series(&few).len(), 33);
        assert!(!many.contains("gpbackup_0_"), "no object is a label");
        assert!(
            few.contains("\ngpbackup_ddboost_broker_requests_waiting_max{host=\"h1\",backup=\"20250101120000\",operation=\"backup\"} 4\n"),
            "{few}"
        );
        // Without the broker: no broker series, the part at 0.
        let direct = render(&Summary::default(), "h1", "20250101120000", "backup");
        assert_eq!(series(&direct).len(), 26, "{direct}");
        assert!(!direct.contains("broker_"), "{direct}");
        assert!(direct.contains("part=\"connection_wait\"} 0\n"), "{direct}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
    }

    #[test]
    fn a_link_in_the_folders_place_is_refused_and_the_file_is_0644() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = write_atomically(&link, "m.prom", "x 1\n").unwrap_err();
        assert!(e.contains("not a folder"), "{e}");
        assert!(write_atomically(&tmp.path().join("none"), "m.prom", "x 1\n").is_err());
        // A link at the file's name is replaced, not written through.
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, real.join("m.prom")).unwrap();
        write_atomically(&real, "m.prom", "x 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let meta = std::fs::symlink_metadata(real.join("m.prom")).unwrap();
        assert!(meta.is_file());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(
            std::fs::read_dir(&real).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
