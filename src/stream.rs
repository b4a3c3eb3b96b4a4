//! Moving bytes between a pipe or file and storage, with bounded memory.
//!
//! Both directions overlap I/O on two threads joined by a bounded channel of
//! reusable 1 MiB buffers: at most `QUEUE + 2` buffers exist, whatever the
//! stream size, and nothing is allocated per block in steady state. The thread
//! that talks to storage is always the calling thread, so backends need not
//! be `Send`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::fd::AsFd;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::error::{is_broken_pipe, Error, Result};
use crate::integrity::{Checksum, Hasher};
use crate::storage::{ObjectReader, ObjectWriter};

/// The largest block (DD Boost's largest I/O) and the pipe size asked for.
pub const BLOCK: usize = 1 << 20;
/// Filled buffers that may wait between the two threads.
const QUEUE: usize = 8;

/// Asks the kernel for a 1 MiB pipe on `fd` if it is a pipe. Larger pipes
/// cut the number of context switches several times over.
pub fn enlarge_pipe(fd: impl AsFd) {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{fcntl, FcntlArg};
        use std::os::fd::AsRawFd;
        let _ = fcntl(fd.as_fd().as_raw_fd(), FcntlArg::F_SETPIPE_SZ(BLOCK as i32));
    }
}

enum Filled {
    Data(Vec<u8>, usize),
    End(Checksum),
    Failed(io::Error),
}

/// Reads until `buf` is full or the input ends; returns the count.
fn fill(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn buffer_pool(n: usize, size: usize) -> (Sender<Vec<u8>>, Receiver<Vec<u8>>) {
    let (tx, rx) = bounded(n);
    for _ in 0..n {
        tx.send(vec![0u8; size]).expect("pool has room");
    }
    (tx, rx)
}

/// Copies all of `input` into `writer` in whole blocks (only the last may be
/// short) and returns the checksum of what was written. Idle input is waited
/// for without limit. `source` names the input in error messages.
pub fn upload(
    input: Box<dyn Read + Send>,
    writer: &mut dyn ObjectWriter,
    source: &str,
) -> Result<Checksum> {
    let block = writer.block_size().clamp(4096, BLOCK);
    let (free_tx, free_rx) = buffer_pool(QUEUE + 1, block);
    let (full_tx, full_rx) = bounded::<Filled>(QUEUE);
    let mut input = input;
    std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let mut hasher = Hasher::new();
            while let Ok(mut buf) = free_rx.recv() {
                match fill(&mut input, &mut buf) {
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        if n > 0 && full_tx.send(Filled::Data(buf, n)).is_err() {
                            return;
                        }
                        if n < block {
                            let _ = full_tx.send(Filled::End(hasher.finish()));
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Filled::Failed(e));
                        return;
                    }
                }
            }
        })
        .map_err(|e| Error::io(format!("cannot start reader thread: {e}")))?;
    for msg in full_rx.iter() {
        match msg {
            Filled::Data(buf, n) => {
                writer.write(&buf[..n])?;
                // The reader may have stopped; then the buffer is not needed.
                let _ = free_tx.send(buf);
            }
            Filled::End(sum) => return Ok(sum),
            Filled::Failed(e) => {
                return Err(Error::io(format!("cannot read {source}: {e}")));
            }
        }
    }
    Err(Error::io(format!("reading {source} stopped unexpectedly")))
}

/// What `download` should verify.
pub enum Verify {
    /// A full read whose bytes must match this checksum.
    Whole(Checksum),
    /// No checksum (a subset, or an object without a record).
    Nothing,
}

/// Copies `ranges` of `reader` (in order) to `sink` and returns the bytes
/// written. With `Verify::Whole`, the last block is held back until the
/// checksum matches, so a corrupt object never looks completely restored.
/// A sink that goes away gives `ErrorKind::BrokenPipe`.
pub fn download(
    reader: &mut dyn ObjectReader,
    ranges: &[Range<u64>],
    sink: File,
    verify: Verify,
    object: &str,
) -> Result<u64> {
    let block = reader.block_size().clamp(4096, BLOCK);
    let (free_tx, free_rx) = buffer_pool(QUEUE + 2, block);
    let (full_tx, full_rx) = bounded::<(Vec<u8>, usize)>(QUEUE);
    let mut sink = sink;
    let writer = std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || -> io::Result<()> {
            for (buf, n) in full_rx.iter() {
                sink.write_all(&buf[..n])?;
                let _ = free_tx.send(buf);
            }
            sink.flush()
        })
        .map_err(|e| Error::io(format!("cannot start writer thread: {e}")))?;

    let result = feed(reader, ranges, block, &free_rx, &full_tx, verify, object);
    drop(full_tx);
    let written = writer.join();
    let sink_result = match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(sink_error(e, object)),
        Err(_) => Err(Error::io(format!("output writer of {object} failed"))),
    };
    match (result, sink_result) {
        // The sink's failure explains a feed that stopped early.
        (_, Err(e)) => Err(e),
        (r, Ok(())) => r,
    }
}

