//! The plugin's commands. They see storage only through the `Storage` trait.

mod check;
mod hooks;
mod list_backups;
mod manage;
pub mod password;
mod transfer;
pub mod verify;

use std::path::Path;
use std::time::Instant;

use crate::backends::{self, PluginConfig};
use crate::error::Result;
use crate::process::logging;
use crate::protocol::args::Command;
use crate::storage::{Remote, Storage};
use hooks::Hook;

/// What every storage command starts with: the config and the storage it names.
pub struct Context {
    pub config: PluginConfig,
    pub command: &'static str,
}

impl Context {
    /// Loads the config and applies its log settings.
    pub fn load(command: &'static str, path: &std::path::Path) -> Result<Context> {
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
        Ok(Context { config, command })
    }

    /// The storage, for reading: never connects the replica.
    pub fn storage(&self) -> Result<Box<dyn Storage>> {
        backends::open(&self.config, Remote::Never)
    }

    /// The storage, for changes that `replication: on` mirrors to the replica
    /// (writes, creating the backup folder, delete_backup).
    pub fn storage_for_changes(&self) -> Result<Box<dyn Storage>> {
        backends::open(&self.config, Remote::IfReplicating)
    }

    /// The storage with its replica system connected (replicate_backup, delete_replica).
    pub fn storage_with_replica(&self) -> Result<Box<dyn Storage>> {
        backends::open(&self.config, Remote::Required)
    }
}

/// Runs one command; `name` is the command as typed. Each arm ties a
/// command to its implementation (the version answers are printed by the
/// caller).
pub fn execute(name: &'static str, cmd: Command) -> Result<()> {
    let started = Instant::now();
    log::debug!("{name}: starting: {cmd:?}");
    let with = |config: &Path, run: &dyn Fn(&Context) -> Result<()>| -> Result<()> {
        let ctx = Context::load(name, config)?;
        let result = run(&ctx);
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
        } => with(config, &|c| {
            list_backups::run(
                c,
                list_backups::Flags {
                    sizes: *sizes,
                    replica: *replica,
                    json: *json,
                },
            )
        }),
        // Takes no plugin config.
        Command::EncryptPassword { key_file } => password::run(key_file.as_deref()),
    }
}

/// The per-object summary line (in the log).
pub use crate::process::logging::log_summary;
