//! The broker process (`gpbackup_ddboost_plugin broker <config>`): one per
//! host and config, held by an exclusive lock for its whole life. It takes
//! requests on its socket, each on a thread of its own in a request scope
//! (`process::scope`), and stops when asked (finishing what runs), on
//! SIGTERM or SIGINT (cancelling what runs), after its idle time, or when its
//! socket is removed.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::pool::{Loan, Pool};
use super::wire::{self, Message};
use super::workers::Workers;
use crate::about::PLUGIN_NAME;
use crate::backends::PluginConfig;
use crate::commands::{self, Io};
use crate::data::stream;
use crate::error::{Error, ErrorKind, Result};
use crate::process::logging;
use crate::process::private::open_append;
use crate::process::scope::Scope;
use crate::process::signals;
use crate::protocol::args::{self as cli, Command};

/// How long a request's client has to send its descriptor.
const HANDOVER_WAIT: Duration = Duration::from_secs(5);
/// How long a cancelled request has to unwind (removing its temporaries as
/// it goes) before its cleanups are run for it.
const CANCEL_WAIT: Duration = Duration::from_secs(5);
/// How long the broker is idle before it frees the stream buffers it keeps
/// for the next requests (so that its memory returns to small after a
/// burst; a request in a steady flow finds them).
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// What runs and how the broker is to stop.
struct Shared {
    /// The config it serves, loaded once (its secrets too).
    config: Arc<PluginConfig>,
    pool: Arc<Pool>,
    /// Connections being served (requests, stops, probes).
    open: AtomicUsize,
    running: Mutex<Vec<Arc<Scope>>>,
    /// A cleanup hook asked it to stop.
    stopping: AtomicBool,
    /// The threads requests and their watchers run on.
    workers: Workers,
}

impl Shared {
    fn running(&self) -> MutexGuard<'_, Vec<Arc<Scope>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the broker of the config at `path` until it stops. A broker that
/// finds another holding the lock exits at once, successfully.
pub fn run(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::config(format!("cannot read plugin config {}: {e}", path.display())))?;
    let config = PluginConfig::load(path)?;
    logging::set_verbosity(config.verbosity);
    let Some(idle) = config.backend.broker_idle() else {
        return Err(Error::config(format!(
            "plugin config {}: the connection broker is off (option broker) or not used with this backend",
            path.display()
        )));
    };
    let place = super::place(path, &bytes).ok_or_else(|| {
        Error::io("no private folder gpbackup_ddboost_plugin-<uid> in /tmp for the connection broker's socket")
    })?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::io(format!(
            "connection broker: cannot {what} {}: {e}",
            place.socket.display()
        ))
    };
    let Some(_lock) = take_lock(&place.lock).map_err(|e| fail("lock", &e))? else {
        log::debug!("connection broker: another one serves {}", path.display());
        return Ok(());
    };
    // A session of its own: not stopped with the hook's terminal or group;
    // and no hold on the folder it was started in.
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    let _ = std::fs::remove_file(&place.socket);
    let listener = UnixListener::bind(&place.socket).map_err(|e| fail("listen on", &e))?;
    let socket = Socket {
        inode: std::fs::metadata(&place.socket)
            .map_err(|e| fail("listen on", &e))?
            .ino(),
        path: &place.socket,
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| fail("listen on", &e))?;
    let signals = Signals::register()?;
    let config = Arc::new(config);
    let shared = Arc::new(Shared {
        config: Arc::clone(&config),
        pool: Arc::new(Pool::new(config)),
        open: AtomicUsize::new(0),
        running: Mutex::new(Vec::new()),
        stopping: AtomicBool::new(false),
        workers: Workers::default(),
    });
    log::info!(
        "connection broker: serving {} on {} (stops after {} s without a request)",
        path.display(),
        place.socket.display(),
        idle.as_secs()
    );
    let why = serve_until_stopped(&listener, &shared, &signals, &socket, idle);
    // No new request from here on.
    if socket.is_ours() {
        let _ = std::fs::remove_file(socket.path);
    }
    drop(listener);
    log::info!("connection broker: stopping ({why})");
    shut_down(&shared, &signals);
    // Removed while still held: a starter that opened it meanwhile finds
    // it gone once it has the lock, and takes a new one.
    let _ = std::fs::remove_file(&place.lock);
    log::info!("connection broker: stopped");
    Ok(())
}

/// Takes the broker's lock file `lock` (made if missing); None when another
/// broker holds it. A lock taken on a file that a stopping broker removed
/// meanwhile is let go and taken again on the new file.
fn take_lock(lock: &Path) -> std::io::Result<Option<Flock<File>>> {
    for _ in 0..3 {
        let file = open_append(lock)?;
        let held = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => held,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, e)) => return Err(e.into()),
        };
        let ours = held.metadata()?;
        let named = std::fs::metadata(lock);
        if named.is_ok_and(|m| m.ino() == ours.ino() && m.dev() == ours.dev()) {
            return Ok(Some(held));
        }
    }
    Err(std::io::Error::other(
        "its lock file is removed as fast as it is made",
    ))
}

