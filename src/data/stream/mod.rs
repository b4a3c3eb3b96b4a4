//! Moving bytes between a pipe or file and storage, with bounded memory.
//!
//! Both directions overlap I/O on threads joined by bounded channels of
//! reusable 1 MiB buffers, so memory is bounded whatever the stream size and
//! nothing is allocated per block in steady state. An upload reads its input
//! on one thread while the calling thread writes to storage (`QUEUE + 1`
//! buffers): the next block is ready when a write returns. A download reads
//! on the calling thread, which also puts the blocks in order and checks
//! them, while a writer thread writes them out; on slow storage more reader
//! threads keep up to `read_ahead` reads in flight (`read_ahead +
//! OUT_QUEUE + 4` buffers at most).
//!
//! The buffers are the process's (`buffers.rs`): kept when a stream is done
//! with them, for the next (a connection broker runs many).
//!
//! `upload.rs` is the upload, `input.rs` its input as a command reads it
//! (stopping at an interrupt); a download is set up and joined in
//! `download.rs`, reads the blocks `plan.rs` lists, runs its reader threads
//! and puts their blocks in order in `threads.rs`, and checks each block in
//! `check.rs`.

use std::os::fd::AsFd;

use crate::data::integrity::Entry;

mod blocks;
mod buffers;
mod download;
mod input;
mod plan;
mod threads;
mod upload;

pub use buffers::release as release_buffers;
pub use download::{download, download_ahead};
pub use input::Input;
pub use upload::{read_head, upload};

/// The largest block (DD Boost's largest I/O) and the pipe size asked for.
pub const BLOCK: usize = 1 << 20;
/// Filled buffers that may wait between the two threads of an upload.
const QUEUE: usize = 8;
/// Verified blocks that may wait for the output writer of a download.
const OUT_QUEUE: usize = 4;

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

/// What `download` should verify.
pub enum Verify {
    /// The entries of the object's records whose size matches (at least
    /// one): every block is checked before it is written out.
    Entries(Vec<Entry>),
    /// Nothing: an object without a record.
    Nothing,
}

