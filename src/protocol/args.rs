//! Command-line parsing: `gpbackup_ddboost_plugin <command> [args...]`,
//! exactly as gpbackup, gprestore, gpbackup_helper and gpbackup_manager call it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::about::PLUGIN_NAME;
use crate::error::{Error, Result};

/// The four setup/cleanup hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    SetupBackup,
    SetupRestore,
    CleanupBackup,
    CleanupRestore,
}

/// A hook's scope. gpbackup sends `master` even on GPDB 7; the test bench and
/// the docs say `coordinator`: both mean the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Coordinator,
    SegmentHost,
    Segment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ApiVersion,
    Version,
    Help,
    Hook {
        hook: Hook,
        config: PathBuf,
        local_dir: String,
        scope: Scope,
        content: Option<i32>,
    },
    BackupFile {
        config: PathBuf,
        file: String,
    },
    RestoreFile {
        config: PathBuf,
        file: String,
    },
    BackupData {
        config: PathBuf,
        key: String,
    },
    RestoreData {
        config: PathBuf,
        key: String,
    },
    RestoreDataSubset {
        config: PathBuf,
        key: String,
        offsets: PathBuf,
    },
    DeleteBackup {
        config: PathBuf,
        timestamp: String,
    },
    ListDirectory {
        config: PathBuf,
        path: Option<String>,
    },
    DeleteDirectory {
        config: PathBuf,
        path: String,
    },
    ReplicateBackup {
        config: PathBuf,
        timestamp: String,
    },
    DeleteReplica {
        config: PathBuf,
        timestamp: String,
    },
    // Temporary wiring of encrypt_password and verify_backup until the clap
    // CLI takes them over: commands::password::run, commands::verify::verify_backup.
    EncryptPassword {
        key_file: Option<PathBuf>,
    },
    VerifyBackup {
        config: PathBuf,
        timestamp: String,
        allow_unrecorded: bool,
    },
}

impl Command {
    /// The plugin config path, for every command that takes one.
    pub fn config(&self) -> Option<&Path> {
        match self {
            Command::ApiVersion | Command::Version | Command::Help => None,
            Command::EncryptPassword { .. } => None,
            Command::VerifyBackup { config, .. } => Some(config),
            Command::Hook { config, .. }
            | Command::BackupFile { config, .. }
            | Command::RestoreFile { config, .. }
            | Command::BackupData { config, .. }
            | Command::RestoreData { config, .. }
            | Command::RestoreDataSubset { config, .. }
            | Command::DeleteBackup { config, .. }
            | Command::ListDirectory { config, .. }
            | Command::DeleteDirectory { config, .. }
            | Command::ReplicateBackup { config, .. }
            | Command::DeleteReplica { config, .. } => Some(config),
        }
    }

    /// The command's name as typed, for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::ApiVersion => "plugin_api_version",
            Command::Version => "--version",
            Command::Help => "--help",
            Command::Hook { hook, .. } => match hook {
                Hook::SetupBackup => "setup_plugin_for_backup",
                Hook::SetupRestore => "setup_plugin_for_restore",
                Hook::CleanupBackup => "cleanup_plugin_for_backup",
                Hook::CleanupRestore => "cleanup_plugin_for_restore",
            },
            Command::BackupFile { .. } => "backup_file",
            Command::RestoreFile { .. } => "restore_file",
            Command::BackupData { .. } => "backup_data",
            Command::RestoreData { .. } => "restore_data",
            Command::RestoreDataSubset { .. } => "restore_data_subset",
            Command::DeleteBackup { .. } => "delete_backup",
            Command::ListDirectory { .. } => "list_directory",
            Command::DeleteDirectory { .. } => "delete_directory",
            Command::ReplicateBackup { .. } => "replicate_backup",
            Command::DeleteReplica { .. } => "delete_replica",
            Command::EncryptPassword { .. } => "encrypt_password",
            Command::VerifyBackup { .. } => "verify_backup",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Coordinator => "coordinator",
            Scope::SegmentHost => "segment_host",
            Scope::Segment => "segment",
        })
    }
}

