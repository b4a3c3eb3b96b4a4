//! The host's summary of a backup or restore: the facts file read as a
//! stream into totals (memory does not grow with the objects: the slowest
//! few are kept, failures by kind, of which there are few).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use crate::process::metrics::{Counts, Split};
use crate::process::private::open_existing;

use super::lanes::MostAtOnce;
use super::record::{self, Facts, OK};

/// How many of the slowest objects the summary names.
pub const SLOWEST: usize = 5;

/// The totals of a backup's objects on this host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub objects: u64,
    pub bytes: u64,
    /// The objects' times by part (their sum is the objects' wall time).
    pub split: Split,
    pub counts: Counts,
    /// Failed objects by kind.
    pub failures: BTreeMap<String, u64>,
    /// The slowest objects: wall time (ns) and name, slowest first.
    pub slowest: Vec<(u64, String)>,
    /// From the first object's start to the last one's end (Unix ms).
    pub first_ms: u64,
    pub last_ms: u64,
    /// The most objects in flight at once (failed ones included).
    pub at_once: MostAtOnce,
    /// Lines that were not facts (cut short).
    pub unreadable: u64,
}

impl Summary {
    /// Adds one object's facts.
    pub fn add(&mut self, f: Facts) {
        let end = f.start_ms.saturating_add(f.split.wall_ns / 1_000_000);
        let first = self.objects == 0 && self.failures.is_empty();
        if first || f.start_ms < self.first_ms {
            self.first_ms = f.start_ms;
        }
        self.last_ms = self.last_ms.max(end);
        self.at_once.add(f.start_ms, end);
        self.counts.add(&f.counts);
        if f.kind != OK {
            *self.failures.entry(f.kind).or_default() += 1;
            return;
        }
        self.objects += 1;
        self.bytes = self.bytes.saturating_add(f.bytes);
        self.split.add(&f.split);
        let wall = f.split.wall_ns;
        if self.slowest.len() < SLOWEST || self.slowest.last().is_some_and(|s| s.0 < wall) {
            let at = self.slowest.partition_point(|s| s.0 >= wall);
            self.slowest.insert(at, (wall, f.name));
            self.slowest.truncate(SLOWEST);
        }
    }

