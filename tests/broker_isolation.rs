//! The connection broker keeps nothing that is not its own, through the
//! binary as gpbackup runs it: no descriptor of the hook that started it,
//! nothing of a request that was cancelled.

mod support;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use support::broker::*;
use support::*;

/// The hook `hook` run by a shell that first opens `fifo` for writing as
/// descriptor 7 and `lock` as 8, locked, neither close-on-exec (as a
/// script's `exec 7>fifo` and `flock` leave them).
fn hook_with_open_descriptors(w: &World, hook: &str, fifo: &PathBuf, lock: &PathBuf) {
    let dir = w.env.backup_dir(TS);
    let plugin = w.cmd(&[hook, w.env.cfg(), &dir, "segment_host"]);
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(r#"exec 7>"$1" 8>>"$2" && flock -x 8 && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(fifo)
        .arg(lock)
        .arg(plugin.get_program())
        .args(plugin.get_args());
    for (k, v) in plugin.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    ok(&sh.stdin(Stdio::null()).output().unwrap());
}

#[test]
fn the_broker_holds_no_descriptor_of_the_hook_that_started_it() {
    let w = World::new("");
    let fifo = w.env.tmp.path().join("hook.fifo");
    let lock = w.env.tmp.path().join("hook.lock");
    nix::unistd::mkfifo(&fifo, Mode::S_IRWXU).unwrap();
    // The pipe's reader, there before the hook's writer (non-blocking: a
    // read answers at once, 0 bytes once no writer is left).
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(&fifo)
        .unwrap();
    hook_with_open_descriptors(&w, "setup_plugin_for_backup", &fifo, &lock);
    let pid = w.brokers()[0];
    assert!(alive(pid), "{}", w.env.log_text());
    let held: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect();
    for target in &held {
        let shown = target.display().to_string();
        assert!(
            *target != fifo && *target != lock && !shown.starts_with("pipe:"),
            "the broker holds {shown}: {held:?}"
        );
    }
    // The hook is gone: the pipe's reader sees its end, the lock is free.
    let mut buf = [0u8; 16];
    match reader.read(&mut buf) {
        Ok(0) => {}
        other => panic!("the pipe has a writer left: {other:?}"),
    }
    let file = OpenOptions::new().append(true).open(&lock).unwrap();
    assert!(
        Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok(),
        "the hook's lock is still held"
    );
    assert!(
        w.env
            .log_text()
            .contains("descriptor(s) its starter left open"),
        "{}",
        w.env.log_text()
    );
    // It serves as before.
    let data = bytes(20_000, 1);
    ok(&w.backup("obj", &data));
    assert_eq!(w.restore("obj").stdout, data);
    assert!(w.env.log_text().contains("(broker "));
}

/// The streams process `pid` holds open on the mock system, (reads,
/// writes), as its stream-count file shows them (none before its first).
fn streams_of(w: &World, pid: i32) -> (i32, i32) {
    let file = w
        .env
        .dd_root()
        .join("dd-primary/streams")
        .join(pid.to_string());
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let n: Vec<i32> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match n[..] {
        [read, write, _] => (read, write),
        _ => (0, 0),
    }
}

/// Waits up to 30 s for `child` to exit.
fn exits_within_30_s(mut child: Child, what: &str) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{what} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_signalled_client_whose_input_stalled_leaves_no_temporary_and_holds_nothing() {
    // One connection: the next request runs only once the cancelled one
    // gave it back.
    let w = World::new("  broker_connections: 1\n");
    w.hook("setup_plugin_for_backup");
    let old = bytes(10_000, 1);
    ok(&w.backup("obj", &old));
    let pid = w.brokers()[0];
    let mut client = w.spawn(&["backup_data", w.env.cfg(), &w.key("obj")]);
    // Part of the object, then the producer stalls with its end open.
    let mut input = client.stdin.take().unwrap();
    input.write_all(&bytes(3 << 20, 2)).unwrap();
    wait_for(
        || !w.env.temporaries().is_empty() && streams_of(&w, pid) == (0, 1),
        "the write under way",
    );
    let signalled = Instant::now();
    kill(client.id() as i32, "TERM");
    let (status, stderr) = stderr_of(client);
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(128 + 15), "{stderr}");
    assert!(took < Duration::from_secs(3), "exited after {took:?}");
    // At once: the temporary gone, the write stream closed, and the
    // connection back (another request runs while the input is still open).
    assert!(w.env.temporaries().is_empty(), "{:?}", w.env.temporaries());
    assert_eq!(streams_of(&w, pid), (0, 0));
    let data = bytes(5_000, 3);
    let next = spawn_fed(w.cmd(&["backup_data", w.env.cfg(), &w.key("next")]), &data).0;
    ok(&exits_within_30_s(
        next,
        "a request after the cancelled one",
    ));
    // The input ends: nothing comes back.
    drop(input);
    std::thread::sleep(Duration::from_millis(500));
    assert!(w.env.temporaries().is_empty(), "{:?}", w.env.temporaries());
    assert_eq!(streams_of(&w, pid), (0, 0));
    assert_eq!(w.restore("obj").stdout, old, "the old object stays");
    assert_eq!(w.restore("next").stdout, data);
    let log = w.env.log_text();
    assert!(!log.contains("after the cancel"), "{log}");
}

