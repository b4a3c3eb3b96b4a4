//! Checksum records of stored objects, and how an overwrite keeps them
//! consistent with the data.
//!
//! Every object written by the plugin gets a small companion record
//! `.<name>.checksum` in the same folder, holding the object's size, its
//! XXH3-128 digest, and an XXH3-64 digest of every [`DIGEST_BLOCK`] bytes.
//! Restores verify each block before it is written out, so no unverified
//! byte reaches gprestore; `restore_data_subset` verifies every block its
//! ranges touch. Records written by 0.1.0 (format v1: size and whole-object
//! digest only) are still read: such objects restore as they did then (the
//! last block is held back until the whole digest matched). An object with
//! no record (written by another tool) restores with a logged warning.
//!
//! # Overwrites keep the old or the new object, never neither
//!
//! A write commits in three atomic steps (each a rename on the storage):
//! 1. the new record is staged as `.<name>.checksum.next` (together with the
//!    entries an interrupted earlier write left there);
//! 2. the new data is renamed over `<name>`;
//! 3. `.<name>.checksum.next` is renamed over `.<name>.checksum`.
//!
//! [`crate::data::repo::store`] runs these steps; with `replication: on` the
//! ddboost backend applies each to the replica first (`storage/ddboost/mirror.rs`).
//!
//! Step 2 is the commit point: once it succeeded the command succeeds, and a
//! failure of step 3 is only a warning. A rename that reports an error is
//! looked at again (see `storage::commit_closed`): one that took effect all
//! the same (done, then the connection lost) is a success.
//!
//! Readers take every entry of both records as candidates and keep those
//! whose size and block digests match what they read; a reader that holds
//! the whole object after its opening read, and finds it described by an
//! entry of `.checksum`, does not look up `.next`. Whatever step a write
//! stopped at (error, signal, `kill -9`, power loss), the data in place
//! matches an entry of one of the two records: before step 2 it is the old
//! data, described by `.checksum` (or by an entry carried over in `.next`);
//! after it, the new data, described by `.next` until step 3 moves it.
//!
//! # A first write
//!
//! Where nothing is at the object's path (a definite "no such object": a
//! new backup's every object), there is no old object to keep, and steps 1
//! and 2 run at once when the write has several connections (the connection
//! broker's); both are the commit point, and the command succeeds only when
//! both did. Stopped in between, the object is absent (a staged record that
//! describes nothing is harmless; the next write replaces it) or, after a
//! `kill -9` or power loss just then, its complete data is in place with no
//! record (it restores with the warning of an unrecorded object, and
//! `verify_backup` lists it UNRECORDED); a step that fails removes the data
//! again. The command failed either way, and so did the backup.

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{
    ClosedObject, CreateOptions, ObjectReader, OpenOptions, Storage, StoragePath,
};

const MAGIC_V1: &str = "gpbackup_ddboost_plugin checksum v1";
const MAGIC_V2: &str = "gpbackup_ddboost_plugin checksum v2";

/// Bytes covered by each block digest: the largest write and read either
/// backend makes, so a restore verifies each read as it arrives.
pub const DIGEST_BLOCK: usize = 1 << 20;

/// The largest record read: 2 entries of a 2 TiB object, with room to spare.
const MAX_RECORD_BYTES: u64 = 128 << 20;

/// The size and digest of an object's bytes (a v1 record, and the whole-object
/// part of a v2 record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    pub size: u64,
    pub digest: u128,
}

/// Everything recorded about one version of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub sum: Checksum,
    /// XXH3-64 of each [`DIGEST_BLOCK`] bytes (the last block may be short);
    /// None for v1 records, which have only the whole-object digest.
    pub blocks: Option<Vec<u64>>,
}

impl Entry {
    /// Whether block `index` of the object, `data`, matches this entry. v1
    /// entries match every block (their check is at the end).
    #[cfg(test)]
    pub fn block_matches(&self, index: usize, data: &[u8]) -> bool {
        self.block_digest_matches(index, xxh3_64(data))
    }

    /// [`Entry::block_matches`] with the block's XXH3-64 digest.
    pub fn block_digest_matches(&self, index: usize, digest: u64) -> bool {
        match &self.blocks {
            Some(b) => b.get(index) == Some(&digest),
            None => true,
        }
    }
}

