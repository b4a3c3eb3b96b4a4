//! The segment store of one emulated Data Domain system.
//!
//! Layout of a system directory (`$DDBOOST_MOCK_ROOT/<hostname>/`):
//!
//! ```text
//! system.json                  users (salted SHA-256 password hashes)
//! su/<storage-unit>/...        the namespace: real directories, and one recipe file per file
//! store/containers/<id>.ctr    append-only containers of compressed segments
//! store/index/<id>.idx         append-only index log of the container with the same id
//! tmp/                         recipes being published
//! streams/<pid>                open read/write streams and file copies of each process
//! ```
//!
//! Each writing stream holds one container and its index log exclusively (taken from a
//! per-process pool), so writers never share a file. A segment's index record is appended
//! only after its bytes are in the container, and a recipe is published (renamed into the
//! namespace) only after every segment it references is in a container, so a process killed
//! at any point leaves a store that is consistent for everyone else: index logs are read
//! up to their last whole record, and unreferenced container bytes are merely unused.

use crate::error::{DdError, DdResult};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A SHA-256 segment fingerprint.
pub type Fp = [u8; 32];

pub const CODEC_RAW: u8 = 0;
pub const CODEC_LZ4: u8 = 1;

/// Where a segment's stored bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub container: u64,
    pub offset: u64,
    pub stored: u32,
    pub raw: u32,
    pub codec: u8,
}

pub const REC_SIZE: usize = 64;
const REC_SEG: u8 = 1;
const REC_LOGICAL: u8 = 2;
const FLUSH_BYTES: usize = 4 << 20;
const CONTAINER_ROLL_BYTES: u64 = 1 << 30;
const REFRESH_EVERY: Duration = Duration::from_millis(500);

fn encode_seg(fp: &Fp, loc: &Loc) -> [u8; REC_SIZE] {
    let mut r = [0u8; REC_SIZE];
    r[0] = REC_SEG;
    r[1] = loc.codec;
    r[4..8].copy_from_slice(&loc.stored.to_le_bytes());
    r[8..12].copy_from_slice(&loc.raw.to_le_bytes());
    r[16..24].copy_from_slice(&loc.offset.to_le_bytes());
    r[24..56].copy_from_slice(fp);
    r
}

fn encode_logical(bytes: u64) -> [u8; REC_SIZE] {
    let mut r = [0u8; REC_SIZE];
    r[0] = REC_LOGICAL;
    r[56..64].copy_from_slice(&bytes.to_le_bytes());
    r
}

enum Record {
    Seg(Fp, Loc),
    Logical(u64),
    Unknown,
}

