//! delete_backup, list_directory, delete_directory, replicate_backup, delete_replica.

use std::io::Write;

use crate::error::{Error, Result};
use crate::keys::{Timestamp, BACKUPS_DIR};

use super::Context;

pub fn delete_backup(ctx: &Context, timestamp: &str) -> Result<()> {
    let ts = Timestamp::parse(timestamp)?;
    let storage = ctx.storage()?;
    let prefix = ts.prefix();
    log::info!(
        "delete_backup: deleting {prefix} from {}",
        storage.describe()
    );
    let summary = storage.delete_dir_all(&prefix).map_err(|e| {
        e.context(format!(
            "delete_backup of {ts} from {} failed",
            storage.describe()
        ))
    })?;
    // The date folder goes too once its last backup is gone (another backup
    // of the same day keeps it).
    let _ = storage.remove_dir_if_empty(&format!("{BACKUPS_DIR}/{}", ts.date()));
    if summary.files == 0 && summary.dirs == 0 {
        log::info!(
            "delete_backup: backup {ts} was not found in {} (already deleted)",
            storage.describe()
        );
    } else {
        log::info!(
            "delete_backup: deleted backup {ts}: {} files",
            summary.files
        );
    }
    Ok(())
}

/// A folder argument: relative to `directory`, no `..`.
fn relative_dir(path: &str) -> Result<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(Error::invalid(format!(
            "path \"{}\" must not contain \"..\"; give a folder relative to option \"directory\"",
            path.escape_debug()
        )));
    }
    Ok(parts.join("/"))
}

pub fn list_directory(ctx: &Context, path: Option<&str>) -> Result<()> {
    let dir = relative_dir(path.unwrap_or(""))?;
    let storage = ctx.storage()?;
    let objects = storage.list(&dir).map_err(|e| {
        e.context(format!(
            "list_directory of {dir:?} in {} failed",
            storage.describe()
        ))
    })?;
    let mut out = std::io::stdout().lock();
    for o in &objects {
        if writeln!(out, "{}\t{}", o.path, o.size).is_err() {
            return Ok(()); // reader went away
        }
    }
    let _ = out.flush();
    log::info!("list_directory: {} objects under {dir:?}", objects.len());
    Ok(())
}

pub fn delete_directory(ctx: &Context, path: &str) -> Result<()> {
    let dir = relative_dir(path)?;
    if dir.is_empty() {
        return Err(Error::invalid(
            "delete_directory needs a folder below option \"directory\"; it will not delete the whole directory",
        ));
    }
    let storage = ctx.storage()?;
    log::info!(
        "delete_directory: deleting {dir} from {}",
        storage.describe()
    );
    let s = storage.delete_dir_all(&dir).map_err(|e| {
        e.context(format!(
            "delete_directory of {dir} in {} failed",
            storage.describe()
        ))
    })?;
    log::info!(
        "delete_directory: deleted {} files and {} folders",
        s.files,
        s.dirs
    );
    Ok(())
}

pub fn replicate_backup(ctx: &Context, timestamp: &str) -> Result<()> {
    Timestamp::parse(timestamp)?;
    Err(needs_ddboost(ctx, "replicate_backup"))
}

pub fn delete_replica(ctx: &Context, timestamp: &str) -> Result<()> {
    Timestamp::parse(timestamp)?;
    Err(needs_ddboost(ctx, "delete_replica"))
}

fn needs_ddboost(ctx: &Context, cmd: &str) -> Error {
    Error::config(format!(
        "{cmd} needs backend ddboost with the remote_* options; plugin config {} uses another backend",
        ctx.config.path.display()
    ))
}
