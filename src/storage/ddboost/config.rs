//! The ddboost backend's options: the Data Domain, the SDK, replication and
//! connect retries.

use std::path::PathBuf;

use crate::config::options::{Opt, Options};
use crate::config::{BrokerSettings, KeySources, Secret, DIRECTORY};
use crate::crypto::keyfile;
use crate::error::Result;
use crate::storage::{BackendConfig, Finding, Remote, Storage, StoragePath};

// The options only this backend reads (`directory` is shared).
crate::declare_options! { OPTIONS:
    HOSTNAME = required("hostname");
    USERNAME = required("username");
    PASSWORD = required("password").secret();
    PASSWORD_ENCRYPTION = on_off("password_encryption", false);
    STORAGE_UNIT = required("storage_unit");
    DDBOOST_LIBRARY = text("ddboost_library", "");
    REPLICATION = on_off("replication", false);
    REPLICATION_STREAMS = number("replication_streams", 16, 1, 64);
    /// Connections a command working through many files uses at once.
    COMMAND_CONNECTIONS = number("command_connections", 48, 1, 64);
    REMOTE_HOSTNAME = required("remote_hostname");
    REMOTE_USERNAME = required("remote_username");
    REMOTE_PASSWORD = required("remote_password").secret();
    REMOTE_PASSWORD_ENCRYPTION = on_off("remote_password_encryption", false);
    REMOTE_STORAGE_UNIT = required("remote_storage_unit");
    REMOTE_DIRECTORY = required("remote_directory");
    RETRY_MAX_ATTEMPTS = number("retry_max_attempts", 3, 1, 10);
    RETRY_INITIAL_DELAY_MS = number("retry_initial_delay_ms", 500, 1, 60_000);
    RETRY_MAX_DELAY_MS = number("retry_max_delay_ms", 5_000, 1, 300_000);
    STREAM_WAIT_SECONDS = number("stream_wait_seconds", 3600, 0, 86_400);
    /// A connection broker per host for per-table backups and restores.
    BROKER = on_off("broker", true);
    /// How long a broker with no request runs before it stops.
    BROKER_IDLE_SECONDS = number("broker_idle_seconds", 600, 1, 86_400);
    /// How many logged-in connections a broker holds at most.
    BROKER_CONNECTIONS = number("broker_connections", 32, 1, 64);
}

/// The options naming one Data Domain system and a place on it.
struct TargetOptions {
    /// "" or "remote_", for messages and [`DdTarget::prefix`].
    prefix: &'static str,
    hostname: Opt,
    username: Opt,
    password: Opt,
    password_encryption: Opt,
    storage_unit: Opt,
    directory: Opt,
}

/// The system backups go to.
const PRIMARY: TargetOptions = TargetOptions {
    prefix: "",
    hostname: HOSTNAME,
    username: USERNAME,
    password: PASSWORD,
    password_encryption: PASSWORD_ENCRYPTION,
    storage_unit: STORAGE_UNIT,
    directory: DIRECTORY,
};

/// The system backups are copied to.
const REMOTE: TargetOptions = TargetOptions {
    prefix: "remote_",
    hostname: REMOTE_HOSTNAME,
    username: REMOTE_USERNAME,
    password: REMOTE_PASSWORD,
    password_encryption: REMOTE_PASSWORD_ENCRYPTION,
    storage_unit: REMOTE_STORAGE_UNIT,
    directory: REMOTE_DIRECTORY,
};

/// One Data Domain system and a place on it.
#[derive(Debug, Clone)]
pub struct DdTarget {
    pub hostname: String,
    pub username: String,
    /// The password; while `encrypted`, the hex gpbackup_manager printed.
    pub password: Secret,
    /// `password_encryption: on` and not yet decrypted.
    pub encrypted: bool,
    /// `password_encryption: on` in the config (a plain-text password is
    /// copied to every host's /tmp and into the backup by gpbackup).
    pub stored_encrypted: bool,
    /// The option prefix: "" or "remote_".
    pub prefix: &'static str,
    pub storage_unit: String,
    pub directory: String,
}

