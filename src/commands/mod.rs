//! The plugin's commands. They see storage only through the `Storage` trait.

mod check;
mod hooks;
mod list_backups;
mod manage;
pub mod password;
mod transfer;
pub mod verify;

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::backends::{self, PluginConfig};
use crate::error::{Error, Result};
use crate::observe::ObjectEnd;
use crate::process::logging;
use crate::protocol::args::Command;
use crate::protocol::keys::ObjectKey;
use crate::storage::{Remote, Storage};
use hooks::Hook;

/// What every storage command starts with: the config and the storage it names.
pub struct Context {
    pub config: Arc<PluginConfig>,
    pub command: &'static str,
    /// When the command started (its config loaded).
    pub started: Instant,
    caller: Caller,
    /// The bytes of the object the command stored or read, once it has.
    object_bytes: OnceLock<u64>,
}

/// Who runs a command, and what it hands the command: standard input and
/// output, storage, the config and a way to answer early. By default the
/// process itself (its own descriptors, storage it opens, the config it
/// loads); in the connection broker, the client's descriptors, connections
/// lent by the broker and the config the broker serves.
#[derive(Default)]
pub struct Caller {
    /// Standard input and output, taken by the command that uses them (so
    /// that no other copy stays open once it is done with them).
    pub input: Mutex<Option<OwnedFd>>,
    pub output: Mutex<Option<OwnedFd>>,
    pub storage: Option<Arc<dyn Lender>>,
    /// The config, already loaded (the connection broker serves one).
    pub config: Option<Arc<PluginConfig>>,
    /// Tells the caller the command succeeded, before the work that need not
    /// delay the answer (the broker's client exits at once).
    pub answer: Option<Box<dyn Fn() + Send + Sync>>,
}

/// Lends logged-in storage to a command (the connection broker's pool).
pub trait Lender: Send + Sync {
    /// Storage as [`backends::open`] gives it, for as long as the command
    /// holds it.
    fn lend(&self, remote: Remote) -> Result<Box<dyn Storage>>;

    /// Up to `n` more, only as many as are to be had without waiting for
    /// another command to give one back.
    fn lend_more(&self, remote: Remote, n: usize) -> Vec<Box<dyn Storage>>;
}

impl Context {
    /// Loads the config and applies its log settings.
    pub fn load(command: &'static str, path: &std::path::Path) -> Result<Context> {
        Self::load_with(command, path, Caller::default())
    }

    /// [`Context::load`] with standard input, output and storage from `caller`.
    pub fn load_with(
        command: &'static str,
        path: &std::path::Path,
        caller: Caller,
    ) -> Result<Context> {
        let config = match &caller.config {
            Some(loaded) => Arc::clone(loaded),
            None => Arc::new(Self::read_config(path)?),
        };
        Ok(Context {
            config,
            command,
            started: Instant::now(),
            caller,
            object_bytes: OnceLock::new(),
        })
    }

    /// Reads the config at `path` and applies its log settings.
    fn read_config(path: &std::path::Path) -> Result<PluginConfig> {
        let config = PluginConfig::load(path)?;
        logging::set_verbosity(config.verbosity);
        for w in &config.warnings {
            log::warn!("plugin config {}: {w}", config.path.display());
        }
        log::trace!(
            "plugin config {}: {:?}",
            config.path.display(),
            config.redacted_options
        );
        Ok(config)
    }

    fn open(&self, remote: Remote) -> Result<Box<dyn Storage>> {
        match &self.caller.storage {
            Some(lender) => lender.lend(remote),
            None => backends::open(&self.config, remote),
        }
    }

    /// The storage, for reading: never connects the replica.
    pub fn storage(&self) -> Result<Box<dyn Storage>> {
        self.open(Remote::Never)
    }

    /// The storage, for changes that `replication: on` mirrors to the replica
    /// (writes, creating the backup folder, delete_backup).
    pub fn storage_for_changes(&self) -> Result<Box<dyn Storage>> {
        self.open(Remote::IfReplicating)
    }