/// Computes a checksum and block digests incrementally.
#[derive(Clone, Default)]
pub struct Hasher {
    whole: Xxh3,
    size: u64,
    block: Xxh3,
    in_block: usize,
    blocks: Vec<u64>,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut buf: &[u8]) {
        self.whole.update(buf);
        self.size += buf.len() as u64;
        while !buf.is_empty() {
            let take = (DIGEST_BLOCK - self.in_block).min(buf.len());
            if take == DIGEST_BLOCK {
                // A whole aligned block: one-shot hashing is faster.
                self.blocks.push(xxh3_64(&buf[..take]));
            } else {
                self.block.update(&buf[..take]);
                self.in_block += take;
                if self.in_block == DIGEST_BLOCK {
                    self.blocks.push(self.block.digest());
                    self.block.reset();
                    self.in_block = 0;
                }
            }
            buf = &buf[take..];
        }
    }

    /// The whole-object checksum so far.
    pub fn checksum(&self) -> Checksum {
        Checksum {
            size: self.size,
            digest: self.whole.digest128(),
        }
    }

    /// The v2 entry for everything hashed.
    pub fn finish(mut self) -> Entry {
        let sum = self.checksum();
        if self.in_block > 0 {
            self.blocks.push(self.block.digest());
        }
        Entry {
            sum,
            blocks: Some(self.blocks),
        }
    }
}

/// Encodes entries as a v2 record: per entry, a header and one hex block
/// digest per line.
pub fn encode(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let blocks = e.blocks.as_deref().unwrap_or(&[]);
        out.push_str(&format!(
            "{MAGIC_V2}\nalgorithm=xxh3-128\nsize={}\ndigest={:032x}\nblock_size={DIGEST_BLOCK}\nblocks={}\n",
            e.sum.size,
            e.sum.digest,
            blocks.len()
        ));
        for b in blocks {
            out.push_str(&format!("{b:016x}\n"));
        }
    }
    out
}

/// Decodes a record: one or more v2 entries, or one v1 checksum.
pub fn decode(text: &str) -> Option<Vec<Entry>> {
    let mut lines = text.lines().peekable();
    let first = *lines.peek()?;
    if first == MAGIC_V1 {
        return decode_v1(text).map(|sum| vec![Entry { sum, blocks: None }]);
    }
    let mut entries = Vec::new();
    while let Some(magic) = lines.next() {
        if magic != MAGIC_V2 {
            return None;
        }
        let mut field = |name: &str| -> Option<String> {
            let (k, v) = lines.next()?.split_once('=')?;
            (k == name).then(|| v.to_string())
        };
        if field("algorithm")? != "xxh3-128" {
            return None;
        }
        let size: u64 = field("size")?.parse().ok()?;
        let digest = u128::from_str_radix(&field("digest")?, 16).ok()?;
        if field("block_size")?.parse::<usize>().ok()? != DIGEST_BLOCK {
            return None;
        }
        let count: u64 = field("blocks")?.parse().ok()?;
        if count != size.div_ceil(DIGEST_BLOCK as u64) {
            return None;
        }
        let mut blocks = Vec::with_capacity(count as usize);
        for _ in 0..count {
            blocks.push(u64::from_str_radix(lines.next()?, 16).ok()?);
        }
        entries.push(Entry {
            sum: Checksum { size, digest },
            blocks: Some(blocks),
        });
    }
    (!entries.is_empty()).then_some(entries)
}

fn decode_v1(text: &str) -> Option<Checksum> {
    let mut lines = text.lines();
    if lines.next()? != MAGIC_V1 {
        return None;
    }
    let (mut size, mut digest, mut algo) = (None, None, None);
    for line in lines {
        let (k, v) = line.split_once('=')?;
        match k {
            "algorithm" => algo = Some(v.to_string()),
            "size" => size = v.parse().ok(),
            "digest" => digest = u128::from_str_radix(v, 16).ok(),
            _ => {}
        }
    }
    if algo.as_deref() != Some("xxh3-128") {
        return None;
    }
    Some(Checksum {
        size: size?,
        digest: digest?,
    })
}

