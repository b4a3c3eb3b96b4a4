//! The repository: stored objects as the commands see them. A write runs
//! the whole commit protocol of [`crate::data::integrity`] ([`store`]); a
//! read chooses the object's record entries, reads ahead and checks every
//! block before it is output ([`open_verified`], then
//! [`Verified::copy_to`]). Commands only connect standard input and output
//! and local files to these.

use std::fs::File;
use std::io::Read;
use std::ops::Range;

use crate::data::integrity::{self, Entry};
use crate::data::stream::{self, Verify};
use crate::error::{Error, ErrorKind, Result};
use crate::process::signals;
use crate::process::{journal, pause};
use crate::protocol::offsets;
use crate::storage::{commit_closed, ObjectReader, Storage, StoragePath};

/// What a write is: for its messages and the journal of its temporaries.
pub struct Write<'a> {
    /// The command, as the messages name it.
    pub command: &'a str,
    /// Where the bytes come from ("standard input", a local file).
    pub source: &'a str,
    /// The backup the object belongs to, and the config's options (which
    /// say where the journal of temporaries is).
    pub timestamp: &'a str,
    pub options: journal::Options<'a>,
}

/// A stored object.
pub struct Stored {
    /// Its size in bytes.
    pub size: u64,
}

/// Stores `input` as the object `path`, in the steps that keep the old or the
/// new object readable whatever step is interrupted (see `integrity`): data
/// to a temporary (closed before anything else is opened), its record
/// staged, data renamed into place (the commit point: from here on the
/// command succeeds), record renamed into place. A storage that mirrors its
/// changes to a replica does so in each of these calls. The temporary is in
/// the journal of the backup's temporaries until the commit is done.
pub fn store(
    storage: &dyn Storage,
    path: &StoragePath,
    input: Box<dyn Read + Send>,
    write: &Write,
) -> Result<Stored> {
    let fail = |e: Error| {
        e.context(format!(
            "{} of {path} to {} failed",
            write.command,
            storage.describe()
        ))
    };
    let journal = journal::begin(write.options, write.timestamp).map_err(fail)?;
    let mut writer = storage.create(path).map_err(fail)?;
    let entry = stream::upload(input, writer.as_mut(), write.source).map_err(fail)?;
    let size = entry.sum.size;
    // The input may have ended because a signal stopped its producer.
    signals::check().map_err(fail)?;
    pause::pause("data-written");
    let closed = writer.close().map_err(fail)?;
    integrity::stage(storage, path, entry).map_err(fail)?;
    pause::pause("record-staged");
    signals::commit_point(|| commit_closed(closed)).map_err(fail)?;
    pause::pause("data-committed");
    integrity::publish_committed(storage, path);
    journal.done();
    pause::pause("record-committed");
    Ok(Stored { size })
}

/// Which bytes of an object a read wants.
pub enum Part<'a> {
    /// All of them.
    Whole,
    /// These ranges (as given, in order), and where they came from (for
    /// messages).
    Ranges {
        ranges: &'a [Range<u64>],
        origin: &'a str,
    },
}

/// An object opened for a verified read: its reader, the ranges to read and
/// what each block is checked against.
pub struct Verified<'s> {
    storage: &'s dyn Storage,
    reader: Box<dyn ObjectReader>,
    path: StoragePath,
    ranges: Vec<Range<u64>>,
    verify: Verify,
}

/// Opens the object `path` for reading `part` of it. Its records are read
/// first, so that no stream is held while waiting for another (a system's
/// streams may all be taken); then the object, its first read at the first
/// byte wanted; then the record entries that describe it are chosen.
pub fn open_verified<'s>(
    storage: &'s dyn Storage,
    path: &StoragePath,
    part: Part,
) -> Result<Verified<'s>> {
    let first_read = match &part {
        Part::Whole => 0,
        Part::Ranges { ranges, .. } => offsets::merge(ranges).first().map_or(0, |r| r.start),
    };
    let recorded = open_recorded(storage, path, first_read).map_err(|e| match e {
        Opening::Records(e) => e,
        Opening::Object(e) if e.kind() == ErrorKind::NotFound => Error::not_found(format!(
            "backup object {path} not found in {}; check the backup timestamp and that the plugin config points at the storage the backup was written to",
            storage.describe()
        )),
        Opening::Object(e) => e.context(format!("cannot open {path}")),
    })?;
    match part {
        Part::Whole => recorded.whole(),
        Part::Ranges { ranges, origin } => recorded.ranges(ranges, origin),
    }
}

/// Why [`open_recorded`] failed: reading the records, or opening the object
/// (the storage's error as it is, for the caller to name).
pub enum Opening {
    Records(Error),
    Object(Error),
}