/// `backend: ddboost`.
#[derive(Debug, Clone)]
pub struct DdBoostConfig {
    pub target: DdTarget,
    /// Explicit path of libDDBoost.so (option `ddboost_library`).
    pub library: Option<PathBuf>,
    /// `replication: on`: every write is copied to `remote` before success.
    pub replication: bool,
    /// The `remote_*` options when given, whatever `replication` says: used by
    /// `replicate_backup` and `delete_replica`.
    pub remote: Option<DdTarget>,
    /// Problems with the `remote_*` options, reported when a command needs them.
    pub remote_problems: Vec<String>,
    pub replication_streams: usize,
    /// How many connections a command that works through many files (a
    /// listing, a delete, `verify_backup`) uses at once (option
    /// `command_connections`).
    pub command_connections: usize,
    /// How connecting to a Data Domain is retried.
    pub retry: RetryPolicy,
    /// `broker: on`: the per-host connection broker's settings.
    pub broker: Option<BrokerSettings>,
}

impl DdBoostConfig {
    /// The remote system when `replication: on`.
    pub fn replica(&self) -> Option<&DdTarget> {
        self.remote.as_ref().filter(|_| self.replication)
    }
}

/// Bounded retries with exponential backoff (options `retry_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts: usize,
    pub initial_delay: std::time::Duration,
    pub max_delay: std::time::Duration,
    /// How long an open the system refuses for its stream limit is retried
    /// (option `stream_wait_seconds`), separately from the attempts above.
    pub stream_wait: std::time::Duration,
}

impl BackendConfig for DdBoostConfig {
    fn open(&self, remote: Remote) -> Result<Box<dyn Storage>> {
        Ok(Box::new(super::DdBoostStorage::open(self, remote)?))
    }

    fn broker(&self) -> Option<BrokerSettings> {
        self.broker
    }

    fn command_connections(&self) -> usize {
        self.command_connections
    }

