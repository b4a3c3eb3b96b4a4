//! The descriptors a process was started with beyond its standard streams.
//!
//! The connection broker outlives the hook that starts it. Whatever that
//! hook held open without close-on-exec (a shell's `exec 7>fifo`, a file
//! a script locked with `flock`) would stay open in the broker until it
//! stops: the pipe's reader would see no end of file, the lock would stay
//! taken. The broker closes all of them before it opens anything of its own.

use std::os::fd::RawFd;

/// Closes every descriptor above standard error, close-on-exec or not, and
/// returns how many were open. Called first thing in a process, before it
/// opens a file or starts a thread, when every such descriptor is its
/// starter's.
pub fn close_inherited() -> usize {
    let fds = listed().unwrap_or_else(|| (3..limit()).collect());
    fds.into_iter()
        .filter(|&fd| fd > 2)
        .filter(|&fd| nix::unistd::close(fd).is_ok())
        .count()
}

/// The open descriptors, from `/proc/self/fd` (the listing's own is closed
/// when this returns: closing it again fails harmlessly).
fn listed() -> Option<Vec<RawFd>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// Without `/proc`: one past the highest descriptor the process may have.
fn limit() -> RawFd {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    RawFd::try_from(soft).unwrap_or(RawFd::MAX)
}
