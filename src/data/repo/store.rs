//! A write: the commit protocol over one or more lanes.

use std::io::Read;

use super::{first_lane, join_step, spawn_in_command, spawn_step, Deferred};
use crate::data::integrity::{self, Open, DIGEST_BLOCK};
use crate::data::stream::{self};
use crate::error::{Error, ErrorKind, Result};
use crate::process::signals;
use crate::process::{journal, pause};
use crate::storage::{commit_closed, ClosedObject, CreateOptions, Storage, StoragePath};

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
/// first is the one every step but the concurrent ones uses). With one lane
/// it is [`store`]'s sequential path. With more, an object that fits one
/// block (the input is read up to a block and a byte first to know) is
/// written in fewer round trips one after another: its data's temporary,
/// the lookup of what is at its path, and its record's temporary are
/// written at once, each on its own lane, opened only if a stream is free
/// right then; a stream limit lets go of everything and takes the
/// sequential path, which waits holding nothing.
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
    match write_small(lanes, path, &head).map_err(fail)? {
        Some(small) if small.first => commit_first(storage, path, small, journal, size, write),
        Some(small) => {
            commit_closed(small.record).map_err(fail)?;
            pause::pause("record-staged");
            commit(storage, path, small.data, journal, size, write)
        }
        None => {
            log::debug!("{path}: a stream limit reached; writing it one step after another");
            let all = Box::new(std::io::Cursor::new(head));
            store_sequential(storage, path, all, write, journal)
        }
    }
}

/// A write's failure, named with its command, object and storage.
fn write_failed(write: &WriteInfo, path: &StoragePath, storage: &dyn Storage, e: Error) -> Error {
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
    write: &WriteInfo,
    journal: journal::Writing,
) -> Result<(Stored, Deferred<'a>)> {
    let fail = |e: Error| write_failed(write, path, storage, e);
    let mut writer = storage
        .create(path, &CreateOptions::default())
        .map_err(fail)?;
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
/// temporary, each on its own lane at once (see [`store_with_lanes`]).
/// None when a lane found every stream taken (everything let go).
fn write_small(lanes: &[&dyn Storage], path: &StoragePath, data: &[u8]) -> Result<Option<Small>> {
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
            let found = spawn_step(s, || probe(lanes[1], path));
            let temp = spawn_step(s, || {
                integrity::staged_temp(record_lane, path, entry, &[], Open::Now)
            });
            match (join_step(found), join_step(temp)) {
                (Ok(found), Ok(temp)) => Ok((found, temp, Vec::new())),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        } else {
            join_step(spawn_step(s, || {
                let found = probe(record_lane, path)?;
                let carried = carried(&found);
                let temp = integrity::staged_temp(record_lane, path, entry, &carried, Open::Now)?;
                Ok((found, temp, carried))
            }))
        };
        (join_step(data_temp), record)
    });
    let busy = |e: &Error| e.kind() == ErrorKind::StreamLimit;
    if data_temp.as_ref().err().is_some_and(busy) || record.as_ref().err().is_some_and(busy) {
        return Ok(None);
    }
    let data_temp = data_temp?;
    let (found, mut record_temp, written_with) = record?;
    let carried = carried(&found);
    let first = found.is_none();
    drop(found);
    signals::check()?;
    if carried != written_with {
        // An interrupted write left entries to keep: the record is written
        // again with them (holding no stream).
        drop(record_temp);
        record_temp = integrity::staged_temp(lanes[0], path, entry, &carried, Open::Waiting)?;
    }
    Ok(Some(Small {
        data: data_temp,
        record: record_temp,
        first,
    }))
}
/// What is at the object `path`: None for nothing (a definite "no such
/// object"); else the staged record beside it, if any. A lookup that fails
/// counts as an object there (the careful steps follow).
fn probe(storage: &dyn Storage, path: &StoragePath) -> Result<Option<integrity::Record>> {
    match storage.exists(path) {
        Ok(false) => return Ok(None),
        Ok(true) => {}
        Err(e) => {
            log::debug!("{path}: cannot tell whether it exists ({e}); writing it as an overwrite")
        }
    }
    integrity::read_staged(storage, path, Open::Now).map(Some)
}

/// The entries of an earlier staged record that a new one keeps.
fn carried(found: &Option<integrity::Record>) -> Vec<integrity::Entry> {
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
