//! One request in the broker: the command a plugin process handed over,
//! run on a thread of the broker in a request scope (`process::scope`),
//! with a thread watching its client. However the request ends, a panic
//! anywhere in it included, its client is answered, its connections go
//! back (closed after a failure on the storage or a panic), its watcher
//! ends and it leaves the list of running requests.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::pool::Loan;
use super::pool::Pool;
use super::wire::{self, Message};
use super::workers::Workers;
use super::Stream;
use crate::backends::PluginConfig;
use crate::commands::{self, Caller};
use crate::error::{Error, Result};
use crate::process::outcome;
use crate::process::pause;
use crate::process::scope::Scope;
use crate::process::signals;
use crate::protocol::args::Command;

/// How long a cancelled request has to unwind (removing its temporaries as
/// it goes) before its cleanups are run for it.
pub(super) const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// What the requests of one broker share.
pub(super) struct Requests {
    /// The config it serves, loaded once (its secrets too).
    config: Arc<PluginConfig>,
    pub(super) pool: Arc<Pool>,
    running: Mutex<Vec<Arc<Scope>>>,
    /// The threads requests and their watchers run on.
    pub(super) workers: Workers,
}

impl Requests {
    pub(super) fn new(config: PluginConfig) -> Requests {
        let config = Arc::new(config);
        Requests {
            pool: Arc::new(Pool::new(Arc::clone(&config))),
            config,
            running: Mutex::new(Vec::new()),
            workers: Workers::default(),
        }
    }

    /// The requests running (listed while they run, however they end).
    pub(super) fn running(&self) -> MutexGuard<'_, Vec<Arc<Scope>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) fn done(code: u8, line: Option<String>, cancelled: bool) -> Message {
    Message::Done {
        code,
        line,
        cancelled,
    }
}

/// The client process of a request.
pub(super) struct Client {
    pub(super) pid: u32,
    /// Its test pause point (test builds).
    pub(super) pause: Option<String>,
    /// When it started (Unix time, µs).
    pub(super) started_us: Option<u64>,
}

/// Takes the request of the process `client` to run `cmd`, receives its
/// descriptor and runs it; an error is a request that was not run.
pub(super) fn request(
    shared: &Requests,
    conn: &UnixStream,
    mut cmd: Command,
    client: Client,
) -> Result<()> {
    let Client {
        pid,
        pause,
        started_us,
    } = client;
    let served = super::served(&mut cmd)
        .ok_or_else(|| Error::invalid("the connection broker does not serve this command"))?;
    let (name, stream) = (served.name, served.stream);
    let lost = |e: std::io::Error| Error::broker(format!("process {pid} went away: {e}"));
    wire::send(
        conn,
        &Message::Accepted {
            broker_pid: std::process::id(),
        },
        None,
    )
    .map_err(lost)?;
    let fd = match wire::recv(conn).map_err(lost)? {
        Some((Message::Handover, Some(fd))) => fd,
        Some(_) => return Err(Error::invalid("no descriptor came with the request")),
        None => return Err(lost(std::io::ErrorKind::UnexpectedEof.into())),
    };
    let _ = conn.set_read_timeout(None);
    let scope = Scope::request(pid, name, pause.filter(|_| cfg!(feature = "test-support")));
    if let Some(us) = started_us {
        scope.tally.began_at_unix_us(us);
    }
    let running = Running::start(shared, conn, scope, name)?;
    running.run(cmd, stream, fd);
    Ok(())
}

/// A request from the moment it runs: what it holds, given back when it is
/// dropped, whether it ended or panicked.
struct Running<'a> {
    shared: &'a Requests,
    scope: Arc<Scope>,
    name: &'static str,
    /// The client's connection, until it is answered.
    reply: Arc<Mutex<Option<UnixStream>>>,
    /// Set once the command is done: the watcher stops.
    finished: Arc<AtomicBool>,
    loan: Arc<Loan>,
    /// Closed when the watcher has stopped.
    watcher: std::sync::mpsc::Receiver<()>,
}