    /// Up to `n` more storages for changes, each a connection of its own, for
    /// steps of one command that run at once: in the connection broker, its
    /// free connections; in a plugin process, none (each would be a login).
    pub fn more_storage_for_changes(&self, n: usize) -> Vec<Box<dyn Storage>> {
        self.more(Remote::IfReplicating, n)
    }

    /// [`Context::more_storage_for_changes`] for reading.
    pub fn more_storage(&self, n: usize) -> Vec<Box<dyn Storage>> {
        self.more(Remote::Never, n)
    }

    fn more(&self, remote: Remote, n: usize) -> Vec<Box<dyn Storage>> {
        match &self.caller.storage {
            Some(lender) => lender.lend_more(remote, n),
            None => Vec::new(),
        }
    }

    /// The storage with its replica system connected (replicate_backup, delete_replica).
    pub fn storage_with_replica(&self) -> Result<Box<dyn Storage>> {
        self.open(Remote::Required)
    }

    /// The command's standard input, as a file of its own.
    pub fn stdin(&self) -> Result<File> {
        given_or_own(&self.caller.input, std::io::stdin().as_fd(), "input")
    }

    /// The command's standard output, as a file of its own.
    pub fn stdout(&self) -> Result<File> {
        given_or_own(&self.caller.output, std::io::stdout().as_fd(), "output")
    }

    /// The object `key` is stored or read, `bytes` of it: the caller may be
    /// told so now, before the work that need not delay the answer. Its time
    /// ends when its caller can go on, and then its summary line and facts
    /// are written: in the connection broker now (the client exits 0 at
    /// once); in a plugin process when the command is over, after that work
    /// and the logout (gpbackup and gprestore wait for the process's exit).
    pub fn object_done(&self, key: &ObjectKey, bytes: u64) {
        match &self.caller.answer {
            Some(answer) => {
                self.object_end(key).done(bytes);
                answer();
            }
            None => {
                let _ = self.object_bytes.set(bytes);
            }
        }
    }
}

/// The descriptor the caller gave in `slot` (taken, so that no other copy
/// stays open), else a copy of the process's own `fd`, as a file.
fn given_or_own(
    slot: &Mutex<Option<OwnedFd>>,
    fd: std::os::fd::BorrowedFd<'_>,
    what: &str,
) -> Result<File> {
    let given = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    let fd = match given {
        Some(fd) => Ok(fd),
        None => fd.try_clone_to_owned(),
    };
    fd.map(File::from)
        .map_err(|e| Error::io(format!("cannot use standard {what}: {e}")))
}

/// Runs one command; `name` is the command as typed. Each arm ties a
/// command to its implementation (the version answers are printed by the
/// caller).
pub fn execute(name: &'static str, cmd: Command) -> Result<()> {
    execute_with(name, cmd, Caller::default())
}

