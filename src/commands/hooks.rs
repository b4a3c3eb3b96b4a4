//! setup_plugin_for_backup/restore and cleanup_plugin_for_backup/restore.
//!
//! gpbackup runs each hook once for the coordinator, then for `segment_host`
//! once per primary segment, not once per host (each run with that
//! segment's backup folder), then once per segment, all of a phase in
//! parallel. Every hook here is idempotent and
//! safe to run concurrently with itself.

use crate::error::{Error, ErrorKind, Result};
use crate::observe::{HostReport, Operation};
use crate::process::journal::{self, Found};
use crate::process::private;
use crate::protocol::args::{HookArgs, HookScope};
use crate::protocol::keys::{timestamp_of_dir, Timestamp};
use crate::storage::{sweep_stale_temporaries, OpenOptions, Storage, StoragePath};

use super::Context;

/// The four setup/cleanup hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    SetupBackup,
    SetupRestore,
    CleanupBackup,
    CleanupRestore,
}

pub fn run(ctx: &Context, hook: Hook, args: &HookArgs) -> Result<()> {
    let (local_dir, scope, content) = (args.local_dir.as_str(), args.scope, args.content);
    let ts = timestamp_of_dir(local_dir);
    // Every line names the scope and content id: a backup runs each hook
    // once for the coordinator and once per segment.
    let who = match content {
        Some(c) => format!("{} (scope {scope}, content {c})", ctx.command),
        None => format!("{} (scope {scope})", ctx.command),
    };
    let name = who.as_str();
    log::debug!("{name}: local dir {local_dir}");
    if matches!(hook, Hook::SetupBackup | Hook::SetupRestore) {
        remove_left_behind(name);
    }
    match hook {
        Hook::SetupBackup => {
            // Connect (checks the config and the storage) and create the backup folder.
            let storage = ctx.storage_for_changes()?;
            if let Some(ts) = &ts {
                storage.create_dir_all(ts.prefix())?;
                log::info!("{name}: {} ready in {}", ts.prefix(), storage.describe());
            } else {
                log::info!("{name}: storage {} reachable", storage.describe());
            }
        }
        Hook::SetupRestore => {
            let storage = ctx.storage()?;
            if let (Some(ts), HookScope::Coordinator) = (&ts, scope) {
                // One open, however large the backup: gpbackup stores the
                // config of every backup, and gprestore needs it first.
                let config = ts.prefix().child(&format!("gpbackup_{ts}_config.yaml"))?;
                match storage.open(&config, &OpenOptions::default()) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => log::warn!(
                        "{name}: backup {ts} not found in {}: it has no {config}",
                        storage.describe()
                    ),
                    Err(e) => return Err(e.context(format!("{name}: cannot open {config}"))),
                }
            }
            log::info!("{name}: storage {} reachable", storage.describe());
        }
        // Nothing is left open between commands; what a writer killed with
        // SIGKILL on this host left behind is removed.
        Hook::CleanupBackup => match &ts {
            Some(ts) => {
                let removed = remove_stale_temporaries(ctx, ts)?;
                report(ctx, name, ts, Operation::Backup);
                log::info!("{name}: done ({removed} stale temporaries of {ts} removed)");
            }
            None => log::info!("{name}: done (no backup folder named)"),
        },
        // The config was still checked when the context was loaded.
        Hook::CleanupRestore => {
            if let Some(ts) = &ts {
                report(ctx, name, ts, Operation::Restore);
            }
            log::info!("{name}: done")
        }
    }
    Ok(())
}

/// How long a backup's facts file or journal of temporaries stays unchanged
/// in the private folder before a setup hook takes it for left behind.
const LEFT_BEHIND_AFTER: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Removes the facts files and journals of temporaries on this host that
/// runs whose cleanup hook never came left (a killed gpbackup or gprestore:
/// each holds a line per object, megabytes at the field's size), once
/// nothing changed them for [`LEFT_BEHIND_AFTER`]. A backup killed longer
/// ago can no longer have its cleanup hook run; what it left on the storage
/// is `delete_backup`'s.
fn remove_left_behind(who: &str) {
    let removed = private::remove_unchanged(&["facts-", "journal-"], LEFT_BEHIND_AFTER);
    if !removed.is_empty() {
        log::info!(
            "{who}: removed {} files of backups and restores whose cleanup hook never ran, unchanged for {} days: {}",
            removed.len(),
            LEFT_BEHIND_AFTER.as_secs() / 86_400,
            removed.join(", ")
        );
    }
}

/// The host's summary of `op` of backup `ts`, and its metrics.
fn report(ctx: &Context, who: &str, ts: &Timestamp, operation: Operation) {
    HostReport {
        who,
        options: &ctx.config.redacted_options,
        timestamp: ts.as_str(),
        operation,
        metrics_dir: ctx.config.metrics_dir.as_deref(),
    }
    .run();
}

/// Removes the temporaries of `ts` whose writer ran on this host and is gone
/// (killed with SIGKILL), found in the backup's journal on this host: one
/// delete each, and no connection when there are none. Writers on other
/// hosts and live ones are left alone; `delete_backup` removes everything.
fn remove_stale_temporaries(ctx: &Context, ts: &Timestamp) -> Result<usize> {
    let dir = ts.prefix();
    let sweep = match journal::for_cleanup(&ctx.config.redacted_options, ts.as_str())? {
        Found::Nothing => return Ok(0),
        Found::NoFolder => return sweep_listing(ctx, dir),
        Found::Journal(sweep) => sweep,
    };
    let mut removed = 0;
    if !sweep.stale().is_empty() {
        let storage = ctx.storage()?;
        for writer in sweep.stale() {
            for temp in &writer.temporaries {
                let path = dir.child(temp)?;
                if storage
                    .delete(&path)
                    .map_err(|e| sweep_error(ctx, dir, &*storage, e))?
                {
                    log::info!(
                        "{}: removed {path} left by a writer that is gone (process {})",
                        ctx.command,
                        writer.pid
                    );
                    removed += 1;
                }
            }
        }
    }
    sweep.finish()?;
    Ok(removed)
}

fn sweep_error(ctx: &Context, dir: &StoragePath, storage: &dyn Storage, e: Error) -> Error {
    e.context(format!(
        "{}: cannot remove stale temporaries of {dir} in {}",
        ctx.command,
        storage.describe()
    ))
}

/// Without a journal (no usable private folder on this host): the
/// temporaries below `dir` found by listing it.
fn sweep_listing(ctx: &Context, dir: &StoragePath) -> Result<usize> {
    let storage = ctx.storage()?;
    let fail = |e: Error| sweep_error(ctx, dir, &*storage, e);
    let files = storage.list_all(dir).map_err(fail)?;
    sweep_stale_temporaries(
        &*storage,
        &files,
        |f| {
            log::info!(
                "{}: removed {} ({} bytes) left by a writer that is gone",
                ctx.command,
                f.path,
                f.size
            )
        },
        |_, e| Err(fail(e)),
    )
}
