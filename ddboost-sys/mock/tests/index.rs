//! The shared index: logs of finished writers compacted into fingerprint shards, dedup
//! across processes kept exact, compaction killed at any point or run by many processes.

mod support;
use ddboost_mock::fill::{contents, fill, Fill};
use ddboost_mock::index::{self, COMPACT_AT};
use ddboost_mock::store::System;
use std::path::Path;
use std::process::Command;
use support::*;

const SIZE: usize = 30_000;

fn spec(prefix: &str, objects: u64, seed: u64) -> Fill<'_> {
    Fill {
        su: SU,
        folder: "bk",
        prefix,
        first: 0,
        objects,
        size: SIZE,
        seed,
        records: false,
    }
}

fn logs(dir: &Path) -> usize {
    ddboost_mock::records::index_logs(&dir.join("store/index"))
        .unwrap()
        .len()
}

/// Every segment of every file below `bk` is found by a newly opened system (as another
/// process opens it). Writers storing the same new segment at the same moment may both
/// store it: then it is found at one of the two places.
fn assert_all_found(dir: &Path, host: &str) {
    let sys = System::open(dir, host).unwrap();
    let mut n = 0;
    for ent in std::fs::read_dir(dir.join("su").join(SU).join("bk")).unwrap() {
        let (_, entries) = ddboost_mock::recipe::load(&ent.unwrap().path()).unwrap();
        for e in &entries {
            let found = sys.lookup(&e.fp).expect("segment found");
            assert_eq!((found.raw, found.codec), (e.loc.raw, e.loc.codec));
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn many_writers_logs_are_compacted_and_dedup_stays_exact() {
    let dir = system("ix-many");
    fill(&dir, &spec("o", 3 * COMPACT_AT as u64, 7), |_| {}).unwrap();
    assert!(
        logs(&dir) <= COMPACT_AT,
        "logs of finished writers compacted"
    );
    assert!(dir.join("store/fp/SEQ").is_file());
    let t = totals(&dir);
    assert_eq!(t.files, 3 * COMPACT_AT as u64);
    assert_eq!(t.logical_bytes_written, 3 * COMPACT_AT as u64 * SIZE as u64);
    assert_eq!(t.logical_bytes_present, t.logical_bytes_written);
    assert_eq!(t.unique_segment_bytes, t.logical_bytes_written);
    assert_all_found(&dir, "ix-many");

    // A client writing the same bytes again stores nothing new, and reads them back.
    let c = connect("ix-many");
    let data = contents(7, 5, SIZE);
    put_file(c, "bk/again", &data);
    let t2 = totals(&dir);
    assert_eq!(t2.stored_bytes, t.stored_bytes);
    assert_eq!(read_file(c, "bk/again").unwrap(), data);
    assert_eq!(read_file(c, "bk/o5").unwrap(), data);
}

#[test]
fn compaction_killed_before_removing_logs_or_in_an_append_changes_nothing() {
    let dir = system("ix-killed");
    let n = COMPACT_AT as u64 - 4;
    fill(&dir, &spec("o", n, 8), |_| {}).unwrap();
    assert_eq!(
        logs(&dir),
        n as usize,
        "below the threshold nothing is compacted"
    );
    let before = totals(&dir);
    let saved = tempfile::tempdir().unwrap();
    for (_, p) in ddboost_mock::records::index_logs(&dir.join("store/index")).unwrap() {
        std::fs::copy(&p, saved.path().join(p.file_name().unwrap())).unwrap();
    }
    assert_eq!(index::compact(&dir.join("store")).unwrap(), n as usize);
    assert_eq!(logs(&dir), 0);
    assert_eq!(totals(&dir), before);
    assert_all_found(&dir, "ix-killed");

    // Killed after its appends, before removing the logs: the logs are back. Killed in
    // the middle of an append: a torn record ends a shard.
    for ent in std::fs::read_dir(saved.path()).unwrap() {
        let p = ent.unwrap().path();
        std::fs::copy(&p, dir.join("store/index").join(p.file_name().unwrap())).unwrap();
    }
    let shard = std::fs::read_dir(dir.join("store/fp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().len() == 3)
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&shard)
        .unwrap();
    std::io::Write::write_all(&mut f, &[1u8; 17]).unwrap();
    assert_eq!(totals(&dir), before, "copies and torn records count once");
    assert_eq!(index::compact(&dir.join("store")).unwrap(), n as usize);
    assert_eq!(totals(&dir), before);
    assert_all_found(&dir, "ix-killed");
    let c = connect("ix-killed");
    assert_eq!(read_file(c, "bk/o3").unwrap(), contents(8, 3, SIZE));
}

#[test]
fn logs_of_live_writers_are_not_compacted() {
    let dir = system("ix-live");
    let c = connect("ix-live");
    let fd = create(c, "bk-open");
    write_all(fd, &contents(9, 0, SIZE), 1 << 20).unwrap();
    fill(&dir, &spec("o", COMPACT_AT as u64 + 2, 9), |_| {}).unwrap();
    // The open stream's log (and this process's pooled ones) survive compaction.
    assert_eq!(close(fd), 0);
    let fresh = System::open(&dir, "ix-live").unwrap();
    let (_, entries) =
        ddboost_mock::recipe::load(&dir.join("su").join(SU).join("bk-open")).unwrap();
    for e in &entries {
        assert_eq!(fresh.lookup(&e.fp), Some(e.loc));
    }
}

/// Child process body: fills its share when run by `processes_compacting_at_once`.
#[test]
#[ignore = "run as a child process by processes_compacting_at_once"]
fn child_filler() {
    let Ok(id) = std::env::var("DDMOCK_FILL_ID") else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var("DDMOCK_FILL_DIR").unwrap());
    let prefix = format!("p{id}-");
    // Every child writes objects 0..20 of seed 11 (shared) and its own seed.
    let own: u64 = 100 + id.parse::<u64>().unwrap();
    fill(&dir, &spec(&prefix, 20, 11), |_| {}).unwrap();
    fill(&dir, &spec(&format!("{prefix}own-"), 20, own), |_| {}).unwrap();
}

#[test]
fn processes_compacting_at_once_and_one_killed() {
    let dir = system("ix-procs");
    let exe = std::env::current_exe().unwrap();
    let spawn = |i: u32| {
        Command::new(&exe)
            .args(["--exact", "child_filler", "--ignored", "--test-threads=1"])
            .env("DDMOCK_FILL_ID", i.to_string())
            .env("DDMOCK_FILL_DIR", &dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children: Vec<_> = (0..6).map(spawn).collect();
    let mut killed = spawn(6);
    std::thread::sleep(std::time::Duration::from_millis(150));
    killed.kill().unwrap();
    let _ = killed.wait();
    for ch in &mut children {
        assert!(ch.wait().unwrap().success());
    }
    // Every published file reads back exactly; every segment of it is found.
    let c = connect("ix-procs");
    for i in 0..6u64 {
        for k in [0u64, 7, 19] {
            let got = read_file(c, &format!("bk/p{i}-{k}")).unwrap();
            assert_eq!(got, contents(11, k, SIZE));
            let got = read_file(c, &format!("bk/p{i}-own-{k}")).unwrap();
            assert_eq!(got, contents(100 + i, k, SIZE));
        }
    }
    index::compact(&dir.join("store")).unwrap();
    assert!(logs(&dir) < COMPACT_AT);
    assert_all_found(&dir, "ix-procs");
    let t = totals(&dir);
    // The shared objects are stored about once, not six times.
    let own = 6 * 20 * SIZE as u64;
    assert!(
        t.unique_segment_bytes <= own + 7 * 20 * SIZE as u64 / 2 + 20 * SIZE as u64 * 2,
        "{t:?}"
    );
    let before = t.stored_bytes;
    put_file(c, "bk/again", &contents(103, 4, SIZE));
    assert_eq!(
        totals(&dir).stored_bytes,
        before,
        "dedup against every process"
    );
}

#[test]
fn containers_of_systems_written_before_container_folders_are_read() {
    let dir = system("ix-flat");
    fill(&dir, &spec("o", 2, 12), |_| {}).unwrap();
    let containers = dir.join("store/containers");
    for sub in std::fs::read_dir(&containers).unwrap() {
        let sub = sub.unwrap().path();
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            std::fs::rename(&f, containers.join(f.file_name().unwrap())).unwrap();
        }
        std::fs::remove_dir(&sub).unwrap();
    }
    let c = connect("ix-flat");
    assert_eq!(read_file(c, "bk/o1").unwrap(), contents(12, 1, SIZE));
}