    /// The summary of the lines `reader` gives.
    pub fn read(reader: impl BufRead) -> std::io::Result<Summary> {
        let mut s = Summary::default();
        for line in reader.lines() {
            match record::decode(&line?) {
                Some(f) => s.add(f),
                None => s.unreadable += 1,
            }
        }
        Ok(s)
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Seconds from the first object's start to the last one's end.
    pub fn elapsed_secs(&self) -> f64 {
        self.elapsed_ns() as f64 / 1e9
    }

    fn elapsed_ns(&self) -> u64 {
        self.last_ms
            .saturating_sub(self.first_ms)
            .saturating_mul(1_000_000)
    }

    /// The lanes the host's callers ran, as the objects show them: the most
    /// objects in flight at once. gpbackup runs segments x `--jobs` at once
    /// on a host (one when `--single-data-file`), gprestore likewise.
    pub fn lanes(&self) -> u64 {
        self.at_once.most()
    }

    /// The lanes' time between objects: lanes x elapsed less the objects'
    /// time. That is outside the plugin: the database and gpbackup_helper
    /// preparing the next table, and the caller starting its process (a
    /// failed object's time is counted here too).
    pub fn between_ns(&self) -> u64 {
        self.lanes()
            .saturating_mul(self.elapsed_ns())
            .saturating_sub(self.split.wall_ns)
    }

    /// The summary as log lines.
    pub fn describe(&self, what: &str) -> Vec<String> {
        let secs = |ns: u64| Duration::from_nanos(ns).as_secs_f64();
        let between = self.between_ns();
        let lanes_ns = self.split.wall_ns.saturating_add(between);
        let pct = |ns: u64| {
            if lanes_ns == 0 {
                0.0
            } else {
                ns as f64 * 100.0 / lanes_ns as f64
            }
        };
        let parts: Vec<String> = self
            .split
            .parts()
            .iter()
            .chain([&("between objects", between)])
            .map(|(name, ns)| format!("{name} {:.1} s ({:.0}%)", secs(*ns), pct(*ns)))
            .collect();
        let mut lines = vec![format!(
            "{what}: {} objects, {} bytes over {:.1} s on {} lanes (the most objects at once): {:.1} s of lanes' time, {:.1} s of it in objects: {}; {} storage calls, {} stream waits, {} retries, {} failed",
            self.objects,
            self.bytes,
            self.elapsed_secs(),
            self.lanes(),
            secs(lanes_ns),
            secs(self.split.wall_ns),
            parts.join(", "),
            self.counts.calls,
            self.counts.waits,
            self.counts.retries,
            self.failed()
        )];
        if let Some(line) = self.describe_broker() {
            lines.push(format!("{what}: {line}"));
        }
        if !self.failures.is_empty() {
            let kinds: Vec<String> = self
                .failures
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            lines.push(format!("{what}: failures by kind: {}", kinds.join(", ")));
        }
        if !self.slowest.is_empty() {
            let slow: Vec<String> = self
                .slowest
                .iter()
                .map(|(ns, name)| format!("{name} {:.3} s", secs(*ns)))
                .collect();
            lines.push(format!("{what}: slowest objects: {}", slow.join(", ")));
        }
        lines
    }

    /// What the objects that went through the connection broker met as they
    /// took their first connection; None when none did.
    fn describe_broker(&self) -> Option<String> {
        let b = &self.counts.broker;
        if b.requests == 0 {
            return None;
        }
        Some(format!(
            "connection broker: {} objects took a connection; connections in use as they did: at most {}, {:.1} on average; requests waiting: at most {}, {:.1} on average; {:.1} s waiting for a connection",
            b.requests,
            b.in_use_max,
            b.in_use_mean(),
            b.waiting_max,
            b.waiting_mean(),
            Duration::from_nanos(self.counts.conn_wait_ns).as_secs_f64()
        ))
    }
}

/// Takes the facts file at `path` (renamed, so that one hook of the many
/// that run at once on this host gets it), reads it and removes it. None
/// when there is none (another hook took it, or nothing was written).
pub fn take(path: &std::path::Path) -> std::io::Result<Option<Summary>> {
    let taken = PathBuf::from(format!("{}.taken-{}", path.display(), std::process::id()));
    match std::fs::rename(path, &taken) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let result = open_existing(&taken).and_then(|f| Summary::read(BufReader::new(f)));
    let _ = std::fs::remove_file(&taken);
    result.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::metrics::{BrokerSeen, BUCKET_COUNT};

    fn facts(i: u64, kind: &str) -> Facts {
        let wall = (i % 97 + 1) * 1_000_000;
        let mut buckets = [0; BUCKET_COUNT];
        buckets[1] = 2;
        Facts {
            start_ms: 1_000 + i,
            split: Split {
                wall_ns: wall,
                io_ns: wall / 4,
                storage_ns: wall / 2,
                wait_ns: 0,
                conn_wait_ns: 0,
                own_ns: wall - wall / 4 - wall / 2,
            },
            bytes: 10,
            counts: Counts {
                calls: 2,
                buckets,
                ..Counts::default()
            },
            kind: kind.to_string(),
            name: format!("obj{i}"),
        }
    }

    #[test]
    fn the_lanes_time_between_objects() {
        let mut s = Summary::default();
        // Two lanes over 3 s: one object of 1 s and one of 2 s in the
        // first, one of 1 s in the second; 2 s of the lanes' 6 s between
        // objects.
        for (i, start, wall_ms) in [(0, 1_000, 1_000), (1, 1_500, 1_000), (2, 2_000, 2_000)] {
            let mut f = facts(i, OK);
            f.start_ms = start;
            f.split.wall_ns = wall_ms * 1_000_000;
            s.add(f);
        }
        assert_eq!((s.lanes(), s.elapsed_secs()), (2, 3.0));
        assert_eq!(s.between_ns(), 2_000_000_000);
        let line = &s.describe("backup")[0];
        assert!(
            line.contains("over 3.0 s on 2 lanes")
                && line.contains("6.0 s of lanes' time, 4.0 s of it in objects")
                && line.contains("between objects 2.0 s (33%)"),
            "{line}"
        );
        assert_eq!(
            (Summary::default().lanes(), Summary::default().between_ns()),
            (0, 0)
        );
    }

    #[test]
    fn totals_of_a_stream_of_lines() {
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&record::encode(&facts(
                i,
                if i % 100 == 7 { "storage" } else { OK },
            )));
        }
        text.push_str("f1 cut");
        let s = Summary::read(text.as_bytes()).unwrap();
        assert_eq!(
            (s.objects, s.bytes, s.failed(), s.unreadable),
            (990, 9900, 10, 1)
        );
        assert_eq!(s.counts.calls, 2000);
        assert_eq!(s.counts.buckets[1], 2000);
        let parts: u64 = s.split.parts().iter().map(|p| p.1).sum();
        assert_eq!(parts, s.split.wall_ns);
        assert_eq!(s.slowest.len(), SLOWEST);
        assert_eq!(s.slowest[0].0, 97_000_000);
        assert!(s.slowest.windows(2).all(|w| w[0].0 >= w[1].0));
        assert_eq!((s.first_ms, s.failures["storage"]), (1_000, 10));
        let lines = s.describe("cleanup_plugin_for_backup");
        assert!(lines[0].contains(&format!("on {} lanes", s.lanes())));
        assert!(lines[0].contains("990 objects") && lines[1].contains("storage 10"));
        assert!(!lines.iter().any(|l| l.contains("connection broker")));
    }

    #[test]
    fn absurd_numbers_in_the_facts_file_do_not_stop_the_hook() {
        let mut text = String::new();
        for i in 0..3 {
            let mut f = facts(i, OK);
            f.start_ms = u64::MAX - i;
            f.split.wall_ns = u64::MAX;
            f.split.storage_ns = u64::MAX;
            f.bytes = u64::MAX;
            f.counts.calls = u64::MAX;
            f.counts.buckets[0] = u64::MAX;
            text.push_str(&record::encode(&f));
        }
        text.push_str(&record::encode(&facts(7, OK)));
        let s = Summary::read(text.as_bytes()).unwrap();
        assert_eq!(
            (s.objects, s.bytes, s.counts.calls),
            (4, u64::MAX, u64::MAX)
        );
        assert!(s.lanes() >= 1);
        assert!(!s.describe("hook").is_empty());
        assert!(!crate::observe::textfile::render(&s, "h", "20250101120000", "backup").is_empty());
    }

    #[test]
    fn what_objects_through_the_broker_met() {
        let mut text = String::new();
        // (connections in use, requests waiting, ms waiting); the last one
        // worked directly, the third failed.
        let met = [(1, 0, 0), (2, 1, 40), (2, 3, 60), (1, 0, 0), (0, 0, 0)];
        for (i, (in_use, waiting, ms)) in met.into_iter().enumerate() {
            let mut f = facts(i as u64 + 50, if i == 2 { "storage" } else { OK });
            let ns = ms * 1_000_000;
            f.split.wall_ns += ns;
            f.split.conn_wait_ns = ns;
            f.counts.conn_wait_ns = ns;
            if in_use > 0 {
                f.counts.broker = BrokerSeen::one(in_use, waiting);
            }
            text.push_str(&record::encode(&f));
        }
        let s = Summary::read(text.as_bytes()).unwrap();
        let b = s.counts.broker;
        assert_eq!((b.requests, b.in_use_max, b.waiting_max), (4, 2, 3));
        assert_eq!((b.in_use_mean(), b.waiting_mean()), (1.5, 1.0));
        // Every object's wait; the part only the ones that succeeded.
        assert_eq!(s.counts.conn_wait_ns, 100_000_000);
        assert_eq!(s.split.conn_wait_ns, 40_000_000);
        let parts: u64 = s.split.parts().iter().map(|p| p.1).sum();
        assert_eq!(parts, s.split.wall_ns);
        let lines = s.describe("hook");
        let line = lines
            .iter()
            .find(|l| l.contains("connection broker"))
            .unwrap();
        assert!(
            line.contains("4 objects took a connection")
                && line.contains("connections in use as they did: at most 2, 1.5 on average")
                && line.contains("requests waiting: at most 3, 1.0 on average")
                && line.contains("0.1 s waiting"),
            "{line}"
        );
        assert!(lines[0].contains("connection_wait 0.0 s"), "{}", lines[0]);
    }
}
