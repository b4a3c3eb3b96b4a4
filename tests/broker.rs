//! The per-host connection broker, through the binary on the mock Data
//! Domain: started by `setup_plugin_for_backup` in scope segment_host, used
//! by backup_data and restore_data, stopped by the cleanup hook; kills of a
//! client and of the broker leave nothing committed and no temporary.

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Stdio};

use support::broker::*;
use support::*;

#[test]
fn many_objects_go_through_one_login_byte_exact() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    assert_eq!(w.brokers().len(), 1, "{}", w.env.log_text());
    let before = w.connects();
    let sizes = [0usize, 1, 4096, 20_000, 300_000, 1 << 20, 5, 77_777];
    let objects: Vec<(String, Vec<u8>)> = (0..24)
        .map(|i| {
            let n = sizes[i % sizes.len()];
            (format!("gpbackup_0_{TS}_{i}.gz"), bytes(n, i as u64))
        })
        .collect();
    w.round_trip(&objects);
    // Logins bounded by the pool (16 connections), not one per object: a
    // small object's steps run on up to 3 connections, and a client may come
    // before the previous request gave its connections back.
    let logins = w.connects() - before;
    assert!(
        (2..=16).contains(&logins) && logins < objects.len(),
        "{logins}: {}",
        w.env.log_text()
    );
    let log = w.env.log_text();
    let served = log.lines().filter(|l| l.contains("(broker ")).count();
    assert!(served >= 48, "{log}");
    let socket = w.socket().expect("the broker's socket");
    w.hook("cleanup_plugin_for_backup");
    let pid = w.brokers()[0];
    assert!(!alive(pid), "the cleanup hook stops the broker");
    assert!(!socket.exists(), "its socket is removed");
    assert!(
        !socket.with_extension("lock").exists(),
        "and its lock file: nothing piles up in /tmp, run after run"
    );
    assert!(w.env.temporaries().is_empty());
    // Without it, the processes work directly, with one info line each.
    let out = w.restore(&objects[4].0);
    ok(&out);
    assert_eq!(out.stdout, objects[4].1);
    assert!(w.env.log_text().contains("restore_data works directly"));
}

#[test]
fn the_broker_keeps_to_broker_connections() {
    // One connection: a request gets no more lanes, and a restore's
    // connection replaces the backups' (kept apart from it), so two logins
    // in all, whatever the number of objects.
    let w = World::new("  broker_connections: 1\n");
    w.hook("setup_plugin_for_backup");
    let before = w.connects();
    let objects: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("gpbackup_0_{TS}_{i}"), bytes(1000 * i, i as u64)))
        .collect();
    w.round_trip(&objects);
    let logins = w.connects() - before;
    assert_eq!(logins, 2, "{}", w.env.log_text());
    assert!(!w.env.log_text().contains("works directly"));
}

#[test]
fn without_a_broker_processes_work_directly() {
    let w = World::new("");
    let data = bytes(50_000, 3);
    ok(&w.backup("direct", &data));
    let out = w.restore("direct");
    ok(&out);
    assert_eq!(out.stdout, data);
    let log = w.env.log_text();
    assert!(
        log.contains("connection broker: none at ") && log.contains("; backup_data works directly"),
        "{log}"
    );
    assert!(!log.contains("[WARNING]"), "{log}");
    // broker: off starts none.
    let off = World::new("  broker: off\n");
    off.hook("setup_plugin_for_backup");
    assert!(off.brokers().is_empty());
    assert!(off.socket().is_none());
}

/// A client killed at a pause point of an overwrite: nothing committed, the
/// old object kept, the temporary removed, the broker still serving.
fn killed_client(point: &str, sig: &str) {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    let old = bytes(10_000, 1);
    ok(&w.backup("obj", &old));
    // A small object's steps have no data-written point: a large one's do.
    let size = if point == "data-written" {
        3 << 20
    } else {
        30_000
    };
    let (child, _) = w.paused_backup("obj", point, &bytes(size, 2));
    kill(child.id() as i32, sig);
    let (status, stderr) = stderr_of(child);
    assert!(!status.success(), "{point} {sig}: {stderr}");
    if sig == "TERM" {
        assert_eq!(status.code(), Some(128 + 15), "{stderr}");
    }
    wait_for(|| w.env.temporaries().is_empty(), "the temporary to go");
    let out = w.restore("obj");
    ok(&out);
    assert_eq!(out.stdout, old, "{point} {sig}: the old object stays");
    let other = bytes(7_000, 5);
    ok(&w.backup("after", &other));
    assert_eq!(w.restore("after").stdout, other);
    assert_eq!(w.brokers().len(), 1);
}

#[test]
fn a_client_killed_before_the_commit_commits_nothing() {
    for point in ["data-written", "record-staged"] {
        killed_client(point, "KILL");
        killed_client(point, "TERM");
    }
}