/// [`execute`] with standard input, output and storage from `caller`.
pub fn execute_with(name: &'static str, cmd: Command, caller: Caller) -> Result<()> {
    let started = Instant::now();
    log::debug!("{name}: starting: {cmd:?}");
    let caller = RefCell::new(Some(caller));
    let with = |config: &Path, run: &dyn Fn(&Context) -> Result<()>| -> Result<()> {
        let caller = caller.borrow_mut().take().unwrap_or_default();
        let ctx = Context::load_with(name, config, caller)?;
        let result = run(&ctx);
        if let Some(key) = object_of(&cmd) {
            match (&result, ctx.object_bytes.get()) {
                (Err(e), _) => ctx.object_end(key).failed(e),
                (Ok(()), Some(bytes)) => ctx.object_end(key).done(*bytes),
                (Ok(()), None) => {}
            }
        }
        log::debug!(
            "{name}: finished in {:.3} s",
            started.elapsed().as_secs_f64()
        );
        result
    };
    match &cmd {
        Command::ApiVersion | Command::Version | Command::Help => Ok(()),
        Command::SetupBackup(h) => with(&h.config, &|c| hooks::run(c, Hook::SetupBackup, h)),
        Command::SetupRestore(h) => with(&h.config, &|c| hooks::run(c, Hook::SetupRestore, h)),
        Command::CleanupBackup(h) => with(&h.config, &|c| hooks::run(c, Hook::CleanupBackup, h)),
        Command::CleanupRestore(h) => with(&h.config, &|c| hooks::run(c, Hook::CleanupRestore, h)),
        Command::BackupFile { config, file } => with(config, &|c| transfer::backup_file(c, file)),
        Command::RestoreFile { config, file } => with(config, &|c| transfer::restore_file(c, file)),
        Command::BackupData { config, key } => with(config, &|c| transfer::backup_data(c, key)),
        Command::RestoreData { config, key } => with(config, &|c| transfer::restore_data(c, key)),
        Command::RestoreDataSubset {
            config,
            key,
            offsets,
        } => with(config, &|c| transfer::restore_data_subset(c, key, offsets)),
        Command::DeleteBackup { config, timestamp } => {
            with(config, &|c| manage::delete_backup(c, timestamp))
        }
        Command::ListDirectory { config, path } => {
            with(config, &|c| manage::list_directory(c, path.as_ref()))
        }
        Command::DeleteDirectory { config, path } => {
            with(config, &|c| manage::delete_directory(c, path))
        }
        Command::ReplicateBackup { config, timestamp } => {
            with(config, &|c| manage::replicate_backup(c, timestamp))
        }
        Command::DeleteReplica { config, timestamp } => {
            with(config, &|c| manage::delete_replica(c, timestamp))
        }
        Command::Check { config, no_write } => check::run(config, *no_write),
        Command::VerifyBackup {
            config,
            timestamp,
            allow_unrecorded,
            json,
        } => with(config, &|c| {
            verify::verify_backup(c, timestamp, *allow_unrecorded, *json)
        }),
        Command::ListBackups {
            config,
            sizes,
            replica,
            json,
            format,
        } => {
            let flags = list_backups_flags(*sizes, *replica, *json, format.as_deref());
            with(config, &|c| list_backups::run(c, flags))
        }
        // Takes no plugin config.
        Command::EncryptPassword { key_file } => password::run(key_file.as_deref()),
        // The program runs the broker itself (it is above the commands).
        Command::Broker { .. } => Err(crate::error::Error::usage(
            "the connection broker is not a command of its own here",
        )),
    }
}

/// What `list_backups` shows: `--format openmetrics` lists sizes, and
/// `--format json` is `--json`.
fn list_backups_flags(
    sizes: bool,
    replica: bool,
    json: bool,
    format: Option<&str>,
) -> list_backups::Flags {
    let openmetrics = format == Some("openmetrics");
    list_backups::Flags {
        sizes: sizes || openmetrics,
        replica,
        json: json || format == Some("json"),
        openmetrics,
    }
}

/// The object a command stores or reads, if it moves one.
fn object_of(cmd: &Command) -> Option<&ObjectKey> {
    match cmd {
        Command::BackupFile { file, .. } | Command::RestoreFile { file, .. } => Some(&file.key),
        Command::BackupData { key, .. }
        | Command::RestoreData { key, .. }
        | Command::RestoreDataSubset { key, .. } => Some(key),
        _ => None,
    }
}

impl Context {
    /// How the command moving the object `key` reports its end.
    fn object_end<'a>(&'a self, key: &'a ObjectKey) -> ObjectEnd<'a> {
        ObjectEnd {
            command: self.command,
            options: &self.config.redacted_options,
            timestamp: key.timestamp.as_str(),
            object: key.path().as_str(),
            started: self.started,
        }
    }
}

/// The per-object summary line (in the log).
pub use crate::process::logging::log_summary;
