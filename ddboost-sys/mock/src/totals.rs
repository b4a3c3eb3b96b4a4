//! Totals of one system, from its index (logs and shared index) and its namespace.

use crate::error::{DdError, DdResult};
use crate::records::{self, decode_all, Record};
use crate::segment::Fp;
use std::collections::HashSet;
use std::fs::{self, File};
use std::path::Path;

/// Totals of one system.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Bytes written by clients (all closed write streams and file copies), before dedup.
    pub logical_bytes_written: u64,
    /// Raw size of the distinct segments the system holds.
    pub unique_segment_bytes: u64,
    /// Bytes the segments occupy in containers after compression.
    pub stored_bytes: u64,
    /// Number of segments stored (distinct).
    pub unique_segments: u64,
    /// Number of regular files in all storage units.
    pub files: u64,
    /// Logical size of all files present.
    pub logical_bytes_present: u64,
}

/// Adds index records to totals, each record (by its identity) once.
#[derive(Default)]
struct Counter {
    t: Totals,
    fps: HashSet<Fp>,
    records: HashSet<(u64, u64)>,
}

impl Counter {
    fn add(&mut self, r: Record) {
        match r {
            Record::Seg(fp, loc) => {
                if !self.records.insert((loc.container, loc.offset)) {
                    return;
                }
                self.t.stored_bytes += loc.stored as u64;
                if self.fps.insert(fp) {
                    self.t.unique_segment_bytes += loc.raw as u64;
                    self.t.unique_segments += 1;
                }
            }
            Record::Logical(b, key) => {
                // Logical keys are (container, position in its log): a separate space.
                if self.records.insert((key.0 | 1 << 63, key.1)) {
                    self.t.logical_bytes_written += b;
                }
            }
            Record::Unknown => {}
        }
    }
}

pub fn totals(sysdir: &Path) -> DdResult<Totals> {
    if !sysdir.join("system.json").is_file() {
        return Err(DdError::NOT_FOUND);
    }
    let mut c = Counter::default();
    let store = sysdir.join("store");
    // Logs first: a log compacted meanwhile is then in the shared index.
    let idir = store.join("index");
    if idir.is_dir() {
        for (id, path) in records::index_logs(&idir)? {
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let (buf, _) = records::read_whole(&f, 0)?;
            decode_all(id, 0, &buf).for_each(|r| c.add(r));
        }
    }
    crate::index::all_records(&store, |r| c.add(r))?;
    let su = sysdir.join("su");
    if su.is_dir() {
        walk(&su, &mut c.t)?;
    }
    Ok(c.t)
}

fn walk(dir: &Path, t: &mut Totals) -> DdResult<()> {
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let ft = ent.file_type()?;
        if ft.is_dir() {
            walk(&ent.path(), t)?;
        } else if ft.is_file() {
            t.files += 1;
            if let Ok(h) = crate::recipe::read_header(&ent.path()) {
                t.logical_bytes_present += h.size;
            }
        }
    }
    Ok(())
}
