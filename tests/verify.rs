//! verify_backup through the binary, on every backend: a whole backup
//! verifies, damage and missing records are named, a backup being written
//! at the same time is neither disturbed nor reported, and a backup that
//! does not exist is an error.

mod support;

use std::io::Write;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

const TS: &str = "20250101120000";
const MIB: usize = 1 << 20;

fn rel(name: &str) -> String {
    format!("backups/{}/{TS}/{name}", &TS[..8])
}

fn seg(i: usize) -> String {
    format!("gpbackup_{i}_{TS}")
}

/// A backup as gpbackup leaves it: segment data of several sizes (one
/// empty, one of several blocks with a short last one) and a metadata file.
/// Returns (name, size) of every object.
fn make_backup(env: &Env) -> Vec<(String, usize)> {
    let mut objects = Vec::new();
    for (i, size) in [3 * MIB + 5, MIB, 0, 200_000, 2 * MIB]
        .into_iter()
        .enumerate()
    {
        env.backup_data(TS, &seg(i), &bytes(size, i as u64 + 1));
        objects.push((seg(i), size));
    }
    let name = format!("gpbackup_{TS}_metadata.sql");
    let key = env.key(TS, &name);
    std::fs::create_dir_all(std::path::Path::new(&key).parent().unwrap()).unwrap();
    let text = csv_rows(1000, 9);
    std::fs::write(&key, &text).unwrap();
    ok(&env.run(&["backup_file", env.cfg(), &key]));
    objects.push((name, text.len()));
    objects
}

/// Success with the one warning a folder without gpbackup's manifest gets:
/// only records are checked.
#[track_caller]
fn ok_without_manifest(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("gpbackup_ddboost_plugin verify_backup: warning: backup ")
            && err.contains("has no gpbackup manifest")
            && err.contains("an object lost together with its record cannot be found"),
        "{err}"
    );
}

fn verify(env: &Env, extra: &[&str]) -> (Output, Vec<String>) {
    verify_lines(env, TS, extra)
}

fn summary(lines: &[String]) -> &str {
    let s: Vec<&String> = lines.iter().filter(|l| l.starts_with("SUMMARY ")).collect();
    assert_eq!(s.len(), 1, "{lines:?}");
    assert_eq!(lines.last(), Some(s[0]), "the summary comes last");
    s[0]
}

