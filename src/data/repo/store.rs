//! A write: the commit protocol over one or more lanes.

use std::io::Read;

use super::lanes::{join_step, spawn_in_command, Lanes};
use super::Deferred;
use crate::data::integrity::{self, Open, DIGEST_BLOCK};
use crate::data::stream::{self};
use crate::error::{Error, Result};
use crate::process::signals;
use crate::process::{journal, pause};
use crate::storage::{commit_closed, ClosedObject, Storage, StoragePath};

/// What a write is: for its messages and the journal of its temporaries.
pub struct WriteInfo<'a> {
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
    write: &WriteInfo,
) -> Result<Stored> {
    let (stored, deferred) = store_with_lanes(&[storage], path, input, write)?;
    deferred.finish();
    Ok(stored)
}

/// [`store`] over `lanes`, independent connections to one storage (the
/// first is the one every step but the concurrent ones uses). With one
/// lane the input is streamed to the temporary as it comes, the steps one
/// after another. With more, an object that fits one block (the input is
/// read up to a block and a byte first to know) is written by
/// `write_small`: its data's temporary, the lookup of what is at its path,
/// and its record's temporary are written at once, each on its own lane
/// (see `lanes.rs`); a larger one is streamed as with one lane.
///
/// Then, over an existing object, the record is staged and the data
/// committed as in [`store`]. Where nothing was (a first write, as every
/// write of a new backup), both renames run at once (see `integrity`: a
/// first write). The record's rename into place (step 3, whose failure is
/// only a warning) is returned as a [`Deferred`] step, to follow the reply.
pub fn store_with_lanes<'a>(
    lanes: &[&'a dyn Storage],
    path: &StoragePath,
    input: Box<dyn Read + Send>,
    write: &WriteInfo,
) -> Result<(Stored, Deferred<'a>)> {
    let lanes = Lanes::new(lanes)?;
    let storage = lanes.first();
    let fail = |e: Error| write_failed(write, path, storage, e);
    let journal = journal::begin(write.options, write.timestamp).map_err(fail)?;
    if !lanes.several() {
        return store_sequential(&lanes, path, input, write, journal);
    }
    let mut input = input;
    let head = stream::read_head(input.as_mut(), DIGEST_BLOCK + 1, write.source).map_err(fail)?;
    if head.len() > DIGEST_BLOCK {
        let all = Box::new(std::io::Cursor::new(head).chain(input));
        return store_sequential(&lanes, path, all, write, journal);
    }
    // The input may have ended because a signal stopped its producer.
    signals::check().map_err(fail)?;
    let size = head.len() as u64;
    let small = write_small(&lanes, path, &head).map_err(fail)?;
    if small.first {
        return commit_first(storage, path, small, journal, size, write);
    }
    commit_closed(small.record).map_err(fail)?;
    pause::pause("record-staged");
    commit(storage, path, small.data, journal, size, write)
}

/// A write's failure, named with its command, object and storage.
fn write_failed(write: &WriteInfo, path: &StoragePath, storage: &dyn Storage, e: Error) -> Error {
    e.context(format!(
        "{} of {path} to {} failed",
        write.command,
        storage.describe()
    ))
}

/// The steps of [`store`] for an object of any size, one after another on
/// one lane: the data streamed to its temporary, then its record staged
/// with the entry the data gave.
fn store_sequential<'a>(
    lanes: &Lanes<'_, 'a>,
    path: &StoragePath,
    input: Box<dyn Read + Send>,
    write: &WriteInfo,
    journal: journal::Writing,
) -> Result<(Stored, Deferred<'a>)> {
    let storage = lanes.first();
    let fail = |e: Error| write_failed(write, path, storage, e);
    let ((closed, size), (_, record, _)) = lanes
        .single()
        .join(
            |l| stream_data(l, path, input, write.source),
            |l, data| match data {
                Some((_, entry)) => record_temp(l, path, entry),
                None => Err(Error::internal("a record staged before its data")),
            },
        )
        .map(|((closed, entry), record)| ((closed, entry.sum.size), record))
        .map_err(fail)?;
    commit_closed(record).map_err(fail)?;
    pause::pause("record-staged");
    commit(storage, path, closed, journal, size, write)
}

/// A small object's closed temporaries, ready to be renamed into place.
struct Small {
    /// The data's.
    data: Box<dyn ClosedObject>,
    /// The staged record's, with the entries to keep of an earlier one.
    record: Box<dyn ClosedObject>,
    /// Whether nothing was at the object's path (a first write).
    first: bool,
}

/// Writes the small object `data` of `path` to its temporary, looks up what
/// is at its path (and, where an object is, the staged record an
/// interrupted write left beside it) and writes the new record's
/// temporary: at once, each on its own lane, with three lanes; the data on
/// one and the others in order on the second with two; in order on the
/// first after a stream limit.
fn write_small(lanes: &Lanes, path: &StoragePath, data: &[u8]) -> Result<Small> {
    let mut hasher = integrity::Hasher::new();
    hasher.update(data);
    let entry = hasher.finish();
    let entry = &entry;
    let (data, (found, record, written_with)) = lanes.run(path, |l| {
        l.join(
            |l| write_data(l, path, data),
            |l, _| record_temp(l, path, entry),
        )
    })?;
    let carried = carried(&found);
    let first = found.is_none();
    drop(found);
    signals::check()?;
    let record = if carried == written_with {
        record
    } else {
        // An interrupted write left entries to keep: the record is written
        // again with them (holding no stream).
        drop(record);
        integrity::staged_temp(lanes.first(), path, entry, &carried, Open::Waiting)?
    };
    Ok(Small {
        data,
        record,
        first,
    })
}