/// The object whose published record is the folder entry `name`
/// (`.<object>.checksum`); None for every other name (a staged
/// `.checksum.next` included).
pub fn object_of_record(name: &str) -> Option<&str> {
    name.strip_prefix('.')?
        .strip_suffix(".checksum")
        .filter(|o| !o.is_empty() && !o.starts_with('.'))
}

/// Whether the folder entry `name` is a checksum record: published
/// (`.<object>.checksum`) or staged (`.<object>.checksum.next`).
pub fn is_record(name: &str) -> bool {
    object_of_record(name.strip_suffix(".next").unwrap_or(name)).is_some()
}

/// Path of the checksum record of the object at `path`.
pub fn record_path(path: &StoragePath) -> Result<StoragePath> {
    Ok(path.sibling(&format!(".{}.checksum", path.file_name()))?)
}

/// Path of the record staged by a write that has not finished committing.
pub fn staged_path(path: &StoragePath) -> Result<StoragePath> {
    Ok(path.sibling(&format!(".{}.checksum.next", path.file_name()))?)
}

/// How a file is opened: as every open (waiting for a stream while the
/// system has none free), or at once (a step running beside others that
/// hold streams, which fails with `ErrorKind::StreamLimit` instead; see
/// [`OpenOptions::wait`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Waiting,
    Now,
}

impl Open {
    /// The options of an open for a first read at `first_read`.
    pub fn at(self, first_read: u64) -> OpenOptions {
        OpenOptions {
            first_read,
            wait: self == Open::Waiting,
        }
    }

    /// The options of a create.
    pub fn create(self) -> CreateOptions {
        CreateOptions {
            wait: self == Open::Waiting,
        }
    }
}

/// Writes `bytes` to a new temporary of the object `path` and closes it
/// (not renamed into place yet).
pub fn write_closed(
    storage: &dyn Storage,
    path: &StoragePath,
    bytes: &[u8],
    open: Open,
) -> Result<Box<dyn ClosedObject>> {
    let mut w = storage.create(path, &open.create())?;
    let block = w.block_size().max(4096);
    for chunk in bytes.chunks(block) {
        w.write(chunk)?;
    }
    w.close()
}

/// Of a staged record left by an interrupted earlier write, the entries a
/// new staged record keeps (one of them may describe the data in place).
pub fn carried_over(earlier: Option<Vec<Entry>>) -> Vec<Entry> {
    earlier
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.blocks.is_some())
        .collect()
}

/// The temporary of a new staged record of `path`, closed: `entry` and the
/// entries `carried` over from an earlier one. Renamed into place
/// ([`crate::storage::commit_closed`]), it is step 1 of a commit.
pub fn staged_temp(
    storage: &dyn Storage,
    path: &StoragePath,
    entry: &Entry,
    carried: &[Entry],
    open: Open,
) -> Result<Box<dyn ClosedObject>> {
    let mut entries = vec![entry.clone()];
    entries.extend_from_slice(carried);
    write_closed(
        storage,
        &staged_path(path)?,
        encode(&entries).as_bytes(),
        open,
    )
}

/// Step 3 of a commit: the staged record becomes the record.
pub fn publish(storage: &dyn Storage, path: &StoragePath) -> Result<()> {
    storage.rename(&staged_path(path)?, &record_path(path)?)
}

/// Step 3 after step 2 succeeded: the write is committed whatever happens
/// here, so a failure is a warning (readers take the staged record's
/// entries, and the next write of the object carries them over).
pub fn publish_committed(storage: &dyn Storage, path: &StoragePath) {
    if let Err(e) = publish(storage, path) {
        log::warn!(
            "{path} is stored on {}, but its checksum record could not be renamed into place ({e}); restores read the staged record .{}.checksum.next beside it, and the next write of {path} finishes this",
            storage.describe(),
            path.file_name()
        );
    }
}

/// Every entry that may describe the object at `path`: those of its record
/// and of a staged record. Empty when there is neither.
pub fn load(storage: &dyn Storage, path: &StoragePath) -> Result<Vec<Entry>> {
    let mut entries = read_published(storage, path, Open::Waiting)?
        .entries
        .unwrap_or_default();
    if let Some(staged) = read_staged(storage, path, Open::Waiting)?.entries {
        entries.extend(staged);
    }
    Ok(entries)
}

