//! Process plumbing: the log, signals, progress on a terminal, the journal
//! of temporaries, the user's private folder, and test-only pause points.

pub mod journal;
pub mod logging;
pub mod pause;
pub mod private;
pub mod progress;
pub mod scope;
pub mod signals;
pub mod temp;

/// Whether process `pid` is running on this host (under any user).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists under another user.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}
