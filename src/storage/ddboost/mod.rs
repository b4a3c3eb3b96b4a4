//! The DD Boost backend: objects on a Dell Data Domain through libDDBoost.
//!
//! The SDK is loaded at run time (option `ddboost_library`, then
//! `<bindir>/../lib/libDDBoost.so`, `<bindir>/libDDBoost.so`, then the loader's
//! search path), so one binary serves hosts with and without it. Objects live
//! at `<storage_unit>/<directory>/<path>`. Writes are exactly 1 MiB per
//! `ddp_write` except the last, go to a '.'-prefixed temporary, and are
//! renamed into place after `ddp_close_file` finalised them; every failure
//! path unlinks the temporary (logging in again if the connection was lost).
//! Only `DD_ERR_NOT_FOUND` means an object is absent: every other SDK error
//! fails the command. With a replica (option `replication: on`), every change
//! is made on the remote system first, objects copied there with managed
//! file replication (`ddp_filecopy_*`), then on this one (`mirror.rs`).

pub mod config;
mod connect;
mod mirror;
mod read;
mod replica;
mod streams;
mod system;
mod write;

use ddboost::{Instance, Library};

use super::{
    timed, CreateOptions, DeleteSummary, Finding, ObjectInfo, ObjectReader, ObjectWriter,
    OpenOptions, Remote, Replica, Storage, StoragePath,
};
use crate::about::PLUGIN_NAME;
use crate::error::{Error, Result};
use config::{DdBoostConfig, DdTarget};
use mirror::{replica_first, MirroredWriter};
use replica::DdReplica;
pub use system::System;

/// Permissions of created files and folders: the owner only (backups hold
/// table data).
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// DD Boost's largest (and most efficient) I/O.
const DD_BLOCK: usize = 1 << 20;

/// The `ddboost` backend, with an optional second system for replication.
pub struct DdBoostStorage {
    local: System,
    /// The remote system, when the command needs it.
    replica: Option<DdReplica>,
    // Last, so connections close before the instance. Never used, only
    // kept: behind a lock so that the storage can be shared between threads
    // (the instance itself is not `Sync`).
    _instance: std::sync::Mutex<Instance>,
}

fn sdk_log(severity: ddboost::Severity, message: &str) {
    use ddboost::Severity as S;
    match severity {
        S::Error => log::error!("libDDBoost: {message}"),
        S::Warn => log::warn!("libDDBoost: {message}"),
        S::Info => log::debug!("libDDBoost: {message}"),
        _ => log::trace!("libDDBoost: {message}"),
    }
}

impl DdBoostStorage {
    pub fn open(cfg: &DdBoostConfig, remote: Remote) -> Result<DdBoostStorage> {
        Self::open_reporting(cfg, remote, &mut |_| {})
    }

    /// [`DdBoostStorage::open`], reporting each step (for `check`): a step
    /// that fails is reported before its error is returned.
    pub fn open_reporting(
        cfg: &DdBoostConfig,
        remote: Remote,
        report: &mut dyn FnMut(Finding),
    ) -> Result<DdBoostStorage> {
        // Which remote system to connect, checked before anything is loaded.
        let remote_target = match remote {
            Remote::Never => None,
            Remote::IfReplicating => cfg.replica(),
            Remote::Required => Some(cfg.remote.as_ref().ok_or_else(|| {
                let why = if cfg.remote_problems.is_empty() {
                    "no remote_* options are set".to_string()
                } else {
                    cfg.remote_problems.join("; ")
                };
                Error::config(format!(
                    "this command needs the remote Data Domain: {why}; set remote_hostname, remote_username, remote_password, remote_storage_unit and remote_directory"
                ))
            })?),
        };
        let lib = Finding::step(
            report,
            "DD Boost SDK",
            timed(|| {
                Library::find(cfg.library.as_deref())
                    .map_err(|e| Error::config(format!("cannot load the DD Boost SDK: {e}")))
            }),
            |l| format!("loaded from {}", l.origin()),
        )?;
        let _ = ddboost::set_log_sink(sdk_log);
        let _ = ddboost::set_call_observer(crate::process::metrics::storage_call);
        let info = format!("{PLUGIN_NAME} version {}", env!("CARGO_PKG_VERSION"));
        let instance = Finding::step(
            report,
            "DD Boost instance",
            timed(|| {
                Instance::new(&lib, PLUGIN_NAME, &info).map_err(|e| {
                    Error::storage(format!(
                        "cannot start the DD Boost SDK ({}): {e}",
                        lib.origin()
                    ))
                })
            }),
            |_| "created".to_string(),
        )?;
        log::debug!("DD Boost SDK loaded from {}", lib.origin());
        let connect = |t: &DdTarget, role: &str| timed(|| System::connect(&instance, t, role, cfg));
        let what = |t: &DdTarget| format!("{} as {}", t.hostname, t.username);
        let local = Finding::step(report, "connect", connect(&cfg.target, "the"), |_| {
            what(&cfg.target)
        })?;
        let remote_system = match remote_target {
            Some(t) => Some(Finding::step(
                report,
                "connect remote",
                connect(t, "the remote"),
                |_| what(t),
            )?),
            None => None,
        };
        // Mirror changes only with replication on (and a connected replica).
        let mirror = cfg.replication;
        let replica = remote_system.map(|remote| DdReplica {
            primary: local.clone(),
            remote,
            mirror,
            streams: cfg.replication_streams,
        });
        Ok(DdBoostStorage {
            local,
            replica,
            _instance: std::sync::Mutex::new(instance),
        })
    }

