//! A storage wrapper that makes chosen calls fail, for the failure matrix
//! the tests run on every backend.
//!
//! `GPBACKUP_DDBOOST_PLUGIN_FAULTS` is a `;`-separated list of rules
//! `OP[:nth=N][:path=SUBSTR][:when=after]:err=KIND` or
//! `OP[:nth=N][:path=SUBSTR]:delay_ms=MS`:
//! * `OP`: `mkdir` (create_dir_all), `create`, `write`, `close` (a writer
//!   finalised), `commit` (its temporary renamed into place), `rename`,
//!   `stat` (the lookup `open` starts with, and `exists`), `open`, `read`,
//!   `list`, `delete` (delete_dir_all, delete, remove_dir_if_empty);
//! * `nth=N`: only the Nth matching call of the process (1-based);
//! * `path=SUBSTR`: only calls whose path contains SUBSTR;
//! * `err=KIND`: `io` (a storage failure, the default), `notfound` (a
//!   definite "no such object"), `streams` (every stream of the system
//!   taken; only an open or a create of a new file is refused so) or
//!   `panic` (the call panics, a bug in the middle of a call);
//! * `when=after`: the call is made, then fails (the effect took place but
//!   the caller hears an error, as when a connection is lost before the
//!   answer); `when=before`, the default, fails it without making it;
//! * `delay_ms=MS`: the call does not fail but takes MS ms longer (slow
//!   storage, such as NFS).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{
    ClosedObject, CreateOptions, DeleteSummary, Finding, ObjectInfo, ObjectReader, ObjectWriter,
    OpenOptions, ReaderFactory, Replica, Storage, StoragePath,
};

pub const VAR: &str = "GPBACKUP_DDBOOST_PLUGIN_FAULTS";

#[derive(Debug)]
struct Rule {
    op: String,
    nth: Option<u64>,
    path: Option<String>,
    err: ErrorKind,
    after: bool,
    /// `err=panic`.
    panic: bool,
    delay: Option<std::time::Duration>,
    seen: AtomicU64,
}

/// The rules, parsed once per process.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<Rule>,
}

impl Faults {
    /// The rules from the environment; None without any.
    pub fn from_env() -> Result<Option<Faults>> {
        match std::env::var(VAR) {
            Ok(spec) if !spec.is_empty() => Faults::parse(&spec).map(Some),
            _ => Ok(None),
        }
    }

    pub fn parse(spec: &str) -> Result<Faults> {
        let bad = |why: &str| Error::invalid(format!("{VAR}: {why}"));
        let mut rules = Vec::new();
        for r in spec.split(';').filter(|r| !r.trim().is_empty()) {
            let mut parts = r.trim().split(':');
            let op = parts.next().unwrap_or_default().to_string();
            let mut rule = Rule {
                op,
                nth: None,
                path: None,
                err: ErrorKind::Storage,
                after: false,
                panic: false,
                delay: None,
                seen: AtomicU64::new(0),
            };
            for p in parts {
                match p.split_once('=') {
                    Some(("nth", n)) => rule.nth = Some(n.parse().map_err(|_| bad(r))?),
                    Some(("path", s)) => rule.path = Some(s.to_string()),
                    Some(("err", "io")) => rule.err = ErrorKind::Storage,
                    Some(("err", "notfound")) => rule.err = ErrorKind::NotFound,
                    Some(("err", "streams")) => rule.err = ErrorKind::StreamLimit,
                    Some(("err", "panic")) => rule.panic = true,
                    Some(("when", "before")) => rule.after = false,
                    Some(("when", "after")) => rule.after = true,
                    Some(("delay_ms", ms)) => {
                        let ms: u64 = ms.parse().map_err(|_| bad(r))?;
                        rule.delay = Some(std::time::Duration::from_millis(ms));
                    }
                    _ => return Err(bad(r)),
                }
            }
            rules.push(rule);
        }
        Ok(Faults { rules })
    }

