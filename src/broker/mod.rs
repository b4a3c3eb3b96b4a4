//! The per-host connection broker: a process per host and plugin config
//! that holds logged-in connections to the Data Domain and runs the
//! `backup_data`, `restore_data` and `restore_data_subset` of the plugin
//! processes of its host on them, so that a per-table backup does not log
//! in once per table (see `docs/per-host-broker.md`).
//!
//! * [`around_hook`]: `setup_plugin_for_backup`/`_restore` in scope
//!   `segment_host` start it (`broker: on`, ddboost backend), the cleanup
//!   hooks of that scope stop it;
//! * [`server`]: the broker itself, the hidden command `broker <config>`,
//!   and `request.rs`: one request it runs;
//! * [`client`]: a plugin process hands its command and its standard input
//!   or output to the broker and exits as the broker's answer says;
//! * [`pool`]: the connections; [`wire`]: the messages; [`workers`]: the
//!   threads requests run on.
//!
//! The broker's lock and socket are `broker-<id>.lock` and `.sock` in the
//! user's private folder in `/tmp` (the same whatever `$HOME` and `$TMPDIR`
//! say), `<id>` a digest of the plugin's build and the config file's path and
//! bytes: a process of another build, with another config, or with another
//! run's copy of it, never reaches it.

pub mod client;
pub mod pool;
mod request;
pub mod server;
pub mod wire;
pub mod workers;

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use xxhash_rust::xxh3::xxh3_64;

use crate::backends::PluginConfig;
use crate::error::Result;
use crate::process::private::{open_existing, run_dir};
use crate::protocol::args::{Command, HookArgs, HookScope};

/// How long a setup hook waits for the broker it started to take requests.
const START_WAIT: Duration = Duration::from_secs(2);
/// How long a cleanup hook waits for the broker to finish and exit.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// Where the broker of one config is.
#[derive(Debug, Clone)]
pub struct Place {
    pub lock: PathBuf,
    pub socket: PathBuf,
}

/// The broker's place, for this build, for the config file at `path` whose
/// content is `config`, or None when there is no usable private folder. The path
/// counts: gpbackup and gprestore give the hooks and the data processes of
/// one run the same per-run copy (`/tmp/<timestamp>_<name>`), and two runs
/// at once with the same content must not share a broker (the first one's
/// cleanup hook would stop it under the other).
pub fn place(path: &Path, config: &[u8]) -> Option<Place> {
    let dir = run_dir()?;
    let path = std::path::absolute(path).ok()?;
    // The build too: a broker of another build left running (its run was
    // killed) never serves this one's processes.
    let build = concat!(env!("CARGO_PKG_VERSION"), " ", env!("PLUGIN_BUILD_COMMIT"));
    let mut key = build.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(path.as_os_str().as_encoded_bytes());
    key.push(0);
    key.extend_from_slice(config);
    let id = format!("{:016x}", xxh3_64(&key));
    Some(Place {
        lock: dir.join(format!("broker-{id}.lock")),
        socket: dir.join(format!("broker-{id}.sock")),
    })
}

/// Which of its standard streams a plugin process hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Input,
    Output,
}

/// A command the broker serves, as [`served`] says.
pub struct Served<'a> {
    /// The command as its process was called.
    pub name: &'static str,
    /// The standard stream the process hands over.
    pub stream: Stream,
    /// The config file, and the other local files the command reads: the
    /// client makes them absolute (the broker runs in another folder).
    pub config: &'a mut PathBuf,
    pub files: Vec<&'a mut PathBuf>,
}

/// The commands the broker serves, each with the standard stream it hands
/// over and the local files it names: the one list of them, for the client
/// (what to hand over) and the broker (what to run on the descriptor).
pub fn served(cmd: &mut Command) -> Option<Served<'_>> {
    let (name, stream, config, files) = match cmd {
        Command::BackupData { config, .. } => ("backup_data", Stream::Input, config, vec![]),
        Command::RestoreData { config, .. } => ("restore_data", Stream::Output, config, vec![]),
        Command::RestoreDataSubset {
            config, offsets, ..
        } => ("restore_data_subset", Stream::Output, config, vec![offsets]),
        _ => return None,
    };
    Some(Served {
        name,
        stream,
        config: &mut config.path,
        files,
    })
}

/// The config at `path` when it asks for a broker: its bytes and the
/// broker's place. None when it does not, or cannot be read (the command
/// then reports that itself).
fn wanted(path: &Path) -> Option<(Vec<u8>, Place)> {
    let bytes = std::fs::read(path).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let config = PluginConfig::parse(text, path).ok()?;
    config.backend.broker()?;
    let place = place(path, &bytes)?;
    Some((bytes, place))
}

