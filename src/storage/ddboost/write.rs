//! Writing one object: exactly 1 MiB per `ddp_write` but the last, into a
//! temporary renamed into place on commit, and removed on every failure.

use std::sync::{Arc, Mutex};

use ddboost::{Connection, File as DdFile};

use super::connect::{connect_retrying, sdk_error, Login};
use super::DD_BLOCK;
use crate::error::{Error, Result};
use crate::process::signals::CleanupGuard;
use crate::storage::{ClosedObject, ObjectWriter, StoragePath};

pub(super) struct DdWriter {
    pub(super) file: Option<DdFile>,
    pub(super) offset: u64,
    /// The temporary: relative, and its path in the storage unit.
    pub(super) rel_temp: StoragePath,
    pub(super) temp: String,
    pub(super) target: String,
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) login: Arc<Login>,
    pub(super) su: String,
    pub(super) host: String,
    pub(super) cleanup: Option<CleanupGuard>,
}

impl DdWriter {
    /// The open temporary (until closed).
    pub(super) fn file(&self) -> &DdFile {
        self.file.as_ref().expect("open until closed")
    }

    fn err(&self, e: ddboost::Error) -> Error {
        sdk_error(&self.host, e)
    }
}

impl ObjectWriter for DdWriter {
    fn block_size(&self) -> usize {
        DD_BLOCK
    }

    fn write(&mut self, buf: &[u8]) -> Result<()> {
        let file = self.file.as_ref().expect("open until commit");
        let mut done = 0;
        while done < buf.len() {
            let n = file
                .write_at(&buf[done..], self.offset)
                .map_err(|e| sdk_error(&self.host, e))?;
            if n == 0 {
                return Err(Error::storage(format!(
                    "ddp_write {} wrote nothing on {}",
                    self.temp, self.host
                )));
            }
            done += n;
            self.offset += n as u64;
        }
        Ok(())
    }

    fn close(mut self: Box<Self>) -> Result<Box<dyn ClosedObject>> {
        let file = self.file.take().expect("closed once");
        // Closing finalises the file; its result matters.
        file.close().map_err(|e| self.err(e))?;
        Ok(Box::new(DdClosed {
            temp: std::mem::take(&mut self.rel_temp),
            full_temp: self.temp.clone(),
            target: self.target.clone(),
            conn: Arc::clone(&self.conn),
            login: Arc::clone(&self.login),
            su: self.su.clone(),
            host: self.host.clone(),
            cleanup: self.cleanup.take(),
        }))
    }
}

/// A finalised temporary; dropped unrenamed, it is removed (by its guard).
pub(super) struct DdClosed {
    /// The temporary, relative, and its path in the storage unit.
    temp: StoragePath,
    full_temp: String,
    target: String,
    conn: Arc<Mutex<Connection>>,
    login: Arc<Login>,
    su: String,
    host: String,
    cleanup: Option<CleanupGuard>,
}

impl ClosedObject for DdClosed {
    fn temp(&self) -> &StoragePath {
        &self.temp
    }

    fn rename(&mut self) -> Result<()> {
        let cleanup = self.cleanup.as_ref().expect("renamed once");
        cleanup.hold(|| {
            let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            c.rename(&self.su, &self.full_temp, &self.target)
                .map_err(|e| sdk_error(&self.host, e))
        })?;
        self.cleanup.take().expect("renamed once").disarm();
        Ok(())
    }

    /// Stats the temporary, logging in again first when the connection was
    /// lost (the new connection replaces it, for the steps that follow).
    fn renamed(&mut self) -> Result<bool> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut r = c.stat(&self.su, &self.full_temp);
        if matches!(&r, Err(e) if e.is_connection_lost()) {
            log::info!(
                "the connection to {} was lost; connecting again to see whether /{}/{} was renamed",
                self.host,
                self.su,
                self.full_temp
            );
            let attempt = || c.reconnect(&self.login.user, self.login.password.expose());
            let fresh = connect_retrying(
                attempt,
                &self.login.retry,
                &format!("Data Domain {}", self.host),
            )
            .map_err(|e| sdk_error(&self.host, e))?;
            *c = fresh;
            r = c.stat(&self.su, &self.full_temp);
        }
        match r {
            Ok(_) => Ok(false),
            Err(e) if e.is_not_found() => {
                if let Some(g) = self.cleanup.take() {
                    g.disarm();
                }
                Ok(true)
            }
            Err(e) => Err(sdk_error(&self.host, e)),
        }
    }
}

impl Drop for DdWriter {
    fn drop(&mut self) {
        // Close before the guard unlinks the temporary.
        drop(self.file.take());
        drop(self.cleanup.take());
    }
}

/// The cleanup of a writer's temporary `temp` (a path in storage unit `su`
/// on `host`), which may not exist yet or any more. When the connection was
/// lost (the usual reason a write failed), it logs in again, as the
/// connection did, and unlinks over the new connection. What it cannot
/// remove is named in a warning.
pub(super) fn remove_temporary(
    conn: &Mutex<Connection>,
    login: &Login,
    su: &str,
    temp: &str,
    host: &str,
) {
    let c = conn.lock().unwrap_or_else(|p| p.into_inner());
    let result = match c.unlink(su, temp) {
        Err(e) if e.is_connection_lost() => {
            log::info!(
                "the connection to {host} was lost; connecting again to remove the temporary /{su}/{temp}"
            );
            let attempt = || c.reconnect(&login.user, login.password.expose());
            connect_retrying(attempt, &login.retry, &format!("Data Domain {host}"))
                .and_then(|fresh| fresh.unlink(su, temp))
        }
        r => r,
    };
    match result {
        Ok(()) => log::debug!("removed the temporary /{su}/{temp} on {host}"),
        Err(e) if e.is_not_found() => {}
        Err(e) => log::warn!(
            "cannot remove the temporary /{su}/{temp} on {host} ({e}); it is ignored by restores and listings, and delete_backup removes it"
        ),
    }
}
