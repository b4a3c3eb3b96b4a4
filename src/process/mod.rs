//! Process plumbing: a command's state (`scope`: the process's own, or one
//! per broker request), the runner of work over several connections, the
//! log, signals, progress on a terminal, temporary names that name their
//! writer (`temp`), the journal of temporaries, the user's private folder,
//! the malloc arenas, the descriptors a process inherited, how a command's
//! end is told (`outcome`), and test-only pause points.

pub mod descriptors;
pub mod fanout;
pub mod journal;
pub mod logging;
pub mod malloc;
pub mod metrics;
pub mod outcome;
pub mod pause;
pub mod private;
pub mod progress;
pub mod scope;
pub mod signals;
pub mod tally;
pub mod temp;

/// Whether process `pid` is running on this host (under any user). A
/// process that has exited but not yet been waited for (a zombie, such as a
/// killed broker whose parent does not reap) is not running.
pub fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists under another user.
    let exists = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    };
    exists && !zombie(pid)
}

/// Whether `/proc` shows process `pid` as a zombie (state `Z`).
fn zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`: the command may hold spaces and parentheses.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}
