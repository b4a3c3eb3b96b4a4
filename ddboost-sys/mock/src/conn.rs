//! Instances and connections: an instance's log callback, a connection's system and
//! whether it was lost.

use crate::error::{DdError, DdResult};
use crate::ffi::ddp_severity_t;
use crate::log::LogSink;
use crate::store::System;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An instance (`ddp_instance_create`): its log callback.
#[derive(Default)]
pub(crate) struct Instance {
    pub(crate) log: LogSink,
}

impl Instance {
    pub(crate) fn log(&self, sev: ddp_severity_t, msg: &str) {
        self.log.log(sev, msg);
    }
}

/// A connection to one system.
pub(crate) struct Conn {
    pub(crate) inst: Arc<Instance>,
    pub(crate) sys: Arc<System>,
    /// Set by a `DD_ERR_CONN_LOST` fault: every later call fails that way.
    pub(crate) lost: AtomicBool,
}

impl Conn {
    pub(crate) fn alive(&self) -> DdResult<()> {
        if self.lost.load(Ordering::Relaxed) {
            Err(DdError::CONN_LOST)
        } else {
            Ok(())
        }
    }
}
