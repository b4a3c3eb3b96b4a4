//! The plugin config file: `executablepath` plus a flat `options` map.
//!
//! gpbackup hands the plugin a re-marshalled copy of the user's file with
//! injected keys (`pgport`, `backup_plugin_version`, and the encryption key
//! under the plugin's own name), while gpbackup_manager, gpbackman and the
//! plugin test bench pass hand-written files. Parsing is therefore lenient:
//! any scalar is taken as its raw text (`on`, `"on"`, `10` and `"10"` all
//! work), unknown keys are warnings, and every problem is reported at once,
//! each naming its key.

pub mod encryption;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::about::PLUGIN_NAME;
use crate::error::{Error, Result};

/// A value that must never be printed: Debug and Display show `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Log verbosity, option `logger_verbosity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Error,
    Info,
    Verbose,
    Debug,
}

/// Where objects are stored.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    Local(LocalConfig),
    DdBoost(Box<DdBoostConfig>),
}

/// `backend: local`: a mounted filesystem.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Absolute base directory; backups go under `<directory>/backups/`.
    pub directory: PathBuf,
    /// fsync every object and its directory before reporting success.
    pub fsync: bool,
    /// Permissions of the files the backend creates (option `file_mode`);
    /// folders get [`dir_mode_for`] of it.
    pub file_mode: u32,
}

/// The default of option `file_mode`: owner only.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// The folder mode that goes with a file mode: each read bit gains its
/// execute bit (0600 -> 0700, 0640 -> 0750).
pub fn dir_mode_for(file_mode: u32) -> u32 {
    file_mode | ((file_mode & 0o444) >> 2)
}

/// One Data Domain system and a place on it.
#[derive(Debug, Clone)]
pub struct DdTarget {
    pub hostname: String,
    pub username: String,
    pub password: Secret,
    pub storage_unit: String,
    pub directory: String,
}

/// `backend: ddboost`.
#[derive(Debug, Clone)]
pub struct DdBoostConfig {
    pub target: DdTarget,
    /// Explicit path of libDDBoost.so (option `ddboost_library`).
    pub library: Option<PathBuf>,
    /// `replication: on`: the remote system, else None.
    pub replica: Option<DdTarget>,
    /// The `remote_*` options when given, whatever `replication` says: used by
    /// `replicate_backup` and `delete_replica`.
    pub remote: Option<DdTarget>,
    /// Problems with the `remote_*` options, reported when a command needs them.
    pub remote_problems: Vec<String>,
    pub replication_streams: usize,
    /// How connecting to a Data Domain is retried.
    pub retry: RetryPolicy,
}

/// Bounded retries with exponential backoff (options `retry_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts: usize,
    pub initial_delay: std::time::Duration,
    pub max_delay: std::time::Duration,
}

/// The parsed plugin config.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub path: PathBuf,
    pub executable_path: Option<String>,
    pub backend: BackendConfig,
    pub verbosity: Verbosity,
    pub restore_subset: bool,
    /// Injected by gprestore: the plugin version that made the backup ("" if unknown).
    pub backup_plugin_version: String,
    /// Non-fatal findings (unknown keys, ignored options) for the log.
    pub warnings: Vec<String>,
    /// Every option as given, secrets redacted, for the debug log.
    pub redacted_options: Vec<(String, String)>,
}

/// Options of every backend.
pub const COMMON_OPTIONS: &[&str] = &[
    "backend",
    "directory",
    "logger_verbosity",
    "restore_subset",
    "fsync",
    "file_mode",
];

/// Options of the ddboost backend.
pub const DD_ONLY_OPTIONS: &[&str] = &[
    "hostname",
    "username",
    "password",
    "password_encryption",
    "storage_unit",
    "ddboost_library",
    "replication",
    "replication_streams",
    "remote_hostname",
    "remote_username",
    "remote_password",
    "remote_password_encryption",
    "remote_storage_unit",
    "remote_directory",
    "retry_max_attempts",
    "retry_initial_delay_ms",
    "retry_max_delay_ms",
];

