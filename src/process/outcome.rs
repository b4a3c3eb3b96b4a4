//! How a command's end is told to its caller: the exit code and the one
//! stderr line. One mapping for a plugin process (`app`), for a panic
//! anywhere in a command, and for a command the connection broker runs for
//! a client (which exits as the broker's answer says).

use crate::about::PLUGIN_NAME;
use crate::error::{Error, ErrorKind, Failure, Result};

use super::logging;
use super::scope::Scope;

/// How a command ended, as its caller is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code: 0, or 1 for a failure or a panic.
    pub code: u8,
    /// The one stderr line of a failure (logged as well).
    pub line: Option<String>,
    /// Whether the connections the command used may serve again: not after
    /// a failure on the storage (a lost connection, or what cannot be told
    /// apart from one), nor after a panic (a call may have stopped half way).
    pub reusable: bool,
}

impl Outcome {
    fn success(reusable: bool) -> Outcome {
        Outcome {
            code: 0,
            line: None,
            reusable,
        }
    }
}

/// The outcome of the command `name` whose run gave `result` (`Err`: it
/// panicked), told in the calling thread's command scope, where a panic of
/// any thread of the command is noted ([`note_panic`]).
pub fn of(name: &str, result: std::thread::Result<Result<()>>) -> Outcome {
    let panicked = result.is_err() || Scope::current().panicked();
    match result {
        Ok(Ok(())) => Outcome::success(!panicked),
        Ok(Err(e)) if e.kind() == ErrorKind::BrokenPipe => {
            log::info!("{name}: the reader of the output went away; stopping");
            Outcome::success(!panicked)
        }
        Ok(Err(e)) if !panicked => failed(name, &e),
        Ok(Err(e)) => {
            log::error!("[{}] {name}: {e}", e.code());
            panic_outcome(name)
        }
        Err(_) => panic_outcome(name),
    }
}

/// The outcome of the command `name` that failed with `e`: its line
/// carries the error's code, `... backup_data: error[DDB-204]: ...`, and so
/// does the log's.
pub fn failed(name: &str, e: &Error) -> Outcome {
    let code = e.code();
    log::error!("[{code}] {name}: {e}");
    Outcome {
        code: 1,
        line: Some(format!(
            "{PLUGIN_NAME} {name}: error[{code}]: {e}{}",
            log_hint()
        )),
        reusable: e.kind() != ErrorKind::Storage,
    }
}

/// The one line of a failure before any command ran (a wrong command or
/// argument count, a broker that refused a request): `error[DDB-101]: ...`.
pub fn early_line(e: &Error) -> String {
    format!("{PLUGIN_NAME}: error[{}]: {e}", e.code())
}

/// The outcome of the command `name` that panicked: the panic's message
/// and place are in the log ([`note_panic`]).
pub fn panic_outcome(name: &str) -> Outcome {
    Outcome {
        code: 1,
        line: Some(format!(
            "{PLUGIN_NAME} {name}: internal error[{}]{}; please report this",
            Failure::Internal.code(),
            log_hint()
        )),
        reusable: false,
    }
}

/// What the panic hook does: logs the panic of a thread of `command` as one
/// line and notes it in the thread's command scope. The command's one
/// stderr line comes with its outcome ([`of`]).
pub fn note_panic(command: &str, info: &std::panic::PanicHookInfo<'_>) {
    Scope::current().note_panic();
    let msg = info.to_string().replace('\n', " ");
    let code = Failure::Internal.code();
    log::error!("[{code}] {command}: internal error: {msg}");
}

/// " (log: <path>)" when there is a log file.
fn log_hint() -> String {
    match logging::log_path() {
        Some(p) => format!(" (log: {})", p.display()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_for_each_end() {
        let request = Scope::request(11, "restore_data", None);
        let _in = request.enter();
        assert_eq!(of("restore_data", Ok(Ok(()))), Outcome::success(true));
        assert_eq!(
            of("restore_data", Ok(Err(Error::broken_pipe()))),
            Outcome::success(true)
        );
        let storage = of("restore_data", Ok(Err(Error::storage("lost"))));
        assert_eq!((storage.code, storage.reusable), (1, false));
        let line = storage.line.unwrap();
        assert!(line.starts_with("gpbackup_ddboost_plugin restore_data: error[DDB-207]: lost"));
        let cancelled = of("restore_data", Ok(Err(Error::interrupted("stopped"))));
        assert_eq!((cancelled.code, cancelled.reusable), (1, true));
        let panicked = of("restore_data", Err(Box::new("boom")));
        assert_eq!(panicked, panic_outcome("restore_data"));
        assert!(panicked.line.unwrap().contains("internal error[DDB-399]"));
        // A thread of the command panicked: its failure is told as a panic.
        request.note_panic();
        let after = of("restore_data", Ok(Err(Error::internal("a step stopped"))));
        assert_eq!(after, panic_outcome("restore_data"));
        assert!(!of("restore_data", Ok(Ok(()))).reusable);
    }
}