/// The broker's socket, told from one another broker put in its place.
struct Socket<'a> {
    path: &'a Path,
    inode: u64,
}

impl Socket<'_> {
    fn is_ours(&self) -> bool {
        std::fs::symlink_metadata(self.path).is_ok_and(|m| m.ino() == self.inode)
    }
}

/// The signals that stop the broker: SIGTERM and SIGINT cancel what runs;
/// SIGHUP (its starter's session ending) is noted and ignored.
struct Signals {
    terminate: Arc<AtomicBool>,
    _hangup: Arc<AtomicBool>,
}

impl Signals {
    fn register() -> Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let terminate = Arc::new(AtomicBool::new(false));
        let hangup = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [
            (SIGTERM, &terminate),
            (SIGINT, &terminate),
            (SIGHUP, &hangup),
        ] {
            signal_hook::flag::register(sig, Arc::clone(flag))
                .map_err(|e| Error::io(format!("cannot handle signal {sig}: {e}")))?;
        }
        Ok(Signals {
            terminate,
            _hangup: hangup,
        })
    }

    fn terminated(&self) -> bool {
        self.terminate.load(Ordering::SeqCst)
    }
}

/// Takes requests, each on a thread of its own, until the broker is to
/// stop; returns why.
fn serve_until_stopped(
    listener: &UnixListener,
    shared: &Arc<Shared>,
    signals: &Signals,
    socket: &Socket,
    idle: Duration,
) -> &'static str {
    let mut last = Instant::now();
    let mut released = true;
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(250u16));
        if accept_waiting(listener, shared) {
            last = Instant::now();
            released = false;
        }
        if !shared.running().is_empty() {
            last = Instant::now();
        }
        if !released && last.elapsed() >= RELEASE_AFTER {
            let n = stream::release_buffers();
            log::debug!("connection broker: idle; {n} stream buffers freed");
            released = true;
        }
        if signals.terminated() {
            return "a signal";
        }
        if shared.stopping.load(Ordering::SeqCst) {
            return "asked to by a cleanup hook";
        }
        if last.elapsed() >= idle {
            return "idle";
        }
        if !socket.is_ours() {
            return "its socket was removed";
        }
    }
}

/// Accepts every connection waiting, each served on a thread of its own;
/// returns whether there was one.
fn accept_waiting(listener: &UnixListener, shared: &Arc<Shared>) -> bool {
    let mut any = false;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                shared.open.fetch_add(1, Ordering::SeqCst);
                let on = Arc::clone(shared);
                let spawned = shared.workers.spawn("request", move || {
                    let _open = Open(&on.open);
                    serve(&on, conn);
                });
                if let Err(e) = spawned {
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                    log::warn!("connection broker: cannot start a request thread: {e}");
                }
                any = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return any,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("connection broker: accept failed: {e}");
                return any;
            }
        }
    }
}

