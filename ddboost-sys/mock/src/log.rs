//! An instance's log callback (`ddp_log_init`).

use crate::ffi::{ddp_log_cb_t, ddp_severity_t};
use parking_lot::Mutex;
use std::ffi::CString;
use std::os::raw::c_void;

/// The callback registered for one instance, with its session pointer.
#[derive(Default)]
pub(crate) struct LogSink {
    target: Mutex<Option<(usize, ddp_log_cb_t)>>,
}

impl LogSink {
    /// Registers `cb` with `session` (a NULL `cb` turns logging off).
    pub(crate) fn set(&self, session: usize, cb: ddp_log_cb_t) {
        *self.target.lock() = cb.map(|_| (session, cb));
    }

    /// Sends `msg` to the callback, if any (NUL bytes become spaces).
    pub(crate) fn log(&self, sev: ddp_severity_t, msg: &str) {
        let Some((session, Some(cb))) = *self.target.lock() else {
            return;
        };
        let Ok(c) = CString::new(msg.replace('\0', " ")) else {
            return;
        };
        // SAFETY: `cb` was registered by the caller through ddp_log_init as a function of this
        // exact C signature; `session` is the pointer it gave us, passed back unchanged; the
        // message is a valid NUL-terminated string that outlives the call.
        unsafe { cb(session as *const c_void, c.as_ptr(), sev) };
    }
}