/// One usage line per command: (name, arguments).
pub const USAGE: &[(&str, &str)] = &[
    (
        "setup_plugin_for_backup",
        "<config> <local backup dir> <scope> [<content id>]",
    ),
    (
        "setup_plugin_for_restore",
        "<config> <local backup dir> <scope> [<content id>]",
    ),
    (
        "cleanup_plugin_for_backup",
        "<config> <local backup dir> <scope> [<content id>]",
    ),
    (
        "cleanup_plugin_for_restore",
        "<config> <local backup dir> <scope> [<content id>]",
    ),
    ("backup_file", "<config> <file>"),
    ("restore_file", "<config> <file>"),
    ("backup_data", "<config> <data file key>"),
    ("restore_data", "<config> <data file key>"),
    (
        "restore_data_subset",
        "<config> <data file key> <offsets file>",
    ),
    ("delete_backup", "<config> <timestamp>"),
    ("list_directory", "<config> [<path>]"),
    ("delete_directory", "<config> <path>"),
    ("replicate_backup", "<config> <timestamp>"),
    ("delete_replica", "<config> <timestamp>"),
    ("encrypt_password", "[--key-file <path>]"),
    ("verify_backup", "<config> <timestamp> [--allow-unrecorded]"),
    ("plugin_api_version", ""),
    ("--version", ""),
    ("--help", ""),
];

fn usage_of(name: &str) -> String {
    let args = USAGE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| *a)
        .unwrap_or("");
    format!("usage: {PLUGIN_NAME} {name} {args}")
        .trim_end()
        .to_string()
}

fn text(arg: &OsString, what: &str) -> Result<String> {
    arg.to_str().map(str::to_string).ok_or_else(|| {
        Error::usage(format!(
            "{what} is not valid UTF-8: {}",
            arg.to_string_lossy()
        ))
    })
}

/// Parses argv (including argv[0]).
pub fn parse(argv: &[OsString]) -> Result<Command> {
    let args = argv.get(1..).unwrap_or(&[]);
    let Some(first) = args.first() else {
        return Err(Error::usage(format!(
            "no command given; run \"{PLUGIN_NAME} --help\" for the list of commands"
        )));
    };
    let name = text(first, "the command")?;
    let rest = &args[1..];
    let count = |min: usize, max: usize| -> Result<()> {
        if rest.len() < min || rest.len() > max {
            Err(Error::usage(format!(
                "{name} takes {} argument{} but got {}; {}",
                if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                },
                if max == 1 { "" } else { "s" },
                rest.len(),
                usage_of(&name)
            )))
        } else {
            Ok(())
        }
    };
    let cfg = || PathBuf::from(&rest[0]);
    let hook = |h: Hook| -> Result<Command> {
        count(3, 4)?;
        Ok(Command::Hook {
            hook: h,
            config: cfg(),
            local_dir: text(&rest[1], "the local backup directory")?,
            scope: parse_scope(&text(&rest[2], "the scope")?)?,
            content: match rest.get(3) {
                Some(c) => Some(parse_content(&text(c, "the content id")?)?),
                None => None,
            },
        })
    };
    match name.as_str() {
        "plugin_api_version" => count(0, 0).map(|_| Command::ApiVersion),
        "--version" | "-v" | "version" => count(0, 0).map(|_| Command::Version),
        "--help" | "-h" | "help" => Ok(Command::Help),
        "setup_plugin_for_backup" => hook(Hook::SetupBackup),
        "setup_plugin_for_restore" => hook(Hook::SetupRestore),
        "cleanup_plugin_for_backup" => hook(Hook::CleanupBackup),
        "cleanup_plugin_for_restore" => hook(Hook::CleanupRestore),
        "backup_file" => {
            count(2, 2)?;
            Ok(Command::BackupFile {
                config: cfg(),
                file: text(&rest[1], "the file")?,
            })
        }
        "restore_file" => {
            count(2, 2)?;
            Ok(Command::RestoreFile {
                config: cfg(),
                file: text(&rest[1], "the file")?,
            })
        }
        "backup_data" => {
            count(2, 2)?;
            Ok(Command::BackupData {
                config: cfg(),
                key: text(&rest[1], "the data file key")?,
            })
        }
        "restore_data" => {
            count(2, 2)?;
            Ok(Command::RestoreData {
                config: cfg(),
                key: text(&rest[1], "the data file key")?,
            })
        }
        "restore_data_subset" => {
            count(3, 3)?;
            Ok(Command::RestoreDataSubset {
                config: cfg(),
                key: text(&rest[1], "the data file key")?,
                offsets: PathBuf::from(&rest[2]),
            })
        }
        "delete_backup" => {
            count(2, 2)?;
            Ok(Command::DeleteBackup {
                config: cfg(),
                timestamp: text(&rest[1], "the timestamp")?,
            })
        }
        "list_directory" => {
            count(1, 2)?;
            Ok(Command::ListDirectory {
                config: cfg(),
                path: rest.get(1).map(|p| text(p, "the path")).transpose()?,
            })
        }
        "delete_directory" => {
            count(2, 2)?;
            Ok(Command::DeleteDirectory {
                config: cfg(),
                path: text(&rest[1], "the path")?,
            })
        }
        "replicate_backup" => {
            count(2, 2)?;
            Ok(Command::ReplicateBackup {
                config: cfg(),
                timestamp: text(&rest[1], "the timestamp")?,
            })
        }
        "delete_replica" => {
            count(2, 2)?;
            Ok(Command::DeleteReplica {
                config: cfg(),
                timestamp: text(&rest[1], "the timestamp")?,
            })
        }
        "encrypt_password" => {
            let key_file = match rest {
                [] => None,
                [flag, path] if flag == "--key-file" => Some(PathBuf::from(path)),
                _ => return Err(Error::usage(usage_of(&name))),
            };
            Ok(Command::EncryptPassword { key_file })
        }
        "verify_backup" => {
            let allow_unrecorded = rest.iter().any(|a| a == "--allow-unrecorded");
            let args: Vec<&OsString> = rest.iter().filter(|a| *a != "--allow-unrecorded").collect();
            match args[..] {
                [config, timestamp] => Ok(Command::VerifyBackup {
                    config: PathBuf::from(config),
                    timestamp: text(timestamp, "the timestamp")?,
                    allow_unrecorded,
                }),
                _ => Err(Error::usage(usage_of(&name))),
            }
        }
        other => Err(Error::usage(format!(
            "unknown command \"{}\"; run \"{PLUGIN_NAME} --help\" for the list of commands",
            other.escape_debug()
        ))),
    }
}