/// The input streamed to a temporary of `path`, closed; and its entry.
fn stream_data(
    lane: &Lanes,
    path: &StoragePath,
    input: Box<dyn Read + Send>,
    source: &str,
) -> Result<(Box<dyn ClosedObject>, integrity::Entry)> {
    let mut writer = lane.first().create(path, &lane.open().create())?;
    let entry = stream::upload(input, writer.as_mut(), source)?;
    // The input may have ended because a signal stopped its producer.
    signals::check()?;
    pause::pause("data-written");
    Ok((writer.close()?, entry))
}

/// The small object `data` written to a temporary of `path` and closed.
fn write_data(lane: &Lanes, path: &StoragePath, data: &[u8]) -> Result<Box<dyn ClosedObject>> {
    let mut w = lane.first().create(path, &lane.open().create())?;
    for chunk in data.chunks(w.block_size().max(4096)) {
        w.write(chunk)?;
    }
    if !lane.at_once() {
        pause::pause("data-written");
    }
    w.close()
}

/// Looks up what is at `path` and writes the temporary of its staged
/// record: `entry`, with the entries to keep of a staged record an
/// interrupted write left (when the lookup ran first; at once, none, and
/// the caller writes it again if there were some). Returns what the lookup
/// found, the temporary and the entries it was written with.
fn record_temp(
    lanes: &Lanes,
    path: &StoragePath,
    entry: &integrity::Entry,
) -> Result<(Found, Box<dyn ClosedObject>, Vec<integrity::Entry>)> {
    let (found, (temp, carried)) = lanes.join(
        |l| probe(l, path),
        |l, found| {
            let carried = found.map(carried).unwrap_or_default();
            let temp = integrity::staged_temp(l.first(), path, entry, &carried, l.open())?;
            Ok((temp, carried))
        },
    )?;
    Ok((found, temp, carried))
}

/// What is at an object's path: None for nothing; else the staged record
/// beside it, if any.
type Found = Option<integrity::Record>;

/// What is at the object `path` (see [`Found`]). Only steps at once look
/// whether anything is there (for a first write's renames at once); one
/// after another, the write is an overwrite. A lookup that fails counts
/// as an object there (the careful steps follow).
fn probe(lane: &Lanes, path: &StoragePath) -> Result<Found> {
    let storage = lane.first();
    if lane.at_once() {
        match storage.exists(path) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => log::debug!(
                "{path}: cannot tell whether it exists ({e}); writing it as an overwrite"
            ),
        }
    }
    integrity::read_staged(storage, path, lane.open()).map(Some)
}

/// The entries of an earlier staged record that a new one keeps.
fn carried(found: &Found) -> Vec<integrity::Entry> {
    let earlier = found.as_ref().and_then(|r| r.entries.clone());
    integrity::carried_over(earlier)
}

/// A first write's commit (see `integrity`): the data renamed into place
/// and its record staged at once, together the commit point. The command
/// succeeds when both were; when only the data's was, the data is removed
/// again, so that no object is left that no record describes. Step 3
/// follows as in [`commit`].
fn commit_first<'a>(
    storage: &'a dyn Storage,
    path: &StoragePath,
    small: Small,
    journal: journal::Writing,
    size: u64,
    write: &WriteInfo,
) -> Result<(Stored, Deferred<'a>)> {
    pause::pause("record-written");
    let Small { data, record, .. } = small;
    let both = || {
        let (data, record) = std::thread::scope(|s| {
            let data = spawn_in_command(s, || {
                pause::pause("data-renaming");
                commit_closed(data)
            });
            let record = spawn_in_command(s, || {
                pause::pause("record-renaming");
                commit_closed(record)
            });
            (join_step(data), join_step(record))
        });
        match (data, record) {
            (Ok(()), Err(e)) => Err(match storage.delete(path) {
                Ok(_) => e,
                Err(undo) => e.context(format!(
                    "{path} is in place but its checksum record is not, and removing it failed ({undo}); restores read it unverified"
                )),
            }),
            // A staged record whose data is not in place describes nothing.
            (data, _) => data,
        }
    };
    signals::commit_point(both).map_err(|e| write_failed(write, path, storage, e))?;
    pause::pause("data-committed");
    Ok((Stored { size }, published(storage, path, journal)))
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
    write: &WriteInfo,
) -> Result<(Stored, Deferred<'a>)> {
    signals::commit_point(|| commit_closed(closed))
        .map_err(|e| write_failed(write, path, storage, e))?;
    pause::pause("data-committed");
    Ok((Stored { size }, published(storage, path, journal)))
}

/// Step 3, to follow the reply: the record renamed into place, and the
/// journal of temporaries told the write is done.
fn published<'a>(
    storage: &'a dyn Storage,
    path: &StoragePath,
    journal: journal::Writing,
) -> Deferred<'a> {
    let path = path.clone();
    Deferred::with(move || {
        integrity::publish_committed(storage, &path);
        journal.done();
        pause::pause("record-committed");
    })
}