fn good_backup_verifies(env: &Env) {
    let objects = make_backup(env);
    let (out, lines) = verify(env, &[]);
    ok_without_manifest(&out);
    let mut want: Vec<String> = objects
        .iter()
        .map(|(n, s)| format!("OK {} {s}", rel(n)))
        .collect();
    want.sort();
    assert_eq!(with_status(&lines, "OK"), want);
    assert_eq!(lines.len(), objects.len() + 1, "{lines:?}");
    let total: usize = objects.iter().map(|(_, s)| s).sum();
    let s = summary(&lines);
    assert!(
        s.starts_with(&format!(
            "SUMMARY backup {TS}: {} objects, {total} bytes verified in ",
            objects.len()
        )),
        "{s}"
    );
    assert!(s.contains(" MB/s): 6 OK, 0 FAILED, 0 UNRECORDED"), "{s}");
    // The log has a line per object and the summary.
    let log = env.log_text();
    assert!(
        log.contains(&format!("verify_backup {}: ", rel(&seg(0)))),
        "{log}"
    );
    assert!(
        log.contains(&format!("verify_backup: backup {TS}: 6 objects")),
        "{log}"
    );
    // It only read: the backup is as it was and still restores.
    assert_eq!(env.restore_data(TS, &seg(0)), bytes(3 * MIB + 5, 1));
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

fn corrupted_object_fails_and_others_still_verify(env: &Env) {
    let objects = make_backup(env);
    env.corrupt(TS, &seg(0)); // a byte in its second block
    let (out, lines) = verify(env, &[]);
    let err = fails(&out);
    assert!(err.contains("1 of 6 objects failed verification"), "{err}");
    let failed = with_status(&lines, "FAILED");
    assert_eq!(failed.len(), 1, "{lines:?}");
    assert!(
        failed[0].starts_with(&format!("FAILED {}: ", rel(&seg(0)))),
        "{}",
        failed[0]
    );
    assert!(failed[0].contains("checksum"), "{}", failed[0]);
    assert!(failed[0].contains("block at byte 1048576"), "{}", failed[0]);
    assert_eq!(with_status(&lines, "OK").len(), objects.len() - 1);
    assert!(
        summary(&lines).contains("5 OK, 1 FAILED, 0 UNRECORDED"),
        "{lines:?}"
    );
}

fn truncated_object_fails(env: &Env) {
    make_backup(env);
    let data = bytes(MIB, 2);
    env.put_raw(&rel(&seg(1)), &data[..MIB - 1]);
    let (out, lines) = verify(env, &[]);
    fails(&out);
    let failed = with_status(&lines, "FAILED");
    assert_eq!(failed.len(), 1, "{lines:?}");
    assert!(
        failed[0].contains(&rel(&seg(1))) && failed[0].contains(&format!("{} were recorded", MIB)),
        "{}",
        failed[0]
    );
}

fn missing_record_fails_unless_allowed(env: &Env) {
    make_backup(env);
    env.drop_checksum(TS, &seg(3));
    let (out, lines) = verify(env, &[]);
    let err = fails(&out);
    assert!(err.contains("--allow-unrecorded"), "{err}");
    assert_eq!(
        with_status(&lines, "UNRECORDED"),
        vec![format!("UNRECORDED {}", rel(&seg(3)))]
    );
    assert_eq!(with_status(&lines, "OK").len(), 5);
    assert!(summary(&lines).contains("5 OK, 0 FAILED, 1 UNRECORDED"));

    let (out, lines) = verify(env, &["--allow-unrecorded"]);
    ok_without_manifest(&out);
    assert_eq!(with_status(&lines, "UNRECORDED").len(), 1);
    assert_eq!(with_status(&lines, "OK").len(), 5);
    // The flag may come first too.
    let out = env.run(&["verify_backup", "--allow-unrecorded", env.cfg(), TS]);
    ok_without_manifest(&out);
    // A damaged object still fails with it.
    env.corrupt(TS, &seg(0));
    let (out, _) = verify(env, &["--allow-unrecorded"]);
    fails(&out);
}

fn backup_written_at_the_same_time_is_not_disturbed(env: &Env) {
    let objects = make_backup(env);
    let late = seg(7);
    let data = bytes(3 * MIB + 11, 77);
    let mut writer = env.spawn_stdin(&["backup_data", env.cfg(), &env.key(TS, &late)]);
    let mut stdin = writer.stdin.take().unwrap();
    // Half of it, then the producer pauses (as a slow table would).
    stdin.write_all(&data[..2 * MIB]).unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    while env.temporaries().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no temporary");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..2 {
        let (out, lines) = verify(env, &[]);
        ok_without_manifest(&out);
        assert_eq!(with_status(&lines, "OK").len(), objects.len(), "{lines:?}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(&late),
            "the object being written is not visible yet: {lines:?}"
        );
        assert!(
            env.temporaries().len() == 1,
            "the writer's temporary is left alone"
        );
    }
    // The backup goes on and completes.
    stdin.write_all(&data[2 * MIB..]).unwrap();
    drop(stdin);
    let out = writer.wait_with_output().unwrap();
    ok(&out);
    assert_eq!(env.restore_data(TS, &late), data);
    let (out, lines) = verify(env, &[]);
    ok_without_manifest(&out);
    assert!(
        with_status(&lines, "OK").contains(&format!("OK {} {}", rel(&late), data.len())),
        "{lines:?}"
    );
}

