//! setup_plugin_for_backup/restore and cleanup_plugin_for_backup/restore.
//!
//! gpbackup runs each hook once for the coordinator, then once per segment
//! for `segment_host` (not once per host: see the protocol notes), then once
//! per segment, all of a phase in parallel. Every hook here is idempotent and
//! safe to run concurrently with itself.

use crate::error::Result;
use crate::protocol::args::{HookArgs, Scope};
use crate::protocol::keys::timestamp_of_dir;
use crate::storage::{is_stale_temp, split_path};

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
    match hook {
        Hook::SetupBackup => {
            // Connect (checks the config and the storage) and create the backup folder.
            let storage = ctx.storage_for_changes()?;
            if let Some(ts) = &ts {
                storage.create_dir_all(&ts.prefix())?;
                log::info!("{name}: {} ready in {}", ts.prefix(), storage.describe());
            } else {
                log::info!("{name}: storage {} reachable", storage.describe());
            }
        }
        Hook::SetupRestore => {
            let storage = ctx.storage()?;
            if let (Some(ts), Scope::Coordinator) = (&ts, scope) {
                if storage.list(&ts.prefix())?.is_empty() {
                    log::warn!(
                        "{name}: no objects found for backup {ts} in {}",
                        storage.describe()
                    );
                }
            }
            log::info!("{name}: storage {} reachable", storage.describe());
        }
        // Nothing is left open between commands; what a writer killed with
        // SIGKILL on this host left behind is removed.
        Hook::CleanupBackup => match &ts {
            Some(ts) => {
                let removed = sweep_stale_temporaries(ctx, &ts.prefix())?;
                log::info!("{name}: done ({removed} stale temporaries of {ts} removed)");
            }
            None => log::info!("{name}: done (no backup folder named)"),
        },
        // The config was still checked when the context was loaded.
        Hook::CleanupRestore => log::info!("{name}: done"),
    }
    Ok(())
}

/// Removes the temporaries below `dir` whose writer ran on this host and is
/// gone (killed with SIGKILL, or the host restarted). Writers on other hosts
/// and live ones are left alone; `delete_backup` removes everything.
fn sweep_stale_temporaries(ctx: &Context, dir: &str) -> Result<usize> {
    let storage = ctx.storage()?;
    let fail = |e: crate::error::Error| {
        e.context(format!(
            "{}: cannot remove stale temporaries of {dir} in {}",
            ctx.command,
            storage.describe()
        ))
    };
    let mut removed = 0;
    for f in storage.list_all(dir).map_err(fail)? {
        if is_stale_temp(split_path(&f.path).1) && storage.delete(&f.path).map_err(fail)? {
            log::info!(
                "{}: removed {} ({} bytes) left by a writer that is gone",
                ctx.command,
                f.path,
                f.size
            );
            removed += 1;
        }
    }
    Ok(removed)
}
