//! The facts file of a backup on this host: one line of bounded size per object a
//! command stored or read, for the cleanup hook's summary.
//!
//! `facts-<operation>-<timestamp>-<storage id>` in the user's private folder
//! in `/tmp` (`process::private::run_dir`, beside the journal of
//! temporaries, with its protections against links and other users' files).
//! Every writer appends its line with a single `write` on a file opened with
//! O_APPEND, so lines of processes running at once never mix. The cleanup
//! hook takes the file by renaming it (one hook of the many on a host gets
//! it), reads it line by line and removes it.
//!
//! A line: `f2 <start ms> <wall us> <io us> <storage us> <stream wait us>
//! <connection wait us> <plugin us> <storage calls' us added up> <bytes>
//! <storage calls> <stream waits> <retries> <broker connections in use>
//! <broker requests waiting> <kind> <bucket counts...> <object name>`,
//! numbers zero-padded, the kind padded and the name cut to 64 bytes; `kind`
//! is `ok` or the failure's kind. The broker's connections in use are 0 for
//! an object that did not go through the connection broker (one that did
//! met at least its own). A line of the version before (`f1`, written by the
//! plugin before an upgrade during the backup) has no connection wait and
//! no broker fields, and reads as an object that did not go through the
//! broker.

use std::io::Write;
use std::path::PathBuf;

use crate::process::journal::{storage_id, Options};
use crate::process::metrics::{BrokerSeen, Counts, Split, BUCKET_COUNT};
use crate::process::private::{open_append, run_dir};

use super::Operation;

/// The kind of an object that succeeded.
pub const OK: &str = "ok";

/// Width of the object name in a line.
const NAME_WIDTH: usize = 64;
/// Width of the kind in a line.
const KIND_WIDTH: usize = 24;

/// What one object's command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// When it started (Unix time, ms).
    pub start_ms: u64,
    pub split: Split,
    pub bytes: u64,
    pub counts: Counts,
    /// [`OK`] or the failure's kind.
    pub kind: String,
    /// The object's name (its file name on the storage).
    pub name: String,
}

/// The facts file of `timestamp` on the storage `options` name, for `op`;
/// None without a usable private folder.
pub fn path(options: Options, timestamp: &str, op: Operation) -> Option<PathBuf> {
    let dir = run_dir()?;
    Some(dir.join(format!(
        "facts-{}-{timestamp}-{}",
        op.name(),
        storage_id(options)
    )))
}

/// Appends the line of `facts`; a failure is only logged (the facts serve
/// the summary, never the backup).
pub fn append(options: Options, timestamp: &str, op: Operation, facts: &Facts) {
    let Some(path) = path(options, timestamp, op) else {
        log::debug!("no usable private folder: the object's facts are not kept");
        return;
    };
    let line = encode(facts);
    if let Err(e) = open_append(&path).and_then(|mut f| f.write_all(line.as_bytes())) {
        log::warn!("cannot append to {}: {e}", path.display());
    }
}

fn fixed(text: &str, width: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut cut = String::new();
    for c in clean.chars() {
        if cut.len() + c.len_utf8() > width {
            break;
        }
        cut.push(c);
    }
    format!("{cut:<width$}")
}

/// One line, ending with a newline.
pub fn encode(f: &Facts) -> String {
    let us = |ns: u64| ns / 1000;
    let (s, b) = (&f.split, &f.counts.broker);
    // One object's: its own sample, or none.
    let (in_use, waiting) = match b.requests {
        0 => (0, 0),
        _ => (b.in_use_max, b.waiting_max),
    };
    let mut line = format!(
        "f2 {:013} {:013} {:013} {:013} {:013} {:013} {:013} {:013} {:020} {:010} {:08} {:08} {:05} {:06} {}",
        f.start_ms,
        us(s.wall_ns),
        us(s.io_ns),
        us(s.storage_ns),
        us(s.wait_ns),
        us(s.conn_wait_ns),
        us(s.own_ns),
        us(f.counts.storage_ns),
        f.bytes,
        f.counts.calls,
        f.counts.waits,
        f.counts.retries,
        in_use,
        waiting,
        fixed(if f.kind.is_empty() { OK } else { &f.kind }, KIND_WIDTH),
    );
    for b in f.counts.buckets {
        line.push_str(&format!(" {b:010}"));
    }
    line.push(' ');
    line.push_str(fixed(&f.name, NAME_WIDTH).trim_end());
    line.push('\n');
    line
}

