//! A verified read: records chosen, the object opened and every block checked, over one or more lanes.

use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use super::lanes::Lanes;
use super::Deferred;
use crate::data::integrity::{self, Entry, Open, DIGEST_BLOCK};
use crate::data::stream::{self, Verify};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::offsets;
use crate::storage::{ObjectReader, OpenOptions, Storage, StoragePath};

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
    /// Files still open that the read no longer needs (closed after it).
    held: Vec<Box<dyn ObjectReader>>,
    path: StoragePath,
    ranges: Vec<Range<u64>>,
    /// What each block is checked against: nothing for an object read
    /// whole at its opening and checked then (see [`Recorded`]).
    verify: Verify,
}

/// Opens the object `path` for reading `part` of it. Its record is read
/// first, so that no stream is held while waiting for another (a system's
/// streams may all be taken); then the object, its first read at the first
/// byte wanted; then the record entries that describe it are chosen. The
/// staged record (left by a write interrupted after its commit) is read
/// only when the record does not describe the object.
pub fn open_verified<'s>(
    storage: &'s dyn Storage,
    path: &StoragePath,
    part: Part,
) -> Result<Verified<'s>> {
    open_verified_with_lanes(&[storage], path, part)
}

/// [`open_verified`], then [`Verified::copy_to`] `out`, over `lanes`
/// (independent connections to one storage; see [`open_recorded_with_lanes`]).
/// The files still open after the last byte are closed by the returned
/// [`Deferred`], which can follow the reply.
pub fn restore_with_lanes<'s>(
    lanes: &[&'s dyn Storage],
    path: &StoragePath,
    part: Part,
    command: &str,
    out: File,
    read_ahead: usize,
) -> Result<(u64, Deferred<'s>)> {
    open_verified_with_lanes(lanes, path, part)?.copy_deferred(command, out, read_ahead)
}

/// [`open_verified`] over `lanes`.
fn open_verified_with_lanes<'s>(
    lanes: &[&'s dyn Storage],
    path: &StoragePath,
    part: Part,
) -> Result<Verified<'s>> {
    let storage = Lanes::new(lanes)?.first();
    let first_read = match &part {
        Part::Whole => 0,
        Part::Ranges { ranges, .. } => offsets::merge(ranges).first().map_or(0, |r| r.start),
    };
    let recorded = open_recorded_with_lanes(lanes, path, first_read).map_err(|e| match e {
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
    held: Vec<Box<dyn ObjectReader>>,
    path: StoragePath,
    entries: Vec<Entry>,
    /// The reader holds the whole object, read at its opening, and an
    /// entry of its records describes it (already checked).
    checked: bool,
}

/// Reads the records of `path`, then opens it with its first read at
/// `first_read` (the first step of [`open_verified`]).
pub fn open_recorded<'s>(
    storage: &'s dyn Storage,
    path: &StoragePath,
    first_read: u64,
) -> std::result::Result<Recorded<'s>, Opening> {
    open_recorded_with_lanes(&[storage], path, first_read)
}

/// [`open_recorded`] over `lanes`, independent connections to one storage
/// (see `lanes.rs`). With one lane the steps run one after another, each
/// file closed before the next is opened: the record; the staged record if
/// the record cannot describe an object read whole at its opening; the
/// object. With two or more (two are used), the records on one lane and the
/// object (its first block read) on another at once; their files stay
/// open until the read is done. Either way, the staged record is read
/// after all (everything closed first) when the record does not describe
/// the object.
pub fn open_recorded_with_lanes<'s>(
    lanes: &[&'s dyn Storage],
    path: &StoragePath,
    first_read: u64,
) -> std::result::Result<Recorded<'s>, Opening> {
    let lanes = Lanes::new(lanes).map_err(Opening::Records)?;
    let opened = lanes.run(path, |l| {
        let (records, object) = l.join(
            |l| read_records(l, path, first_read),
            |l, _| l.kept(l.first().open(path, &l.open().at(first_read))),
        )?;
        Ok(recorded(l.first(), path, first_read, records, object))
    });
    opened.unwrap_or_else(|e| Err(Opening::Records(e)))
}