/// Options gpbackup and gprestore inject into the per-host copy.
pub const INJECTED_OPTIONS: &[&str] = &["pgport", "backup_plugin_version", PLUGIN_NAME];

/// Whether the plugin knows the option.
pub fn is_known_option(key: &str) -> bool {
    [COMMON_OPTIONS, DD_ONLY_OPTIONS, INJECTED_OPTIONS]
        .iter()
        .any(|list| list.contains(&key))
}

/// Options whose values must never be logged or shown.
pub fn is_secret_option(key: &str) -> bool {
    key.contains("password") || key.contains("secret") || key == PLUGIN_NAME
}

/// A scalar's raw text: `010` stays `010`, `on` stays `on`, null is "".
struct RawScalar(String);

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawScalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<RawScalar, E> {
                Ok(RawScalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<RawScalar, E> {
                Ok(RawScalar(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<RawScalar, E> {
                Ok(RawScalar(String::new()))
            }
        }
        // deserialize_str hands over a plain scalar's text as written.
        d.deserialize_str(V)
    }
}

/// The text of a scalar `Value` (used only when raw text is unavailable).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Tagged(t) => scalar_text(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

fn shape(v: &Value) -> &'static str {
    match v {
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        _ => "a value",
    }
}

impl PluginConfig {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<PluginConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read plugin config {}: {e}; check the path passed to the plugin",
                path.display()
            ))
        })?;
        Self::parse(&text, path)
    }

    /// Validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<PluginConfig> {
        let bad_yaml = |e: serde_yaml_ng::Error| {
            Error::config(format!(
                "plugin config {} is not valid YAML: {e}",
                path.display()
            ))
        };
        let top: Value = serde_yaml_ng::from_str(text).map_err(bad_yaml)?;
        let top = match top {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            other => {
                return Err(Error::config(format!(
                    "plugin config {} must be a map with keys executablepath and options, not {}",
                    path.display(),
                    shape(&other)
                )))
            }
        };
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut executable_path = None;
        let mut options_value = None;
        for (key, value) in &top {
            let key = scalar_text(key).unwrap_or_default();
            match key.as_str() {
                "executablepath" => match scalar_text(value) {
                    Some(s) => executable_path = Some(s),
                    None => problems.push(format!(
                        "\"executablepath\" must be a path, not {}",
                        shape(value)
                    )),
                },
                "options" => options_value = Some(value.clone()),
                other => warnings.push(format!("unknown top-level key \"{other}\" ignored")),
            }
        }
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        match options_value {
            None => problems.push("key \"options\" is missing".to_string()),
            Some(Value::Null) => {}
            Some(Value::Mapping(m)) => {
                let mut all_scalars = true;
                for (k, v) in &m {
                    let k = scalar_text(k).unwrap_or_default();
                    match scalar_text(v) {
                        Some(t) => {
                            map.insert(k, t);
                        }
                        None => {
                            all_scalars = false;
                            problems.push(format!(
                                "option \"{k}\" must be a single value, not {}",
                                shape(v)
                            ));
                        }
                    }
                }
                if all_scalars {
                    // Again, for the raw text of every scalar.
                    #[derive(Deserialize)]
                    struct Raw {
                        options: BTreeMap<String, RawScalar>,
                    }
                    let raw: Raw = serde_yaml_ng::from_str(text).map_err(bad_yaml)?;
                    map = raw.options.into_iter().map(|(k, v)| (k, v.0)).collect();
                }
            }
            Some(other) => problems.push(format!(
                "\"options\" must be a map of option names to values, not {}",
                shape(&other)
            )),
        }
        let redacted: Vec<(String, String)> = map
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_option(k) {
                    "***".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect();
        for key in map.keys() {
            if !is_known_option(key) {
                warnings.push(format!("unknown option \"{key}\" ignored"));
            }
        }

        let opts = Options { map: &map };
        let verbosity = match opts.get("logger_verbosity") {
            None | Some("") => Verbosity::Info,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "error" => Verbosity::Error,
                "info" => Verbosity::Info,
                "verbose" => Verbosity::Verbose,
                "debug" => Verbosity::Debug,
                _ => {
                    problems.push(format!(
                        "option \"logger_verbosity\" must be error, info, verbose or debug (got \"{v}\")"
                    ));
                    Verbosity::Info
                }
            },
        };
        let restore_subset = opts.on_off("restore_subset", true, &mut problems);
        let backend_name = opts.get("backend").unwrap_or("").to_ascii_lowercase();
        let backend = match backend_name.as_str() {
            "" | "ddboost" => {
                parse_ddboost(&opts, &mut problems).map(|c| BackendConfig::DdBoost(Box::new(c)))
            }
            "local" => {
                for key in DD_ONLY_OPTIONS {
                    if map.contains_key(*key) {
                        warnings.push(format!("option \"{key}\" is ignored with backend local"));
                    }
                }
                parse_local(&opts, &mut problems).map(BackendConfig::Local)
            }
            other => {
                problems.push(format!(
                    "option \"backend\" must be ddboost or local (got \"{other}\")"
                ));
                None
            }
        };
        for key in ["fsync", "file_mode"] {
            if backend_name != "local" && map.contains_key(key) {
                warnings.push(format!("option \"{key}\" is used only with backend local"));
            }
        }

        match backend {
            Some(backend) if problems.is_empty() => Ok(PluginConfig {
                path: path.to_path_buf(),
                executable_path,
                backend,
                verbosity,
                restore_subset,
                backup_plugin_version: map
                    .get("backup_plugin_version")
                    .cloned()
                    .unwrap_or_default(),
                warnings,
                redacted_options: redacted,
            }),
            _ => Err(Error::config(format!(
                "plugin config {}: {}",
                path.display(),
                problems.join("; ")
            ))),
        }
    }
}

