//! The repository: stored objects as the commands see them. A write runs
//! the whole commit protocol of [`crate::data::integrity`] ([`store`]); a
//! read chooses the object's record entries, reads ahead and checks every
//! block before it is output ([`open_verified`], then
//! [`Verified::copy_to`]). Commands only connect standard input and output
//! and local files to these.

use std::fs::File;
use std::io::Read;
use std::ops::Range;

use crate::data::integrity::{self, Entry, Open, DIGEST_BLOCK};
use crate::data::stream::{self, Verify};
use crate::error::{Error, ErrorKind, Result};
use crate::process::signals;
use crate::process::{journal, pause};
use crate::protocol::offsets;
use crate::storage::{commit_closed, ClosedObject, ObjectReader, Storage, StoragePath};

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
/// command succeeds), record renamed into place. When the storage mirrors
/// writes to a replica (`replication: on`), the replica gets the object, in
/// the same steps, before the primary's commit, so that a failed replica
/// copy leaves the primary's old object. The temporary is in the journal of
/// the backup's temporaries until the commit is done.
pub fn store(
    storage: &dyn Storage,
    path: &StoragePath,
    input: Box<dyn Read + Send>,
    write: &Write,
) -> Result<Stored> {
    let (stored, deferred) = store_with_lanes(&[storage], path, input, write)?;
    deferred.finish();
    Ok(stored)
}

/// [`store`] over `lanes`, independent connections to one storage (the
/// first is the one every step but the concurrent ones uses). With one lane
/// it is [`store`]'s sequential path. With more, an object that fits one
/// block (the input is read up to a block and a byte first to know) is
/// written in fewer round trips one after another: its data's temporary,
/// the lookup of a staged record left by an interrupted write, and the new
/// staged record's temporary are written at once, each on its own lane,
/// opened only if a stream is free right then; a stream limit lets go of
/// everything and takes the sequential path, which waits holding nothing.
/// Then the record is staged and the data committed as in [`store`]. The
/// record's rename into place (step 3, whose failure is only a warning) is
/// returned as a [`Deferred`] step, to follow the reply.
pub fn store_with_lanes<'a>(
    lanes: &[&'a dyn Storage],
    path: &StoragePath,
    input: Box<dyn Read + Send>,
    write: &Write,
) -> Result<(Stored, Deferred<'a>)> {
    let storage = first_lane(lanes)?;
    let fail = |e: Error| write_failed(write, path, storage, e);
    let journal = journal::begin(write.options, write.timestamp).map_err(fail)?;
    if lanes.len() < 2 {
        return store_sequential(storage, path, input, write, journal);
    }
    let mut input = input;
    let head = stream::read_head(input.as_mut(), DIGEST_BLOCK + 1, write.source).map_err(fail)?;
    if head.len() > DIGEST_BLOCK {
        let all = Box::new(std::io::Cursor::new(head).chain(input));
        return store_sequential(storage, path, all, write, journal);
    }
    // The input may have ended because a signal stopped its producer.
    signals::check().map_err(fail)?;
    let size = head.len() as u64;
    match stage_small(lanes, path, &head).map_err(fail)? {
        Some(closed) => commit(storage, path, closed, journal, size, write),
        None => {
            log::debug!("{path}: a stream limit reached; writing it one step after another");
            let all = Box::new(std::io::Cursor::new(head));
            store_sequential(storage, path, all, write, journal)
        }
    }
}

/// The first of `lanes`: the storage itself.
fn first_lane<'a>(lanes: &[&'a dyn Storage]) -> Result<&'a dyn Storage> {
    lanes
        .first()
        .copied()
        .ok_or_else(|| Error::invalid("no connection to the storage was given"))
}

/// A write's failure, named with its command, object and storage.
fn write_failed(write: &Write, path: &StoragePath, storage: &dyn Storage, e: Error) -> Error {
    e.context(format!(
        "{} of {path} to {} failed",
        write.command,
        storage.describe()
    ))
}

/// The steps of [`store`], one after another.
fn store_sequential<'a>(
    storage: &'a dyn Storage,
    path: &StoragePath,
    input: Box<dyn Read + Send>,
    write: &Write,
    journal: journal::Writing,
) -> Result<(Stored, Deferred<'a>)> {
    let fail = |e: Error| write_failed(write, path, storage, e);
    let mut writer = storage.create(path).map_err(fail)?;
    let entry = stream::upload(input, writer.as_mut(), write.source).map_err(fail)?;
    let size = entry.sum.size;
    // The input may have ended because a signal stopped its producer.
    signals::check().map_err(fail)?;
    pause::pause("data-written");
    let closed = writer.close().map_err(fail)?;
    integrity::stage(storage, path, entry).map_err(fail)?;
    pause::pause("record-staged");
    commit(storage, path, closed, journal, size, write)
}

