//! SIGINT, SIGTERM and SIGHUP: undo what is half done, then exit.
//!
//! Code that creates something which must not survive an interrupt (a
//! temporary object, a partial restored file) registers a cleanup with a
//! [`CleanupGuard`]. On a signal, every registered cleanup runs and the
//! process exits with 128 + the signal number. Dropping a guard runs its
//! cleanup too, so error paths need no extra code; committing disarms it.
//!
//! A signal that arrives at or after the commit point of a write
//! ([`commit_point`]) no longer stops the process: the write finishes.
//!
//! A signal that arrives before a commit is made fails the commit: the flag
//! the signal handler sets is checked under the registry lock right before
//! the commit step, and the signal thread holds that lock from the moment it
//! starts cleaning up until the process exits, so no commit and no new
//! temporary can slip in after it. Guards are registered before the thing
//! they clean up is created, so nothing is left between the two.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::scope::{Action, Scope};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Whether SIGINT, SIGTERM or SIGHUP has arrived (in the connection broker:
/// whether the calling thread's request was cancelled).
pub fn interrupted() -> bool {
    Scope::current().interrupted()
}

/// A write stopped before its commit.
fn interrupted_error() -> crate::error::Error {
    crate::error::Error::interrupted(
        "interrupted by a signal before the commit; nothing was stored",
    )
}

/// Fails once a signal has arrived (for long steps, of reads and writes
/// alike, to stop early).
pub fn check() -> crate::error::Result<()> {
    if interrupted() {
        Err(crate::error::Error::interrupted("interrupted by a signal"))
    } else {
        Ok(())
    }
}

/// Runs its cleanup when dropped or on a signal, unless disarmed.
pub struct CleanupGuard {
    id: u64,
    /// The command it belongs to (a request's, in the broker).
    scope: Arc<Scope>,
}

impl CleanupGuard {
    /// Registers a cleanup action.
    pub fn new(action: impl Fn() + Send + Sync + 'static) -> CleanupGuard {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let scope = Scope::current();
        scope.registry().push((id, Arc::new(action)));
        CleanupGuard { id, scope }
    }

    /// Registers removal of a local file.
    pub fn remove_file(path: PathBuf) -> CleanupGuard {
        Self::new(move || {
            let _ = std::fs::remove_file(&path);
        })
    }

    /// Runs `commit` with signal cleanups held off. If it succeeds the cleanup
    /// is dropped unrun; if it fails, or a signal arrived before it, the
    /// cleanup runs (and `commit` does not, after a signal).
    pub fn disarm_with<T>(
        self,
        commit: impl FnOnce() -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let scope = Arc::clone(&self.scope);
        let mut reg = scope.registry();
        let result = if scope.interrupted() {
            Err(interrupted_error())
        } else {
            commit()
        };
        let action = take(&mut reg, self.id);
        drop(reg);
        // Its entry is gone: dropping the guard runs nothing.
        drop(self);
        if result.is_err() {
            if let Some(a) = action {
                a();
            }
        }
        result
    }

    /// Runs `step` with signal cleanups held off (not at all once a signal
    /// arrived, unless at the commit point, where none runs), keeping the
    /// cleanup armed whatever the result: the caller decides with
    /// [`CleanupGuard::disarm`] or by dropping the guard. Steps of several
    /// threads hold cleanups off together (a shared lock), so that renames
    /// on several connections run at once; `step` must not create or drop a
    /// guard.
    pub fn hold<T>(
        &self,
        step: impl FnOnce() -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let reg = self.scope.registry_shared();
        if self.scope.committing.load(Ordering::SeqCst) {
            // At the commit point no signal runs cleanups or stops the
            // command: the steps of a commit may run at once.
            drop(reg);
            return step();
        }
        if self.scope.interrupted() {
            Err(interrupted_error())
        } else {
            step()
        }
    }

    /// Drops the cleanup unrun (what it cleans up is gone or committed).
    pub fn disarm(self) {
        // Its entry gone, dropping the guard runs nothing.
        take(&mut self.scope.registry(), self.id);
    }
}

/// Runs `commit`, the commit point of a write (after it, the new object is
/// what restores). A signal that arrived before fails it unrun; one that
/// arrives while it runs or after it succeeded no longer stops the process:
/// the command finishes (exit 0 once committed). If `commit` fails, signals
/// act as before (the failure is the command's outcome).
pub fn commit_point<T>(
    commit: impl FnOnce() -> crate::error::Result<T>,
) -> crate::error::Result<T> {
    let scope = Scope::current();
    {
        let _reg = scope.registry();
        if scope.interrupted() {
            return Err(interrupted_error());
        }
        scope.committing.store(true, Ordering::SeqCst);
    }
    let result = commit();
    if result.is_err() {
        scope.committing.store(false, Ordering::SeqCst);
    }
    result
}

fn take(reg: &mut Vec<(u64, Action)>, id: u64) -> Option<Action> {
    let i = reg.iter().position(|(i, _)| *i == id)?;
    Some(reg.swap_remove(i).1)
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let action = take(&mut self.scope.registry(), self.id);
        if let Some(a) = action {
            a();
        }
    }
}

/// Starts the thread that turns SIGINT/SIGTERM/SIGHUP into cleanup and exit.
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let process = Scope::process();
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&process.interrupted)) {
            log::warn!("cannot install the handler of signal {sig}: {e}");
        }
    }
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot install signal handlers: {e}");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let name = match sig {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                // Held until exit: no commit or new temporary after this.
                let mut reg = process.registry();
                if process.committing.load(Ordering::SeqCst) {
                    log::warn!("received {name} at the commit point of a write; finishing it");
                    continue;
                }
                log::warn!(
                    "[{}] received {name}; removing {} unfinished object(s) and exiting",
                    crate::error::Failure::Interrupted.code(),
                    reg.len()
                );
                for (_, action) in reg.drain(..) {
                    action();
                }
                crate::process::logging::flush();
                std::process::exit(128 + sig);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the signal thread: {e}");
    }
}

/// Stops the request whose scope is `scope` (in the connection broker), as
/// a signal stops a plugin process: its next commit step fails, and the
/// command returns with the interrupted error, its cleanups run as it
/// unwinds. Returns false when the request is at or past its commit point
/// (it finishes, as a signalled process does).
pub fn interrupt(scope: &Scope) -> bool {
    let _reg = scope.registry();
    scope.interrupted.store(true, Ordering::SeqCst);
    !scope.committing.load(Ordering::SeqCst)
}

/// [`interrupt`], and runs the request's cleanups now (for a request that
/// does not unwind in time, blocked on its output or on the storage). They
/// stay registered: when the request ends, each guard it drops runs its
/// cleanup again, after closing what it held (a temporary its close
/// re-created is removed then).
pub fn cancel(scope: &Scope) -> bool {
    let actions: Vec<Action> = {
        let reg = scope.registry();
        scope.interrupted.store(true, Ordering::SeqCst);
        if scope.committing.load(Ordering::SeqCst) {
            return false;
        }
        reg.iter().map(|(_, a)| Arc::clone(a)).collect()
    };
    for action in actions {
        action();
    }
    true
}