/// Typed access to the option map.
struct Options<'a> {
    map: &'a BTreeMap<String, String>,
}

impl Options<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|s| s.as_str())
    }

    /// A required, non-empty value; records a problem when missing.
    fn required(&self, key: &str, problems: &mut Vec<String>) -> Option<String> {
        match self.get(key).map(str::trim) {
            Some(v) if !v.is_empty() => Some(v.to_string()),
            Some(_) => {
                problems.push(format!("option \"{key}\" is empty"));
                None
            }
            None => {
                problems.push(format!("option \"{key}\" is required"));
                None
            }
        }
    }

    /// A whole number in `range`; `default` when absent, a problem when not.
    fn number(
        &self,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
        problems: &mut Vec<String>,
    ) -> u64 {
        match self.get(key).map(str::trim) {
            None | Some("") => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    problems.push(format!(
                        "option \"{key}\" must be a whole number from {} to {} (got \"{v}\")",
                        range.start(),
                        range.end()
                    ));
                    default
                }
            },
        }
    }

    fn on_off(&self, key: &str, default: bool, problems: &mut Vec<String>) -> bool {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => default,
            Some(v) if v.is_empty() => default,
            Some(v) => match v.as_str() {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => {
                    problems.push(format!("option \"{key}\" must be on or off (got \"{v}\")"));
                    default
                }
            },
        }
    }
}