    /// Decrypts encrypted passwords. A remote password that cannot be
    /// decrypted matters only to commands that need the remote system (or
    /// to every command with replication on).
    fn resolve_secrets(&mut self, keys: &KeySources) -> std::result::Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Err(p) = decrypt(&mut self.target, keys) {
            problems.push(p);
        }
        if let Some(remote) = self.remote.as_mut() {
            if let Err(p) = decrypt(remote, keys) {
                if self.replication {
                    problems.push(format!("{p} (replication is on)"));
                } else {
                    self.remote_problems.push(p);
                    self.remote = None;
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn check_open(&self, out: &mut dyn FnMut(Finding)) -> Option<Box<dyn Storage>> {
        for t in std::iter::once(&self.target).chain(self.remote.as_ref()) {
            if !t.stored_encrypted {
                out(Finding::warn(
                    format!("option {}password", t.prefix),
                    "the password is plain text: gpbackup copies the plugin config to /tmp on every host and into the backup; encrypt it with encrypt_password and set password_encryption: on",
                    0.0,
                ));
            }
        }
        if !self.remote_problems.is_empty() {
            out(Finding::fail(
                "remote_* options",
                self.remote_problems.join("; "),
                0.0,
            ));
        }
        let remote = if self.remote.is_some() {
            Remote::Required
        } else {
            Remote::Never
        };
        super::DdBoostStorage::open_reporting(self, remote, out)
            .ok()
            .map(|s| Box::new(s) as Box<dyn Storage>)
    }

    #[cfg(any(test, feature = "test-support"))]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Decrypts `t`'s password if it is encrypted: written by gpbackup_manager
/// (or `encrypt_password`); the key comes from gpbackup (option
/// gpbackup_ddboost_plugin) or the coordinator's `.encrypt`.
fn decrypt(t: &mut DdTarget, keys: &KeySources) -> std::result::Result<(), String> {
    if !t.encrypted {
        return Ok(());
    }
    let plain = keyfile::decrypt_with_found_key(
        t.password.expose(),
        keys.injected.as_ref().map(|k| k.expose()),
        &keys.data_dirs,
    )
    .map_err(|e| format!("option \"{}password\": {e}", t.prefix))?;
    t.password = Secret::new(plain);
    t.encrypted = false;
    Ok(())
}

/// Checks a Data Domain name option: non-empty, at most `max` characters.
fn dd_name(opts: &mut Options, opt: &Opt, max: usize) -> Option<String> {
    let v = opts.required(opt)?;
    if v.chars().count() > max {
        let key = opt.name;
        opts.problem(format!("option \"{key}\" is longer than {max} characters"));
        return None;
    }
    Some(v)
}

/// A directory inside a storage unit: a storage path (no `..`, no empty
/// components), not the storage unit itself.
fn dd_directory(opts: &mut Options, opt: &Opt) -> Option<String> {
    let v = opts.required(opt)?;
    let key = opt.name;
    let trimmed = v.trim_matches('/');
    if !StoragePath::parse(trimmed).is_ok_and(|p| !p.is_root()) {
        opts.problem(format!(
            "option \"{key}\" must be a path inside the storage unit such as backups/gp (got \"{v}\")"
        ));
        return None;
    }
    Some(trimmed.to_string())
}

fn dd_target(opts: &mut Options, o: &TargetOptions) -> Option<DdTarget> {
    let encrypted = opts.on_off(&o.password_encryption);
    let hostname = dd_name(opts, &o.hostname, 255);
    let username = dd_name(opts, &o.username, 30);
    let password = opts.required(&o.password);
    let storage_unit = dd_name(opts, &o.storage_unit, 255);
    let directory = dd_directory(opts, &o.directory);
    if let Some(su) = &storage_unit {
        if su.contains('/') {
            opts.problem(format!(
                "option \"{}\" must not contain '/'",
                o.storage_unit.name
            ));
            return None;
        }
    }
    Some(DdTarget {
        hostname: hostname?,
        username: username?,
        password: Secret::new(password?),
        encrypted,
        stored_encrypted: encrypted,
        prefix: o.prefix,
        storage_unit: storage_unit?,
        directory: directory?,
    })
}

/// Checks the ddboost backend's options (no I/O: encrypted passwords are
/// decrypted by `resolve_secrets`).
pub fn parse(opts: &mut Options) -> Option<Box<dyn BackendConfig>> {
    let target = dd_target(opts, &PRIMARY);
    let library = Some(opts.text(&DDBOOST_LIBRARY))
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    if let Some(lib) = &library {
        if !lib.is_absolute() {
            opts.problem(format!(
                "option \"ddboost_library\" must be an absolute path (got \"{}\")",
                lib.display()
            ));
        }
    }
    let replication = opts.on_off(&REPLICATION);
    let streams = opts.number(&REPLICATION_STREAMS) as usize;
    let attempts = opts.number(&RETRY_MAX_ATTEMPTS) as usize;
    let initial = opts.number(&RETRY_INITIAL_DELAY_MS);
    let max = opts.number(&RETRY_MAX_DELAY_MS);
    if max < initial {
        opts.problem(format!(
            "option \"retry_max_delay_ms\" ({max}) must not be less than \"retry_initial_delay_ms\" ({initial})"
        ));
    }
    // An hour: a restore of a cluster with more segments than the system
    // has free streams waits for the others to finish rather than failing,
    // as gprestore would then have to be rerun as a whole.
    let stream_wait = opts.number(&STREAM_WAIT_SECONDS);
    let retry = RetryPolicy {
        attempts,
        initial_delay: std::time::Duration::from_millis(initial),
        max_delay: std::time::Duration::from_millis(max.max(initial)),
        stream_wait: std::time::Duration::from_secs(stream_wait),
    };
    let any_remote = opts.keys().any(|k| k.starts_with(REMOTE.prefix));
    // Problems of the remote_* options are the config's problems only with
    // replication on; otherwise they are kept for the commands that need them.
    let (remote, remote_problems) = if any_remote || replication {
        let mut remote_opts = opts.fresh();
        let remote = dd_target(&mut remote_opts, &REMOTE);
        (remote, remote_opts.into_problems())
    } else {
        (None, Vec::new())
    };
    if replication {
        for p in &remote_problems {
            opts.problem(format!("{p} (replication is on)"));
        }
    }
    let broker = BrokerSettings {
        idle: std::time::Duration::from_secs(opts.number(&BROKER_IDLE_SECONDS)),
        connections: opts.number(&BROKER_CONNECTIONS) as usize,
    };
    let broker = opts.on_off(&BROKER).then_some(broker);
    let command_connections = opts.number(&COMMAND_CONNECTIONS) as usize;
    Some(Box::new(DdBoostConfig {
        target: target?,
        library,
        replication,
        remote,
        remote_problems,
        replication_streams: streams,
        command_connections,
        retry,
        broker,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::PluginConfig;
    use std::path::Path;

    fn dd(text: &str) -> crate::error::Result<DdBoostConfig> {
        PluginConfig::parse(text, Path::new("c.yaml")).map(|c| {
            c.backend
                .as_any()
                .downcast_ref::<DdBoostConfig>()
                .expect("ddboost backend")
                .clone()
        })
    }

    const HEX: &str = include_str!("../../../tests/data/encryption/pgcrypto_aes256.hex");

    /// `password_encryption: on` decrypts with the key gpbackup injects, in
    /// the step after parsing.
    #[test]
    fn encrypted_passwords_are_decrypted() {
        let hex = HEX.trim();
        let text = format!(
            "options:\n  hostname: dd1\n  username: u\n  storage_unit: SU\n  directory: d\n  password: \"{hex}\"\n  password_encryption: \"on\"\n  gpbackup_ddboost_plugin: k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8\n"
        );
        let mut c = PluginConfig::parse(&text, Path::new("c.yaml")).unwrap();
        c.resolve_secrets().unwrap();
        let d = c.backend.as_any().downcast_ref::<DdBoostConfig>().unwrap();
        assert_eq!(d.target.password.expose(), "DDboost_Pa55!");
        let wrong = text.replace(
            "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8",
            "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g9",
        );
        let mut c = PluginConfig::parse(&wrong, Path::new("c.yaml")).unwrap();
        let e = c.resolve_secrets().unwrap_err().to_string();
        assert!(
            e.contains("\"password\"") && !e.contains("k3v9q0x7") && !e.contains(hex),
            "{e}"
        );
    }

    #[test]
    fn retry_options() {
        let base = "options:\n  hostname: dd1\n  username: u\n  password: p\n  storage_unit: SU\n  directory: d\n";
        assert_eq!(dd(base).unwrap().retry.attempts, 3);
        assert_eq!(dd(base).unwrap().retry.stream_wait.as_secs(), 3600);
        let wait = format!("{base}  stream_wait_seconds: 1\n");
        assert_eq!(dd(&wait).unwrap().retry.stream_wait.as_secs(), 1);
        let e = dd(&format!("{base}  stream_wait_seconds: -1\n")).unwrap_err();
        assert!(e.to_string().contains("stream_wait_seconds"), "{e}");
        let bad = format!("{base}  retry_max_attempts: 0\n  retry_initial_delay_ms: 900\n  retry_max_delay_ms: 800\n");
        let e = dd(&bad).unwrap_err().to_string();
        assert!(
            e.contains("retry_max_attempts") && e.contains("retry_max_delay_ms"),
            "{e}"
        );
    }

    #[test]
    fn missing_options_all_named_and_password_hidden() {
        let e = dd("options:\n  password: hunter2\n  hostname: dd1\n")
            .unwrap_err()
            .to_string();
        for k in ["username", "storage_unit", "directory"] {
            assert!(e.contains(&format!("\"{k}\" is required")), "{e}");
        }
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn remote_problems_matter_only_with_replication() {
        let base = "options:\n  hostname: dd1\n  username: u\n  password: p\n  storage_unit: SU\n  directory: d\n  remote_hostname: dd2\n";
        let c = dd(base).unwrap();
        assert!(c.remote.is_none());
        assert!(c
            .remote_problems
            .iter()
            .any(|p| p.contains("remote_username")));
        let e = dd(&format!("{base}  replication: on\n")).unwrap_err();
        assert!(e.to_string().contains("(replication is on)"), "{e}");
    }
}
