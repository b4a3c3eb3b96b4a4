//! Checking blocks against the record entries, and the errors that say an
//! object is damaged.

use xxhash_rust::xxh3::Xxh3;

use crate::data::integrity::{Checksum, Entry, DIGEST_BLOCK};
use crate::error::{Error, Result};

pub(super) fn damaged(object: &str, at: u64, expected_end: u64) -> Error {
    Error::integrity(format!(
        "{object} ended at byte {at} but {expected_end} bytes were expected; the stored object is damaged"
    ))
}

fn mismatch(object: &str, at: u64) -> Error {
    Error::integrity(format!(
        "{object} does not match the checksum recorded at backup time (the block at byte {at} differs); the stored copy is damaged, restore it from another copy"
    ))
}

/// Checks blocks against the candidate entries, in order.
pub(super) struct Checker {
    /// Entries with block digests still consistent with every block read.
    pub(super) blocks: Vec<Entry>,
    /// v1 entries and the running whole-object digest they need.
    pub(super) whole: Vec<Checksum>,
    pub(super) hasher: Xxh3,
    pub(super) size: u64,
}

impl Checker {
    /// The checker of what `verify` asks for (none for nothing).
    pub(super) fn of(verify: super::Verify) -> Option<Checker> {
        match verify {
            super::Verify::Entries(e) => Some(Checker::new(e)),
            super::Verify::Nothing => None,
        }
    }

    pub(super) fn new(entries: Vec<Entry>) -> Checker {
        let (blocks, whole): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| e.blocks.is_some());
        Checker {
            blocks,
            whole: whole.into_iter().map(|e| e.sum).collect(),
            hasher: Xxh3::new(),
            size: 0,
        }
    }

    /// Checks the block `data` at `offset`, whose XXH3-64 is `digest` (when
    /// entries with block digests remain). Ok(true): verified now;
    /// Ok(false): only v1 entries remain, so it may only be output once the
    /// whole digest matched. An error, with nothing changed, when no entry
    /// matches.
    pub(super) fn check(
        &mut self,
        offset: u64,
        digest: Option<u64>,
        data: &[u8],
        object: &str,
    ) -> Result<bool> {
        let index = (offset / DIGEST_BLOCK as u64) as usize;
        let matches = |e: &Entry| digest.is_some_and(|d| e.block_digest_matches(index, d));
        if self.whole.is_empty() && !self.blocks.iter().any(matches) {
            return Err(mismatch(object, offset));
        }
        self.blocks.retain(matches);
        if !self.whole.is_empty() {
            self.hasher.update(data);
            self.size += data.len() as u64;
        }
        Ok(!self.blocks.is_empty())
    }

    /// Whether the whole-object digest matched a v1 entry.
    pub(super) fn whole_matches(&self) -> bool {
        let sum = Checksum {
            size: self.size,
            digest: self.hasher.digest128(),
        };
        self.whole.contains(&sum)
    }
}