/// Option `file_mode`: an octal mode giving the owner read and write and the
/// group at most read and write; nothing for others, no execute or special bits.
fn file_mode(opts: &Options, problems: &mut Vec<String>) -> u32 {
    let v = match opts.get("file_mode").map(str::trim) {
        None | Some("") => return DEFAULT_FILE_MODE,
        Some(v) => v,
    };
    let digits = v.strip_prefix("0o").unwrap_or(v);
    let mode = if (3..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        u32::from_str_radix(digits, 8).ok()
    } else {
        None
    };
    match mode {
        Some(m) if m & !0o660 == 0 && m & 0o600 == 0o600 => m,
        _ => {
            problems.push(format!(
                "option \"file_mode\" must be an octal mode that gives the owner read and write and the group at most read and write, such as \"0600\" or \"0640\" (got \"{v}\")"
            ));
            DEFAULT_FILE_MODE
        }
    }
}

fn parse_local(opts: &Options, problems: &mut Vec<String>) -> Option<LocalConfig> {
    let fsync = opts.on_off("fsync", true, problems);
    let file_mode = file_mode(opts, problems);
    let dir = opts.required("directory", problems)?;
    let path = PathBuf::from(&dir);
    if !path.is_absolute() {
        problems.push(format!(
            "option \"directory\" must be an absolute path with backend local (got \"{dir}\")"
        ));
        return None;
    }
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        problems.push(format!(
            "option \"directory\" must not contain \"..\" (got \"{dir}\")"
        ));
        return None;
    }
    Some(LocalConfig {
        directory: path,
        fsync,
        file_mode,
    })
}

/// Checks a Data Domain name option: non-empty, at most `max` characters.
fn dd_name(opts: &Options, key: &str, max: usize, problems: &mut Vec<String>) -> Option<String> {
    let v = opts.required(key, problems)?;
    if v.chars().count() > max {
        problems.push(format!("option \"{key}\" is longer than {max} characters"));
        return None;
    }
    Some(v)
}

/// A directory inside a storage unit: relative, no `..`, no empty components.
fn dd_directory(opts: &Options, key: &str, problems: &mut Vec<String>) -> Option<String> {
    let v = opts.required(key, problems)?;
    let trimmed = v.trim_matches('/');
    if trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        problems.push(format!(
            "option \"{key}\" must be a path inside the storage unit such as backups/gp (got \"{v}\")"
        ));
        return None;
    }
    Some(trimmed.to_string())
}

fn dd_target(opts: &Options, prefix: &str, problems: &mut Vec<String>) -> Option<DdTarget> {
    let key = |k: &str| format!("{prefix}{k}");
    let encrypted = opts.on_off(&key("password_encryption"), false, problems);
    let hostname = dd_name(opts, &key("hostname"), 255, problems);
    let username = dd_name(opts, &key("username"), 30, problems);
    let password = opts.required(&key("password"), problems).and_then(|p| {
        if !encrypted {
            return Some(p);
        }
        // Written by gpbackup_manager encrypt-password; the key comes from
        // gpbackup (option gpbackup_ddboost_plugin) or the coordinator's .encrypt.
        let found = crate::config::encryption::decrypt_with_found_key(
            &p,
            opts.get(PLUGIN_NAME),
            &crate::config::encryption::data_dirs_from_env(),
        );
        found
            .map_err(|e| problems.push(format!("option \"{}\": {e}", key("password"))))
            .ok()
    });
    let storage_unit = dd_name(opts, &key("storage_unit"), 255, problems);
    let directory = dd_directory(opts, &key("directory"), problems);
    if let Some(su) = &storage_unit {
        if su.contains('/') {
            problems.push(format!(
                "option \"{}\" must not contain '/'",
                key("storage_unit")
            ));
            return None;
        }
    }
    Some(DdTarget {
        hostname: hostname?,
        username: username?,
        password: Secret::new(password?),
        storage_unit: storage_unit?,
        directory: directory?,
    })
}