fn parse_scope(s: &str) -> Result<Scope> {
    match s {
        "master" | "coordinator" => Ok(Scope::Coordinator),
        "segment_host" => Ok(Scope::SegmentHost),
        "segment" => Ok(Scope::Segment),
        other => Err(Error::usage(format!(
            "unknown scope \"{}\"; expected master, coordinator, segment_host or segment",
            other.escape_debug()
        ))),
    }
}

/// A content ID, possibly wrapped in literal double quotes (`"-1"`).
fn parse_content(s: &str) -> Result<i32> {
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

/// The text of `--help`.
pub fn help_text() -> String {
    let mut s = format!(
        "{PLUGIN_NAME} {} (commit {}, {})\n\
         Storage plugin for gpbackup and gprestore: stores backups on a Dell Data Domain\n\
         through DD Boost, or on any mounted filesystem.\n\n\
         Use it from gpbackup/gprestore with --plugin-config <config.yaml>.\n\nCommands:\n",
        env!("CARGO_PKG_VERSION"),
        env!("PLUGIN_BUILD_COMMIT"),
        env!("PLUGIN_BUILD_TARGET"),
    );
    for (n, a) in USAGE {
        s.push_str(&format!("  {n} {a}\n"));
    }
    s.push_str("\nScopes: master (or coordinator), segment_host, segment. Logs: ~/gpAdminLogs/gpbackup_ddboost_plugin_YYYYMMDD.log\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command> {
        let mut v = vec![OsString::from("plugin")];
        v.extend(args.iter().map(OsString::from));
        parse(&v)
    }

    #[test]
    fn hooks_accept_both_scopes_and_quoted_ids() {
        let c = p(&["setup_plugin_for_backup", "/c", "/d", "master", "\"-1\""]).unwrap();
        assert!(matches!(
            c,
            Command::Hook {
                scope: Scope::Coordinator,
                content: Some(-1),
                ..
            }
        ));
        let c = p(&[
            "cleanup_plugin_for_restore",
            "/c",
            "/d",
            "coordinator",
            "-1",
        ])
        .unwrap();
        assert!(matches!(
            c,
            Command::Hook {
                scope: Scope::Coordinator,
                content: Some(-1),
                ..
            }
        ));
        let c = p(&["setup_plugin_for_restore", "/c", "/d", "segment_host"]).unwrap();
        assert!(matches!(
            c,
            Command::Hook {
                scope: Scope::SegmentHost,
                content: None,
                ..
            }
        ));
        let c = p(&["setup_plugin_for_backup", "/c", "/d", "segment", "\"12\""]).unwrap();
        assert!(matches!(
            c,
            Command::Hook {
                scope: Scope::Segment,
                content: Some(12),
                ..
            }
        ));
    }

    #[test]
    fn bad_arguments() {
        for a in [
            &[][..],
            &["nope"],
            &["backup_data", "/c"],
            &["backup_data", "/c", "/k", "x"],
            &["setup_plugin_for_backup", "/c", "/d"],
            &["setup_plugin_for_backup", "/c", "/d", "host"],
            &["setup_plugin_for_backup", "/c", "/d", "segment", "\"x\""],
            &["setup_plugin_for_backup", "/c", "/d", "segment", "-2"],
            &["plugin_api_version", "extra"],
            &["restore_data_subset", "/c", "/k"],
        ] {
            assert!(p(a).is_err(), "{a:?} accepted");
        }
    }
}
