//! Upload: the input read into reusable buffers on one thread, written to
//! storage on the calling thread.

use std::io::{self, Read};

use crossbeam_channel::{bounded, Receiver};

use crate::data::integrity::{Entry, Hasher};
use crate::error::{Error, Result};
use crate::process::scope::Scope;
use crate::process::signals;
use crate::storage::ObjectWriter;

use super::buffers::Buffer;
use super::{BLOCK, QUEUE};

pub(super) enum Filled {
    Data(Buffer, usize),
    End(Box<Entry>),
    Failed(io::Error),
}

/// Reads until `buf` is full or the input ends; returns the count.
pub(super) fn fill(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// Up to `n` buffers of `size` bytes, taken as they are first needed (a small
/// object needs one) and then reused as they come back on `free`.
struct Buffers {
    free: Receiver<Buffer>,
    made: usize,
    n: usize,
    size: usize,
}

impl Buffers {
    /// A buffer, waiting for one to come back once `n` exist; None when no
    /// more will.
    fn next(&mut self) -> Option<Buffer> {
        if let Ok(b) = self.free.try_recv() {
            return Some(b);
        }
        if self.made < self.n {
            self.made += 1;
            return Some(Buffer::new(self.size));
        }
        self.free.recv().ok()
    }
}

/// Copies all of `input` into `writer` in whole blocks (only the last may be
/// short) and returns the record entry (size, digests) of what was written. Idle input is waited
/// for without limit. `source` names the input in error messages.
pub fn upload(
    input: Box<dyn Read + Send>,
    writer: &mut dyn ObjectWriter,
    source: &str,
) -> Result<Entry> {
    let block = writer.block_size().clamp(4096, BLOCK);
    let (free_tx, free_rx) = bounded(QUEUE + 1);
    let mut buffers = Buffers {
        free: free_rx,
        made: 0,
        n: QUEUE + 1,
        size: block,
    };
    let (full_tx, full_rx) = bounded::<Filled>(QUEUE);
    let mut input = input;
    // The reader is part of the command (a broker request's, in the broker).
    let scope = Scope::current();
    std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let _in = scope.enter();
            let mut hasher = Hasher::new();
            while let Some(mut buf) = buffers.next() {
                match fill(&mut input, &mut buf) {
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        if n > 0 && full_tx.send(Filled::Data(buf, n)).is_err() {
                            return;
                        }
                        if n < block {
                            let _ = full_tx.send(Filled::End(Box::new(hasher.finish())));
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
            Filled::End(entry) => return Ok(*entry),
            Filled::Failed(e) => return Err(read_failed(source, e)),
        }
    }
    Err(Error::internal(format!(
        "reading {source} stopped unexpectedly"
    )))
}

/// Reads `input` until `limit` bytes or its end, whichever comes first: the
/// whole of a small input, or the head of a larger one. `source` names the
/// input in error messages. The room for `limit` bytes is not zeroed first
/// (a small object's head touches only the pages it fills).
pub fn read_head(input: &mut dyn Read, limit: usize, source: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(limit);
    input
        .take(limit as u64)
        .read_to_end(&mut buf)
        .map_err(|e| read_failed(source, e))?;
    Ok(buf)
}

/// A failed read of `source`: the interrupt when the command was
/// interrupted (its input stops at one, `input.rs`).
fn read_failed(source: &str, e: io::Error) -> Error {
    match signals::check() {
        Err(stopped) => stopped,
        Ok(()) => Error::io(format!("cannot read {source}: {e}")),
    }
}