#[test]
fn a_panic_in_a_step_of_a_request_closes_its_connections() {
    let mut w = World::new("");
    // The lookup of what is at the path, a step a small write runs on a
    // second connection at once with the others, panics mid-call.
    w.faults = Some("stat:path=doomed:err=panic".into());
    w.hook("setup_plugin_for_backup");
    let out = w.backup("doomed", &bytes(5_000, 4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("gpbackup_ddboost_plugin backup_data: internal error")
            && err.contains("please report this"),
        "{err}"
    );
    assert!(
        w.env.log_text().contains("injected panic"),
        "the panic is logged"
    );
    // Every connection the request held is logged out, none kept.
    wait_for(
        || w.calls("disconnect") == w.connects(),
        "the request's connections to be closed",
    );
    assert!(w.env.temporaries().is_empty(), "{:?}", w.env.temporaries());
    // The broker goes on serving, on connections of its own.
    let logins = w.connects();
    let data = bytes(5_000, 6);
    ok(&w.backup("fine", &data));
    assert_eq!(w.restore("fine").stdout, data);
    assert!(w.connects() > logins, "{}", w.env.log_text());
    assert!(!w.env.log_text().contains("works directly"));
}

#[test]
fn a_panic_after_a_requests_answer_leaves_the_broker_idle() {
    let w = World::new("  broker_idle_seconds: 2\n");
    w.hook("setup_plugin_for_backup");
    let pid = w.brokers()[0];
    let data = bytes(5_000, 7);
    let mut cmd = w.cmd(&["backup_data", w.env.cfg(), &w.key("obj")]);
    cmd.env("GPBACKUP_DDBOOST_PLUGIN_PAUSE", "request-answered=panic");
    // Answered before the panic, which comes before its connections go back.
    ok(&feed(cmd, &data));
    wait_for(|| !alive(pid), "the broker to go idle and stop");
    let log = w.env.log_text();
    assert!(log.contains("stopping (idle)"), "{log}");
    assert!(log.contains("panicking as asked"), "{log}");
    assert_eq!(w.calls("disconnect"), w.connects(), "{log}");
    assert_eq!(w.restore("obj").stdout, data);
}

#[test]
fn a_restore_cancelled_while_waiting_for_a_connection_is_not_told_as_a_write() {
    let w = World::new("  broker_connections: 1\n  logger_verbosity: verbose\n");
    w.hook("setup_plugin_for_backup");
    let data = bytes(10_000, 1);
    ok(&w.backup("kept", &data));
    // A write paused before its commit holds the only connection.
    let (writer, _) = w.paused_backup("obj", "record-staged", &bytes(30_000, 2));
    let reader = w.spawn(&["restore_data", w.env.cfg(), &w.key("kept")]);
    wait_for(
        || w.env.log_text().contains("restore_data: starting"),
        "the restore to wait for the connection",
    );
    kill(reader.id() as i32, "TERM");
    let (status, stderr) = stderr_of(reader);
    assert_eq!(status.code(), Some(128 + 15), "{stderr}");
    let log = w.env.log_text();
    let told: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("restore_data: interrupted"))
        .collect();
    assert_eq!(told.len(), 1, "{log}");
    assert!(!told[0].contains("nothing was stored"), "{log}");
    kill(writer.id() as i32, "TERM");
    let (status, stderr) = stderr_of(writer);
    assert_eq!(status.code(), Some(128 + 15), "{stderr}");
    wait_for(|| w.env.temporaries().is_empty(), "the temporary to go");
    assert_eq!(w.restore("kept").stdout, data);
}
