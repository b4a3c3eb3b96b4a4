//! Many writers and readers on one system: threads in one process and separate processes.

mod support;
use ddboost_mock::ffi::*;
use ddboost_mock::*;
use std::path::PathBuf;
use std::process::Command;
use support::*;

fn content(seed: u64, n: usize) -> Vec<u8> {
    // Half of each file is shared by all writers (cross-stream dedup), half is own.
    let mut d = join(&rows(1000, n / 2));
    d.extend(join(&rows(seed, n / 2)));
    d
}

#[test]
fn sixteen_writer_threads_and_concurrent_readers() {
    let dir = system("cc-threads");
    let setup = connect("cc-threads");
    let seed_data = content(999, 6_000);
    put_file(setup, "seed", &seed_data);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..3 {
        let stop = stop.clone();
        let seed_data = seed_data.clone();
        readers.push(std::thread::spawn(move || {
            let c = connect("cc-threads");
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(read_file(c, "seed").unwrap(), seed_data);
                // Files being written are visible but never show non-final bytes.
                for w in 0..16 {
                    if let Ok(d) = read_file(c, &format!("w{w}")) {
                        assert!(
                            d.is_empty() || d == content(w as u64, 6_000),
                            "reader {r} saw partial w{w}"
                        );
                    }
                }
                n += 1;
            }
            n
        }));
    }
    let writers: Vec<_> = (0..16u64)
        .map(|w| {
            std::thread::spawn(move || {
                let c = connect("cc-threads");
                let data = content(w, 6_000);
                let fd = create(c, &format!("w{w}"));
                write_all(fd, &data, 1 << 20 >> (w % 3)).unwrap();
                assert_eq!(close(fd), 0);
                assert_eq!(read_file(c, &format!("w{w}")).unwrap(), data);
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let c = connect("cc-threads");
    for w in 0..16u64 {
        assert_eq!(read_file(c, &format!("w{w}")).unwrap(), content(w, 6_000));
    }
    let t = totals(&dir);
    assert_eq!(t.files, 17);
    let own: u64 = (0..16).map(|w| join(&rows(w, 3_000)).len() as u64).sum();
    let shared = join(&rows(1000, 3_000)).len() as u64;
    // The shared half is stored about once, not 17 times.
    assert!(
        t.unique_segment_bytes < own + join(&rows(999, 3_000)).len() as u64 + 3 * shared,
        "{t:?}"
    );
}

/// Child process body: writes files when run by `writer_processes`.
#[test]
#[ignore = "run as a child process by writer_processes"]
fn child_writer() {
    let Ok(id) = std::env::var("DDMOCK_CHILD_ID") else {
        return;
    };
    let root = std::env::var("DDMOCK_CHILD_ROOT").unwrap();
    let id: u64 = id.parse().unwrap();
    std::env::set_var("DDBOOST_MOCK_ROOT", &root);
    let _ = support::root();
    std::env::set_var("DDBOOST_MOCK_ROOT", &root);
    let c = connect("cc-procs");
    for k in 0..3u64 {
        let data = content(id * 10 + k, 4_000);
        put_file(c, &format!("p{id}-{k}"), &data);
        // Read a file another process may have finished.
        let other = format!("p{}-0", (id + 1) % 8);
        if let Ok(d) = read_file(c, &other) {
            assert!(
                d.is_empty() || d == content(((id + 1) % 8) * 10, 4_000),
                "partial {other}"
            );
        }
    }
}

#[test]
fn writer_processes() {
    let dir = system("cc-procs");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_writer",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("DDMOCK_CHILD_ID", i.to_string())
                .env("DDMOCK_CHILD_ROOT", root())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Meanwhile read what is there.
    let c = connect("cc-procs");
    for _ in 0..20 {
        for i in 0..8u64 {
            if let Ok(d) = read_file(c, &format!("p{i}-1")) {
                assert!(d.is_empty() || d == content(i * 10 + 1, 4_000));
            }
        }
    }
    for mut ch in children {
        assert!(ch.wait().unwrap().success());
    }
    // Refresh from other processes' index logs happens at open; verify every file byte-exact.
    for i in 0..8u64 {
        for k in 0..3u64 {
            assert_eq!(
                read_file(c, &format!("p{i}-{k}")).unwrap(),
                content(i * 10 + k, 4_000)
            );
        }
    }
    let t = totals(&dir);
    assert_eq!(t.files, 24);
    // New content written after the children is deduplicated against their segments.
    let before = totals(&dir).stored_bytes;
    std::thread::sleep(std::time::Duration::from_millis(600));
    put_file(c, "again", &content(70, 4_000));
    let after = totals(&dir).stored_bytes;
    assert!(
        (after - before) * 100 < before / 24,
        "re-writing a child's file added {} bytes",
        after - before
    );
}

#[test]
fn killed_writer_does_not_corrupt_the_store() {
    let dir = system("cc-kill");
    let exe = std::env::current_exe().unwrap();
    let mut ch = Command::new(&exe)
        .args([
            "--exact",
            "child_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DDMOCK_KILL_ROOT", root())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has written a good part, then kill it.
    let c = connect("cc-kill");
    let start = std::time::Instant::now();
    while stat(c, "partial").is_err() && start.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    ch.kill().unwrap();
    let _ = ch.wait();
    // A torn index record at the end of a log is ignored.
    for e in std::fs::read_dir(dir.join("store/index")).unwrap() {
        let p = e.unwrap().path();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, &[1u8; 17]).unwrap();
    }
    assert_eq!(read_file(c, "done").unwrap(), content(1, 3_000));
    let d = read_file(c, "partial").unwrap();
    assert!(d.is_empty(), "unfinished file shows no content");
    // New writes still work and dedup against what the killed process stored.
    put_file(c, "after", &content(1, 3_000));
    assert_eq!(read_file(c, "after").unwrap(), content(1, 3_000));
    assert!(ddboost_mock::store::totals(&dir).is_ok());
}

#[test]
#[ignore = "run as a child process by killed_writer_does_not_corrupt_the_store"]
fn child_killed() {
    let Ok(root) = std::env::var("DDMOCK_KILL_ROOT") else {
        return;
    };
    let _ = support::root();
    std::env::set_var("DDBOOST_MOCK_ROOT", &root);
    let c = connect("cc-kill");
    put_file(c, "done", &content(1, 3_000));
    let fd = create(c, "partial");
    let data = content(2, 3_000);
    let mut off = 0u64;
    loop {
        // Keep writing until killed.
        for ch in data.chunks(100_000) {
            write_at(fd, ch, off).unwrap();
            off += ch.len() as u64;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// The stream counts of the process `stream_counts_across_processes` checks: once it is
/// ready (file `ready` in its folder), 2 write streams; once told (`one`), 1; then it waits
/// to be killed.
#[test]
#[ignore = "run as a child process by stream_counts_across_processes"]
fn child_streams() {
    let Ok(root) = std::env::var("DDMOCK_STREAMS_ROOT") else {
        return;
    };
    let _ = support::root();
    std::env::set_var("DDBOOST_MOCK_ROOT", &root);
    let flags = PathBuf::from(std::env::var("DDMOCK_STREAMS_FLAGS").unwrap());
    let c = connect("cc-streams");
    let a = create(c, "a");
    let b = create(c, "b");
    std::fs::write(flags.join("ready"), "").unwrap();
    wait_for(&flags.join("one"));
    assert_eq!(close(b), 0);
    std::fs::write(flags.join("closed"), "").unwrap();
    let _keep = a;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn wait_for(p: &std::path::Path) {
    let start = std::time::Instant::now();
    while !p.exists() {
        assert!(start.elapsed().as_secs() < 60, "{} never came", p.display());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn stream_counts_across_processes() {
    system("cc-streams");
    let flags = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut ch = Command::new(&exe)
        .args(["--exact", "child_streams", "--ignored", "--nocapture"])
        .args(["--test-threads=1"])
        .env("DDMOCK_STREAMS_ROOT", root())
        .env("DDMOCK_STREAMS_FLAGS", flags.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let c = connect("cc-streams");
    let writes = || {
        let mut s = ddp_stream_counts_t::default();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { ddp_get_stream_counts(c, &mut s) }, 0);
        s.inuse.read_write_streams
    };
    wait_for(&flags.path().join("ready"));
    assert_eq!(writes(), 2, "the other process's two write streams");
    std::fs::write(flags.path().join("one"), "").unwrap();
    wait_for(&flags.path().join("closed"));
    assert_eq!(writes(), 1, "one closed");
    ch.kill().unwrap();
    let _ = ch.wait();
    assert_eq!(writes(), 0, "a killed process stops counting");
}