/// Writes the small object `data` of `path` to its temporary, looks up an
/// earlier staged record and writes the new one's temporary, each on its
/// own lane at once (see [`store_with_lanes`]); then stages the record.
/// Returns the data's closed temporary, or None when a lane found every
/// stream taken (everything let go).
fn stage_small(
    lanes: &[&dyn Storage],
    path: &StoragePath,
    data: &[u8],
) -> Result<Option<Box<dyn ClosedObject>>> {
    let mut hasher = integrity::Hasher::new();
    hasher.update(data);
    let entry = hasher.finish();
    let entry = &entry;
    let record_lane = lanes[lanes.len().min(3) - 1];
    let (data_temp, record) = std::thread::scope(|s| {
        let data_temp = spawn_step(s, || {
            integrity::write_closed(lanes[0], path, data, Open::Now)
        });
        let record = if lanes.len() >= 3 {
            // The record written as if there were no earlier one (as usual).
            let earlier = spawn_step(s, || integrity::read_staged(lanes[1], path, Open::Now));
            let temp = spawn_step(s, || {
                integrity::staged_temp(record_lane, path, entry, &[], Open::Now)
            });
            match (join_step(earlier), join_step(temp)) {
                (Ok(earlier), Ok(temp)) => Ok((earlier, temp, Vec::new())),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        } else {
            join_step(spawn_step(s, || {
                let earlier = integrity::read_staged(record_lane, path, Open::Now)?;
                let carried = integrity::carried_over(earlier.entries.clone());
                let temp = integrity::staged_temp(record_lane, path, entry, &carried, Open::Now)?;
                Ok((earlier, temp, carried))
            }))
        };
        (join_step(data_temp), record)
    });
    let busy = |e: &Error| e.kind() == ErrorKind::StreamLimit;
    if data_temp.as_ref().err().is_some_and(busy) || record.as_ref().err().is_some_and(busy) {
        return Ok(None);
    }
    let data_temp = data_temp?;
    let (earlier, mut record_temp, written_with) = record?;
    let carried = integrity::carried_over(earlier.entries);
    drop(earlier.reader);
    signals::check()?;
    if carried != written_with {
        // An interrupted write left entries to keep: the record is written
        // again with them (holding no stream).
        drop(record_temp);
        record_temp = integrity::staged_temp(lanes[0], path, entry, &carried, Open::Waiting)?;
    }
    commit_closed(record_temp)?;
    pause::pause("record-staged");
    Ok(Some(data_temp))
}

/// Runs `step` on its own thread of `scope`, unless a signal arrived (each
/// concurrent step of a request starts here).
fn spawn_step<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    step: impl FnOnce() -> Result<T> + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, Result<T>> {
    // The step is part of the calling command (a broker request's).
    let command = crate::process::scope::Scope::current();
    scope.spawn(move || {
        let _in = command.enter();
        signals::check()?;
        step()
    })
}

/// The result of a step started with [`spawn_step`].
fn join_step<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(Error::io("a step of the request stopped unexpectedly")))
}

/// Step 2, the commit point, and step 3 deferred: the data renamed into
/// place, then (in the returned [`Deferred`]) the record and the journal
/// of temporaries told the write is done.
fn commit<'a>(
    storage: &'a dyn Storage,
    path: &StoragePath,
    closed: Box<dyn ClosedObject>,
    journal: journal::Writing,
    size: u64,
    write: &Write,
) -> Result<(Stored, Deferred<'a>)> {
    signals::commit_point(|| commit_closed(closed))
        .map_err(|e| write_failed(write, path, storage, e))?;
    pause::pause("data-committed");
    let path = path.clone();
    let publish = move || {
        integrity::publish_committed(storage, &path);
        journal.done();
        pause::pause("record-committed");
    };
    Ok((Stored { size }, Deferred::with(publish)))
}

/// Steps of a request that can follow its reply: a write's record renamed
/// into place after its commit, a read's files closed after its last byte.
/// [`Deferred::finish`] runs them; so does dropping it.
#[must_use = "dropping it runs the deferred steps at once"]
pub struct Deferred<'a> {
    steps: Vec<Box<dyn FnOnce() + Send + 'a>>,
}

impl<'a> Deferred<'a> {
    fn with(step: impl FnOnce() + Send + 'a) -> Self {
        Deferred {
            steps: vec![Box::new(step)],
        }
    }

    /// Runs the deferred steps.
    pub fn finish(self) {}