/// Waits for the requests being served (cancelling them first after a
/// signal, and removing their temporaries if they do not unwind in time),
/// then closes the pooled connections.
fn shut_down(shared: &Shared, signals: &Signals) {
    if signals.terminated() {
        for scope in shared.running().iter() {
            signals::interrupt(scope);
        }
    }
    let started = Instant::now();
    // Requests being handed over too: their clients wait for an answer.
    while shared.open.load(Ordering::SeqCst) > 0 {
        if signals.terminated() && started.elapsed() > CANCEL_WAIT {
            log::warn!("connection broker: requests still running after a cancel; removing their temporaries and exiting");
            for scope in shared.running().iter() {
                let _in = scope.enter();
                signals::cancel(scope);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    shared.pool.close_idle();
}

/// Counts a connection as served until dropped (a panic included).
struct Open<'a>(&'a AtomicUsize);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The command names the broker serves, as the processes that hand them
/// over were called.
fn served(cmd: &Command) -> Option<&'static str> {
    match cmd {
        Command::BackupData { .. } => Some("backup_data"),
        Command::RestoreData { .. } => Some("restore_data"),
        Command::RestoreDataSubset { .. } => Some("restore_data_subset"),
        _ => None,
    }
}

/// One connection: a request, a stop, or a probe that only connects.
fn serve(shared: &Shared, conn: UnixStream) {
    if !wire::same_user(&conn).unwrap_or(false) {
        log::warn!("connection broker: refused a connection of another user");
        return;
    }
    let _ = conn.set_read_timeout(Some(HANDOVER_WAIT));
    match wire::recv(&conn) {
        Ok(Some((Message::Stop, _))) => {
            shared.stopping.store(true, Ordering::SeqCst);
            let _ = wire::send(&conn, &done(0, None, false), None);
        }
        Ok(Some((
            Message::Run {
                argv,
                cwd,
                pid,
                pause,
            },
            _,
        ))) => {
            if let Err(e) = request(shared, &conn, argv, pid, pause) {
                log::warn!("connection broker: request of process {pid} (in {cwd}) not run: {e}");
                let line = format!("{PLUGIN_NAME}: error: connection broker: {e}");
                let _ = wire::send(&conn, &done(1, Some(line), false), None);
            }
        }
        Ok(Some((other, _))) => log::warn!("connection broker: unexpected {other:?}"),
        // A probe (a hook waiting for the broker to come up).
        Ok(None) => {}
        Err(e) => log::debug!("connection broker: a connection ended: {e}"),
    }
}

fn done(code: u8, line: Option<String>, cancelled: bool) -> Message {
    Message::Done {
        code,
        line,
        cancelled,
    }
}

/// Takes request `argv` of process `pid`, receives its descriptor and runs
/// it; an error is a request that was not run.
fn request(
    shared: &Shared,
    conn: &UnixStream,
    argv: Vec<String>,
    pid: u32,
    pause: Option<String>,
) -> Result<()> {
    let args: Vec<OsString> = std::iter::once(PLUGIN_NAME.into())
        .chain(argv.into_iter().map(OsString::from))
        .collect();
    let (_, cmd) = cli::parse_named(&args)?;
    let name = served(&cmd)
        .ok_or_else(|| Error::invalid("the connection broker does not serve this command"))?;
    let lost = |e: std::io::Error| Error::io(format!("process {pid} went away: {e}"));
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
    shared.running().push(Arc::clone(&scope));
    let outcome = run_request(shared, conn, &scope, name, cmd, fd);
    shared.running().retain(|s| !Arc::ptr_eq(s, &scope));
    outcome
}

/// Runs one handed-over command in `scope`, with a thread watching its
/// client: a cancel or the client's hang-up cancels the command. Answers
/// first, then gives the connections back.
fn run_request(
    shared: &Shared,
    conn: &UnixStream,
    scope: &Arc<Scope>,
    name: &'static str,
    cmd: Command,
    fd: OwnedFd,
) -> Result<()> {
    let reply = Arc::new(Mutex::new(Some(
        conn.try_clone()
            .map_err(|e| Error::io(format!("cannot answer: {e}")))?,
    )));
    let finished = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (scope, reply, finished) =
            (Arc::clone(scope), Arc::clone(&reply), Arc::clone(&finished));
        let conn = conn
            .try_clone()
            .map_err(|e| Error::io(format!("cannot watch the client: {e}")))?;
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        shared
            .workers
            .spawn("watcher", move || {
                // Dropped at the end of the watch (a panic included).
                let _done = done_tx;
                watch(&conn, &scope, &reply, &finished);
            })
            .map_err(|e| Error::io(format!("cannot start a thread: {e}")))?;
        done_rx
    };
    let loan = Arc::new(Loan::new(Arc::clone(&shared.pool)));
    let (input, output) = match cmd {
        Command::BackupData { .. } => (Some(fd), None),
        _ => (None, Some(fd)),
    };
    // Success is answered as soon as the command knows it (before what need
    // not delay the answer); the client then exits, which ends the watch.
    let answer = {
        let (reply, finished) = (Arc::clone(&reply), Arc::clone(&finished));
        move || {
            finished.store(true, Ordering::SeqCst);
            let taken = reply.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(conn) = taken {
                let _ = wire::send(&conn, &done(0, None, false), None);
            }
        }
    };
    let io = Io {
        input: input.into(),
        output: output.into(),
        storage: Some(loan.clone()),
        config: Some(Arc::clone(&shared.config)),
        answer: Some(Box::new(answer)),
    };
    let result = {
        let _in = scope.enter();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commands::execute_with(name, cmd, io)
        }))
    };
    let (code, line, reuse) = {
        let _in = scope.enter();
        outcome(name, result)
    };
    finished.store(true, Ordering::SeqCst);
    let answer = reply.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(conn) = answer {
        // Failed after a cancel: the client exits as signalled.
        let cancelled = code != 0 && scope.interrupted();
        let _ = wire::send(&conn, &done(code, line, cancelled), None);
    }
    loan.end(reuse);
    // The watch ends within its poll's timeout once `finished` is set.
    let _ = watcher.recv();
    Ok(())
}

/// The exit code and stderr line of a command's `result` (as the program
/// gives them), and whether its connections may serve again.
fn outcome(name: &str, result: std::thread::Result<Result<()>>) -> (u8, Option<String>, bool) {
    match result {
        Ok(Ok(())) => (0, None, true),
        Ok(Err(e)) if e.kind() == ErrorKind::BrokenPipe => {
            log::info!("{name}: the reader of the output went away; stopping");
            (0, None, true)
        }
        Ok(Err(e)) => {
            let line = logging::report_failure(name, &e);
            // A storage failure may be a lost connection.
            (1, Some(line), e.kind() != ErrorKind::Storage)
        }
        Err(_) => {
            let line = format!(
                "{PLUGIN_NAME} {name}: internal error (see the plugin log); please report this"
            );
            (1, Some(line), false)
        }
    }
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
        let answer = reply.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let (Some(c), true) = (answer, cancel) {
            let _ = wire::send(&c, &done(1, None, true), None);
        }
        return;
    }
}