/// An object opened with its records read, before the entries that
/// describe it are chosen.
pub struct Recorded<'s> {
    storage: &'s dyn Storage,
    reader: Box<dyn ObjectReader>,
    path: StoragePath,
    entries: Vec<Entry>,
}

/// Reads the records of `path`, then opens it with its first read at
/// `first_read` (the first step of [`open_verified`]).
pub fn open_recorded<'s>(
    storage: &'s dyn Storage,
    path: &StoragePath,
    first_read: u64,
) -> std::result::Result<Recorded<'s>, Opening> {
    let entries = integrity::load(storage, path).map_err(Opening::Records)?;
    let reader = storage.open_at(path, first_read).map_err(Opening::Object)?;
    Ok(Recorded {
        storage,
        reader,
        path: path.clone(),
        entries,
    })
}

impl<'s> Recorded<'s> {
    /// The entries of the object's records (none: it has no record).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// For reading the whole object.
    pub fn whole(mut self) -> Result<Verified<'s>> {
        let verify = expected(self.entries, self.reader.as_mut(), &self.path)?;
        let ranges = std::iter::once(0..self.reader.size()).collect();
        Ok(Verified {
            storage: self.storage,
            reader: self.reader,
            path: self.path,
            ranges,
            verify,
        })
    }

    /// For reading `ranges` of the object (from `origin`, for messages).
    fn ranges(mut self, ranges: &[Range<u64>], origin: &str) -> Result<Verified<'s>> {
        let path = self.path.as_str();
        let reader = self.reader.as_mut();
        if offsets::check_within(ranges, reader.size(), path).is_err() {
            reader.exact_size()?;
        }
        offsets::check_within(ranges, reader.size(), path)
            .map_err(|e| e.context(origin.to_string()))?;
        let merged = offsets::merge(ranges);
        log::debug!(
            "{} ranges ({} reads) from {path}",
            ranges.len(),
            merged.len()
        );
        let verify = subset_expected(self.entries, reader, path)?;
        Ok(Verified {
            storage: self.storage,
            reader: self.reader,
            path: self.path,
            ranges: merged,
            verify,
        })
    }
}

/// What to verify a read against: the entries of the object's records
/// whose size matches it.
fn expected(entries: Vec<Entry>, reader: &mut dyn ObjectReader, path: &str) -> Result<Verify> {
    if entries.is_empty() {
        log::warn!(
            "{path} has no checksum record (not written by this plugin?); restoring it unverified"
        );
        // Nothing confirms the size: ask the storage.
        reader.exact_size()?;
        return Ok(Verify::Nothing);
    }
    let matching = integrity::entries_for(entries, reader, path)?;
    Ok(Verify::Entries(matching))
}

/// [`expected`] for a subset: every block a range touches is verified;
/// records of 0.1.0 have no block digests, so their subsets cannot be.
fn subset_expected(
    entries: Vec<Entry>,
    reader: &mut dyn ObjectReader,
    path: &str,
) -> Result<Verify> {
    Ok(match expected(entries, reader, path)? {
        Verify::Entries(e) if e.iter().any(|e| e.blocks.is_some()) => {
            Verify::Entries(e.into_iter().filter(|e| e.blocks.is_some()).collect())
        }
        Verify::Entries(_) => {
            log::warn!(
                "{path}: its checksum record has no block digests (written by 0.1.0); the subset is restored unverified"
            );
            Verify::Nothing
        }
        Verify::Nothing => Verify::Nothing,
    })
}

impl Verified<'_> {
    /// The object's path.
    pub fn path(&self) -> &StoragePath {
        &self.path
    }

    /// Copies the wanted bytes to `out`, each block checked before it is
    /// written, with up to `read_ahead` reads in flight; returns the bytes
    /// written. A failure is named with `command`, the object and the
    /// storage (a closed output and a damaged object say so themselves).
    pub fn copy_to(self, command: &str, out: File, read_ahead: usize) -> Result<u64> {
        let storage = self.storage;
        let path = self.path.clone();
        self.read_into(out, read_ahead).map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::Integrity => e,
            _ => e.context(format!(
                "{command} of {path} from {} failed",
                storage.describe()
            )),
        })
    }

    /// Copies the wanted bytes to `sink`, each block checked before it is
    /// written, with up to `read_ahead` reads in flight; returns the bytes
    /// written, or the error as the reads and checks give it.
    pub fn read_into(
        mut self,
        sink: impl std::io::Write + Send + 'static,
        read_ahead: usize,
    ) -> Result<u64> {
        stream::download_ahead(
            self.reader.as_mut(),
            &self.ranges,
            sink,
            self.verify,
            &self.path,
            read_ahead,
        )
    }
}