/// Without a manifest, an object whose published record is still stored
/// was lost: MISSING, and the command fails. A staged record alone (a write
/// stopped before its commit) describes nothing.
fn lost_object_with_its_record_kept_is_missing(env: &Env) {
    let objects = make_backup(env);
    env.put_raw(&rel(&format!(".{}.checksum.next", seg(7))), b"staged");
    env.remove_raw(&rel(&seg(1)));
    let (out, lines) = verify(env, &[]);
    let err = fails(&out);
    assert!(
        err.contains("1 objects are missing") && err.contains("see the MISSING lines"),
        "{err}"
    );
    let missing = with_status(&lines, "MISSING");
    assert_eq!(missing.len(), 1, "{lines:?}");
    assert!(
        missing[0].starts_with(&format!(
            "MISSING {}: its checksum record .{}.checksum is stored",
            rel(&seg(1)),
            seg(1)
        )),
        "{}",
        missing[0]
    );
    assert_eq!(with_status(&lines, "OK").len(), objects.len() - 1);
    assert!(summary(&lines).contains(", 1 MISSING"), "{lines:?}");
    // With its record gone too, nothing is left to tell: it verifies.
    env.drop_checksum(TS, &seg(1));
    let (out, lines) = verify(env, &[]);
    ok_without_manifest(&out);
    assert!(with_status(&lines, "MISSING").is_empty(), "{lines:?}");
}

/// Without a manifest, what changed in the folder while verify read the
/// objects is told at the end: an object committed meanwhile is NEW (with
/// its size, not checked, not a failure); one deleted meanwhile while its
/// record stayed is MISSING.
fn objects_that_come_and_go_while_it_runs_are_told(env: &Env) {
    let objects = make_backup(env);
    let cmd = env.command(&["verify_backup", env.cfg(), TS]);
    let (child, marker) = stopped_at(env, cmd, "verify-appeared", b"");
    // The last reads run beside the pause: the change waits for them.
    let started = Instant::now();
    while !objects.iter().all(|(n, _)| {
        env.log_text()
            .contains(&format!("verify_backup {}: ", rel(n)))
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "reads not done"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let late = bytes(70_000, 71);
    env.backup_data(TS, &seg(7), &late);
    env.remove_raw(&rel(&seg(1)));
    std::fs::remove_file(&marker).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = fails(&out);
    assert!(err.contains("1 objects are missing"), "{err}");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        with_status(&lines, "NEW"),
        vec![format!("NEW {} {}", rel(&seg(7)), late.len())],
        "{lines:?}"
    );
    let missing = with_status(&lines, "MISSING");
    assert_eq!(missing.len(), 1, "{lines:?}");
    assert!(missing[0].starts_with(&format!("MISSING {}: ", rel(&seg(1)))));
    // Read before it went: OK then.
    assert_eq!(with_status(&lines, "OK").len(), objects.len(), "{lines:?}");
    assert!(summary(&lines).contains("1 NEW (not checked)"), "{lines:?}");
    // The next run reads the new object like the others.
    env.backup_data(TS, &seg(1), &bytes(MIB, 2));
    let (out, lines) = verify(env, &[]);
    ok_without_manifest(&out);
    assert_eq!(
        with_status(&lines, "OK").len(),
        objects.len() + 1,
        "{lines:?}"
    );
}

fn unknown_timestamp_fails_clearly(env: &Env) {
    make_backup(env);
    let out = env.run(&["verify_backup", env.cfg(), "20250101120001"]);
    let err = fails(&out);
    assert!(
        err.contains("backup 20250101120001 not found") && err.contains("no objects"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    for bad in ["2025", "2025010112000x"] {
        let err = fails(&env.run(&["verify_backup", env.cfg(), bad]));
        assert!(err.contains("timestamp"), "{err}");
    }
    for args in [
        &["verify_backup", env.cfg()][..],
        &["verify_backup", env.cfg(), TS, "extra"],
        &["verify_backup", env.cfg(), TS, "--allow-everything"],
    ] {
        fails(&env.run(args));
    }
}

// ---- instantiation ---------------------------------------------------------------------------

macro_rules! all_cases {
    ($backend_mod:ident, $backend:expr) => {
        per_backend!(
            $backend_mod,
            $backend,
            [
                good_backup_verifies,
                corrupted_object_fails_and_others_still_verify,
                truncated_object_fails,
                missing_record_fails_unless_allowed,
                backup_written_at_the_same_time_is_not_disturbed,
                lost_object_with_its_record_kept_is_missing,
                objects_that_come_and_go_while_it_runs_are_told,
                unknown_timestamp_fails_clearly,
            ]
        );
    };
}

all_cases!(local, super::Backend::Local);
all_cases!(ddboost_mock, super::Backend::DdBoostMock);
