//! Recipes: a file in a storage unit is a list of segment references.
//!
//! On disk: a 64-byte header (`DDMRCP01`, logical size, mode, entry count) followed by one
//! 64-byte entry per segment (raw length, stored length, codec, container, container offset,
//! fingerprint). Logical offsets are the running sum of raw lengths, rebuilt at load so a
//! read at any offset finds its segment by binary search.

use crate::error::{DdError, DdResult};
use crate::segment::{Fp, Loc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};

const MAGIC: &[u8; 8] = b"DDMRCP01";
const HDR: usize = 64;
const ENT: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Logical offset of the segment in the file.
    pub loff: u64,
    pub loc: Loc,
    pub fp: Fp,
}

impl Entry {
    pub fn end(&self) -> u64 {
        self.loff + self.loc.raw as u64
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub size: u64,
    pub mode: u32,
    pub count: u64,
}

fn parse_header(b: &[u8]) -> DdResult<Header> {
    if b.len() < HDR || &b[..8] != MAGIC {
        return Err(DdError::IO);
    }
    Ok(Header {
        size: u64::from_le_bytes(b[8..16].try_into().expect("8")),
        mode: u32::from_le_bytes(b[16..20].try_into().expect("4")),
        count: u64::from_le_bytes(b[24..32].try_into().expect("8")),
    })
}

pub fn read_header(path: &Path) -> DdResult<Header> {
    let mut f = File::open(path)?;
    let mut b = [0u8; HDR];
    f.read_exact(&mut b).map_err(|_| DdError::IO)?;
    parse_header(&b)
}

/// Loads a recipe: its header and entries with logical offsets.
pub fn load(path: &Path) -> DdResult<(Header, Vec<Entry>)> {
    parse(&fs::read(path)?)
}

/// The header and entries of the recipe bytes `b`.
fn parse(b: &[u8]) -> DdResult<(Header, Vec<Entry>)> {
    let h = parse_header(b)?;
    // A recipe published in place (see [`publish_in_place`]) may have its new entries
    // written behind a header that does not count them yet: the header says what is there.
    let body = usize::try_from(h.count)
        .ok()
        .and_then(|n| n.checked_mul(ENT))
        .and_then(|n| b.get(HDR..HDR.checked_add(n)?))
        .ok_or(DdError::IO)?;
    let mut v = Vec::with_capacity(h.count as usize);
    let mut loff = 0u64;
    for e in body.chunks_exact(ENT) {
        let raw = u32::from_le_bytes(e[0..4].try_into().expect("4"));
        let mut fp = [0u8; 32];
        fp.copy_from_slice(&e[32..64]);
        v.push(Entry {
            loff,
            loc: Loc {
                raw,
                stored: u32::from_le_bytes(e[4..8].try_into().expect("4")),
                codec: e[8],
                container: u64::from_le_bytes(e[16..24].try_into().expect("8")),
                offset: u64::from_le_bytes(e[24..32].try_into().expect("8")),
            },
            fp,
        });
        loff += raw as u64;
    }
    if loff != h.size {
        return Err(DdError::IO);
    }
    Ok((h, v))
}

/// One version of a recipe file: published recipes are written to a new file and renamed
/// into place (a new inode), or, the first time, written in place (a new header).
type Version = (u64, u64, u64, i64, i64, [u8; HDR]);

/// Recipes loaded for reading, by path: the system holds one recipe per file however many
/// streams read it, so the read handles open on one version of a file share it.
static SHARED: LazyLock<Mutex<HashMap<PathBuf, Loaded>>> = LazyLock::new(Default::default);

/// A recipe loaded for reading: its version, header and entries (while a handle holds them).
type Loaded = (Version, Header, Weak<Vec<Entry>>);

/// [`load`] for a read handle: the entries are shared with the other handles open on the
/// same version of the file.
pub fn load_shared(path: &Path) -> DdResult<(Header, Arc<Vec<Entry>>)> {
    let mut f = File::open(path)?;
    let md = f.metadata()?;
    let mut head = [0u8; HDR];
    f.read_exact(&mut head).map_err(|_| DdError::IO)?;
    let version = (
        md.dev(),
        md.ino(),
        md.len(),
        md.mtime(),
        md.mtime_nsec(),
        head,
    );
    let mut shared = SHARED.lock();
    shared.retain(|_, (_, _, w)| w.strong_count() > 0);
    if let Some((v, h, w)) = shared.get(path) {
        if *v == version {
            if let Some(entries) = w.upgrade() {
                return Ok((*h, entries));
            }
        }
    }
    // The rest of the version whose header was read (not a later one at `path`).
    let mut b = head.to_vec();
    f.read_to_end(&mut b)?;
    let (h, entries) = parse(&b)?;
    let entries = Arc::new(entries);
    shared.insert(path.to_path_buf(), (version, h, Arc::downgrade(&entries)));
    Ok((h, entries))
}

/// The bytes of a recipe: header, then one entry per segment.
fn encode(mode: u32, entries: &[Entry]) -> Vec<u8> {
    let size: u64 = entries.iter().map(|e| e.loc.raw as u64).sum();
    let mut b = Vec::with_capacity(HDR + ENT * entries.len());
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&mode.to_le_bytes());
    b.extend_from_slice(&[0u8; 4]);
    b.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    b.resize(HDR, 0);
    for e in entries {
        let mut r = [0u8; ENT];
        r[0..4].copy_from_slice(&e.loc.raw.to_le_bytes());
        r[4..8].copy_from_slice(&e.loc.stored.to_le_bytes());
        r[8] = e.loc.codec;
        r[16..24].copy_from_slice(&e.loc.container.to_le_bytes());
        r[24..32].copy_from_slice(&e.loc.offset.to_le_bytes());
        r[32..64].copy_from_slice(&e.fp);
        b.extend_from_slice(&r);
    }
    b
}

