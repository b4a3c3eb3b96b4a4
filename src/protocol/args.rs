//! The command line: `gpbackup_ddboost_plugin <command> [args...]`, exactly
//! as gpbackup, gprestore, gpbackup_helper and gpbackup_manager call it.
//!
//! Each command is one variant of [`Command`]: its name, its arguments (typed:
//! keys, timestamps, scopes are checked while parsing, before any storage is
//! touched) and its help text. `commands::execute` runs it.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::about::{PLUGIN_NAME, VERSION};
use crate::error::{Error, ErrorKind, Result};
use crate::path::StoragePath;
use crate::protocol::keys::{ObjectKey, Timestamp};

/// A hook's scope. gpbackup sends `master` even on GPDB 7; the test bench and
/// the docs say `coordinator`: both mean the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookScope {
    Coordinator,
    SegmentHost,
    Segment,
}

impl HookScope {
    fn parse(s: &str) -> Result<HookScope> {
        match s {
            "master" | "coordinator" => Ok(HookScope::Coordinator),
            "segment_host" => Ok(HookScope::SegmentHost),
            "segment" => Ok(HookScope::Segment),
            other => Err(Error::usage(format!(
                "unknown scope \"{}\"; expected master, coordinator, segment_host or segment",
                other.escape_debug()
            ))),
        }
    }
}

impl fmt::Display for HookScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookScope::Coordinator => "coordinator",
            HookScope::SegmentHost => "segment_host",
            HookScope::Segment => "segment",
        })
    }
}

/// A content ID, possibly wrapped in literal double quotes (`"-1"`), as
/// gpbackup passes it.
fn content_id(s: &str) -> Result<i32> {
    let inner = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    match inner.parse::<i32>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(Error::usage(format!(
            "invalid content id \"{}\"; expected -1 or a segment number",
            s.escape_debug()
        ))),
    }
}

/// A local file gpbackup names, and the object it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalFile {
    pub path: String,
    pub key: ObjectKey,
}

fn local_file(s: &str) -> Result<LocalFile> {
    Ok(LocalFile {
        key: ObjectKey::from_path(s)?,
        path: s.to_string(),
    })
}

fn object_key(s: &str) -> Result<ObjectKey> {
    ObjectKey::from_path(s)
}

fn timestamp(s: &str) -> Result<Timestamp> {
    Timestamp::parse(s)
}

/// A folder below option `directory`, without `..` (`.` and empty parts
/// dropped); the root when empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder(pub StoragePath);

fn folder(path: &str) -> Result<Folder> {
    StoragePath::parse_lenient(path).map(Folder).map_err(|e| {
        Error::invalid(format!(
            "path \"{}\" is refused ({e}); give a folder relative to option \"directory\"",
            path.escape_debug()
        ))
    })
}

/// The plugin config file, the first argument of every command that
/// reads one. It derefs to its path.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
pub struct ConfigArg {
    /// The plugin config file.
    #[arg(id = "config", value_name = "CONFIG", allow_hyphen_values = true)]
    pub path: PathBuf,
}

impl std::ops::Deref for ConfigArg {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}

/// The arguments every hook takes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
pub struct HookArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The local backup directory (`.../<YYYYMMDD>/<timestamp>`).
    #[arg(value_name = "LOCAL_BACKUP_DIR", allow_hyphen_values = true)]
    pub local_dir: String,
    /// master (or coordinator), segment_host or segment.
    #[arg(value_name = "SCOPE", value_parser = parser(HookScope::parse), allow_hyphen_values = true)]
    pub scope: HookScope,
    /// The segment's content id; `-1` (or `"-1"`) is the coordinator.
    #[arg(value_name = "CONTENT_ID", value_parser = parser(content_id), allow_hyphen_values = true)]
    pub content: Option<i32>,
}