    /// The replica, when changes are mirrored to it (replication: on).
    fn mirror(&self) -> Option<&DdReplica> {
        self.replica.as_ref().filter(|r| r.mirror)
    }

    /// `writer`, whose commit copies the object to the replica and commits
    /// it there first when changes are mirrored.
    fn mirrored_writer(
        &self,
        path: &StoragePath,
        writer: Box<dyn ObjectWriter>,
    ) -> Box<dyn ObjectWriter> {
        match self.mirror() {
            Some(r) => Box::new(MirroredWriter {
                inner: writer,
                target: path.clone(),
                replica: r.clone(),
            }),
            None => writer,
        }
    }

    /// Applies `change` to the replica first when changes are mirrored,
    /// then to this system.
    fn mirrored<T>(&self, what: &StoragePath, change: impl Fn(&System) -> Result<T>) -> Result<T> {
        replica_first(self.mirror(), &self.local, what, change)
    }
}

impl Storage for DdBoostStorage {
    fn describe(&self) -> String {
        self.local.describe()
    }

    fn create_dir_all(&self, dir: &StoragePath) -> Result<()> {
        self.mirrored(dir, |s| s.create_dir_all(dir))
    }

    fn create(&self, path: &StoragePath, opts: &CreateOptions) -> Result<Box<dyn ObjectWriter>> {
        let writer = self.local.create(path, opts)?;
        Ok(self.mirrored_writer(path, writer))
    }

    fn open(&self, path: &StoragePath, opts: &OpenOptions) -> Result<Box<dyn ObjectReader>> {
        self.local.open(path, opts)
    }

    fn list(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.local.list(dir)
    }

    fn list_all(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.local.list_all(dir)
    }

    fn list_names(&self, dir: &StoragePath, hidden: bool) -> Result<Vec<String>> {
        self.local.list_names(dir, hidden)
    }

    fn delete_dir_all(&self, dir: &StoragePath) -> Result<DeleteSummary> {
        self.mirrored(dir, |s| {
            let summary = s.delete_dir_all(dir)?;
            if !std::ptr::eq(s, &self.local) {
                log::info!(
                    "deleted {} files of {dir} from the replica {}",
                    summary.files,
                    s.describe()
                );
            }
            Ok(summary)
        })
    }

    fn delete(&self, path: &StoragePath) -> Result<bool> {
        self.mirrored(path, |s| s.delete(path))
    }

    /// On this system, or (when changes are mirrored) on either system: a
    /// change that needs the path free needs it free on both.
    fn exists(&self, path: &StoragePath) -> Result<bool> {
        if self.local.exists(path)? {
            return Ok(true);
        }
        match self.mirror() {
            Some(r) => r.remote.exists(path),
            None => Ok(false),
        }
    }

    /// On the replica and on this system, whatever happened on the replica.
    fn remove_dir_if_empty(&self, dir: &StoragePath) -> Result<bool> {
        let remote = match self.mirror() {
            Some(r) => r.remote.remove_dir_if_empty(dir),
            None => Ok(false),
        };
        let removed = self.local.remove_dir_if_empty(dir)?;
        remote?;
        Ok(removed)
    }

    fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        self.mirrored(to, |s| s.rename(from, to))
    }

    fn replica(&self) -> Option<&dyn Replica> {
        self.replica.as_ref().map(|r| r as &dyn Replica)
    }

    fn facts(&self, write: bool) -> Vec<Finding> {
        self.local.facts(write)
    }
}

#[cfg(test)]
mod tests {
    use super::config::RetryPolicy;
    use super::connect::{sdk_error, Login};
    use crate::config::Secret;
    use crate::error::ErrorKind;

    #[test]
    fn sdk_errors_keep_the_sdk_error_and_its_code() {
        let code = ddboost::code_by_name("DD_ERR_CONN_LOST").unwrap();
        let sdk = ddboost::Error::from_code("ddp_unlink", "/SU/d/.f.tmp-1", code);
        let e = sdk_error("dd1", sdk.clone()).context("delete_backup failed");
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert_eq!(
            e.to_string(),
            format!("delete_backup failed: DD Boost call failed on dd1: {sdk}")
        );
        let kept = e.source_as::<ddboost::Error>().expect("source kept");
        assert_eq!(kept, &sdk);
        assert!(kept.is_connection_lost());
    }

    #[test]
    fn login_debug_hides_the_password() {
        let login = Login {
            user: "boost".into(),
            password: Secret::new("Pa55-w0rd"),
            retry: RetryPolicy {
                attempts: 1,
                initial_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(1),
                stream_wait: std::time::Duration::from_secs(1),
            },
        };
        let shown = format!("{login:?}");
        assert!(
            shown.contains("boost") && !shown.contains("Pa55-w0rd"),
            "{shown}"
        );
    }
}
