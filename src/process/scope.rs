//! The state a command keeps while it runs: whether it was interrupted, the
//! cleanups of what it has half done, the journal file of its temporaries,
//! its test pause points and the prefix of its log lines.
//!
//! A plugin process runs one command, and that state is the process's own
//! (the [`Scope::process`] scope, the one its signal handlers act on). The
//! connection broker runs many commands at once, each in a request scope of
//! its own: its cancel removes that request's temporaries only, and its log
//! lines carry the client's process id. A thread finds its scope with
//! [`Scope::current`]; threads a command spawns are in the process scope
//! unless they [`Scope::enter`] the one captured before spawning them.

use std::cell::RefCell;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A registered cleanup. It may run more than once (a cancelled request's
/// runs at the cancel and again when its guard is dropped), so it must do no
/// harm when what it removes is gone.
pub type Action = Arc<dyn Fn() + Send + Sync>;

/// One command's state (see the module notes).
pub struct Scope {
    /// Set when the command is to stop (a signal, or the broker's cancel).
    pub(crate) interrupted: Arc<AtomicBool>,
    /// What is to be undone on an interrupt.
    pub(crate) registry: RwLock<Vec<(u64, Action)>>,
    /// Set from the commit point of a write on.
    pub(crate) committing: AtomicBool,
    /// Set when a thread of the command panicked.
    panicked: AtomicBool,
    /// The journal file a writer appends to while it writes.
    pub(crate) journal: Mutex<Option<File>>,
    /// How the journal names this writer: the process id, and in the
    /// broker the request's number after it (`<pid>:<n>`).
    pub(crate) writer_id: String,
    /// The pause point asked for (test builds), and how often points were reached.
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    pub(crate) pause: Option<String>,
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    pub(crate) paused: AtomicU64,
    /// The process id and command shown in log lines (a broker's request:
    /// its client's).
    pub(crate) log_as: Option<(u32, String)>,
    /// Where the command's time went so far.
    pub(crate) tally: super::tally::Tally,
}

/// The pause point this process was asked for
/// (`GPBACKUP_DDBOOST_PLUGIN_PAUSE`, see `process::pause`).
#[cfg(feature = "test-support")]
pub fn pause_requested() -> Option<String> {
    std::env::var("GPBACKUP_DDBOOST_PLUGIN_PAUSE").ok()
}

/// Builds without `test-support` have no pause points.
#[cfg(not(feature = "test-support"))]
pub fn pause_requested() -> Option<String> {
    None
}

static PROCESS: LazyLock<Arc<Scope>> = LazyLock::new(|| {
    Arc::new(Scope::new(
        std::process::id().to_string(),
        pause_requested(),
        None,
    ))
});

thread_local! {
    static CURRENT: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

impl Scope {
    fn new(writer_id: String, pause: Option<String>, log_as: Option<(u32, String)>) -> Scope {
        Scope {
            interrupted: Arc::new(AtomicBool::new(false)),
            registry: RwLock::new(Vec::new()),
            committing: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            journal: Mutex::new(None),
            writer_id,
            pause,
            paused: AtomicU64::new(0),
            log_as,
            tally: Default::default(),
        }
    }

    /// The process's own scope.
    pub fn process() -> Arc<Scope> {
        Arc::clone(&PROCESS)
    }

    /// A new scope for one request of the broker: its log lines show
    /// `client_pid` and `command`; `pause` is the client's pause point (test
    /// builds).
    pub fn request(client_pid: u32, command: &str, pause: Option<String>) -> Arc<Scope> {
        let n = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        Arc::new(Scope::new(
            format!("{}:{n}", std::process::id()),
            pause,
            Some((client_pid, command.to_string())),
        ))
    }

    /// The scope of the calling thread: the one it entered, else the process's.
    pub fn current() -> Arc<Scope> {
        CURRENT
            .with(|c| c.borrow().clone())
            .unwrap_or_else(Scope::process)
    }

    /// Whether this is the process's own scope.
    pub fn is_process(&self) -> bool {
        std::ptr::eq(self, &**PROCESS)
    }

    /// Makes this the calling thread's scope until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Entered {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(self)));
        Entered { previous }
    }

    /// Whether the command is to stop.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Notes that a thread of the command panicked (the panic hook does,
    /// on the panicking thread): what it was using may be half done.
    pub fn note_panic(&self) {
        self.panicked.store(true, Ordering::SeqCst);
    }

    /// Whether a thread of the command panicked.
    pub fn panicked(&self) -> bool {
        self.panicked.load(Ordering::SeqCst)
    }

    pub(crate) fn registry(&self) -> RwLockWriteGuard<'_, Vec<(u64, Action)>> {
        // A panic while holding the lock must not stop later cleanups.
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The registry held against changes and cleanups, shared by steps that
    /// run at once on several connections (see `CleanupGuard::hold`).
    pub(crate) fn registry_shared(&self) -> RwLockReadGuard<'_, Vec<(u64, Action)>> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn journal(&self) -> MutexGuard<'_, Option<File>> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// While alive, the thread is in the scope it entered.
pub struct Entered {
    previous: Option<Arc<Scope>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::signals::{self, CleanupGuard};
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_requests_cancel_runs_its_cleanups_only() {
        let ran = Arc::new(AtomicUsize::new(0));
        let (a, b) = (
            Scope::request(1, "backup_data", None),
            Scope::request(2, "backup_data", None),
        );
        let guard_a = {
            let _in = a.enter();
            let ran = Arc::clone(&ran);
            CleanupGuard::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
        };
        let guard_b = {
            let _in = b.enter();
            let ran = Arc::clone(&ran);
            CleanupGuard::new(move || {
                ran.fetch_add(10, Ordering::SeqCst);
            })
        };
        assert!(signals::cancel(&a));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(a.interrupted() && !b.interrupted());
        assert!(!Scope::process().interrupted());
        {
            let _in = a.enter();
            assert!(signals::check().is_err());
        }
        // Dropped as the request ends (after closing what it held): its
        // cleanup runs again, for what the close re-created.
        drop(guard_a);
        assert_eq!(ran.load(Ordering::SeqCst), 2, "ran again when dropped");
        guard_b.disarm();
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_request_at_its_commit_point_is_not_stopped() {
        let s = Scope::request(3, "backup_data", None);
        let _in = s.enter();
        let done = signals::commit_point(|| {
            assert!(!signals::interrupt(&s), "at the commit point");
            Ok(())
        });
        assert!(done.is_ok());
    }
}