/// Writes a recipe to `path` (a new temporary file; the caller renames it into place).
pub fn write(path: &Path, mode: u32, entries: &[Entry]) -> DdResult<()> {
    create(path, mode, entries).map(drop)
}

/// Makes the new file `path` holding a recipe, and returns it open for
/// [`publish_in_place`].
pub fn create(path: &Path, mode: u32, entries: &[Entry]) -> DdResult<File> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(&encode(mode, entries))?;
    Ok(f)
}

/// Publishes `entries` over the empty recipe `file` made by [`create`] without a new
/// file: the entries are written behind the header first, then the header that counts
/// them, in one write. Until then readers see the empty recipe (its header counts none).
/// For a file still at `path` (else false: the caller writes a new file and renames it).
pub fn publish_in_place(file: &File, path: &Path, mode: u32, entries: &[Entry]) -> DdResult<bool> {
    let (ours, there) = (file.metadata()?, fs::metadata(path));
    let Ok(there) = there else {
        return Ok(false);
    };
    if (ours.dev(), ours.ino()) != (there.dev(), there.ino()) || ours.len() != HDR as u64 {
        return Ok(false);
    }
    let b = encode(mode, entries);
    file.write_all_at(&b[HDR..], HDR as u64)?;
    file.write_all_at(&b[..HDR], 0)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(raw: u32, n: u8) -> Entry {
        Entry {
            loff: 0,
            loc: Loc {
                raw,
                stored: raw,
                codec: 0,
                container: 1,
                offset: n as u64 * 100,
            },
            fp: [n; 32],
        }
    }

    #[test]
    fn published_in_place_reads_as_empty_until_its_header_counts_the_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = create(&path, 0o600, &[]).unwrap();
        let entries = [entry(10, 1), entry(20, 2)];
        // The entries behind the empty header: still the empty file.
        let b = encode(0o600, &entries);
        file.write_all_at(&b[HDR..], HDR as u64).unwrap();
        let (h, got) = load(&path).unwrap();
        assert_eq!((h.size, got.len()), (0, 0));
        let (h, _) = load_shared(&path).unwrap();
        assert_eq!(h.size, 0);
        // The header: the new content, for a cached reader too.
        file.write_all_at(&b[..HDR], 0).unwrap();
        let (h, got) = load(&path).unwrap();
        assert_eq!((h.size, got.len(), got[1].loff), (30, 2, 10));
        let (h, shared) = load_shared(&path).unwrap();
        assert_eq!((h.size, shared.len()), (30, 2));
        // A header counting more entries than there are is damage.
        let mut more = b[..HDR].to_vec();
        more[24..32].copy_from_slice(&3u64.to_le_bytes());
        file.write_all_at(&more, 0).unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn in_place_only_over_the_file_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let entries = [entry(10, 1)];
        let file = create(&path, 0o600, &[]).unwrap();
        assert!(publish_in_place(&file, &path, 0o600, &entries).unwrap());
        assert_eq!(load(&path).unwrap().0.size, 10);
        // Not twice: the file is no longer the empty one it made.
        assert!(!publish_in_place(&file, &path, 0o600, &entries).unwrap());
        // Not over a file that replaced it, nor where it is gone.
        let other = create(&dir.path().join("g"), 0o600, &[]).unwrap();
        fs::rename(dir.path().join("g"), &path).unwrap();
        assert!(!publish_in_place(&other, &dir.path().join("g"), 0o600, &entries).unwrap());
        let fresh = create(&dir.path().join("h"), 0o600, &[]).unwrap();
        fs::remove_file(&path).unwrap();
        fs::rename(dir.path().join("h"), &path).unwrap();
        assert!(!publish_in_place(&file, &path, 0o600, &entries).unwrap());
        assert_eq!(load(&path).unwrap().0.size, 0);
        drop(fresh);
    }
}