#[test]
fn a_client_signalled_at_the_commit_point_finishes() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    ok(&w.backup("obj", &bytes(10_000, 1)));
    let new = bytes(20_000, 9);
    let (child, _) = w.paused_backup("obj", "data-committed", &new);
    kill(child.id() as i32, "TERM");
    let (status, stderr) = stderr_of(child);
    assert!(status.success(), "{stderr}");
    assert_eq!(w.restore("obj").stdout, new);
    assert!(w.env.temporaries().is_empty());
}

/// A first write (nothing at the path) killed before its commit point:
/// nothing stored, no temporary, the broker still serving.
#[test]
fn a_first_write_killed_before_the_commit_stores_nothing() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    for sig in ["KILL", "TERM"] {
        let (child, _) = w.paused_backup("obj", "record-written", &bytes(30_000, 2));
        kill(child.id() as i32, sig);
        let (status, stderr) = stderr_of(child);
        assert!(!status.success(), "{sig}: {stderr}");
        wait_for(|| w.env.temporaries().is_empty(), "the temporaries to go");
        let out = w.restore("obj");
        assert!(!out.status.success(), "{sig}: an object was stored");
        assert!(!w.stored("obj") && !w.stored(".obj.checksum.next"), "{sig}");
    }
    // Signalled once both renames began, it finishes.
    for point in ["data-renaming", "record-renaming"] {
        let data = bytes(20_000, 4);
        let (child, _) = w.paused_backup(point, point, &data);
        kill(child.id() as i32, "TERM");
        let (status, stderr) = stderr_of(child);
        assert!(status.success(), "{point}: {stderr}");
        assert_eq!(w.restore(point).stdout, data, "{point}");
    }
    assert_eq!(w.brokers().len(), 1);
}

/// A first write's data and record are renamed at once: each is in place
/// while the other's rename is held. Killed in between (the broker, with
/// SIGKILL), the object is absent, or complete without a record; the
/// cleanup hook removes the other temporary, and a later write of the
/// object succeeds.
#[test]
fn a_first_write_renames_its_data_and_record_at_once() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    let data = bytes(30_000, 3);
    let (child, _) = w.paused_backup("obj", "record-renaming", &data);
    wait_for(
        || w.stored("obj"),
        "the data in place while the record waits",
    );
    assert!(!w.stored(".obj.checksum.next") && !w.stored(".obj.checksum"));
    kill(w.brokers()[0], "KILL");
    let (status, stderr) = stderr_of(child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    w.hook("cleanup_plugin_for_backup");
    assert!(w.env.temporaries().is_empty(), "{}", w.env.log_text());
    let out = w.restore("obj");
    ok(&out);
    assert_eq!(out.stdout, data, "complete, without a record");

    w.hook("setup_plugin_for_backup");
    let (child, _) = w.paused_backup("two", "data-renaming", &data);
    wait_for(
        || w.stored(".two.checksum.next"),
        "the record staged while the data waits",
    );
    assert!(!w.stored("two"));
    kill(w.brokers()[1], "KILL");
    let (status, stderr) = stderr_of(child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    w.hook("cleanup_plugin_for_backup");
    assert!(w.env.temporaries().is_empty(), "{}", w.env.log_text());
    assert!(!w.restore("two").status.success(), "absent");
    let again = bytes(9_000, 5);
    ok(&w.backup("two", &again));
    assert_eq!(w.restore("two").stdout, again);
}

#[test]
fn a_broker_killed_mid_write_fails_its_client_and_cleanup_removes_the_temporary() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    let old = bytes(10_000, 1);
    ok(&w.backup("obj", &old));
    let (child, _) = w.paused_backup("obj", "record-staged", &bytes(30_000, 2));
    let pid = w.brokers()[0];
    kill(pid, "KILL");
    let (status, stderr) = stderr_of(child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the connection broker") && stderr.contains("stopped during backup_data"),
        "{stderr}"
    );
    assert!(
        !w.env.temporaries().is_empty(),
        "the broker left its temporary"
    );
    w.hook("cleanup_plugin_for_backup");
    assert!(w.env.temporaries().is_empty(), "{}", w.env.log_text());
    assert_eq!(w.restore("obj").stdout, old);
}