/// The records of `path`: the record, and the staged record too when the
/// record cannot describe an object that the opening read at `first_read`
/// reads whole.
fn read_records(
    lane: &Lanes,
    path: &StoragePath,
    first_read: u64,
) -> Result<(integrity::Record, Option<integrity::Record>)> {
    let published = integrity::read_published(lane.first(), path, lane.open())?;
    if may_be_read_whole(published.entries.as_deref(), first_read) {
        return Ok((published, None));
    }
    let staged = integrity::read_staged(lane.first(), path, lane.open())?;
    Ok((published, Some(staged)))
}

/// The rest of [`open_recorded_with_lanes`] when the record does not
/// describe the object: the staged record read, then the object opened.
fn with_staged<'s>(
    storage: &'s dyn Storage,
    path: &StoragePath,
    first_read: u64,
    published: Option<Vec<Entry>>,
) -> std::result::Result<Recorded<'s>, Opening> {
    let mut entries = published.unwrap_or_default();
    let staged = integrity::read_staged(storage, path, Open::Waiting).map_err(Opening::Records)?;
    entries.extend(staged.entries.unwrap_or_default());
    let reader = storage
        .open(path, &OpenOptions::at(first_read))
        .map_err(Opening::Object)?;
    Ok(Recorded {
        storage,
        reader,
        held: Vec::new(),
        path: path.clone(),
        entries,
        checked: false,
    })
}

/// Whether the record `entries` may describe an object that its opening
/// read, at `first_read`, reads whole: an entry of one block at most.
fn may_be_read_whole(entries: Option<&[Entry]>, first_read: u64) -> bool {
    first_read < DIGEST_BLOCK as u64
        && entries
            .into_iter()
            .flatten()
            .any(|e| e.sum.size <= DIGEST_BLOCK as u64)
}

/// [`open_recorded_with_lanes`] with its steps done: the records read and
/// the object opened.
fn recorded<'s>(
    storage: &'s dyn Storage,
    path: &StoragePath,
    first_read: u64,
    (published, staged): (integrity::Record, Option<integrity::Record>),
    object: Result<Box<dyn ObjectReader>>,
) -> std::result::Result<Recorded<'s>, Opening> {
    let reader = object.map_err(Opening::Object)?;
    let mut held: Vec<Box<dyn ObjectReader>> = published.reader.into_iter().collect();
    let Some(staged) = staged else {
        // The staged record only if the record does not describe the object
        // (everything closed first).
        let recorded = match in_memory_if_described(reader, published.entries.as_deref(), path) {
            Ok(recorded) => recorded,
            Err(reader) => {
                drop((reader, held));
                return with_staged(storage, path, first_read, published.entries);
            }
        };
        let mut recorded = recorded.on(storage, published.entries.unwrap_or_default());
        recorded.held.append(&mut held);
        return Ok(recorded);
    };
    held.extend(staged.reader);
    let mut entries = published.entries.unwrap_or_default();
    entries.extend(staged.entries.unwrap_or_default());
    Ok(Recorded {
        storage,
        reader,
        held,
        path: path.clone(),
        entries,
        checked: false,
    })
}

/// An object read whole at its opening, its reader held until the read is
/// done; [`InMemory::on`] makes it [`Recorded`].
struct InMemory {
    bytes: Vec<u8>,
    block: usize,
    opened: Box<dyn ObjectReader>,
    path: StoragePath,
}

impl InMemory {
    fn on(self, storage: &dyn Storage, entries: Vec<Entry>) -> Recorded<'_> {
        let reader = Box::new(Bytes {
            bytes: Arc::new(self.bytes),
            block: self.block,
        });
        Recorded {
            storage,
            reader,
            held: vec![self.opened],
            path: self.path,
            entries,
            checked: true,
        }
    }
}

/// The object `reader` opened, read whole from the block its opening read
/// (no further call), when it fits that block and an entry of `entries`
/// describes it; else the reader back.
fn in_memory_if_described(
    mut reader: Box<dyn ObjectReader>,
    entries: Option<&[Entry]>,
    path: &StoragePath,
) -> std::result::Result<InMemory, Box<dyn ObjectReader>> {
    let Some(entries) = entries else {
        return Err(reader);
    };
    if reader.size() > DIGEST_BLOCK as u64 {
        return Err(reader);
    }
    let bytes = match reader.take_whole() {
        Some(bytes) => Ok(bytes),
        None => crate::storage::read_to_end(reader.as_mut()),
    };
    match bytes {
        Ok(bytes) if integrity::describes(entries, &bytes) => Ok(InMemory {
            bytes,
            block: reader.block_size(),
            opened: reader,
            path: path.clone(),
        }),
        _ => Err(reader),
    }
}