    fn run(&mut self) {
        for step in self.steps.drain(..) {
            step();
        }
    }
}

impl Drop for Deferred<'_> {
    fn drop(&mut self) {
        self.run();
    }
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
    /// Files still open that the read no longer needs (closed after it).
    held: Vec<Box<dyn ObjectReader>>,
    path: StoragePath,
    ranges: Vec<Range<u64>>,
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
    let storage = first_lane(lanes)?;
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

/// [`open_recorded`] over `lanes`, independent connections to one storage.
/// With one lane the steps run one after another, each file closed before
/// the next is opened. With more, the record and the object (its first
/// block read) are opened at once, and with three the staged record too,
/// each on its own lane and only if a stream is free right then; their
/// files stay open until the read is done. A stream limit lets go of
/// everything and takes the sequential path, which waits holding nothing.
pub fn open_recorded_with_lanes<'s>(
    lanes: &[&'s dyn Storage],
    path: &StoragePath,
    first_read: u64,
) -> std::result::Result<Recorded<'s>, Opening> {
    let storage = first_lane(lanes).map_err(Opening::Records)?;
    if lanes.len() >= 2 {
        match open_at_once(lanes, path, first_read) {
            Some(opened) => return opened,
            None => {
                log::debug!("{path}: a stream limit reached; reading it one step after another")
            }
        }
    }
    let published = integrity::read_published(storage, path, Open::Waiting)
        .map_err(Opening::Records)?
        .entries;
    let small = first_read < DIGEST_BLOCK as u64
        && published
            .iter()
            .flatten()
            .any(|e| e.sum.size <= DIGEST_BLOCK as u64);
    if small {
        let reader = storage.open_at(path, first_read).map_err(Opening::Object)?;
        match in_memory_if_described(reader, published.as_deref(), path) {
            Ok(recorded) => return Ok(recorded.on(storage, published.unwrap_or_default())),
            // Closed before the staged record is opened.
            Err(reader) => drop(reader),
        }
    }
    with_staged(storage, path, first_read, published)
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
    let reader = storage.open_at(path, first_read).map_err(Opening::Object)?;
    Ok(Recorded {
        storage,
        reader,
        held: Vec::new(),
        path: path.clone(),
        entries,
    })
}

/// The records and the object opened at once (see
/// [`open_recorded_with_lanes`]); None when a lane found every stream taken
/// (everything let go).
fn open_at_once<'s>(
    lanes: &[&'s dyn Storage],
    path: &StoragePath,
    first_read: u64,
) -> Option<std::result::Result<Recorded<'s>, Opening>> {
    let (published, object, staged) = std::thread::scope(|s| {
        let published = spawn_step(s, || integrity::read_published(lanes[0], path, Open::Now));
        let object = spawn_step(s, || lanes[1].open_now(path, first_read));
        let staged = (lanes.len() >= 3)
            .then(|| spawn_step(s, || integrity::read_staged(lanes[2], path, Open::Now)));
        (
            join_step(published),
            join_step(object),
            staged.map(join_step),
        )
    });
    let busy = |e: &Error| e.kind() == ErrorKind::StreamLimit;
    if published.as_ref().err().is_some_and(busy)
        || object.as_ref().err().is_some_and(busy)
        || staged
            .as_ref()
            .and_then(|r| r.as_ref().err())
            .is_some_and(busy)
    {
        return None;
    }
    Some(recorded_at_once(
        lanes[0], path, first_read, published, object, staged,
    ))
}

/// [`open_at_once`] with its steps done.
fn recorded_at_once<'s>(
    storage: &'s dyn Storage,
    path: &StoragePath,
    first_read: u64,
    published: Result<integrity::Record>,
    object: Result<Box<dyn ObjectReader>>,
    staged: Option<Result<integrity::Record>>,
) -> std::result::Result<Recorded<'s>, Opening> {
    let published = published.map_err(Opening::Records)?;
    let staged = staged.transpose().map_err(Opening::Records)?;
    let reader = object.map_err(Opening::Object)?;
    let mut held: Vec<Box<dyn ObjectReader>> = published.reader.into_iter().collect();
    let Some(staged) = staged else {
        // Two lanes: the staged record only if the record does not describe
        // the object (everything closed first).
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
            bytes: self.bytes,
            block: self.block,
        });
        Recorded {
            storage,
            reader,
            held: vec![self.opened],
            path: self.path,
            entries,
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
    match crate::storage::read_to_end(reader.as_mut()) {
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
    bytes: Vec<u8>,
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
        let verify = subset_expected(self.entries, reader, path)?;
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