#[test]
fn two_setup_hooks_at_once_start_one_broker() {
    let w = World::new("");
    let dir = w.env.backup_dir(TS);
    let hooks: Vec<Child> = (0..3)
        .map(|_| {
            w.cmd(&["setup_plugin_for_backup", w.env.cfg(), &dir, "segment_host"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for h in hooks {
        ok(&h.wait_with_output().unwrap());
    }
    assert_eq!(w.brokers().len(), 1, "{}", w.env.log_text());
    ok(&w.backup("one", b"x"));
    assert!(w.env.log_text().contains("(broker "));
}

#[test]
fn a_hook_whose_output_is_a_pipe_returns_while_the_broker_runs() {
    let w = World::new("");
    let dir = w.env.backup_dir(TS);
    let mut hook = w
        .cmd(&["setup_plugin_for_backup", w.env.cfg(), &dir, "segment_host"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read to the end of both pipes, as gpbackup's ssh does.
    let mut out = String::new();
    hook.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    hook.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(hook.wait().unwrap().success(), "{err}");
    // The pipes ended while the broker (60 s idle time) still runs: it holds
    // none of the hook's descriptors.
    let pid = w.brokers()[0];
    assert!(alive(pid));
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, PathBuf::from("/dev/null"));
    }
}

#[test]
fn an_idle_broker_stops_and_removes_its_socket() {
    let w = World::new("  broker_idle_seconds: 1\n");
    w.hook("setup_plugin_for_backup");
    let pid = w.brokers()[0];
    let socket = w.socket().unwrap();
    wait_for(|| !alive(pid), "the idle broker to stop");
    assert!(!socket.exists());
    assert!(!socket.with_extension("lock").exists());
    // A later run of the same config starts a broker again.
    w.hook("setup_plugin_for_backup");
    assert!(w.socket().is_some(), "{}", w.env.log_text());
    assert!(w.env.log_text().contains("stopping (idle)"));
}

#[test]
fn a_failing_storage_call_in_the_broker_reaches_the_client() {
    let mut w = World::new("");
    w.faults = Some("commit:path=doomed:err=io".into());
    w.hook("setup_plugin_for_backup");
    let out = w.backup("doomed", &bytes(5_000, 4));
    let err = fails(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("backup_data") && err.contains("doomed"),
        "{err}"
    );
    assert!(w.env.temporaries().is_empty());
    // The broker goes on serving, on a new connection.
    let data = bytes(5_000, 6);
    ok(&w.backup("fine", &data));
    assert_eq!(w.restore("fine").stdout, data);
}

#[test]
fn a_broker_answers_sigterm_by_cancelling_and_exiting() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    let old = bytes(1_000, 1);
    ok(&w.backup("obj", &old));
    let (child, _) = w.paused_backup("obj", "record-staged", &bytes(3_000, 2));
    let pid = w.brokers()[0];
    kill(pid, "TERM");
    let (status, _) = stderr_of(child);
    assert!(!status.success());
    wait_for(|| !alive(pid), "the broker to exit");
    assert!(w.env.temporaries().is_empty(), "{}", w.env.log_text());
    assert_eq!(w.restore("obj").stdout, old);
}

/// The socket's folder is the private one below the run dir, whatever
/// `$HOME` and `$TMPDIR` say.
#[test]
fn clients_find_the_broker_whatever_home_and_tmpdir_say() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    let data = bytes(2_000, 8);
    let other_tmp = w.env.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&other_tmp).unwrap();
    let out = feed(
        {
            let mut c = w.cmd(&["backup_data", w.env.cfg(), &w.key("obj")]);
            c.env("TMPDIR", &other_tmp);
            c
        },
        &data,
    );
    ok(&out);
    assert!(w.env.log_text().contains("(broker "));
}

#[test]
fn a_subset_restore_goes_through_the_broker_with_a_relative_offsets_file() {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    let data = bytes(3 << 20, 11);
    ok(&w.backup("single", &data));
    std::fs::write(w.env.tmp.path().join("offsets"), "2 10 20 2097152 2097200").unwrap();
    // Relative paths: the broker runs in another folder.
    let out = w
        .cmd(&[
            "restore_data_subset",
            "plugin_config.yaml",
            &w.key("single"),
            "offsets",
        ])
        .current_dir(w.env.tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    let want = [&data[10..20], &data[2097152..2097200]].concat();
    assert_eq!(out.stdout, want);
    assert!(
        w.env.log_text().contains("(broker ") && w.env.log_text().contains("restore_data_subset) ")
    );
}

#[test]
fn two_runs_with_copies_of_one_config_get_a_broker_each() {
    let w = World::new("");
    // gpbackup's per-run copies: the same bytes at two paths.
    let copy = w.env.tmp.path().join("20250101130000_cfg.yaml");
    std::fs::copy(&w.env.config, &copy).unwrap();
    let copy = copy.to_str().unwrap();
    w.hook("setup_plugin_for_backup");
    w.hook_with("setup_plugin_for_backup", copy);
    assert_eq!(w.brokers().len(), 2, "{}", w.env.log_text());
    // The copy's run ends: its cleanup hook stops its broker only.
    w.hook_with("cleanup_plugin_for_backup", copy);
    ok(&w.backup("still", b"through the other broker"));
    let log = w.env.log_text();
    assert!(!log.contains("backup_data works directly"), "{log}");
    assert!(log.contains("(broker "), "{log}");
}
