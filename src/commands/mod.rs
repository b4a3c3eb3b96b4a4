//! The plugin's commands. They see storage only through the `Storage` trait.

mod hooks;
mod manage;
pub mod password;
mod transfer;
pub mod verify;

use std::time::Instant;

use crate::config::PluginConfig;
use crate::error::Result;
use crate::process::logging;
use crate::protocol::args::Command;
use crate::storage::{self, Storage};

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
        storage::open(&self.config, storage::Remote::Never)
    }

    /// The storage, for changes that `replication: on` mirrors to the replica
    /// (writes, creating the backup folder, delete_backup).
    pub fn storage_for_changes(&self) -> Result<Box<dyn Storage>> {
        storage::open(&self.config, storage::Remote::IfReplicating)
    }

    /// The storage with its replica system connected (replicate_backup, delete_replica).
    pub fn storage_with_replica(&self) -> Result<Box<dyn Storage>> {
        storage::open(&self.config, storage::Remote::Required)
    }
}

/// Runs one command (the version answers are handled by the caller).
pub fn execute(cmd: Command) -> Result<()> {
    let name = cmd.name();
    let started = Instant::now();
    log::debug!("{name}: starting: {cmd:?}");
    if let Command::EncryptPassword { key_file } = &cmd {
        return password::run(key_file.as_deref()); // takes no plugin config
    }
    let Some(config) = cmd.config() else {
        return Ok(()); // the version answers are printed by the caller
    };
    let ctx = Context::load(name, config)?;
    let result = match &cmd {
        Command::ApiVersion | Command::Version | Command::Help => Ok(()),
        Command::EncryptPassword { .. } => Ok(()), // run above
        Command::VerifyBackup {
            timestamp,
            allow_unrecorded,
            ..
        } => crate::protocol::keys::Timestamp::parse(timestamp)
            .and_then(|ts| verify::verify_backup(&ctx, &ts, *allow_unrecorded)),
        Command::Hook {
            hook,
            local_dir,
            scope,
            content,
            ..
        } => hooks::run(&ctx, *hook, local_dir, *scope, *content),
        Command::BackupFile { file, .. } => transfer::backup_file(&ctx, file),
        Command::RestoreFile { file, .. } => transfer::restore_file(&ctx, file),
        Command::BackupData { key, .. } => transfer::backup_data(&ctx, key),
        Command::RestoreData { key, .. } => transfer::restore_data(&ctx, key),
        Command::RestoreDataSubset { key, offsets, .. } => {
            transfer::restore_data_subset(&ctx, key, offsets)
        }
        Command::DeleteBackup { timestamp, .. } => manage::delete_backup(&ctx, timestamp),
        Command::ListDirectory { path, .. } => manage::list_directory(&ctx, path.as_deref()),
        Command::DeleteDirectory { path, .. } => manage::delete_directory(&ctx, path),
        Command::ReplicateBackup { timestamp, .. } => manage::replicate_backup(&ctx, timestamp),
        Command::DeleteReplica { timestamp, .. } => manage::delete_replica(&ctx, timestamp),
    };
    log::debug!(
        "{name}: finished in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    result
}

/// The per-object summary line.
pub fn log_summary(command: &str, object: &str, bytes: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let mbps = if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    };
    log::info!("{command} {object}: {bytes} bytes in {secs:.3} s ({mbps:.1} MB/s)");
}
