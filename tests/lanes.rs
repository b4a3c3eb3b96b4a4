//! A small object's steps over lanes (several connections to one storage),
//! in-process: byte-exact round trips with 1 to 3 lanes, the calls a small
//! object costs before the reply and after it (`Deferred`), the overwrite
//! and first-write sweeps with every call failing in turn, before and after
//! its effect, a
//! stream limit falling back to one step after another, a write
//! interrupted before its record was renamed, and a record that does not
//! match the data still refused.

mod support;

use std::io::{Read, Seek};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use gpbackup_ddboost_plugin::data::repo::{self, Deferred, Part, WriteInfo};
use gpbackup_ddboost_plugin::error::{ErrorKind, Result};
use gpbackup_ddboost_plugin::storage::faulty::{Faults, FaultyStorage};
use gpbackup_ddboost_plugin::storage::memory::MemoryStorage;
use gpbackup_ddboost_plugin::storage::{Storage, StoragePath};

use support::bytes;

fn sp(text: &str) -> StoragePath {
    StoragePath::parse(text).unwrap()
}

const MIB: usize = 1 << 20;
const TS: &str = "20990101000000";
/// Sizes around the one-block limit of the concurrent path.
const SIZES: [usize; 7] = [0, 1, 5000, MIB - 1, MIB, MIB + 1, 3 * MIB + 5];

fn write_of() -> WriteInfo<'static> {
    trace_file();
    WriteInfo {
        command: "backup_data",
        source: "standard input",
        timestamp: TS,
        options: &[],
    }
}

/// Stores `data` as `path` over `lanes`, the deferred steps not yet run.
fn store<'a>(lanes: &[&'a dyn Storage], path: &str, data: &[u8]) -> Result<Deferred<'a>> {
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    let (stored, deferred) = repo::store_with_lanes(lanes, &sp(path), input, &write_of())?;
    assert_eq!(stored.size, data.len() as u64);
    Ok(deferred)
}

/// Restores `part` of `path` over `lanes`: the bytes output and the
/// deferred steps not yet run.
fn restore<'a>(
    lanes: &[&'a dyn Storage],
    path: &str,
    part: Part,
) -> (Result<(u64, Deferred<'a>)>, Vec<u8>) {
    trace_file();
    let mut out = tempfile::tempfile().unwrap();
    let r = repo::restore_with_lanes(
        lanes,
        &sp(path),
        part,
        "restore_data",
        out.try_clone().unwrap(),
        4,
    );
    out.rewind().unwrap();
    let mut got = Vec::new();
    out.read_to_end(&mut got).unwrap();
    (r, got)
}

fn restore_whole(lanes: &[&dyn Storage], path: &str) -> Result<Vec<u8>> {
    let (r, got) = restore(lanes, path, Part::Whole);
    let (n, deferred) = r?;
    deferred.finish();
    assert_eq!(n, got.len() as u64);
    Ok(got)
}

/// `n` lanes over one memory storage.
fn memory_lanes(n: usize) -> Vec<MemoryStorage> {
    let s = MemoryStorage::new();
    (0..n).map(|_| s.clone()).collect()
}

fn refs<S: Storage>(lanes: &[S]) -> Vec<&dyn Storage> {
    lanes.iter().map(|s| s as &dyn Storage).collect()
}

// ---- the mock ----------------------------------------------------------------------------------

/// The environment of this test process, set once before anything reads
/// it: the mock's systems and trace, and the private folder (with the
/// journals of temporaries) below a temporary folder. Every test calls it
/// first. Returns the trace file.
fn trace_file() -> &'static Path {
    static ROOT: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    let (_, trace) = ROOT.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("DDBOOST_MOCK_ROOT", t.path());
        std::env::set_var("DDBOOST_MOCK_TRACE", t.path().join("trace"));
        std::env::set_var("GPBACKUP_DDBOOST_PLUGIN_RUN_DIR", t.path());
        let trace = t.path().join("trace");
        (t, trace)
    });
    trace
}