fn parse_ddboost(opts: &Options, problems: &mut Vec<String>) -> Option<DdBoostConfig> {
    let target = dd_target(opts, "", problems);
    let library = opts
        .get("ddboost_library")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    if let Some(lib) = &library {
        if !lib.is_absolute() {
            problems.push(format!(
                "option \"ddboost_library\" must be an absolute path (got \"{}\")",
                lib.display()
            ));
        }
    }
    let replication = opts.on_off("replication", false, problems);
    let streams = opts.number("replication_streams", 1, 1..=64, problems) as usize;
    let attempts = opts.number("retry_max_attempts", 3, 1..=10, problems) as usize;
    let initial = opts.number("retry_initial_delay_ms", 500, 1..=60_000, problems);
    let max = opts.number("retry_max_delay_ms", 5_000, 1..=300_000, problems);
    if max < initial {
        problems.push(format!(
            "option \"retry_max_delay_ms\" ({max}) must not be less than \"retry_initial_delay_ms\" ({initial})"
        ));
    }
    let retry = RetryPolicy {
        attempts,
        initial_delay: std::time::Duration::from_millis(initial),
        max_delay: std::time::Duration::from_millis(max.max(initial)),
    };
    let any_remote = opts.map.keys().any(|k| k.starts_with("remote_"));
    let mut remote_problems = Vec::new();
    let remote = if any_remote || replication {
        dd_target(opts, "remote_", &mut remote_problems)
    } else {
        None
    };
    let replica = if replication {
        problems.extend(
            remote_problems
                .iter()
                .map(|p| format!("{p} (replication is on)")),
        );
        remote.clone()
    } else {
        None
    };
    Some(DdBoostConfig {
        target: target?,
        library,
        replica,
        remote,
        remote_problems,
        replication_streams: streams,
        retry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PluginConfig> {
        PluginConfig::parse(s, Path::new("/tmp/cfg.yaml"))
    }

    #[test]
    fn bare_and_quoted_scalars_and_injected_keys() {
        let c = parse(
            "executablepath: /usr/local/bin/gpbackup_ddboost_plugin\noptions:\n  backend: local\n  directory: \"/backup\"\n  restore_subset: \"off\"\n  pgport: 6000\n  backup_plugin_version: \"\"\n  gpbackup_ddboost_plugin: 0123abc\n  logger_verbosity: debug\n",
        )
        .unwrap();
        assert!(!c.restore_subset);
        assert_eq!(c.verbosity, Verbosity::Debug);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let shown = format!("{:?}", c);
        assert!(!shown.contains("0123abc"), "{shown}");
        match c.backend {
            BackendConfig::Local(l) => assert_eq!(l.directory, PathBuf::from("/backup")),
            _ => panic!("wrong backend"),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = parse(
            "options:\n  backend: local\n  logger_verbosity: loud\n  restore_subset: maybe\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"directory\" is required"), "{e}");
        assert!(e.contains("\"logger_verbosity\""), "{e}");
        assert!(e.contains("\"restore_subset\""), "{e}");
    }

    #[test]
    fn ddboost_missing_options_all_named_and_password_hidden() {
        let e = parse("options:\n  password: hunter2\n  hostname: dd1\n")
            .unwrap_err()
            .to_string();
        for k in ["username", "storage_unit", "directory"] {
            assert!(e.contains(&format!("\"{k}\" is required")), "{e}");
        }
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn duplicates_and_nested_values_rejected() {
        let e =
            parse("options:\n  backend: local\n  directory: /a\n  directory: /b\n  x: [1, 2]\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("directory"), "{e}");
        let e = parse("options:\n  backend: local\n  directory: /a\n  x: [1, 2]\n  y: {a: 1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"x\" must be a single value"), "{e}");
        assert!(e.contains("\"y\" must be a single value"), "{e}");
    }

    #[test]
    fn unknown_keys_warn() {
        let c = parse("executablepath: /x\nfoo: 1\noptions:\n  backend: local\n  directory: /a\n  colour: blue\n").unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    }

    #[test]
    fn file_mode_values() {
        let mode = |v: &str| {
            let text = format!("options:\n  backend: local\n  directory: /a\n{v}");
            parse(&text).map(|c| match c.backend {
                BackendConfig::Local(l) => l.file_mode,
                _ => panic!("wrong backend"),
            })
        };
        assert_eq!(mode("").unwrap(), 0o600);
        for (v, m) in [("0600", 0o600), ("\"0640\"", 0o640), ("660", 0o660)] {
            assert_eq!(mode(&format!("  file_mode: {v}\n")).unwrap(), m, "{v}");
        }
        for v in [
            "0644", "0700", "0400", "4600", "0o", "640x", "rw", "06400", "-600",
        ] {
            let e = mode(&format!("  file_mode: \"{v}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("\"file_mode\""), "{v}: {e}");
        }
        assert_eq!(dir_mode_for(0o600), 0o700);
        assert_eq!(dir_mode_for(0o640), 0o750);
        assert_eq!(dir_mode_for(0o660), 0o770);
    }

    #[test]
    fn raw_scalar_text_is_kept() {
        let c = parse("options:\n  backend: local\n  directory: /a\n  replication_streams: 010\n")
            .unwrap();
        assert!(c
            .redacted_options
            .contains(&("replication_streams".into(), "010".into())));
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// The example config parses with no warnings.
    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../../plugin_config.example.yaml");
        let c = PluginConfig::parse(text, Path::new("plugin_config.example.yaml")).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(matches!(c.backend, BackendConfig::DdBoost(_)));
    }

    /// `password_encryption: on` decrypts with the key gpbackup injects.
    #[test]
    fn encrypted_passwords_are_decrypted() {
        let hex = include_str!("../../tests/data/encryption/pgcrypto_aes256.hex").trim();
        let text = format!(
            "options:\n  hostname: dd1\n  username: u\n  storage_unit: SU\n  directory: d\n  password: \"{hex}\"\n  password_encryption: \"on\"\n  gpbackup_ddboost_plugin: k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8\n"
        );
        let c = PluginConfig::parse(&text, Path::new("c.yaml")).unwrap();
        match c.backend {
            BackendConfig::DdBoost(d) => assert_eq!(d.target.password.expose(), "DDboost_Pa55!"),
            _ => panic!("wrong backend"),
        }
        let wrong = text.replace(
            "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8",
            "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g9",
        );
        let e = PluginConfig::parse(&wrong, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"password\"") && !e.contains("k3v9q0x7") && !e.contains(hex),
            "{e}"
        );
    }

    #[test]
    fn retry_options() {
        let base = "options:\n  hostname: dd1\n  username: u\n  password: p\n  storage_unit: SU\n  directory: d\n";
        let c = PluginConfig::parse(base, Path::new("c.yaml")).unwrap();
        let BackendConfig::DdBoost(d) = c.backend else {
            panic!("wrong backend")
        };
        assert_eq!(d.retry.attempts, 3);
        let bad = format!("{base}  retry_max_attempts: 0\n  retry_initial_delay_ms: 900\n  retry_max_delay_ms: 800\n");
        let e = PluginConfig::parse(&bad, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("retry_max_attempts") && e.contains("retry_max_delay_ms"),
            "{e}"
        );
    }

    proptest::proptest! {
        /// Any text, YAML-looking or not, gives a config or an error, never a panic.
        #[test]
        fn never_panics(body in "(options:\n)?([ a-z_]{0,12}: ?[\\[\\]{}\"'a-z0-9/:~!&*-]{0,16}\n){0,8}") {
            let _ = PluginConfig::parse(&body, Path::new("c.yaml"));
        }
    }

    /// Every option the code knows is in the README's option table.
    #[test]
    fn readme_documents_every_option() {
        let readme = include_str!("../../README.md");
        for key in [COMMON_OPTIONS, DD_ONLY_OPTIONS, INJECTED_OPTIONS].concat() {
            assert!(
                readme.contains(&format!("`{key}`")),
                "README lacks option {key}"
            );
        }
    }
}
