//! A write: the commit protocol over one or more lanes.

use std::io::Read;

use super::{first_lane, join_step, spawn_step, Deferred};
use crate::data::integrity::{self, Open, DIGEST_BLOCK};
use crate::data::stream::{self};
use crate::error::{Error, ErrorKind, Result};
use crate::process::signals;
use crate::process::{journal, pause};
use crate::storage::{commit_closed, ClosedObject, Storage, StoragePath};

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