/// Runs a command, starting or stopping the broker around it when it is a
/// setup or cleanup hook in scope `segment_host`: the broker starts after a
/// setup hook succeeded, and stops before a cleanup hook's own work (whose
/// sweep of stale temporaries then sees the broker gone).
pub fn around_hook(cmd: &Command, run: impl FnOnce() -> Result<()>) -> Result<()> {
    let on_host = |h: &HookArgs| h.scope == HookScope::SegmentHost;
    match cmd {
        Command::SetupBackup(h) | Command::SetupRestore(h) if on_host(h) => {
            run()?;
            if let Some((_, place)) = wanted(&h.config) {
                start(&h.config, &place);
            }
            Ok(())
        }
        Command::CleanupBackup(h) | Command::CleanupRestore(h) if on_host(h) => {
            if let Some((_, place)) = wanted(&h.config) {
                stop(&place);
            }
            run()
        }
        _ => run(),
    }
}

/// Whether a broker takes connections at `place`.
fn answers(place: &Place) -> bool {
    UnixStream::connect(&place.socket).is_ok()
}

/// Starts the broker of `config` unless one runs, and waits until it takes
/// requests. A broker that does not come up is a warning: the plugin
/// processes then work directly.
fn start(config: &Path, place: &Place) {
    if answers(place) {
        log::info!(
            "connection broker already running ({})",
            place.socket.display()
        );
        return;
    }
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    // Detached: no descriptor of the hook's, so that whoever waits for the
    // hook's output (gpbackup's ssh) does not wait for the broker: its
    // standard streams are /dev/null, and it closes every other descriptor
    // it inherits, close-on-exec or not, before anything else
    // (`process::descriptors`); it makes itself a session of its own.
    let spawned = std::env::current_exe().and_then(|exe| {
        let mut broker = std::process::Command::new(exe);
        crate::process::malloc::tune(&mut broker);
        broker
            .arg("broker")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            log::warn!("cannot start the connection broker: {e}; plugin processes work directly");
            return;
        }
    };
    let started = Instant::now();
    while started.elapsed() < START_WAIT {
        if answers(place) {
            log::info!(
                "connection broker ready ({}, {} ms)",
                place.socket.display(),
                started.elapsed().as_millis()
            );
            return;
        }
        // One that lost the race to another starter exits at once.
        let _ = child.try_wait();
        std::thread::sleep(Duration::from_millis(10));
    }
    log::warn!(
        "the connection broker did not start within {} s (see its lines in this log); plugin processes work directly",
        START_WAIT.as_secs()
    );
}

/// Asks the broker at `place` to stop once what it runs is finished, and
/// waits (bounded) until it is gone.
fn stop(place: &Place) {
    let Ok(sock) = UnixStream::connect(&place.socket) else {
        return;
    };
    if !wire::same_user(&sock).unwrap_or(false) {
        return;
    }
    let _ = sock.set_read_timeout(Some(STOP_WAIT));
    if wire::send(&sock, &wire::Message::Stop, None).is_err() {
        return;
    }
    let _ = wire::recv(&sock);
    let started = Instant::now();
    while started.elapsed() < STOP_WAIT {
        if gone(&place.lock) {
            log::info!("connection broker stopped");
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    log::warn!(
        "the connection broker did not stop within {} s",
        STOP_WAIT.as_secs()
    );
}

/// Whether no broker holds the lock at `lock`.
fn gone(lock: &Path) -> bool {
    // A broker removes its lock file when it stops.
    let Ok(file) = open_existing(lock) else {
        return true;
    };
    let free: std::result::Result<Flock<File>, _> = Flock::lock(file, FlockArg::LockSharedNonblock);
    free.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::args::parse;

    fn command(args: &[&str]) -> Command {
        let argv: Vec<std::ffi::OsString> = std::iter::once("gpbackup_ddboost_plugin")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        parse(&argv).unwrap().command
    }

    #[test]
    fn the_broker_serves_the_data_commands_each_with_its_stream() {
        let key = "/d/backups/20250101/20250101120000/gpbackup_0_20250101120000";
        let mut backup = command(&["backup_data", "c.yaml", key]);
        let served_backup = served(&mut backup).unwrap();
        assert_eq!(
            (served_backup.name, served_backup.stream),
            ("backup_data", Stream::Input)
        );
        let mut subset = command(&["restore_data_subset", "c.yaml", key, "offsets"]);
        let s = served(&mut subset).unwrap();
        assert_eq!((s.name, s.stream), ("restore_data_subset", Stream::Output));
        assert_eq!(*s.config, PathBuf::from("c.yaml"));
        assert_eq!(s.files.len(), 1);
        *s.files.into_iter().next().unwrap() = PathBuf::from("/abs/offsets");
        assert!(
            matches!(subset, Command::RestoreDataSubset { offsets, .. } if offsets == std::path::Path::new("/abs/offsets"))
        );
        let mut restore = command(&["restore_data", "c.yaml", key]);
        assert_eq!(served(&mut restore).unwrap().stream, Stream::Output);
        let mut other = command(&["backup_file", "c.yaml", key]);
        assert!(served(&mut other).is_none());
    }
}
