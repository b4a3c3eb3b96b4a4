//! Logging in to a Data Domain system: what a new login needs, connecting
//! with retries of transient failures, and SDK failures as the plugin
//! reports them.

use backon::{BlockingRetryable, ExponentialBuilder};
use ddboost::Connection;

use super::config::RetryPolicy;
use crate::config::Secret;
use crate::error::Error;

/// What is needed to log in to a system again (a cleanup after a lost
/// connection). The password stays a [`Secret`]: Debug shows `***`.
#[derive(Debug)]
pub(super) struct Login {
    pub(super) user: String,
    pub(super) password: Secret,
    pub(super) retry: RetryPolicy,
}

/// Runs the connect `attempt`, retrying transient failures
/// ([`ddboost::Error::is_transient`]: connect failure, lost connection,
/// stream limit) with exponential backoff as `retry` says; each retry is
/// logged. Anything else (a wrong password above all: retried logins can lock
/// the DD Boost user) is tried exactly once.
pub(super) fn connect_retrying(
    attempt: impl FnMut() -> ddboost::Result<Connection>,
    retry: &RetryPolicy,
    what: &str,
) -> ddboost::Result<Connection> {
    retrying(attempt, retry, &format!("connecting to {what}"), |e| {
        e.is_transient()
    })
}

/// Runs `attempt`, retrying the failures `transient` accepts with
/// exponential backoff as `retry` says; each retry is logged.
fn retrying<T>(
    attempt: impl FnMut() -> ddboost::Result<T>,
    retry: &RetryPolicy,
    what: &str,
    transient: impl Fn(&ddboost::Error) -> bool,
) -> ddboost::Result<T> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(retry.initial_delay)
        .with_max_delay(retry.max_delay)
        .with_max_times(retry.attempts.saturating_sub(1))
        .with_jitter();
    attempt
        .retry(backoff)
        .sleep(std::thread::sleep)
        .when(|e: &ddboost::Error| transient(e))
        .notify(|e, delay| {
            crate::process::metrics::retry();
            log::warn!(
                "{what} failed ({e}); retrying in {:.1} s",
                delay.as_secs_f64()
            )
        })
        .call()
}

/// An SDK failure on `host`, as the plugin reports it: the call, the object
/// and the return code, which stays available as the error's source.
pub(super) fn sdk_error(host: &str, e: ddboost::Error) -> Error {
    Error::storage_from(format!("DD Boost call failed on {host}: {e}"), e)
}
