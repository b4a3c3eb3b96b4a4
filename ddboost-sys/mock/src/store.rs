//! The segment store of one emulated Data Domain system.
//!
//! Layout of a system directory (`$DDBOOST_MOCK_ROOT/<hostname>/`):
//!
//! ```text
//! system.json                  users (salted SHA-256 password hashes)
//! su/<storage-unit>/...        the namespace: real directories, and one recipe file per file
//! store/containers/<xy>/<id>.ctr  append-only containers of compressed segments
//! store/index/<id>.idx         append-only index log of the container with the same id
//! store/fp/<xyz>, logical, SEQ the shared index: compacted logs, by fingerprint (see index)
//! store/compact.lock           held by the process compacting logs
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
//! Logs of writers that are gone are compacted into the shared index ([`crate::index`]),
//! so a process reads only the logs of live writers and the shards its lookups need.

use crate::error::{DdError, DdResult};
use crate::index::{self, SharedIndex};
use crate::records::{self, decode_all, encode_logical, encode_seg, Record};
use crate::segment::{Fp, Loc};
use crate::util::now_nanos;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Containers a process keeps open for reading.
const OPEN_CONTAINERS: usize = 512;

pub use crate::totals::{totals, Totals};

const FLUSH_BYTES: usize = 4 << 20;
const CONTAINER_ROLL_BYTES: u64 = 1 << 30;
const REFRESH_EVERY: Duration = Duration::from_millis(500);

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
    fn new(id: u64, ctr: File, idx: File) -> Writer {
        Writer {
            id,
            ctr,
            idx,
            ctr_len: 0,
            ctr_buf: Vec::with_capacity(FLUSH_BYTES + (1 << 20)),
            idx_buf: Vec::new(),
            pending: HashMap::new(),
            broken: false,
        }
    }

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
        self.idx_buf
            .extend_from_slice(&encode_logical(bytes, (0, 0)));
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
            let mut index = sys.logs.write();
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
    /// Bytes read so far of the logs of other writers.
    offsets: HashMap<u64, u64>,
    own: HashSet<u64>,
    last: Option<Instant>,
}

/// One emulated Data Domain system as seen by this process.
pub struct System {
    pub dir: PathBuf,
    pub host: String,
    /// Records of the logs not yet compacted (other writers' and this process's own).
    logs: RwLock<HashMap<Fp, Loc>>,
    shared: SharedIndex,
    scan: Mutex<ScanState>,
    pool: Mutex<Vec<Writer>>,
    containers: RwLock<HashMap<u64, Arc<File>>>,
    pub streams: crate::streams::StreamTable,
}

impl System {
    pub fn su_root(&self) -> PathBuf {
        self.dir.join("su")
    }
    fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
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

    /// Opens an existing system directory and reads the index logs of live writers.
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
            logs: RwLock::new(HashMap::new()),
            shared: SharedIndex::new(&dir.join("store")),
            scan: Mutex::new(ScanState::default()),
            pool: Mutex::new(Vec::new()),
            containers: RwLock::new(HashMap::new()),
            streams: crate::streams::StreamTable::new(dir.join("streams")),
        });
        sys.refresh(true)?;
        Ok(sys)
    }

    /// Where the system holds the segment `fp`, as far as this process has looked.
    pub fn lookup(&self, fp: &Fp) -> Option<Loc> {
        if let Some(l) = self.logs.read().get(fp) {
            return Some(*l);
        }
        self.shared.lookup(fp)
    }

    /// Reads index records appended by other processes since the last look (at most every
    /// 0.5 s unless `force`); compacts the logs first when there are many.
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
        let mut logs = records::index_logs(&self.index_dir())?;
        if logs.len() >= index::COMPACT_AT && index::compact(&self.store_dir())? > 0 {
            logs = records::index_logs(&self.index_dir())?;
        }
        let fresh = read_logs(&mut scan, &logs)?;
        // After the logs: a log compacted meanwhile is in the shards this makes current.
        self.shared.sync();
        if !fresh.is_empty() {
            let mut index = self.logs.write();
            index.reserve(fresh.len());
            for (fp, loc) in fresh {
                index.entry(fp).or_insert(loc);
            }
        }
        Ok(())
    }

    /// Drops the pooled writers: the next stream gets a new container and log, as a new
    /// process would (used by bulk fill).
    pub fn retire_writers(&self) {
        self.pool.lock().clear();
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
            match create_container(&self.container_path(id)) {
                Ok(ctr) => {
                    let idx = self.create_log(id)?;
                    self.scan.lock().own.insert(id);
                    return Ok(Writer::new(id, ctr, idx));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Creates the index log of container `id`, locked for as long as this process keeps
    /// it open: it is created under a name compaction ignores, locked, then renamed.
    fn create_log(&self, id: u64) -> DdResult<File> {
        let dir = self.index_dir();
        let tmp = dir.join(format!(".{id:016x}.new"));
        let idx = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&tmp)?;
        let placed = index::try_lock(&idx).and_then(|locked| {
            if !locked {
                return Err(DdError::IO);
            }
            fs::rename(&tmp, dir.join(format!("{id:016x}.idx"))).map_err(DdError::from)
        });
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(idx)
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

    /// `store/containers/<xy>/<id>.ctr`, `xy` from bits 48-55 of the id: 256 folders, so
    /// creating a container stays cheap in a system holding hundreds of thousands.
    fn container_path(&self, id: u64) -> PathBuf {
        self.containers_dir()
            .join(format!("{:02x}", (id >> 48) & 0xff))
            .join(format!("{id:016x}.ctr"))
    }

    /// Container `id`, opened once and kept (up to [`OPEN_CONTAINERS`]).
    fn container(&self, id: u64) -> DdResult<Arc<File>> {
        if let Some(f) = self.containers.read().get(&id) {
            return Ok(f.clone());
        }
        let f = match File::open(self.container_path(id)) {
            // Systems written before containers had folders.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                File::open(self.containers_dir().join(format!("{id:016x}.ctr")))
            }
            r => r,
        };
        let f = Arc::new(f?);
        let mut open = self.containers.write();
        // A bounded number of open containers: a process reading a system of
        // many small objects (one container each) must not run out of
        // descriptors. Readers keep the ones they hold.
        if open.len() >= OPEN_CONTAINERS {
            open.clear();
        }
        open.insert(id, f.clone());
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

/// Creates a new container file (and its folder when missing).
fn create_container(path: &Path) -> std::io::Result<File> {
    let create = || OpenOptions::new().append(true).create_new(true).open(path);
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            create()
        }
        r => r,
    }
}

/// Reads the records other writers appended to `logs` since the last look. A log that is
/// gone was compacted: its records are in the shared index.
fn read_logs(scan: &mut ScanState, logs: &[(u64, PathBuf)]) -> DdResult<Vec<(Fp, Loc)>> {
    let mut fresh = Vec::new();
    for (id, path) in logs {
        if scan.own.contains(id) {
            continue;
        }
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let off = scan.offsets.get(id).copied().unwrap_or(0);
        let (buf, end) = records::read_whole(&f, off)?;
        for r in decode_all(*id, off, &buf) {
            if let Record::Seg(fp, loc) = r {
                fresh.push((fp, loc));
            }
        }
        scan.offsets.insert(*id, end);
    }
    let listed: HashSet<u64> = logs.iter().map(|(id, _)| *id).collect();
    scan.offsets.retain(|id, _| listed.contains(id));
    Ok(fresh)
}
