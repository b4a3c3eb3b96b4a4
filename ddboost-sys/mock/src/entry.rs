//! What every entry point does around its work: the configured latency, no panic across
//! the C boundary, the trace line, and fault injection.

use crate::conn::Conn;
use crate::error::{DdError, DdResult};
use crate::faults;
use crate::ffi::{dd_errno_t, DD_ERR_CONN_LOST, DD_ERR_IO, DD_ERR_NONE};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

/// What a call reports to the trace and matches fault rules against.
#[derive(Default)]
pub(crate) struct Ctx {
    /// `SU/path` (or host, or `a -> b`) of the call.
    pub(crate) path: Option<String>,
    pub(crate) count: u64,
    pub(crate) offset: u64,
    /// An error to return once the call took effect (a `when=after` fault).
    pub(crate) after: std::cell::Cell<Option<dd_errno_t>>,
}

/// Calls a real SDK answers in the client, without a round trip to the system: they cost
/// no latency.
const LOCAL_CALLS: &[&str] = &[
    "init",
    "shutdown",
    "instance_create",
    "instance_destroy",
    "log_init",
];

/// Calls whose body decides whether it pays a round trip: `ddp_readdir` returns entries
/// fetched in batches (`DDBOOST_MOCK_READDIR_BATCH`), so only some of its calls do.
const BATCHED_CALLS: &[&str] = &["readdir"];

/// Runs the body of the call `op`: sleeps the configured latency (calls that reach the
/// system only; batched calls in their body), turns the result (or a panic, as
/// `DD_ERR_IO`) into a return code and traces the call.
pub(crate) fn call(op: &'static str, f: impl FnOnce(&mut Ctx) -> DdResult<()>) -> dd_errno_t {
    if !LOCAL_CALLS.contains(&op) && !BATCHED_CALLS.contains(&op) {
        faults::round_trip();
    }
    let mut ctx = Ctx::default();
    let r = match catch_unwind(AssertUnwindSafe(|| f(&mut ctx))) {
        Ok(Ok(())) => ctx.after.get().unwrap_or(DD_ERR_NONE),
        Ok(Err(e)) => e.0,
        Err(_) => DD_ERR_IO,
    };
    faults::trace(op, ctx.path.as_deref(), ctx.count, ctx.offset, r);
    r
}

/// Applies the fault rules for `op`; a lost-connection fault marks `conn` lost. A
/// `when=after` fault lets the call go on and makes [`call`] return its error once the
/// call took effect (the call's own checks of the connection come before this).
pub(crate) fn inject(op: &str, ctx: &Ctx, conn: Option<&Conn>) -> DdResult<()> {
    if let Some((err, after)) = faults::check(op, ctx.path.as_deref()) {
        if err == DD_ERR_CONN_LOST {
            if let Some(c) = conn {
                c.lost.store(true, Ordering::Relaxed);
            }
        }
        if after {
            ctx.after.set(Some(err));
            return Ok(());
        }
        return Err(DdError(err));
    }
    Ok(())
}
