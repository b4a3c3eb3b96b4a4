//! The connection broker keeps nothing that is not its own, through the
//! binary as gpbackup runs it: no descriptor of the hook that started it.

mod support;

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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