/// A record as read: its entries (None when there is none) and, when it was
/// opened at once ([`Open::Now`]), its reader, still open for the caller to
/// close when it suits (after the reply). Opened waiting, it is closed
/// before the read returns, so that no stream is held while another is
/// waited for.
pub struct Record {
    pub entries: Option<Vec<Entry>>,
    pub reader: Option<Box<dyn ObjectReader>>,
}

/// Reads the record of the object `path`.
pub fn read_published(storage: &dyn Storage, path: &StoragePath, open: Open) -> Result<Record> {
    read_record(storage, &record_path(path)?, open)
}

/// Reads the staged record of the object `path`.
pub fn read_staged(storage: &dyn Storage, path: &StoragePath, open: Open) -> Result<Record> {
    read_record(storage, &staged_path(path)?, open)
}

/// Whether an entry of `entries` describes `bytes`, a whole object: its size
/// and digests match.
pub fn describes(entries: &[Entry], bytes: &[u8]) -> bool {
    let mut h = Hasher::new();
    h.update(bytes);
    let got = h.finish();
    entries.iter().any(|e| {
        e.sum == got.sum
            && e.blocks
                .as_ref()
                .is_none_or(|b| Some(b) == got.blocks.as_ref())
    })
}

/// Of an object's record `entries` (not empty), those that describe the
/// object `reader` reads: the entries of its size. A reader's size may have
/// been inferred from a short read, so the storage is asked for the exact
/// size before the object is called damaged.
pub fn entries_for(
    entries: Vec<Entry>,
    reader: &mut dyn ObjectReader,
    path: &StoragePath,
) -> Result<Vec<Entry>> {
    let mut size = reader.size();
    if !entries.iter().any(|e| e.sum.size == size) {
        size = reader.exact_size()?;
    }
    let recorded = entries.first().map(|e| e.sum.size).unwrap_or(0);
    let matching: Vec<Entry> = entries.into_iter().filter(|e| e.sum.size == size).collect();
    if matching.is_empty() {
        return Err(Error::integrity(format!(
            "{path} is {size} bytes but {recorded} were recorded at backup time; the stored copy is damaged or incomplete"
        )));
    }
    Ok(matching)
}