/// The facts of one line (of this version or the one before); None for a
/// line that is not one (cut short by a full disk, say).
pub fn decode(line: &str) -> Option<Facts> {
    let mut fields = line.split_whitespace();
    let v2 = match fields.next()? {
        "f2" => true,
        "f1" => false,
        _ => return None,
    };
    let mut n = || -> Option<u64> { fields.next()?.parse().ok() };
    let start_ms = n()?;
    let ns = |us: u64| us.saturating_mul(1000);
    let (wall_ns, io_ns, storage_ns, wait_ns) = (ns(n()?), ns(n()?), ns(n()?), ns(n()?));
    let conn_wait_ns = if v2 { ns(n()?) } else { 0 };
    let split = Split {
        wall_ns,
        io_ns,
        storage_ns,
        wait_ns,
        conn_wait_ns,
        own_ns: ns(n()?),
    };
    let calls_ns = ns(n()?);
    let bytes = n()?;
    let (calls, waits, retries) = (n()?, n()?, n()?);
    let (in_use, waiting) = if v2 { (n()?, n()?) } else { (0, 0) };
    let kind = fields.next()?.to_string();
    let mut buckets = [0u64; BUCKET_COUNT];
    for b in buckets.iter_mut() {
        *b = fields.next()?.parse().ok()?;
    }
    let name = fields.next().unwrap_or_default().to_string();
    let counts = Counts {
        io_ns: split.io_ns,
        storage_ns: calls_ns,
        busy_ns: split.storage_ns,
        wait_ns: split.wait_ns,
        calls,
        waits,
        retries,
        buckets,
        conn_wait_ns: split.conn_wait_ns,
        broker: match in_use {
            0 => BrokerSeen::default(),
            _ => BrokerSeen::one(in_use, waiting),
        },
    };
    Some(Facts {
        start_ms,
        split,
        bytes,
        counts,
        kind,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, kind: &str) -> Facts {
        let split = Split {
            wall_ns: 12_000_000,
            io_ns: 1_000_000,
            storage_ns: 9_000_000,
            wait_ns: 0,
            conn_wait_ns: 500_000,
            own_ns: 1_500_000,
        };
        let mut buckets = [0; BUCKET_COUNT];
        buckets[2] = 3;
        Facts {
            start_ms: 1_700_000_000_000,
            split,
            bytes: 4096,
            counts: Counts {
                io_ns: split.io_ns,
                storage_ns: 11_000_000,
                busy_ns: split.storage_ns,
                wait_ns: 0,
                calls: 3,
                waits: 0,
                retries: 1,
                buckets,
                conn_wait_ns: split.conn_wait_ns,
                broker: BrokerSeen::one(3, 2),
            },
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }

    #[test]
    fn a_line_reads_back_and_has_a_fixed_size() {
        let f = sample("gpbackup_0_20250101120000_16384", OK);
        let line = encode(&f);
        assert_eq!(decode(&line), Some(f));
        let failed = encode(&sample("x", "stream_limit"));
        let long = encode(&sample(&"n".repeat(300), OK));
        assert_eq!(
            long.len(),
            line.len() - "gpbackup_0_20250101120000_16384".len() + 64
        );
        assert_eq!(decode(&failed).unwrap().kind, "stream_limit");
        assert_eq!(decode(&long).unwrap().name.len(), 64);
        assert_eq!(decode("f1 12 cut short"), None);
        assert_eq!(decode("f2 12 cut short"), None);
        assert_eq!(decode("f9 12"), None);
        assert_eq!(decode(""), None);
    }

    #[test]
    fn a_line_of_the_version_before_reads_as_not_through_the_broker() {
        let mut direct = sample("gpbackup_0_20250101120000_1", OK);
        direct.split.own_ns += direct.split.conn_wait_ns;
        direct.split.conn_wait_ns = 0;
        direct.counts.conn_wait_ns = 0;
        direct.counts.broker = BrokerSeen::default();
        let line = encode(&direct);
        assert!(line.starts_with("f2 "), "{line}");
        assert_eq!(decode(&line), Some(direct.clone()));
        // The same line as the version before wrote it: no connection wait,
        // no broker fields.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mut old = vec!["f1"];
        for (i, f) in fields.iter().enumerate().skip(1) {
            if ![6, 13, 14].contains(&i) {
                old.push(f);
            }
        }
        assert_eq!(decode(&old.join(" ")), Some(direct));
    }
}