/// Every command. The variant's name attribute is the command as typed.
/// It travels whole to the connection broker (serde), each key and path
/// checked again as it is read back.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
pub enum Command {
    /// Print the plugin API version gpbackup checks.
    #[command(name = "plugin_api_version")]
    ApiVersion,
    /// Print "gpbackup_ddboost_plugin version X.Y.Z".
    #[command(name = "version", long_flag = "version", short_flag = 'v')]
    Version,
    /// Print this help.
    #[command(name = "help", long_flag = "help", short_flag = 'h')]
    Help,
    /// Connect and create the backup folder.
    #[command(name = "setup_plugin_for_backup")]
    SetupBackup(HookArgs),
    /// Connect; warn in the log when the backup has no objects.
    #[command(name = "setup_plugin_for_restore")]
    SetupRestore(HookArgs),
    /// Remove what writers of this host killed with SIGKILL left behind.
    #[command(name = "cleanup_plugin_for_backup")]
    CleanupBackup(HookArgs),
    /// Check the config.
    #[command(name = "cleanup_plugin_for_restore")]
    CleanupRestore(HookArgs),
    /// Store a local file (left in place).
    #[command(name = "backup_file")]
    BackupFile {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "FILE", value_parser = parser(local_file), allow_hyphen_values = true)]
        file: LocalFile,
    },
    /// Write the object to exactly that path.
    #[command(name = "restore_file")]
    RestoreFile {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "FILE", value_parser = parser(local_file), allow_hyphen_values = true)]
        file: LocalFile,
    },
    /// Store standard input.
    #[command(name = "backup_data")]
    BackupData {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "DATA_FILE_KEY", value_parser = parser(object_key), allow_hyphen_values = true)]
        key: ObjectKey,
    },
    /// Write the object to standard output.
    #[command(name = "restore_data")]
    RestoreData {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "DATA_FILE_KEY", value_parser = parser(object_key), allow_hyphen_values = true)]
        key: ObjectKey,
    },
    /// Write the byte ranges of an offsets file (`N s1 e1 ... sN eN`) to standard output.
    #[command(name = "restore_data_subset")]
    RestoreDataSubset {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "DATA_FILE_KEY", value_parser = parser(object_key), allow_hyphen_values = true)]
        key: ObjectKey,
        #[arg(value_name = "OFFSETS_FILE", allow_hyphen_values = true)]
        offsets: PathBuf,
    },
    /// Delete a backup (and its replica with replication on).
    #[command(name = "delete_backup")]
    DeleteBackup {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "TIMESTAMP", value_parser = parser(timestamp), allow_hyphen_values = true)]
        timestamp: Timestamp,
    },
    /// Print "path<TAB>size" for each object below option directory.
    #[command(name = "list_directory")]
    ListDirectory {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "PATH", value_parser = parser(folder), allow_hyphen_values = true)]
        path: Option<Folder>,
    },
    /// Delete a folder below option directory.
    #[command(name = "delete_directory")]
    DeleteDirectory {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "PATH", value_parser = parser(folder), allow_hyphen_values = true)]
        path: Folder,
    },
    /// Copy a backup to the remote_* system.
    #[command(name = "replicate_backup")]
    ReplicateBackup {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "TIMESTAMP", value_parser = parser(timestamp), allow_hyphen_values = true)]
        timestamp: Timestamp,
    },
    /// Delete only the remote copy of a backup.
    #[command(name = "delete_replica")]
    DeleteReplica {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "TIMESTAMP", value_parser = parser(timestamp), allow_hyphen_values = true)]
        timestamp: Timestamp,
    },
    /// Check that a backup is complete (from gpbackup's manifest) and every object matches its checksum record.
    #[command(
        name = "verify_backup",
        override_usage = "gpbackup_ddboost_plugin verify_backup <CONFIG> <TIMESTAMP> [--allow-unrecorded] [--json]"
    )]
    VerifyBackup {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(value_name = "TIMESTAMP", value_parser = parser(timestamp), allow_hyphen_values = true)]
        timestamp: Timestamp,
        /// Accept objects that have no checksum record.
        #[arg(long = "allow-unrecorded")]
        allow_unrecorded: bool,
        /// Print one JSON document instead of lines.
        #[arg(long = "json")]
        json: bool,
    },
    /// List the backups below option directory, from their gpbackup configs.
    #[command(
        name = "list_backups",
        override_usage = "gpbackup_ddboost_plugin list_backups <CONFIG> [--sizes] [--replica] [--json | --format text|json|openmetrics]"
    )]
    ListBackups {
        #[command(flatten)]
        config: ConfigArg,
        /// Add each backup's stored objects and bytes (lists every backup folder).
        #[arg(long = "sizes")]
        sizes: bool,
        /// Ask the remote_* system which backups it holds.
        #[arg(long = "replica")]
        replica: bool,
        /// Print one JSON document instead of lines.
        #[arg(long = "json", conflicts_with = "format")]
        json: bool,
        /// `openmetrics`: print metrics for node_exporter's textfile collector
        /// (per backup: stored bytes and objects, complete, last verify_backup).
        #[arg(long = "format", value_name = "FORMAT", value_parser = ["text", "json", "openmetrics"])]
        format: Option<String>,
    },
    /// Print the hex of a password (read from stdin or asked for) for password_encryption: on.
    #[command(
        name = "encrypt_password",
        override_usage = "gpbackup_ddboost_plugin encrypt_password [--key-file <PATH>]"
    )]
    EncryptPassword {
        /// The .encrypt file holding the key (default: in $COORDINATOR_DATA_DIRECTORY or $MASTER_DATA_DIRECTORY).
        #[arg(long = "key-file", value_name = "PATH")]
        key_file: Option<PathBuf>,
    },
    /// Check a config on this host: storage reachable, writable, readable (one line per step; exit 0 only if all pass).
    #[command(
        name = "check",
        override_usage = "gpbackup_ddboost_plugin check <CONFIG> [--no-write]"
    )]
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Skip the probe object (nothing is written).
        #[arg(long = "no-write")]
        no_write: bool,
    },
    /// The per-host connection broker: started by the setup hooks with
    /// option `broker: on`, it serves backup_data and restore_data of this
    /// host's plugin processes on a few shared logins.
    #[command(name = "broker", hide = true)]
    Broker {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Parser)]
