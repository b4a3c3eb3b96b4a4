//! Checksums of stored objects.
//!
//! Every object written by the plugin gets a small companion record
//! `.<name>.checksum` in the same folder, holding the object's size and its
//! XXH3-128 digest. The record is committed before the object itself, so a
//! finished object always has its record; an object without one (written by
//! another tool) restores with a logged warning. Full restores verify both
//! size and digest; a mismatch fails the restore, naming the object.

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{split_path, Storage};

const MAGIC: &str = "gpbackup_ddboost_plugin checksum v1";

/// The size and digest of an object's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    pub size: u64,
    pub digest: u128,
}

/// Computes a checksum incrementally.
#[derive(Clone, Default)]
pub struct Hasher {
    h: Xxh3,
    size: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, buf: &[u8]) {
        self.h.update(buf);
        self.size += buf.len() as u64;
    }
    pub fn finish(&self) -> Checksum {
        Checksum {
            size: self.size,
            digest: self.h.digest128(),
        }
    }
}

impl Checksum {
    pub fn encode(&self) -> String {
        format!(
            "{MAGIC}\nalgorithm=xxh3-128\nsize={}\ndigest={:032x}\n",
            self.size, self.digest
        )
    }

    pub fn decode(text: &str) -> Option<Checksum> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
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
}

/// Path of the checksum record of the object at `path`.
pub fn record_path(path: &str) -> String {
    let (dir, name) = split_path(path);
    if dir.is_empty() {
        format!(".{name}.checksum")
    } else {
        format!("{dir}/.{name}.checksum")
    }
}

/// Stores the checksum record of `path`.
pub fn store(storage: &dyn Storage, path: &str, sum: &Checksum) -> Result<()> {
    let mut w = storage.create(&record_path(path))?;
    w.write(sum.encode().as_bytes())?;
    w.commit()
}

/// Reads the checksum record of `path`; None when there is none.
pub fn load(storage: &dyn Storage, path: &str) -> Result<Option<Checksum>> {
    let rec = record_path(path);
    let mut r = match storage.open(&rec) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = r.size();
    if size > 4096 {
        return Err(Error::integrity(format!(
            "checksum record {rec} is damaged (too large)"
        )));
    }
    let mut buf = vec![0u8; size as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = r.read_at(&mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let text = String::from_utf8_lossy(&buf[..got]);
    Checksum::decode(&text)
        .map(Some)
        .ok_or_else(|| Error::integrity(format!("checksum record {rec} is damaged")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let mut h = Hasher::new();
        h.update(b"hello");
        let c = h.finish();
        assert_eq!(c.size, 5);
        assert_eq!(Checksum::decode(&c.encode()), Some(c));
        assert_eq!(Checksum::decode("garbage"), None);
        assert_eq!(
            Checksum::decode(&c.encode().replace("xxh3-128", "md5")),
            None
        );
        assert_eq!(record_path("a/b/name"), "a/b/.name.checksum");
    }

    #[test]
    fn split_updates_equal_one_update() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut a = Hasher::new();
        a.update(&data);
        let mut b = Hasher::new();
        for c in data.chunks(977) {
            b.update(c);
        }
        assert_eq!(a.finish(), b.finish());
    }
}