/// Reads in flight when the config does not say (option `read_ahead`):
/// measured on the mock Data Domain at 5 ms per call, 8 reads restore more
/// than 5 times as fast as 1, and more gain little (see README, Benchmarks).
pub const DEFAULT_READ_AHEAD: usize = 8;
/// The most reads in flight a config may ask for.
pub const MAX_READ_AHEAD: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::integrity::Hasher;
    use crate::error::{Error, ErrorKind, Result};
    use crate::storage::{ObjectReader, ObjectWriter};
    use std::fs::File;
    use std::io;
    use std::ops::Range;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    struct MemWriter(Arc<Mutex<Vec<u8>>>, Vec<usize>);
    impl ObjectWriter for MemWriter {
        fn block_size(&self) -> usize {
            BLOCK
        }
        fn write(&mut self, buf: &[u8]) -> Result<()> {
            self.1.push(buf.len());
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(())
        }
        fn close(self: Box<Self>) -> Result<Box<dyn crate::storage::ClosedObject>> {
            Err(crate::error::Error::io("not used"))
        }
    }

    struct MemReader(Vec<u8>);
    impl ObjectReader for MemReader {
        fn block_size(&self) -> usize {
            BLOCK
        }
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
        assert_eq!(sum.sum.size, d.len() as u64);
    }

    fn entry(d: &[u8]) -> Entry {
        let mut h = Hasher::new();
        h.update(d);
        h.finish()
    }

    fn run(d: &[u8], ranges: &[Range<u64>], verify: Verify) -> (Result<u64>, Vec<u8>) {
        let (f, p) = sink();
        let mut r = MemReader(d.to_vec());
        let res = download(&mut r, ranges, f, verify, "o");
        (res, std::fs::read(&p).unwrap())
    }

    #[test]
    fn download_ranges_and_verify() {
        let d = data(2 * BLOCK + 5);
        let whole = 0..d.len() as u64;
        let (n, out) = run(
            &d,
            std::slice::from_ref(&whole),
            Verify::Entries(vec![entry(&d)]),
        );
        assert_eq!(n.unwrap(), d.len() as u64);
        assert_eq!(out, d);

        let ranges = [
            3..10,
            1_500_000..1_500_001,
            1_500_001..1_500_001,
            2_000_000..2_090_000,
        ];
        let mut want = d[3..10].to_vec();
        want.push(d[1_500_000]);
        want.extend_from_slice(&d[2_000_000..2_090_000]);
        for verify in [Verify::Nothing, Verify::Entries(vec![entry(&d)])] {
            let (n, out) = run(&d, &ranges, verify);
            assert_eq!(n.unwrap(), want.len() as u64);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn one_block_on_the_calling_thread() {
        let d = data(BLOCK - 3);
        let whole = 0..d.len() as u64;
        let (n, out) = run(
            &d,
            std::slice::from_ref(&whole),
            Verify::Entries(vec![entry(&d)]),
        );
        assert_eq!(n.unwrap(), d.len() as u64);
        assert_eq!(out, d);
        let (n, out) = run(&d, &[5..9, 100..100, 1000..1010], Verify::Nothing);
        assert_eq!(n.unwrap(), 14);
        assert_eq!(out, [&d[5..9], &d[1000..1010]].concat());
        let empty = 0..0;
        let (n, out) = run(
            &[],
            std::slice::from_ref(&empty),
            Verify::Entries(vec![entry(&[])]),
        );
        assert_eq!(n.unwrap(), 0);
        assert!(out.is_empty());
        let mut bad = d.clone();
        bad[7] ^= 1;
        let (res, out) = run(&bad, &[whole], Verify::Entries(vec![entry(&d)]));
        assert_eq!(res.unwrap_err().kind(), crate::error::ErrorKind::Integrity);
        assert!(out.is_empty());
    }

    #[test]
    fn corrupt_block_is_never_output() {
        let d = data(3 * BLOCK + 10);
        let e = entry(&d);
        let mut bad = d.clone();
        bad[BLOCK + 7] ^= 0x40;
        let whole = 0..d.len() as u64;
        let (res, out) = run(&bad, &[whole], Verify::Entries(vec![e.clone()]));
        assert_eq!(res.unwrap_err().kind(), crate::error::ErrorKind::Integrity);
        // Only the verified first block went out.
        assert_eq!(out, d[..BLOCK]);
        // A subset touching the damaged block fails without its bytes.
        let (res, out) = run(
            &bad,
            &[10..20, BLOCK as u64 + 100..BLOCK as u64 + 200],
            Verify::Entries(vec![e]),
        );
        assert!(res.is_err());
        assert_eq!(out, d[10..20]);
    }

    #[test]
    fn either_candidate_may_match() {
        let old = data(2 * BLOCK);
        let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(1)).collect();
        let cands = || vec![entry(&old), entry(&new)];
        let whole = 0..old.len() as u64;
        assert_eq!(
            run(&old, std::slice::from_ref(&whole), Verify::Entries(cands())).1,
            old
        );
        assert_eq!(
            run(&new, std::slice::from_ref(&whole), Verify::Entries(cands())).1,
            new
        );
        // A mix of both versions matches neither.
        let mut mixed = old[..BLOCK].to_vec();
        mixed.extend_from_slice(&new[BLOCK..]);
        let (res, out) = run(&mixed, &[whole], Verify::Entries(cands()));
        assert!(res.is_err());
        assert_eq!(out, old[..BLOCK]);
    }

    /// A reader of `data` whose reads take a little while (varying, so
    /// reads in flight finish out of order); its more readers read `others`
    /// (the same bytes unless a test says otherwise).
    struct SlowReader {
        data: Arc<Vec<u8>>,
        others: Arc<Vec<u8>>,
        same_file: bool,
        reads: Arc<std::sync::atomic::AtomicUsize>,
        /// Readers opened besides the first.
        opened: Arc<std::sync::atomic::AtomicUsize>,
        fail_at: Option<u64>,
    }

    impl SlowReader {
        fn new(data: &[u8]) -> SlowReader {
            let data = Arc::new(data.to_vec());
            SlowReader {
                others: data.clone(),
                data,
                same_file: true,
                reads: Default::default(),
                opened: Default::default(),
                fail_at: None,
            }
        }
    }

    impl ObjectReader for SlowReader {
        fn block_size(&self) -> usize {
            BLOCK
        }
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
            if self.fail_at == Some(offset) {
                return Err(Error::storage("injected read failure"));
            }
            let k = self.reads.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_micros(
                1000 + (k as u64 * 7919) % 3000,
            ));
            let off = (offset as usize).min(self.data.len());
            let n = buf.len().min(self.data.len() - off);
            buf[..n].copy_from_slice(&self.data[off..off + n]);
            Ok(n)
        }
        fn more_readers(&self) -> Option<crate::storage::ReaderFactory> {
            let (others, reads, fail_at) = (self.others.clone(), self.reads.clone(), self.fail_at);
            let opened = self.opened.clone();
            Some(crate::storage::ReaderFactory {
                same_file: self.same_file,
                open: Box::new(move |n| {
                    opened.fetch_add(n, Ordering::Relaxed);
                    (0..n)
                        .map(|_| {
                            Box::new(SlowReader {
                                data: others.clone(),
                                others: others.clone(),
                                same_file: true,
                                reads: reads.clone(),
                                opened: opened.clone(),
                                fail_at,
                            }) as Box<dyn ObjectReader>
                        })
                        .collect()
                }),
            })
        }
    }

    fn run_ahead(
        r: &mut SlowReader,
        ranges: &[Range<u64>],
        verify: Verify,
        read_ahead: usize,
    ) -> (Result<u64>, Vec<u8>) {
        let (f, p) = sink();
        let res = download_ahead(r, ranges, f, verify, "o", read_ahead);
        (res, std::fs::read(&p).unwrap())
    }

    #[test]
    fn reads_in_flight_reach_the_output_in_order() {
        let d = data(24 * BLOCK + 123);
        let whole = 0..d.len() as u64;
        let ranges: Vec<Range<u64>> = (0..400u64)
            .map(|i| i * 23_000..i * 23_000 + 1 + i % 5000)
            .collect();
        let want_ranges: Vec<u8> = ranges
            .iter()
            .flat_map(|r| d[r.start as usize..r.end as usize].iter().copied())
            .collect();
        for read_ahead in [1, 2, 4, 8, 32] {
            for verified in [true, false] {
                let verify = || {
                    if verified {
                        Verify::Entries(vec![entry(&d)])
                    } else {
                        Verify::Nothing
                    }
                };
                let mut r = SlowReader::new(&d);
                let (n, out) =
                    run_ahead(&mut r, std::slice::from_ref(&whole), verify(), read_ahead);
                assert_eq!(n.unwrap(), d.len() as u64);
                assert!(out == d, "read_ahead {read_ahead}, verified {verified}");
                assert_eq!(r.opened.load(Ordering::Relaxed), read_ahead.min(25) - 1);
                let (n, out) = run_ahead(&mut r, &ranges, verify(), read_ahead);
                assert_eq!(n.unwrap(), want_ranges.len() as u64);
                assert!(out == want_ranges, "ranges, read_ahead {read_ahead}");
            }
        }
    }

    #[test]
    fn corrupt_block_is_never_output_with_reads_in_flight() {
        let d = data(24 * BLOCK + 10);
        let e = entry(&d);
        let mut bad = d.clone();
        bad[12 * BLOCK + 7] ^= 0x40;
        for read_ahead in [2, 8] {
            let mut r = SlowReader::new(&bad);
            let whole = 0..d.len() as u64;
            let (res, out) = run_ahead(
                &mut r,
                &[whole],
                Verify::Entries(vec![e.clone()]),
                read_ahead,
            );
            assert_eq!(res.unwrap_err().kind(), ErrorKind::Integrity);
            assert!(
                out == d[..12 * BLOCK],
                "read_ahead {read_ahead}: {} bytes out",
                out.len()
            );
        }
    }

    #[test]
    fn readers_that_opened_another_version_are_not_trusted() {
        let old = data(24 * BLOCK + 99);
        let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(3)).collect();
        let whole = 0..old.len() as u64;
        // The object was replaced between the first open and the others.
        let replaced = || {
            let mut r = SlowReader::new(&old);
            r.others = Arc::new(new.clone());
            r.same_file = false;
            r
        };
        // Only the old version is recorded: every block comes out old.
        let (n, out) = run_ahead(
            &mut replaced(),
            std::slice::from_ref(&whole),
            Verify::Entries(vec![entry(&old)]),
            8,
        );
        n.unwrap();
        assert!(out == old);
        // Both are candidates: the output is one of them, whole.
        let (n, out) = run_ahead(
            &mut replaced(),
            std::slice::from_ref(&whole),
            Verify::Entries(vec![entry(&old), entry(&new)]),
            8,
        );
        n.unwrap();
        assert!(out == old || out == new, "a mix of versions");
        // Nothing to verify against: only the first reader is used.
        let (n, out) = run_ahead(&mut replaced(), &[whole], Verify::Nothing, 8);
        n.unwrap();
        assert!(out == old);
    }

    #[test]
    fn a_failing_read_fails_the_download_after_the_blocks_before_it() {
        let d = data(24 * BLOCK);
        let mut r = SlowReader::new(&d);
        r.fail_at = Some(10 * BLOCK as u64);
        let whole = 0..d.len() as u64;
        let (res, out) = run_ahead(&mut r, &[whole], Verify::Entries(vec![entry(&d)]), 4);
        assert_eq!(res.unwrap_err().kind(), ErrorKind::Storage);
        assert!(out == d[..10 * BLOCK]);
    }

    #[test]
    fn v1_records_hold_back_the_last_block() {
        let d = data(BLOCK / 2 + BLOCK);
        let v1 = |d: &[u8]| Entry {
            sum: entry(d).sum,
            blocks: None,
        };
        let whole = 0..d.len() as u64;
        let (res, out) = run(
            &d,
            std::slice::from_ref(&whole),
            Verify::Entries(vec![v1(&d)]),
        );
        res.unwrap();
        assert_eq!(out, d);
        let (res, out) = run(&d, &[whole], Verify::Entries(vec![v1(b"something else")]));
        assert_eq!(res.unwrap_err().kind(), crate::error::ErrorKind::Integrity);
        assert!(out.len() < d.len());
    }

    /// An object held whole in memory, which fails any read.
    struct InMemory(Vec<u8>);
    impl ObjectReader for InMemory {
        fn block_size(&self) -> usize {
            64 * 1024
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&mut self, _: &mut [u8], _: u64) -> Result<usize> {
            Err(crate::error::Error::storage(
                "read of an object held in memory",
            ))
        }
        fn whole(&self) -> Option<&[u8]> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_object_held_in_memory_goes_out_range_by_range_without_a_read() {
        // Larger than the reader's block: still one read, of the bytes held.
        let d = data(300_000);
        let ranges = [5..10, 100..4000, 299_990..300_000];
        let want: Vec<u8> = [&d[5..10], &d[100..4000], &d[299_990..]].concat();
        for verify in [Verify::Nothing, Verify::Entries(vec![entry(&d)])] {
            let (f, p) = sink();
            let n = download(&mut InMemory(d.clone()), &ranges, f, verify, "o").unwrap();
            assert_eq!(n, want.len() as u64);
            assert_eq!(std::fs::read(&p).unwrap(), want);
        }
        // Checked all the same: bytes no entry describes are not output.
        let (f, p) = sink();
        let whole = 0..d.len() as u64;
        let err = download(
            &mut InMemory(d.clone()),
            std::slice::from_ref(&whole),
            f,
            Verify::Entries(vec![entry(b"other")]),
            "o",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(std::fs::read(&p).unwrap().is_empty());
    }
}
