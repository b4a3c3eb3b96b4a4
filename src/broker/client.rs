//! A plugin process's side: hand `backup_data`, `restore_data` or
//! `restore_data_subset` to the broker of its config, with its standard input
//! or output, and exit as the broker's answer says. No broker (no socket, a
//! refused connect, another user, no answer within a second): the process
//! works directly, as without `broker: on`.
//!
//! The parsed command goes first (which commands go, with which stream, is
//! [`super::served`]); only once the broker has taken it does the
//! descriptor follow, so that a process that gave up waiting and works
//! directly never shares its input with the broker.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wire::{self, Message};
use super::Stream;
use crate::process::logging;
use crate::process::outcome::{self, Outcome};
use crate::protocol::args::Command;

/// How long the broker has to take a request.
const ACCEPT_WAIT: Duration = Duration::from_secs(1);
/// How long a signalled client waits for the broker to cancel its command.
const CANCEL_WAIT: Duration = Duration::from_secs(60);

/// Runs `cmd` through the broker when one serves its config: Some(how it
/// ended); None to work directly.
pub fn run(name: &'static str, cmd: &Command) -> Option<Outcome> {
    let mut cmd = cmd.clone();
    let served = super::served(&mut cmd)?;
    let stream = served.stream;
    let (_, place) = super::wanted(served.config)?;
    // Paths as the broker, in another folder, finds them.
    for path in std::iter::once(served.config).chain(served.files) {
        *path = std::path::absolute(&*path).ok()?;
    }
    let sock = match connect(&place.socket) {
        Ok(s) => s,
        Err(why) => {
            log::info!("connection broker: {why}; {name} works directly");
            return None;
        }
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let fd = match stream {
        Stream::Input => stdin.as_fd(),
        Stream::Output => stdout.as_fd(),
    };
    match hand_over(name, &sock, cmd, fd) {
        Ok(broker) => Some(wait(name, &sock, broker)),
        Err(why) => {
            log::info!("connection broker: {why}; {name} works directly");
            None
        }
    }
}

/// A connection to the broker at `socket`, of this user.
fn connect(socket: &Path) -> Result<UnixStream, String> {
    let sock =
        UnixStream::connect(socket).map_err(|e| format!("none at {} ({e})", socket.display()))?;
    match wire::same_user(&sock) {
        Ok(true) => Ok(sock),
        Ok(false) => Err(format!(
            "the one at {} runs as another user",
            socket.display()
        )),
        Err(e) => Err(format!("cannot check its user: {e}")),
    }
}

/// Sends the request and, once the broker took it, the descriptor; returns
/// the broker's process id.
fn hand_over(
    name: &str,
    sock: &UnixStream,
    command: Command,
    fd: BorrowedFd<'_>,
) -> Result<u32, String> {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let pause = crate::process::scope::pause_requested();
    let request = Message::Run {
        command,
        cwd,
        pid: std::process::id(),
        pause,
        started_us: Some(crate::process::metrics::process_start_unix_us()),
    };
    let failed = |e: std::io::Error| format!("it did not take {name}: {e}");
    sock.set_read_timeout(Some(ACCEPT_WAIT)).map_err(failed)?;
    wire::send(sock, &request, None).map_err(failed)?;
    let broker = match wire::recv(sock).map_err(failed)? {
        Some((Message::Accepted { broker_pid }, _)) => broker_pid,
        Some((Message::Done { line, .. }, _)) => {
            return Err(format!("it refused {name}: {}", line.unwrap_or_default()))
        }
        other => return Err(format!("it answered {other:?}")),
    };
    sock.set_read_timeout(None).map_err(failed)?;
    wire::send(sock, &Message::Handover, Some(fd)).map_err(failed)?;
    Ok(broker)
}

/// Waits for the broker's answer and turns it into this process's exit. A
/// signal asks the broker to cancel the command; the process then exits as
/// a signalled plugin process does, once its temporaries are removed.
fn wait(name: &str, sock: &UnixStream, broker: u32) -> Outcome {
    log::debug!("{name}: run by the connection broker (process {broker})");
    let signalled = Arc::new(AtomicI32::new(0));
    let answered = Arc::new(AtomicBool::new(false));
    forward_signals(name, sock, &signalled, &answered);
    let answer = wire::recv(sock);
    answered.store(true, Ordering::SeqCst);
    match answer {
        Ok(Some((
            Message::Done {
                code,
                line,
                cancelled,
            },
            _,
        ))) => {
            let sig = signalled.load(Ordering::SeqCst);
            if cancelled {
                log::warn!("{name}: cancelled by the connection broker after a signal");
                logging::flush();
                let sig = if sig == 0 { 15 } else { sig };
                return Outcome {
                    code: (128 + sig) as u8,
                    line: None,
                    reusable: true,
                };
            }
            Outcome {
                code,
                line,
                reusable: true,
            }
        }
        other => {
            let why = match other {
                Ok(_) => "it closed the connection".to_string(),
                Err(e) => e.to_string(),
            };
            let after = if name.starts_with("backup") {
                "; the object stays as a kill of the writer leaves it (see the README), and cleanup_plugin_for_backup removes the temporaries it left"
            } else {
                ""
            };
            let e = crate::error::Error::broker(format!(
                "the connection broker (process {broker}) stopped during {name} ({why}), which fails{after}"
            ));
            outcome::failed(name, &e)
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP: asks the broker to cancel; exits if no
/// answer comes within [`CANCEL_WAIT`].
fn forward_signals(
    name: &str,
    sock: &UnixStream,
    signalled: &Arc<AtomicI32>,
    answered: &Arc<AtomicBool>,
) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (Ok(mut signals), Ok(sock)) = (
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]),
        sock.try_clone(),
    ) else {
        log::warn!("{name}: cannot handle signals; a signal stops this process only");
        return;
    };
    let (signalled, answered) = (Arc::clone(signalled), Arc::clone(answered));
    let command = name.to_string();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                signalled.store(sig, Ordering::SeqCst);
                log::warn!(
                    "{command}: received signal {sig}; asking the connection broker to cancel"
                );
                let _ = wire::send(&sock, &Message::Cancel, None);
                let started = Instant::now();
                while started.elapsed() < CANCEL_WAIT {
                    if answered.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                log::warn!("{command}: no answer from the connection broker; exiting");
                logging::flush();
                std::process::exit(128 + sig);
            }
        });
    if spawned.is_err() {
        log::warn!("{name}: cannot handle signals; a signal stops this process only");
    }
}