/// Tests on the mock run one at a time (they share the trace).
fn mock_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// `n` connections to a new mock system `host`.
fn mock_lanes(host: &str, n: usize) -> Vec<Box<dyn Storage>> {
    let root = trace_file().parent().unwrap();
    support::create_system(root, host);
    (0..n).map(|_| support::open_mock(host, "lanes")).collect()
}

fn box_refs(lanes: &[Box<dyn Storage>]) -> Vec<&dyn Storage> {
    lanes.iter().map(|s| s.as_ref()).collect()
}

/// The calls traced since the last time, of paths containing `filter`.
fn traced(filter: &str) -> Vec<String> {
    let text = std::fs::read_to_string(trace_file()).unwrap_or_default();
    std::fs::write(trace_file(), "").unwrap();
    text.lines()
        .filter(|l| l.contains(filter))
        .filter_map(|l| l.strip_prefix("op="))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- round trips -------------------------------------------------------------------------------

fn round_trips(lanes: &[&dyn Storage], tag: &str) {
    for n in 1..=lanes.len() {
        for (i, size) in SIZES.into_iter().enumerate() {
            let path = format!("rt/{tag}/{n}/obj{i}");
            let data = bytes(size, (n * 10 + i) as u64);
            store(&lanes[..n], &path, &data).unwrap().finish();
            // An overwrite with other bytes of the same size.
            let again = bytes(size, (n * 10 + i + 100) as u64);
            store(&lanes[..n], &path, &again).unwrap().finish();
            for m in 1..=lanes.len() {
                let got = restore_whole(&lanes[..m], &path).unwrap();
                assert!(
                    got == again,
                    "{path}: {size} bytes, {n} lanes, read with {m}"
                );
            }
            if size > 10 {
                let ranges = [0..1, 3..5, 7..(size as u64 - 1)];
                let part = Part::Ranges {
                    ranges: &ranges,
                    origin: "test",
                };
                let (r, got) = restore(&lanes[..lanes.len()], &path, part);
                r.unwrap().1.finish();
                let want: Vec<u8> = ranges
                    .iter()
                    .flat_map(|r| again[r.start as usize..r.end as usize].to_vec())
                    .collect();
                assert!(got == want, "{path}: a subset");
            }
        }
    }
    assert_eq!(support::temporaries_in(lanes[0]), Vec::<String>::new());
}

#[test]
fn round_trips_are_byte_exact_memory() {
    let lanes = memory_lanes(3);
    round_trips(&refs(&lanes), "memory");
}

#[test]
fn round_trips_are_byte_exact_mock() {
    let _l = mock_lock();
    let lanes = mock_lanes("dd-roundtrips", 3);
    round_trips(&box_refs(&lanes), "mock");
}

// ---- calls -------------------------------------------------------------------------------------

/// The calls of a small object's backup and restore, before the reply and
/// deferred after it, with 1 and 3 lanes (the connections already made).
#[test]
fn a_small_object_costs_few_calls_before_the_reply() {
    let _l = mock_lock();
    let lanes = mock_lanes("dd-calls", 3);
    let lanes = box_refs(&lanes);
    let data = support::csv_rows(200, 4);
    // The folder exists, as after setup_plugin_for_backup.
    lanes[0].create_dir_all(&sp("calls")).unwrap();
    traced("");

    // One lane: the sequential steps, the record's rename deferred.
    let deferred = store(&lanes[..1], "calls/one", &data).unwrap();
    let before = traced("calls/");
    deferred.finish();
    let after = traced("calls/");
    let sequential = strings(&[
        "open",   // the data's temporary
        "write",  // the data
        "close",  // ... finalised (its stream released)
        "open",   // a staged record left by an interrupted write? (no)
        "open",   // the staged record's temporary
        "write",  // the staged record
        "close",  // ... finalised
        "rename", // 1. staged
        "rename", // 2. the data in place: the reply
    ]);
    assert_eq!(before, sequential, "backup_data, one lane");
    assert_eq!(after, ["rename"], "backup_data, one lane, deferred");

    // Three lanes, a first write: the data's temporary, a lookup of the
    // path (nothing there, so no staged record to look up) and the record's
    // temporary at once, then both renames at once: 4 calls one after
    // another before the reply (open, write, close; rename).
    let deferred = store(&lanes, "calls/three", &data).unwrap();
    let before = traced("calls/");
    deferred.finish();
    let after = traced("calls/");
    let first = strings(&[
        "open", "write", "close", // the data's temporary
        "stat",  // anything at calls/three? (no)
        "open", "write", "close", // the staged record's temporary
        "rename", "rename", // 1. and 2. at once: the reply
    ]);
    assert_eq!(sorted(before), sorted(first), "backup_data, three lanes");
    assert_eq!(after, ["rename"], "backup_data, three lanes, deferred");

    // Three lanes, an overwrite: the lookup finds the object, then the
    // staged record an interrupted write may have left (none); then the
    // sequential renames: 5 one after another.
    let deferred = store(&lanes, "calls/three", &data).unwrap();
    let before = traced("calls/");
    deferred.finish();
    let after = traced("calls/");
    let mut overwrite = sequential.clone();
    overwrite.push("stat".to_string());
    assert_eq!(
        sorted(before),
        sorted(overwrite),
        "backup_data, three lanes, an overwrite"
    );
    assert_eq!(after, ["rename"], "an overwrite, deferred");

    // One lane: the record, then the object; no staged record looked up.
    for (lanes, name) in [(&lanes[..1], "calls/one"), (&lanes[..], "calls/three")] {
        let (r, got) = restore(lanes, name, Part::Whole);
        let (_, deferred) = r.unwrap();
        assert!(got == data);
        let before = traced("calls/");
        deferred.finish();
        let after = traced("calls/");
        if lanes.len() == 1 {
            assert_eq!(
                before,
                ["open", "read", "close", "open", "read"],
                "restore_data, one lane"
            );
            assert_eq!(after, ["close"], "restore_data, one lane, deferred");
        } else {
            // The record and the object opened and read at once (no
            // staged record looked up), so 2 calls one after another
            // before the reply.
            assert_eq!(
                sorted(before),
                strings(&["open", "open", "read", "read"]),
                "restore_data, three lanes"
            );
            assert_eq!(
                after,
                ["close", "close"],
                "restore_data, three lanes, deferred"
            );
        }
    }
}

// ---- the overwrite sweep -----------------------------------------------------------------------

/// Writes `new` as `s/obj` over `n` lanes to a memory storage holding
/// `old` (None: nothing there), with each of `calls` failing in turn,
/// before and after its effect. `check` judges the storage after each
/// write and its result; every failure is one line and no temporary is
/// left. Returns how many writes failed and how many succeeded.
fn sweep(
    calls: &[&str],
    n: usize,
    old: Option<&[u8]>,
    new: &[u8],
    check: impl Fn(&MemoryStorage, &Result<()>, &str),
) -> (usize, usize) {
    let (mut failed, mut succeeded) = (0, 0);
    for rule in support::failing_in_turn(calls) {
        let plain = MemoryStorage::new();
        if let Some(old) = old {
            store(&[&plain], "s/obj", old).unwrap().finish();
        }
        let inner: Vec<Box<dyn Storage>> = (0..n).map(|_| Box::new(plain.clone()) as _).collect();
        let faulty = FaultyStorage::sharing(inner, Faults::parse(&rule).unwrap());
        let result = store(&refs(&faulty), "s/obj", new).map(Deferred::finish);
        let what = format!("{rule}, {n} lanes, {} bytes", new.len());
        check(&plain, &result, &what);
        match &result {
            Ok(()) => succeeded += 1,
            Err(e) => {
                assert_eq!(e.to_string().lines().count(), 1, "{what}");
                failed += 1;
            }
        }
        assert_eq!(
            support::temporaries_in(&plain),
            Vec::<String>::new(),
            "{what}"
        );
    }
    (failed, succeeded)
}

/// Every call of the storage failing in turn, before and after its effect
/// (the rules of `tests/reliability.rs` for the local backend): the old or
/// the new object restores, the write succeeds exactly when it is the new,
/// and no temporary is left.
fn overwrite_sweep(n: usize, old: &[u8], new: &[u8]) -> (usize, usize) {
    let mut calls = support::OVERWRITE_CALLS.to_vec();
    calls.extend(["write:nth=2", "stat:nth=2", "open:nth=2", "read:nth=1"]);
    sweep(&calls, n, Some(old), new, |plain, result, what| {
        let now = restore_whole(&[plain], "s/obj").unwrap();
        match result {
            Ok(()) => assert!(now == new, "{what}: Ok but the old object restores"),
            Err(e) => assert!(now == old, "{what}: failed ({e}) but the new restores"),
        }
    })
}

#[test]
fn overwrite_sweep_through_lanes_ok_exactly_when_new() {
    for n in [1, 2, 3] {
        let (failed, succeeded) = overwrite_sweep(n, &bytes(3000, 1), &bytes(4000, 2));
        assert!(failed > 0 && succeeded > 0, "{n} lanes");
        // Larger than a block: the sequential path whatever the lanes.
        let (failed, succeeded) = overwrite_sweep(n, &bytes(MIB + 7, 3), &bytes(2 * MIB + 1, 4));
        assert!(failed > 0 && succeeded > 0, "{n} lanes");
    }
}

/// A first write (nothing at the path) with every call failing in turn,
/// before and after its effect: the write succeeds exactly when the object
/// restores, byte-exact and described by a record; a failed one leaves no
/// object (not even one without a record) and no temporary.
#[test]
fn first_write_sweep_through_lanes_ok_exactly_when_stored() {
    let mut calls = support::OVERWRITE_CALLS.to_vec();
    calls.extend(["write:nth=2", "stat:nth=2", "open:nth=2", "delete:nth=1"]);
    for n in [1, 2, 3] {
        for data in [bytes(4000, 2), Vec::new(), bytes(MIB + 9, 3)] {
            let (failed, succeeded) =
                sweep(&calls, n, None, &data, |plain, result, what| match result {
                    Ok(()) => {
                        let now = restore_whole(&[plain], "s/obj").unwrap();
                        assert!(now == data, "{what}: Ok but other bytes restore");
                        let recorded = ["s/.obj.checksum", "s/.obj.checksum.next"]
                            .iter()
                            .any(|r| plain.exists(&sp(r)).unwrap());
                        assert!(recorded, "{what}: Ok but no record");
                    }
                    Err(e) => assert!(
                        !plain.exists(&sp("s/obj")).unwrap(),
                        "{what}: failed ({e}) but stored"
                    ),
                });
            assert!(failed > 0 && succeeded > 0, "{n} lanes");
        }
    }
}

/// A first write whose record could not be staged and whose data could not
/// be removed again: the command fails saying so, and the data in place is
/// complete (it restores unverified, as an object without a record).
#[test]
fn a_first_write_that_cannot_undo_its_data_says_so() {
    let plain = MemoryStorage::new();
    let data = bytes(5000, 4);
    let inner: Vec<Box<dyn Storage>> = (0..3).map(|_| Box::new(plain.clone()) as _).collect();
    let rules = "commit:path=checksum:err=io;delete:err=io";
    let faulty = FaultyStorage::sharing(inner, Faults::parse(rules).unwrap());
    let e = store(&refs(&faulty), "s/obj", &data).err().expect("fails");
    let text = e.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("its checksum record is not") && text.contains("unverified"),
        "{text}"
    );
    assert!(restore_whole(&[&plain], "s/obj").unwrap() == data);
    assert_eq!(support::temporaries_in(&plain), Vec::<String>::new());
}