/// Reads and decodes the record at `rec` (see [`Record`]).
fn read_record(storage: &dyn Storage, rec: &StoragePath, open: Open) -> Result<Record> {
    let mut r = match storage.open(rec, &open.at(0)) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(Record {
                entries: None,
                reader: None,
            })
        }
        Err(e) => return Err(e.context(format!("cannot read checksum record {rec}"))),
    };
    let size = r.size();
    if size > MAX_RECORD_BYTES {
        return Err(Error::integrity(format!(
            "checksum record {rec} is damaged (too large)"
        )));
    }
    let buf = crate::storage::read_to_end(r.as_mut())?;
    let text = std::str::from_utf8(&buf).ok();
    let entries = text
        .and_then(decode)
        .ok_or_else(|| Error::integrity(format!("checksum record {rec} is damaged")))?;
    Ok(Record {
        entries: Some(entries),
        reader: (open == Open::Now).then_some(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn entry(d: &[u8]) -> Entry {
        let mut h = Hasher::new();
        h.update(d);
        h.finish()
    }

    #[test]
    fn roundtrip_and_damage() {
        let e = entry(&data(3 * DIGEST_BLOCK + 5));
        assert_eq!(e.blocks.as_ref().unwrap().len(), 4);
        let two = vec![e.clone(), entry(b"hello")];
        assert_eq!(decode(&encode(&two)), Some(two.clone()));
        assert_eq!(decode("garbage"), None);
        assert_eq!(decode(""), None);
        let text = encode(&two);
        assert_eq!(decode(&text.replace("xxh3-128", "md5")), None);
        // A missing block digest line.
        let cut: Vec<&str> = text.lines().collect();
        let short = cut[..cut.len() - 1].join("\n");
        assert_eq!(decode(&short), None);
        let path = StoragePath::parse("a/b/name").unwrap();
        assert_eq!(record_path(&path).unwrap(), "a/b/.name.checksum");
        assert_eq!(staged_path(&path).unwrap(), "a/b/.name.checksum.next");
    }

    /// A v2 record of two entries (the 5 bytes "hello"; 1 MiB + 1 bytes of
    /// [`data`]), byte for byte: stored backups hold records like it, so
    /// neither the encoder nor the decoder may change under them.
    const V2_RECORD: &[u8] = b"gpbackup_ddboost_plugin checksum v2
algorithm=xxh3-128
size=5
digest=b5e9c1ad071b3e7fc779cfaa5e523818
block_size=1048576
blocks=1
9555e8555c62dcfd
gpbackup_ddboost_plugin checksum v2
algorithm=xxh3-128
size=1048577
digest=f9ba7901d196115973bdb90cf31e71a2
block_size=1048576
blocks=2
931fb38ab0469ad0
4a2ce28c39c127a2
";

    fn v2_entries() -> Vec<Entry> {
        vec![
            Entry {
                sum: Checksum {
                    size: 5,
                    digest: 0xb5e9c1ad071b3e7fc779cfaa5e523818,
                },
                blocks: Some(vec![0x9555e8555c62dcfd]),
            },
            Entry {
                sum: Checksum {
                    size: 1048577,
                    digest: 0xf9ba7901d196115973bdb90cf31e71a2,
                },
                blocks: Some(vec![0x931fb38ab0469ad0, 0x4a2ce28c39c127a2]),
            },
        ]
    }

    #[test]
    fn decodes_a_pinned_v2_record() {
        let text = std::str::from_utf8(V2_RECORD).unwrap();
        assert_eq!(decode(text), Some(v2_entries()));
        // The digests are those of the data they describe.
        assert_eq!(entry(b"hello"), v2_entries()[0]);
        assert_eq!(entry(&data(DIGEST_BLOCK + 1)), v2_entries()[1]);
    }

    #[test]
    fn encodes_exactly_the_pinned_v2_record() {
        assert_eq!(encode(&v2_entries()).as_bytes(), V2_RECORD);
    }

    #[test]
    fn reads_v1_records() {
        let v1 = format!(
            "{MAGIC_V1}\nalgorithm=xxh3-128\nsize=5\ndigest={:032x}\n",
            42u128
        );
        let got = decode(&v1).unwrap();
        assert_eq!(
            got,
            vec![Entry {
                sum: Checksum {
                    size: 5,
                    digest: 42
                },
                blocks: None
            }]
        );
        assert!(got[0].block_matches(0, b"anything"));
    }

    #[test]
    fn records_are_known_by_name() {
        assert_eq!(object_of_record(".name.checksum"), Some("name"));
        assert_eq!(object_of_record(".name.checksum.next"), None);
        assert!(is_record(".name.checksum"));
        assert!(is_record(".name.checksum.next"));
        for other in [
            "name",
            ".checksum",
            "..checksum",
            ".name.tmp-h-1-2",
            "name.checksum",
        ] {
            assert!(!is_record(other), "{other}");
        }
    }

    #[test]
    fn split_updates_equal_one_update() {
        let d = data(2 * DIGEST_BLOCK + 100_000);
        let a = entry(&d);
        let mut b = Hasher::new();
        for c in d.chunks(977) {
            b.update(c);
        }
        let mut c = Hasher::new();
        for ch in d.chunks(128 << 10) {
            c.update(ch);
        }
        assert_eq!(a, b.finish());
        assert_eq!(a, c.finish());
    }

    #[test]
    fn block_digests_locate_damage() {
        let mut d = data(2 * DIGEST_BLOCK + 10);
        let e = entry(&d);
        d[DIGEST_BLOCK + 3] ^= 1;
        let blocks: Vec<&[u8]> = d.chunks(DIGEST_BLOCK).collect();
        assert!(e.block_matches(0, blocks[0]));
        assert!(!e.block_matches(1, blocks[1]));
        assert!(e.block_matches(2, blocks[2]));
        assert!(!e.block_matches(3, b""));
    }
}