/// An object's bytes in memory, read as the storage's object.
struct Bytes {
    bytes: Arc<Vec<u8>>,
    block: usize,
}

impl ObjectReader for Bytes {
    fn block_size(&self) -> usize {
        self.block
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - from);
        buf[..n].copy_from_slice(&self.bytes[from..from + n]);
        Ok(n)
    }

    fn whole(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

impl<'s> Recorded<'s> {
    /// The entries of the object's records (none: it has no record); those
    /// of the staged record only when the record did not describe the
    /// object.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// For reading the whole object.
    pub fn whole(mut self) -> Result<Verified<'s>> {
        let verify = match self.checked {
            true => Verify::Nothing,
            false => expected(self.entries, self.reader.as_mut(), &self.path)?,
        };
        let ranges = std::iter::once(0..self.reader.size()).collect();
        Ok(Verified {
            storage: self.storage,
            reader: self.reader,
            held: self.held,
            path: self.path,
            ranges,
            verify,
        })
    }

    /// For reading `ranges` of the object (from `origin`, for messages).
    fn ranges(mut self, ranges: &[Range<u64>], origin: &str) -> Result<Verified<'s>> {
        let path = &self.path;
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
        let verify = match self.checked {
            true => Verify::Nothing,
            false => subset_expected(self.entries, reader, path)?,
        };
        Ok(Verified {
            storage: self.storage,
            reader: self.reader,
            held: self.held,
            path: self.path,
            ranges: merged,
            verify,
        })
    }
}

/// What to verify a read against: the entries of the object's records
/// whose size matches it.
fn expected(
    entries: Vec<Entry>,
    reader: &mut dyn ObjectReader,
    path: &StoragePath,
) -> Result<Verify> {
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
    path: &StoragePath,
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

impl<'s> Verified<'s> {
    /// The object's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Copies the wanted bytes to `out`, each block checked before it is
    /// written, with up to `read_ahead` reads in flight; returns the bytes
    /// written. A failure is named with `command`, the object and the
    /// storage (a closed output and a damaged object say so themselves).
    pub fn copy_to(self, command: &str, out: File, read_ahead: usize) -> Result<u64> {
        let (n, deferred) = self.copy_deferred(command, out, read_ahead)?;
        deferred.finish();
        Ok(n)
    }

    /// [`Verified::copy_to`], the files closed by the returned [`Deferred`].
    fn copy_deferred(
        self,
        command: &str,
        out: File,
        read_ahead: usize,
    ) -> Result<(u64, Deferred<'s>)> {
        let storage = self.storage;
        let path = self.path.clone();
        let (n, files) = self.read_keeping(out, read_ahead);
        let n = n.map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::Integrity => e,
            _ => e.context(format!(
                "{command} of {path} from {} failed",
                storage.describe()
            )),
        })?;
        Ok((n, Deferred::with(move || drop(files))))
    }

    /// Copies the wanted bytes to `sink`, each block checked before it is
    /// written, with up to `read_ahead` reads in flight; returns the bytes
    /// written, or the error as the reads and checks give it.
    pub fn read_into(
        self,
        sink: impl std::io::Write + Send + 'static,
        read_ahead: usize,
    ) -> Result<u64> {
        self.read_keeping(sink, read_ahead).0
    }

    /// [`Verified::read_into`], returning the files it read still open.
    fn read_keeping(
        mut self,
        sink: impl std::io::Write + Send + 'static,
        read_ahead: usize,
    ) -> (Result<u64>, Vec<Box<dyn ObjectReader>>) {
        let n = stream::download_ahead(
            self.reader.as_mut(),
            &self.ranges,
            sink,
            self.verify,
            &self.path,
            read_ahead,
        );
        self.held.push(self.reader);
        (n, self.held)
    }
}