// ---- stream limits ------------------------------------------------------------------------------

/// A lane that finds every stream taken lets go of everything; the write or
/// read then runs one step after another (which waits for streams).
#[test]
fn a_stream_limit_falls_back_to_one_step_after_another() {
    let data = bytes(70_000, 5);
    for rule in [
        "create:nth=1:err=streams",
        "create:nth=2:err=streams",
        "open:nth=1:err=streams",
    ] {
        for n in [2, 3] {
            let plain = MemoryStorage::new();
            store(&[&plain], "s/obj", &bytes(100, 6)).unwrap().finish();
            let inner: Vec<Box<dyn Storage>> =
                (0..n).map(|_| Box::new(plain.clone()) as _).collect();
            let faulty = FaultyStorage::sharing(inner, Faults::parse(rule).unwrap());
            store(&refs(&faulty), "s/obj", &data).unwrap().finish();
            assert!(restore_whole(&[&plain], "s/obj").unwrap() == data, "{rule}");
            assert_eq!(
                support::temporaries_in(&plain),
                Vec::<String>::new(),
                "{rule}"
            );
            let inner: Vec<Box<dyn Storage>> =
                (0..n).map(|_| Box::new(plain.clone()) as _).collect();
            let faulty = FaultyStorage::sharing(inner, Faults::parse(rule).unwrap());
            assert!(
                restore_whole(&refs(&faulty), "s/obj").unwrap() == data,
                "{rule}: restore"
            );
        }
    }
}