#[command(
    name = PLUGIN_NAME,
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    subcommand_required = true,
    help_template = "{before-help}{usage-heading} {usage}\n\nCommands:\n{subcommands}{after-help}",
    before_help = concat!(
        "gpbackup_ddboost_plugin ", env!("CARGO_PKG_VERSION"), " (commit ", env!("PLUGIN_BUILD_COMMIT"), ", ", env!("PLUGIN_BUILD_TARGET"), ")\n",
        "Storage plugin for gpbackup and gprestore: stores backups on a Dell Data Domain\n",
        "through DD Boost, or on any mounted filesystem.\n",
        "Use it from gpbackup/gprestore with --plugin-config <config.yaml>.\n"
    ),
    after_help = "\nScopes: master (or coordinator), segment_host, segment. Logs: ~/gpAdminLogs/gpbackup_ddboost_plugin_YYYYMMDD.log",
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A clap value parser from one of the checks above; its error is kept whole.
fn parser<T: Clone + Send + Sync + 'static>(
    f: fn(&str) -> Result<T>,
) -> impl Fn(&str) -> std::result::Result<T, Error> + Clone + Send + Sync + 'static {
    move |s: &str| f(s)
}

/// A parsed command line: the command and its name as typed.
#[derive(Debug)]
pub struct Parsed {
    pub name: &'static str,
    pub command: Command,
}

/// Parses argv (including argv[0]). A wrong command or argument count is
/// `ErrorKind::Usage`; a bad key, timestamp or folder keeps its own kind.
pub fn parse(argv: &[OsString]) -> Result<Parsed> {
    let matches = Cli::command()
        .try_get_matches_from(argv)
        .map_err(clap_error)?;
    // Once per process: the name lives as long as the process.
    let name: &'static str = Box::leak(
        matches
            .subcommand_name()
            .unwrap_or("?")
            .to_string()
            .into_boxed_str(),
    );
    let cli = Cli::from_arg_matches(&matches).map_err(clap_error)?;
    Ok(Parsed {
        name,
        command: cli.command,
    })
}

/// One line for a clap error: the cause and the command's usage.
fn clap_error(e: clap::Error) -> Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind as K};
    // A value parser's own error (bad key, timestamp, scope) comes through whole.
    if let Some(inner) = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Error>()) {
        return Error::new(inner.kind(), inner.message());
    }
    let context = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let help = format!("run \"{PLUGIN_NAME} --help\" for the list of commands");
    let message = match e.kind() {
        K::InvalidSubcommand => format!(
            "unknown command \"{}\"; {help}",
            context(ContextKind::InvalidSubcommand)
                .unwrap_or_default()
                .escape_debug()
        ),
        K::MissingSubcommand | K::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("no command given; {help}")
        }
        K::InvalidUtf8 => "an argument is not valid UTF-8".to_string(),
        // Never echoed: a password typed on the command line by mistake
        // must not reach the log or the terminal's scrollback.
        K::UnknownArgument => format!("unexpected argument (not shown){}", usage_of(&e)),
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let first = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(missing)) if e.kind() == K::MissingRequiredArgument => {
                    format!("missing {}", missing.join(" "))
                }
                _ => first.trim_end_matches(':').to_string(),
            };
            format!("{first}{}", usage_of(&e))
        }
    };
    Error::new(ErrorKind::Usage, message)
}

/// "; usage: ..." of the command a clap error is about.
fn usage_of(e: &clap::Error) -> String {
    e.render()
        .to_string()
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|u| format!("; usage: {u}"))
        .unwrap_or_else(|| format!("; for the usage run \"{PLUGIN_NAME} --help\""))
}

