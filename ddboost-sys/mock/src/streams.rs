//! Stream accounting across processes.
//!
//! Each process that has opened streams on a system keeps a small file `streams/<pid>` in
//! the system directory holding its counts of open read streams, open write streams and
//! running file copies. The file is made once and then rewritten in place (fixed width, one
//! `pwrite`), as an appliance keeps its counts without a file per change. A reader of the
//! counts sums every file and deletes those of processes that no longer exist (no
//! `/proc/<pid>`), so a killed process stops counting.

use parking_lot::Mutex;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub read: i32,
    pub write: i32,
    pub filecopy: i32,
}

impl Counts {
    pub fn total(&self) -> i32 {
        self.read + self.write + self.filecopy
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Read,
    Write,
    FileCopy,
}

pub struct StreamTable {
    dir: PathBuf,
    mine: Mutex<Counts>,
    /// This process's file, once made (with the pid it was made for).
    file: Mutex<Option<(u32, File)>>,
    cached: Mutex<Option<(Instant, Counts)>>,
}

impl StreamTable {
    pub fn new(dir: PathBuf) -> Self {
        StreamTable {
            dir,
            mine: Mutex::new(Counts::default()),
            file: Mutex::new(None),
            cached: Mutex::new(None),
        }
    }

    /// Adds `delta` to this process's count of `kind` and publishes the counts.
    pub fn add(&self, kind: Kind, delta: i32) {
        let mut c = self.mine.lock();
        match kind {
            Kind::Read => c.read += delta,
            Kind::Write => c.write += delta,
            Kind::FileCopy => c.filecopy += delta,
        }
        // Failing to publish only makes other processes' counts stale; never fail the call.
        self.publish(&c);
        *self.cached.lock() = None;
    }

    /// Writes `c` to this process's file, making it on first use. Fixed width, so one
    /// write replaces the whole content; a reader that sees a half-written line ignores it.
    fn publish(&self, c: &Counts) {
        let pid = std::process::id();
        let mut file = self.file.lock();
        if file.as_ref().is_none_or(|(p, _)| *p != pid) {
            if c.total() <= 0 {
                return;
            }
            let made = fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(self.dir.join(pid.to_string()));
            match made {
                Ok(f) => *file = Some((pid, f)),
                Err(_) => return,
            }
        }
        if let Some((_, f)) = file.as_ref() {
            let line = format!("{:>10} {:>10} {:>10}\n", c.read, c.write, c.filecopy);
            let _ = f.write_all_at(line.as_bytes(), 0);
        }
    }

    /// Counts of all processes (stale entries of dead processes are removed).
    pub fn all(&self) -> Counts {
        let mine_pid = std::process::id().to_string();
        let mut total = *self.mine.lock();
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') || name == mine_pid || name.parse::<u32>().is_err() {
                    continue;
                }
                if !std::path::Path::new("/proc").join(name).exists() {
                    let _ = fs::remove_file(ent.path());
                    continue;
                }
                if let Ok(s) = fs::read_to_string(ent.path()) {
                    let v: Vec<i32> = s
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    if v.len() == 3 {
                        total.read += v[0];
                        total.write += v[1];
                        total.filecopy += v[2];
                    }
                }
            }
        }
        total
    }

    /// Like [`all`](Self::all) but cached for a short while (for bandwidth sharing).
    pub fn all_cached(&self) -> Counts {
        let mut c = self.cached.lock();
        if let Some((t, v)) = *c {
            if t.elapsed() < Duration::from_millis(200) {
                return v;
            }
        }
        let v = self.all();
        *c = Some((Instant::now(), v));
        v
    }
}