// ---- records ------------------------------------------------------------------------------------

/// A write stopped after its commit, before its record was renamed into
/// place: the staged record describes the data, and every read finds it.
#[test]
fn a_record_left_staged_is_read_when_the_record_does_not_match() {
    for size in [10, MIB + 3] {
        let plain = MemoryStorage::new();
        let old = bytes(size, 7);
        let new = bytes(size, 8);
        store(&[&plain], "s/obj", &old).unwrap().finish();
        // The record's rename into place fails: a warning.
        let faulty = FaultyStorage::sharing(
            vec![Box::new(plain.clone())],
            Faults::parse("rename:path=.obj.checksum:nth=1:err=io").unwrap(),
        );
        store(&refs(&faulty), "s/obj", &new).unwrap().finish();
        assert!(
            plain
                .open(&sp("s/.obj.checksum.next"), &Default::default())
                .is_ok(),
            "left staged"
        );
        for n in 1..=3 {
            let lanes: Vec<&dyn Storage> = (0..n).map(|_| &plain as &dyn Storage).collect();
            assert!(
                restore_whole(&lanes, "s/obj").unwrap() == new,
                "{size}, {n} lanes"
            );
        }
        // The next write finishes it.
        store(&[&plain, &plain, &plain], "s/obj", &old)
            .unwrap()
            .finish();
        assert!(restore_whole(&[&plain], "s/obj").unwrap() == old);
    }
}