impl<'a> Running<'a> {
    /// Lists the request in `scope` as running and starts its watcher.
    fn start(
        shared: &'a Requests,
        conn: &UnixStream,
        scope: Arc<Scope>,
        name: &'static str,
    ) -> Result<Running<'a>> {
        let reply = Arc::new(Mutex::new(Some(
            conn.try_clone()
                .map_err(|e| Error::broker(format!("cannot answer: {e}")))?,
        )));
        let finished = Arc::new(AtomicBool::new(false));
        let conn = conn
            .try_clone()
            .map_err(|e| Error::broker(format!("cannot watch the client: {e}")))?;
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        {
            let (scope, reply, finished) = (
                Arc::clone(&scope),
                Arc::clone(&reply),
                Arc::clone(&finished),
            );
            shared
                .workers
                .spawn("watcher", move || {
                    // Dropped at the end of the watch (a panic included).
                    let _done = done_tx;
                    watch(&conn, &scope, &reply, &finished);
                })
                .map_err(|e| Error::broker(format!("cannot start a thread: {e}")))?;
        }
        shared.running().push(Arc::clone(&scope));
        Ok(Running {
            shared,
            scope,
            name,
            reply,
            finished,
            loan: Arc::new(Loan::new(Arc::clone(&shared.pool))),
            watcher: done_rx,
        })
    }

    /// Runs the command on the client's descriptor `fd`, its standard
    /// `stream`, and answers; its connections go back once it is answered.
    fn run(self, cmd: Command, stream: Stream, fd: OwnedFd) {
        let (input, output) = match stream {
            Stream::Input => (Some(fd), None),
            Stream::Output => (None, Some(fd)),
        };
        // Success is answered as soon as the command knows it (before what
        // need not delay the answer); the client then exits, which ends the
        // watch.
        let answer = {
            let (reply, finished) = (Arc::clone(&self.reply), Arc::clone(&self.finished));
            move || {
                finished.store(true, Ordering::SeqCst);
                if let Some(conn) = take(&reply) {
                    let _ = wire::send(&conn, &done(0, None, false), None);
                }
            }
        };
        let caller = Caller {
            input: input.into(),
            output: output.into(),
            storage: Some(self.loan.clone()),
            config: Some(Arc::clone(&self.shared.config)),
            answer: Some(Box::new(answer)),
        };
        let _in = self.scope.enter();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commands::execute_with(self.name, cmd, caller)
        }));
        let told = outcome::of(self.name, result);
        self.finished.store(true, Ordering::SeqCst);
        if let Some(conn) = take(&self.reply) {
            // Failed after a cancel: the client exits as signalled.
            let cancelled = told.code != 0 && self.scope.interrupted();
            let _ = wire::send(&conn, &done(told.code, told.line, cancelled), None);
        }
        pause::pause("request-answered");
        self.loan.end(told.reusable);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::SeqCst);
        // Not answered: it panicked before its answer.
        if let Some(conn) = take(&self.reply) {
            let told = outcome::panic_outcome(self.name);
            let _ = wire::send(&conn, &done(told.code, told.line, false), None);
        }
        // What it still holds (it panicked): closed.
        self.loan.end(false);
        self.shared
            .running()
            .retain(|s| !Arc::ptr_eq(s, &self.scope));
        // The watch ends within its poll's timeout once `finished` is set.
        let _ = self.watcher.recv();
    }
}

/// The client's connection, if it is not answered yet.
fn take(reply: &Mutex<Option<UnixStream>>) -> Option<UnixStream> {
    reply.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Watches a request's client until the request is `finished`: a cancel
/// message or the client's hang-up stops the command, which removes its
/// temporaries as it unwinds (and answers a cancel); one that does not
/// unwind within [`CANCEL_WAIT`] has its cleanups run here.
fn watch(
    conn: &UnixStream,
    scope: &Arc<Scope>,
    reply: &Mutex<Option<UnixStream>>,
    finished: &AtomicBool,
) {
    while !finished.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        if finished.load(Ordering::SeqCst) {
            return;
        }
        let cancel = matches!(wire::recv(conn), Ok(Some((Message::Cancel, _))));
        let _in = scope.enter();
        if cancel {
            log::warn!("the client process was signalled; cancelling");
        } else {
            log::warn!("the client process went away; cancelling");
        }
        if !signals::interrupt(scope) {
            // At its commit point: it finishes and answers.
            return;
        }
        let started = Instant::now();
        while started.elapsed() < CANCEL_WAIT {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        log::warn!("still running {} s after the cancel (blocked on its output or on the storage); removing its temporaries (again as it ends)", CANCEL_WAIT.as_secs());
        signals::cancel(scope);
        if let (Some(c), true) = (take(reply), cancel) {
            let _ = wire::send(&c, &done(1, None, true), None);
        }
        return;
    }
}
