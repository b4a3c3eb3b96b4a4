//! setup_plugin_for_backup/restore and cleanup_plugin_for_backup/restore.
//!
//! gpbackup runs each hook once for the coordinator, then once per segment
//! for `segment_host` (not once per host: see the protocol notes), then once
//! per segment, all of a phase in parallel. Every hook here is idempotent and
//! safe to run concurrently with itself.

use crate::cli::{Hook, Scope};
use crate::error::Result;
use crate::keys::timestamp_of_dir;

use super::Context;

pub fn run(
    ctx: &Context,
    hook: Hook,
    local_dir: &str,
    scope: Scope,
    content: Option<i32>,
) -> Result<()> {
    let name = ctx.command;
    let ts = timestamp_of_dir(local_dir);
    log::debug!(
        "{name}: scope {scope}, content {}, local dir {local_dir}",
        content.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
    );
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
        // Nothing is left open between commands, so cleanup has nothing to do;
        // the config was still checked when the context was loaded.
        Hook::CleanupBackup | Hook::CleanupRestore => {
            log::debug!("{name}: nothing to clean up");
        }
    }
    Ok(())
}