/// The text of `--help`: every command with its arguments and what it does.
pub fn help_text() -> String {
    let mut cli = Cli::command();
    let mut out = cli
        .get_before_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    out.push_str("\nCommands:\n");
    for sub in cli.get_subcommands_mut() {
        let usage = sub.render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ");
        let usage = usage
            .strip_prefix(&format!("{PLUGIN_NAME} "))
            .unwrap_or(usage);
        match sub.get_long_flag() {
            Some(flag) => out.push_str(&format!("  --{flag} (or {usage})\n")),
            None => out.push_str(&format!("  {usage}\n")),
        }
        if let Some(about) = sub.get_about() {
            out.push_str(&format!("      {about}\n"));
        }
    }
    out.push_str(
        &cli.get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default(),
    );
    out.push('\n');
    out
}

/// The version answer.
pub fn version_text() -> String {
    format!("{PLUGIN_NAME} version {VERSION}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command> {
        let mut v = vec![OsString::from("plugin")];
        v.extend(args.iter().map(OsString::from));
        parse(&v).map(|p| p.command)
    }

    #[test]
    fn hooks_accept_both_scopes_and_quoted_ids() {
        let hook = |c: Command| match c {
            Command::SetupBackup(h)
            | Command::SetupRestore(h)
            | Command::CleanupBackup(h)
            | Command::CleanupRestore(h) => (h.scope, h.content),
            other => panic!("not a hook: {other:?}"),
        };
        let c = p(&["setup_plugin_for_backup", "/c", "/d", "master", "\"-1\""]).unwrap();
        assert_eq!(hook(c), (HookScope::Coordinator, Some(-1)));
        let c = p(&[
            "cleanup_plugin_for_restore",
            "/c",
            "/d",
            "coordinator",
            "-1",
        ])
        .unwrap();
        assert_eq!(hook(c), (HookScope::Coordinator, Some(-1)));
        let c = p(&["setup_plugin_for_restore", "/c", "/d", "segment_host"]).unwrap();
        assert_eq!(hook(c), (HookScope::SegmentHost, None));
        let c = p(&["setup_plugin_for_backup", "/c", "/d", "segment", "\"12\""]).unwrap();
        assert_eq!(hook(c), (HookScope::Segment, Some(12)));
    }

    #[test]
    fn names_and_version_forms() {
        let v = |a: &[&str]| {
            let mut argv = vec![OsString::from("plugin")];
            argv.extend(a.iter().map(OsString::from));
            parse(&argv).unwrap()
        };
        for a in ["--version", "-v", "version"] {
            assert_eq!(v(&[a]).command, Command::Version, "{a}");
        }
        for a in ["--help", "-h", "help"] {
            assert_eq!(v(&[a]).command, Command::Help, "{a}");
        }
        assert_eq!(v(&["plugin_api_version"]).name, "plugin_api_version");
        let parsed = v(&["backup_data", "/c", "/x/20250101/20250101120000/f"]);
        assert_eq!(parsed.name, "backup_data");
        assert_eq!(version_text(), format!("{PLUGIN_NAME} version {VERSION}\n"));
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for a in [
            &[][..],
            &["nope"],
            &["backup_data", "/c"],
            &["backup_data", "/c", "/x/20250101/20250101120000/f", "x"],
            &["setup_plugin_for_backup", "/c", "/d"],
            &["setup_plugin_for_backup", "/c", "/d", "host"],
            &["setup_plugin_for_backup", "/c", "/d", "segment", "\"x\""],
            &["setup_plugin_for_backup", "/c", "/d", "segment", "-2"],
            &["plugin_api_version", "extra"],
            &["restore_data_subset", "/c", "/x/20250101/20250101120000/f"],
        ] {
            let e = p(a).expect_err(&format!("{a:?} accepted"));
            assert_eq!(e.kind(), ErrorKind::Usage, "{a:?}: {e}");
            assert!(!e.message().contains('\n'), "{e}");
        }
        let e = p(&["nope"]).unwrap_err();
        assert!(e.message().starts_with("unknown command \"nope\""), "{e}");
    }

    #[test]
    fn typed_values_are_checked_while_parsing() {
        let e = p(&["backup_data", "/c", "/x/20250101/20250101120000/.."]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.message().starts_with("cannot map path"), "{e}");
        let e = p(&["delete_backup", "/c", "2025"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let e = p(&["delete_directory", "/c", "a/../.."]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        match p(&["list_directory", "/c", "./a//b/"]).unwrap() {
            Command::ListDirectory { path, .. } => {
                assert_eq!(path, Some(Folder(StoragePath::parse("a/b").unwrap())))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_lists_every_command() {
        let h = help_text();
        for n in [
            "restore_data_subset",
            "setup_plugin_for_backup",
            "delete_replica",
        ] {
            assert!(h.contains(n), "{h}");
        }
    }
}
