//! The broker process (`gpbackup_ddboost_plugin broker <config>`): one per
//! host and config, held by an exclusive lock for its whole life. It takes
//! requests on its socket, each on a thread of its own in a request scope
//! (`process::scope`), and stops when asked (finishing what runs), on
//! SIGTERM or SIGINT (cancelling what runs), after its idle time, or when its
//! socket is removed.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::request::{done, request, Client, Requests, CANCEL_WAIT};
use super::wire::{self, Message};
use crate::backends::PluginConfig;
use crate::data::stream;
use crate::error::{Error, Result};
use crate::process::logging;
use crate::process::outcome;
use crate::process::private::{open_append, still_names};
use crate::process::signals;

/// How long a request's client has to send its descriptor.
const HANDOVER_WAIT: Duration = Duration::from_secs(5);
/// How long the broker is idle before it frees the stream buffers it keeps
/// for the next requests (so that its memory returns to small after a
/// burst; a request in a steady flow finds them).
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// What runs and how the broker is to stop.
struct Shared {
    /// What its requests share.
    requests: Requests,
    /// Connections being served (requests, stops, probes).
    open: AtomicUsize,
    /// A cleanup hook asked it to stop.
    stopping: AtomicBool,
}

/// Runs the broker of the config at `path` until it stops. A broker that
/// finds another holding the lock exits at once, successfully.
pub fn run(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::config(format!("cannot read plugin config {}: {e}", path.display())))?;
    let config = PluginConfig::load(path)?;
    logging::set_verbosity(config.verbosity);
    let Some(idle) = config.backend.broker().map(|b| b.idle) else {
        return Err(Error::config(format!(
            "plugin config {}: the connection broker is off (option broker) or not used with this backend",
            path.display()
        )));
    };
    let place = super::place(path, &bytes).ok_or_else(|| {
        Error::broker("no private folder gpbackup_ddboost_plugin-<uid> in /tmp for the connection broker's socket")
    })?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::broker(format!(
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
    let shared = Arc::new(Shared {
        requests: Requests::new(config),
        open: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
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
        if still_names(lock, &held)? {
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
                .map_err(|e| Error::broker(format!("cannot handle signal {sig}: {e}")))?;
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
        if !shared.requests.running().is_empty() {
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
                let spawned = shared.requests.workers.spawn("request", move || {
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
        for scope in shared.requests.running().iter() {
            signals::interrupt(scope);
        }
    }
    let started = Instant::now();
    // Requests being handed over too: their clients wait for an answer.
    while shared.open.load(Ordering::SeqCst) > 0 {
        if signals.terminated() && started.elapsed() > CANCEL_WAIT {
            log::warn!("connection broker: requests still running after a cancel; removing their temporaries and exiting");
            for scope in shared.requests.running().iter() {
                let _in = scope.enter();
                signals::cancel(scope);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    shared.requests.pool.close_idle();
}

/// Counts a connection as served until dropped (a panic included).
struct Open<'a>(&'a AtomicUsize);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
                command,
                cwd,
                pid,
                pause,
                started_us,
            },
            _,
        ))) => {
            let client = Client {
                pid,
                pause,
                started_us,
            };
            if let Err(e) = request(&shared.requests, &conn, command, client) {
                log::warn!("connection broker: request of process {pid} (in {cwd}) not run: {e}");
                let line = outcome::early_line(&e.context("connection broker"));
                let _ = wire::send(&conn, &done(1, Some(line), false), None);
            }
        }
        Ok(Some((other, _))) => log::warn!("connection broker: unexpected {other:?}"),
        // A probe (a hook waiting for the broker to come up).
        Ok(None) => {}
        Err(e) => log::debug!("connection broker: a connection ended: {e}"),
    }
}