    /// The injected error for `op` on `path`, if a rule fires.
    fn check(&self, op: &str, path: &str) -> Result<()> {
        self.run(op, path, || Ok(()))
    }

    /// Runs the call `f`, failing it as a rule for `op` on `path` says:
    /// before it is made, or after.
    fn run<T>(&self, op: &str, path: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        for r in &self.rules {
            if r.op != op || r.path.as_deref().is_some_and(|s| !path.contains(s)) {
                continue;
            }
            let n = r.seen.fetch_add(1, Ordering::Relaxed) + 1;
            if r.nth.is_some_and(|want| want != n) {
                continue;
            }
            if let Some(d) = r.delay {
                std::thread::sleep(d);
                continue;
            }
            if r.panic {
                panic!("{op} {path}: injected panic");
            }
            if r.after {
                f()?;
            }
            return Err(match r.err {
                ErrorKind::NotFound => {
                    Error::not_found(format!("{path} not found (injected {op} fault)"))
                }
                ErrorKind::StreamLimit => Error::new(
                    ErrorKind::StreamLimit,
                    format!("{op} {path} failed: every stream is taken (injected)"),
                ),
                _ => Error::storage(format!("{op} {path} failed: injected I/O error")),
            });
        }
        f()
    }
}

/// Wraps a backend; calls the rules name fail before reaching it.
pub struct FaultyStorage {
    inner: Box<dyn Storage>,
    faults: std::sync::Arc<Faults>,
}

impl FaultyStorage {
    pub fn new(inner: Box<dyn Storage>, faults: Faults) -> FaultyStorage {
        FaultyStorage {
            inner,
            faults: std::sync::Arc::new(faults),
        }
    }

    /// Wrappers of several connections to one storage (lanes) that share
    /// `faults`: the Nth call counts over all of them.
    pub fn sharing(inners: Vec<Box<dyn Storage>>, faults: Faults) -> Vec<FaultyStorage> {
        let faults = std::sync::Arc::new(faults);
        inners
            .into_iter()
            .map(|inner| FaultyStorage {
                inner,
                faults: faults.clone(),
            })
            .collect()
    }

    fn writer(&self, path: &str, inner: Box<dyn ObjectWriter>) -> Box<dyn ObjectWriter> {
        Box::new(FaultyWriter {
            inner,
            faults: self.faults.clone(),
            path: path.to_string(),
        })
    }

    fn reader(&self, path: &str, inner: Box<dyn ObjectReader>) -> Box<dyn ObjectReader> {
        Box::new(FaultyReader {
            inner,
            faults: self.faults.clone(),
            path: path.to_string(),
        })
    }
}

impl Storage for FaultyStorage {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn create_dir_all(&self, dir: &StoragePath) -> Result<()> {
        self.faults.check("mkdir", dir)?;
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &StoragePath, opts: &CreateOptions) -> Result<Box<dyn ObjectWriter>> {
        let inner = self
            .faults
            .run("create", path, || self.inner.create(path, opts))?;
        Ok(self.writer(path, inner))
    }
    fn open(&self, path: &StoragePath, opts: &OpenOptions) -> Result<Box<dyn ObjectReader>> {
        self.faults.check("stat", path)?;
        self.faults.check("open", path)?;
        Ok(self.reader(path, self.inner.open(path, opts)?))
    }
    fn list(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.faults.check("list", dir)?;
        self.inner.list(dir)
    }
    fn list_all(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.faults.check("list", dir)?;
        self.inner.list_all(dir)
    }
    fn list_names(&self, dir: &StoragePath, hidden: bool) -> Result<Vec<String>> {
        self.faults.check("list", dir)?;
        self.inner.list_names(dir, hidden)
    }
    fn delete_dir_all(&self, dir: &StoragePath) -> Result<DeleteSummary> {
        self.faults.check("delete", dir)?;
        self.inner.delete_dir_all(dir)
    }
    fn delete(&self, path: &StoragePath) -> Result<bool> {
        self.faults.check("delete", path)?;
        self.inner.delete(path)
    }
    fn exists(&self, path: &StoragePath) -> Result<bool> {
        self.faults.check("stat", path)?;
        self.inner.exists(path)
    }
    fn remove_dir_if_empty(&self, dir: &StoragePath) -> Result<bool> {
        self.faults.check("delete", dir)?;
        self.inner.remove_dir_if_empty(dir)
    }
    fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        self.faults
            .run("rename", to, || self.inner.rename(from, to))
    }
    fn replica(&self) -> Option<&dyn Replica> {
        self.inner.replica()
    }
    fn facts(&self, write: bool) -> Vec<Finding> {
        self.inner.facts(write)
    }
}