fn decode(container: u64, r: &[u8]) -> Record {
    let u32at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().expect("4 bytes"));
    let u64at = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().expect("8 bytes"));
    match r[0] {
        REC_SEG => {
            let mut fp = [0u8; 32];
            fp.copy_from_slice(&r[24..56]);
            Record::Seg(
                fp,
                Loc {
                    container,
                    offset: u64at(16),
                    stored: u32at(4),
                    raw: u32at(8),
                    codec: r[1],
                },
            )
        }
        REC_LOGICAL => Record::Logical(u64at(56)),
        _ => Record::Unknown,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A container and its index log, owned by one write stream at a time.
pub struct Writer {
    pub id: u64,
    ctr: File,
    idx: File,
    ctr_len: u64,
    ctr_buf: Vec<u8>,
    idx_buf: Vec<u8>,
    /// Segments appended but not yet flushed: only this writer may reference them.
    pending: HashMap<Fp, Loc>,
    /// A failed container or index write leaves the files in an unknown state: retire it.
    broken: bool,
}

impl Writer {
    pub fn pending(&self, fp: &Fp) -> Option<Loc> {
        self.pending.get(fp).copied()
    }

    /// Appends a segment's stored bytes; the segment becomes visible to others at the next flush.
    pub fn append(
        &mut self,
        sys: &System,
        fp: Fp,
        codec: u8,
        raw: u32,
        data: &[u8],
    ) -> DdResult<Loc> {
        let loc = Loc {
            container: self.id,
            offset: self.ctr_len + self.ctr_buf.len() as u64,
            stored: data.len() as u32,
            raw,
            codec,
        };
        self.ctr_buf.extend_from_slice(data);
        self.idx_buf.extend_from_slice(&encode_seg(&fp, &loc));
        self.pending.insert(fp, loc);
        if self.ctr_buf.len() >= FLUSH_BYTES {
            self.flush(sys)?;
        }
        Ok(loc)
    }

    pub fn add_logical(&mut self, bytes: u64) {
        self.idx_buf.extend_from_slice(&encode_logical(bytes));
    }

    /// Writes buffered container bytes, then their index records, then publishes them in
    /// this process's index.
    pub fn flush(&mut self, sys: &System) -> DdResult<()> {
        let r = self.flush_inner(sys);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn flush_inner(&mut self, sys: &System) -> DdResult<()> {
        if self.broken {
            return Err(DdError::IO);
        }
        if !self.ctr_buf.is_empty() {
            self.ctr.write_all(&self.ctr_buf)?;
            self.ctr_len += self.ctr_buf.len() as u64;
            self.ctr_buf.clear();
        }
        if !self.idx_buf.is_empty() {
            self.idx.write_all(&self.idx_buf)?;
            self.idx_buf.clear();
        }
        if !self.pending.is_empty() {
            let mut index = sys.index.write();
            for (fp, loc) in self.pending.drain() {
                index.entry(fp).or_insert(loc);
            }
        }
        Ok(())
    }

    /// Drops unflushed data (the stream failed).
    pub fn discard(&mut self) {
        // Container bytes that were already written stay as unreferenced space, like a killed writer's.
        self.ctr_buf.clear();
        self.idx_buf.clear();
        self.pending.clear();
    }
}

#[derive(Default)]
struct ScanState {
    offsets: HashMap<u64, u64>,
    own: HashSet<u64>,
    last: Option<Instant>,
}

/// One emulated Data Domain system as seen by this process.
pub struct System {
    pub dir: PathBuf,
    pub host: String,
    index: RwLock<HashMap<Fp, Loc>>,
    scan: Mutex<ScanState>,
    pool: Mutex<Vec<Writer>>,
    containers: RwLock<HashMap<u64, Arc<File>>>,
    pub streams: crate::streams::StreamTable,
}

impl System {
    pub fn su_root(&self) -> PathBuf {
        self.dir.join("su")
    }
    fn containers_dir(&self) -> PathBuf {
        self.dir.join("store").join("containers")
    }
    fn index_dir(&self) -> PathBuf {
        self.dir.join("store").join("index")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Opens an existing system directory and loads the index logs of all writers.
    pub fn open(dir: &Path, host: &str) -> DdResult<Arc<System>> {
        if !dir.join("system.json").is_file() {
            return Err(DdError::CONNECT);
        }
        for d in ["su", "store/containers", "store/index", "tmp", "streams"] {
            fs::create_dir_all(dir.join(d))?;
        }
        let sys = Arc::new(System {
            dir: dir.to_path_buf(),
            host: host.to_string(),
            index: RwLock::new(HashMap::new()),
            scan: Mutex::new(ScanState::default()),
            pool: Mutex::new(Vec::new()),
            containers: RwLock::new(HashMap::new()),
            streams: crate::streams::StreamTable::new(dir.join("streams")),
        });
        sys.refresh(true)?;
        Ok(sys)
    }

    pub fn lookup(&self, fp: &Fp) -> Option<Loc> {
        self.index.read().get(fp).copied()
    }

    /// Loads index records appended by other processes since the last look.
    pub fn refresh(&self, force: bool) -> DdResult<()> {
        let mut scan = self.scan.lock();
        if !force {
            if let Some(t) = scan.last {
                if t.elapsed() < REFRESH_EVERY {
                    return Ok(());
                }
            }
        }
        scan.last = Some(Instant::now());
        let mut fresh: Vec<(Fp, Loc)> = Vec::new();
        for (id, ent) in index_logs(&self.index_dir())? {
            if scan.own.contains(&id) {
                continue;
            }
            let off = scan.offsets.get(&id).copied().unwrap_or(0);
            let len = ent.metadata()?.len();
            let whole = len - len % REC_SIZE as u64;
            if whole <= off {
                continue;
            }
            let f = File::open(ent.path())?;
            let mut buf = vec![0u8; (whole - off) as usize];
            f.read_exact_at(&mut buf, off)?;
            for r in buf.chunks_exact(REC_SIZE) {
                if let Record::Seg(fp, loc) = decode(id, r) {
                    fresh.push((fp, loc));
                }
            }
            scan.offsets.insert(id, whole);
        }
        if !fresh.is_empty() {
            let mut index = self.index.write();
            index.reserve(fresh.len());
            for (fp, loc) in fresh {
                index.entry(fp).or_insert(loc);
            }
        }
        Ok(())
    }

    /// Takes a writer from the pool, or creates a new container and index log.
    pub fn acquire_writer(&self) -> DdResult<Writer> {
        if let Some(w) = self.pool.lock().pop() {
            return Ok(w);
        }
        let pid = std::process::id() as u64;
        let mut n = 0u64;
        loop {
            let seed = format!("{pid}:{}:{n}", now_nanos());
            let d = Sha256::digest(seed.as_bytes());
            let id =
                u64::from_le_bytes(d[..8].try_into().expect("8 bytes")) & 0x7fff_ffff_ffff_ffff;
            let cpath = self.containers_dir().join(format!("{id:016x}.ctr"));
            match OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(&cpath)
            {
                Ok(ctr) => {
                    let idx = OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(self.index_dir().join(format!("{id:016x}.idx")))?;
                    self.scan.lock().own.insert(id);
                    return Ok(Writer {
                        id,
                        ctr,
                        idx,
                        ctr_len: 0,
                        ctr_buf: Vec::with_capacity(FLUSH_BYTES + (1 << 20)),
                        idx_buf: Vec::new(),
                        pending: HashMap::new(),
                        broken: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Returns a flushed writer to the pool (a large container is retired instead).
    pub fn release_writer(&self, w: Writer) {
        if !w.broken
            && w.ctr_len < CONTAINER_ROLL_BYTES
            && w.ctr_buf.is_empty()
            && w.idx_buf.is_empty()
        {
            self.pool.lock().push(w);
        }
    }

    fn container(&self, id: u64) -> DdResult<Arc<File>> {
        if let Some(f) = self.containers.read().get(&id) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(
            self.containers_dir().join(format!("{id:016x}.ctr")),
        )?);
        self.containers.write().insert(id, f.clone());
        Ok(f)
    }

    /// Reads `len` stored bytes of container `id` at `offset`.
    pub fn read_stored(&self, id: u64, offset: u64, buf: &mut [u8]) -> DdResult<()> {
        let f = self.container(id)?;
        f.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                DdError::IO
            } else {
                e.into()
            }
        })
    }
}

/// Decodes stored segment bytes into `out` (exactly the segment's raw length).
pub fn decode_segment(codec: u8, stored: &[u8], out: &mut [u8]) -> DdResult<()> {
    match codec {
        CODEC_RAW if stored.len() == out.len() => {
            out.copy_from_slice(stored);
            Ok(())
        }
        CODEC_LZ4 => match lz4_flex::block::decompress_into(stored, out) {
            Ok(n) if n == out.len() => Ok(()),
            _ => Err(DdError::IO),
        },
        _ => Err(DdError::IO),
    }
}

/// Encodes a segment: LZ4 (block format, pure-Rust `lz4_flex`, fast mode, as a Data Domain
/// client favours speed over ratio) when it saves space, raw otherwise. Appends to `out`;
/// returns codec.
pub fn encode_segment(raw: &[u8], out: &mut Vec<u8>) -> u8 {
    let start = out.len();
    let max = lz4_flex::block::get_maximum_output_size(raw.len());
    out.resize(start + max, 0);
    match lz4_flex::block::compress_into(raw, &mut out[start..]) {
        Ok(n) if n < raw.len() => {
            out.truncate(start + n);
            CODEC_LZ4
        }
        _ => {
            out.truncate(start);
            out.extend_from_slice(raw);
            CODEC_RAW
        }
    }
}

/// Totals of one system, computed from its index logs and namespace.
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

/// The index logs in `dir` (`<hex id>.idx`) with their container ids.
fn index_logs(dir: &Path) -> DdResult<Vec<(u64, fs::DirEntry)>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let id = ent
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".idx"))
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        if let Some(id) = id {
            out.push((id, ent));
        }
    }
    Ok(out)
}

pub fn totals(sysdir: &Path) -> DdResult<Totals> {
    let mut t = Totals::default();
    let mut seen: HashSet<Fp> = HashSet::new();
    let idir = sysdir.join("store").join("index");
    if !sysdir.join("system.json").is_file() {
        return Err(DdError::NOT_FOUND);
    }
    if idir.is_dir() {
        for (id, ent) in index_logs(&idir)? {
            let mut buf = Vec::new();
            File::open(ent.path())?.read_to_end(&mut buf)?;
            for r in buf.chunks_exact(REC_SIZE) {
                match decode(id, r) {
                    Record::Seg(fp, loc) => {
                        t.stored_bytes += loc.stored as u64;
                        if seen.insert(fp) {
                            t.unique_segment_bytes += loc.raw as u64;
                            t.unique_segments += 1;
                        }
                    }
                    Record::Logical(b) => t.logical_bytes_written += b,
                    Record::Unknown => {}
                }
            }
        }
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
    let su = sysdir.join("su");
    if su.is_dir() {
        walk(&su, &mut t)?;
    }
    Ok(t)
}