fn sink_error(e: io::Error, object: &str) -> Error {
    if is_broken_pipe(&e) {
        Error::broken_pipe()
    } else {
        Error::io(format!("cannot write output of {object}: {e}"))
    }
}

fn damaged(object: &str, at: u64, expected_end: u64) -> Error {
    Error::integrity(format!(
        "{object} ended at byte {at} but {expected_end} bytes were expected; the stored object is damaged"
    ))
}

fn mismatch(object: &str, actual: Checksum, expected: Checksum) -> Error {
    Error::integrity(format!(
        "{object} does not match the checksum recorded at backup time (size {} vs {}); the stored copy is damaged, restore it from another copy",
        actual.size, expected.size
    ))
}

fn feed(
    reader: &mut dyn ObjectReader,
    ranges: &[Range<u64>],
    block: usize,
    free_rx: &Receiver<Vec<u8>>,
    full_tx: &Sender<(Vec<u8>, usize)>,
    verify: Verify,
    object: &str,
) -> Result<u64> {
    let sink_gone = || Error::io("output stopped");
    let mut hasher = match verify {
        Verify::Whole(_) => Some(Hasher::new()),
        Verify::Nothing => None,
    };
    let mut held: Option<(Vec<u8>, usize)> = None;
    let mut total = 0u64;
    for range in ranges {
        let mut pos = range.start;
        while pos < range.end {
            let mut buf = free_rx.recv().map_err(|_| sink_gone())?;
            let want = (range.end - pos).min(block as u64) as usize;
            let mut got = 0;
            while got < want {
                let n = reader.read_at(&mut buf[got..want], pos + got as u64)?;
                if n == 0 {
                    return Err(damaged(object, pos + got as u64, range.end));
                }
                got += n;
            }
            pos += want as u64;
            total += want as u64;
            match hasher.as_mut() {
                Some(h) => {
                    h.update(&buf[..want]);
                    if let Some(prev) = held.replace((buf, want)) {
                        full_tx.send(prev).map_err(|_| sink_gone())?;
                    }
                }
                None => full_tx.send((buf, want)).map_err(|_| sink_gone())?,
            }
        }
    }
    if let (Some(h), Verify::Whole(expected)) = (hasher, verify) {
        let actual = h.finish();
        if actual != expected {
            return Err(mismatch(object, actual, expected));
        }
    }
    if let Some(last) = held {
        full_tx.send(last).map_err(|_| sink_gone())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    struct MemWriter(Arc<Mutex<Vec<u8>>>, Vec<usize>);
    impl ObjectWriter for MemWriter {
        fn write(&mut self, buf: &[u8]) -> Result<()> {
            self.1.push(buf.len());
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(())
        }
        fn commit(self: Box<Self>) -> Result<()> {
            Ok(())
        }
    }

    struct MemReader(Vec<u8>);
    impl ObjectReader for MemReader {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
            let off = (offset as usize).min(self.0.len());
            // Short reads, to prove callers loop.
            let n = buf.len().min(self.0.len() - off).min(300_000);
            buf[..n].copy_from_slice(&self.0[off..off + n]);
            Ok(n)
        }
    }

    /// A sink file and a way to read back what was written to it.
    fn sink() -> (File, tempfile::TempPath) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let (file, path) = f.into_parts();
        (file, path)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn upload_writes_whole_blocks() {
        let d = data(3 * BLOCK + 17);
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut w = MemWriter(out.clone(), Vec::new());
        let sum = upload(Box::new(io::Cursor::new(d.clone())), &mut w, "t").unwrap();
        assert_eq!(*out.lock().unwrap(), d);
        assert_eq!(w.1, vec![BLOCK, BLOCK, BLOCK, 17]);
        assert_eq!(sum.size, d.len() as u64);
    }

    #[test]
    fn download_ranges_and_verify() {
        let d = data(2 * BLOCK + 5);
        let mut h = Hasher::new();
        h.update(&d);
        let (f, p) = sink();
        let mut r = MemReader(d.clone());
        let whole = 0..d.len() as u64;
        let n = download(&mut r, &[whole], f, Verify::Whole(h.finish()), "o").unwrap();
        assert_eq!(n, d.len() as u64);
        assert_eq!(std::fs::read(&p).unwrap(), d);

        let (f, p) = sink();
        let ranges = [3..10, 1_500_000..1_500_001];
        download(&mut r, &ranges, f, Verify::Nothing, "o").unwrap();
        let mut want = d[3..10].to_vec();
        want.push(d[1_500_000]);
        assert_eq!(std::fs::read(&p).unwrap(), want);
    }

    #[test]
    fn corrupt_object_output_is_cut_short() {
        let d = data(BLOCK / 2);
        let mut h = Hasher::new();
        h.update(b"something else");
        let (f, p) = sink();
        let mut r = MemReader(d.clone());
        let whole = 0..d.len() as u64;
        let e = download(&mut r, &[whole], f, Verify::Whole(h.finish()), "o").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Integrity);
        assert!(std::fs::read(&p).unwrap().len() < d.len());
    }
}