struct FaultyWriter {
    inner: Box<dyn ObjectWriter>,
    faults: std::sync::Arc<Faults>,
    path: String,
}

impl ObjectWriter for FaultyWriter {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.faults.check("write", &self.path)?;
        self.inner.write(buf)
    }
    fn close(self: Box<Self>) -> Result<Box<dyn ClosedObject>> {
        let FaultyWriter {
            inner,
            faults,
            path,
        } = *self;
        let inner = faults.run("close", &path, || inner.close())?;
        Ok(Box::new(FaultyClosed {
            inner,
            faults,
            path,
        }))
    }
}

struct FaultyClosed {
    inner: Box<dyn ClosedObject>,
    faults: std::sync::Arc<Faults>,
    path: String,
}

impl ClosedObject for FaultyClosed {
    fn temp(&self) -> &StoragePath {
        self.inner.temp()
    }
    fn rename(&mut self) -> Result<()> {
        let inner = &mut self.inner;
        self.faults.run("commit", &self.path, || inner.rename())
    }
    fn renamed(&mut self) -> Result<bool> {
        self.faults.check("stat", self.inner.temp())?;
        self.inner.renamed()
    }
}

struct FaultyReader {
    inner: Box<dyn ObjectReader>,
    faults: std::sync::Arc<Faults>,
    path: String,
}

impl ObjectReader for FaultyReader {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn exact_size(&mut self) -> Result<u64> {
        self.inner.exact_size()
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.faults.check("read", &self.path)?;
        self.inner.read_at(buf, offset)
    }
    fn more_readers(&self) -> Option<ReaderFactory> {
        let inner = self.inner.more_readers()?;
        let (faults, path) = (self.faults.clone(), self.path.clone());
        let open = inner.open;
        Some(ReaderFactory {
            same_file: inner.same_file,
            open: Box::new(move |n| {
                open(n)
                    .into_iter()
                    .map(|inner| {
                        Box::new(FaultyReader {
                            inner,
                            faults: faults.clone(),
                            path: path.clone(),
                        }) as Box<dyn ObjectReader>
                    })
                    .collect()
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_fire() {
        let f = Faults::parse("write:nth=2:err=io;open:path=obj:err=notfound").unwrap();
        assert!(f.check("write", "a").is_ok());
        assert!(f.check("write", "a").is_err());
        assert!(f.check("write", "a").is_ok());
        assert!(f.check("open", "x").is_ok());
        let e = f.check("open", "dir/obj").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::NotFound);
        assert!(Faults::parse("write:bogus").is_err());
        let slow = Faults::parse("read:delay_ms=30").unwrap();
        let t = std::time::Instant::now();
        assert!(slow.check("read", "a").is_ok());
        assert!(t.elapsed() >= std::time::Duration::from_millis(30));
        assert!(Faults::parse("write:nth=x").is_err());
        let after = Faults::parse("rename:when=after").unwrap();
        let mut made = false;
        assert!(after
            .run("rename", "a", || {
                made = true;
                Ok(())
            })
            .is_err());
        assert!(made, "the call is made before it fails");
    }
}
