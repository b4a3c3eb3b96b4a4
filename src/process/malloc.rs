//! The C allocator's settings for processes that run many threads: the
//! connection broker, and the commands that work through many files on
//! `command_connections` connections at once.
//!
//! glibc gives threads arenas of their own, up to eight per core, and keeps
//! what each freed. A command with dozens of threads listing, verifying or
//! deleting 100,000 files kept 121-177 MiB resident with two arenas (it
//! varied from run to run with which threads freed what) and 43-48 MiB with
//! one, in the same time: its threads wait on the storage, so one arena is
//! not contended. The broker's request threads copy data: after a burst of
//! 32 requests it kept 37-50 MiB with glibc's default, 26-37 MiB with 2
//! arenas (17-19 once its idle threads ended), at the same CPU; its stream
//! buffers are kept for the next request (`data::stream`), so no mmap
//! threshold is fixed and large allocations (the SDK's too) are reused from
//! the heap as in a plugin process. The settings are read by glibc when a
//! program starts, so they are given in the environment of a process
//! started (the broker), or of this program run again (a command). A
//! variable already set is left as it is.

use std::ffi::OsString;
use std::process::Command;

/// The broker's settings.
const BROKER: &[(&str, &str)] = &[("MALLOC_ARENA_MAX", "2")];
/// The settings of a command working through many files.
const COMMAND: &[(&str, &str)] = &[("MALLOC_ARENA_MAX", "1")];

/// Sets the broker's tuning on `cmd`, for variables not set here.
pub fn tune(cmd: &mut Command) {
    set(cmd, BROKER);
}

fn set(cmd: &mut Command, tuning: &[(&str, &str)]) {
    for (k, v) in tuning {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
}

/// Runs this program again with `argv` and a command's tuning, replacing this
/// process (the same pid, descriptors and arguments), when a variable is
/// not set; returns when all are set, or when it cannot (then this process
/// goes on as it is).
pub fn run_tuned(argv: &[OsString]) {
    use std::os::unix::process::CommandExt;
    if COMMAND.iter().all(|(k, _)| std::env::var_os(k).is_some()) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut again = Command::new(exe);
    if let Some(arg0) = argv.first() {
        again.arg0(arg0);
    }
    again.args(argv.iter().skip(1));
    set(&mut again, COMMAND);
    // Returns only on failure.
    let _ = again.exec();
}