/// Data that no record describes is refused before a byte is output,
/// whatever the lanes.
#[test]
fn data_that_does_not_match_its_record_is_refused() {
    for (size, other) in [(5000, 5000), (5000, 4000), (MIB + 3, MIB + 3)] {
        let plain = MemoryStorage::new();
        store(&[&plain], "s/obj", &bytes(size, 9)).unwrap().finish();
        let mut w = plain.create(&sp("s/obj"), &Default::default()).unwrap();
        w.write(&bytes(other, 10)).unwrap();
        w.commit().unwrap();
        for n in 1..=3 {
            let lanes: Vec<&dyn Storage> = (0..n).map(|_| &plain as &dyn Storage).collect();
            let (r, got) = restore(&lanes, "s/obj", Part::Whole);
            let e = r.err().expect("refused");
            assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
            assert!(got.is_empty(), "{size}/{other}, {n} lanes: bytes output");
        }
    }
}

/// A missing object is "not found" whatever the lanes.
#[test]
fn a_missing_object_is_not_found() {
    let lanes = memory_lanes(3);
    for n in 1..=3 {
        let (r, _) = restore(&refs(&lanes[..n]), "s/none", Part::Whole);
        assert_eq!(r.err().unwrap().kind(), ErrorKind::NotFound);
    }
}
