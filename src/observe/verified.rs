//! When each backup was last checked with `verify_backup`, and how it went,
//! for `list_backups --format openmetrics`.
//!
//! Kept on the host that ran `verify_backup`, in the user's private folder
//! below `$HOME/.local/state` (`process::private`: a real folder of this
//! user's that nobody else can write, files opened without following links):
//! `verified-<storage id>`, one line appended per run, `v1 <timestamp> <Unix
//! time> <ok|failed>`. Not on the storage: a backup's folder holds exactly
//! what gpbackup stored, which `verify_backup` checks against gpbackup's
//! manifest and `list_backups --sizes` counts, and a file of the plugin's
//! own there would be one more object in both. The cron job that writes
//! the storage's metrics runs where `verify_backup` runs (the coordinator
//! host); losing that host loses the history of checks, not the backups.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use crate::process::journal::{storage_id, Options};
use crate::process::private::{open_append, open_existing, private_dir};

/// The last check of a backup: when (Unix time, s) and whether it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub at: u64,
    pub ok: bool,
}

fn path(options: Options) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let parent = PathBuf::from(home).join(".local/state");
    std::fs::create_dir_all(&parent).ok()?;
    let dir = private_dir(&parent)?;
    Some(dir.join(format!("verified-{}", storage_id(options))))
}

/// Notes that `verify_backup` of `timestamp` just passed (`ok`) or failed; a
/// failure to note it is only logged.
pub fn note(options: Options, timestamp: &str, ok: bool) {
    let Some(path) = path(options) else {
        log::warn!("verify_backup: no usable folder below $HOME/.local/state: the result is not kept for list_backups");
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let line = format!(
        "v1 {timestamp} {now} {}\n",
        if ok { "ok" } else { "failed" }
    );
    if let Err(e) = open_append(&path).and_then(|mut f| f.write_all(line.as_bytes())) {
        log::warn!(
            "verify_backup: cannot note the result in {}: {e}",
            path.display()
        );
    }
}

/// The last check of each backup checked on this host.
pub fn last_checks(options: Options) -> HashMap<String, Check> {
    let mut last = HashMap::new();
    let Some(file) = path(options).and_then(|p| open_existing(&p).ok()) else {
        return last;
    };
    for line in BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok)
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let ["v1", ts, at, result] = f[..] {
            if let Ok(at) = at.parse() {
                let check = Check {
                    at,
                    ok: result == "ok",
                };
                last.insert(ts.to_string(), check);
            }
        }
    }
    last
}
