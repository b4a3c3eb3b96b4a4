//! Timing every SDK call for an observer chosen by the application (where a
//! command's time went, how many round trips it made).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Told of every SDK call on the thread that makes it: `None` as it begins,
/// then its duration (the wait for the instance's call lock included) as it
/// ends. It must not call back into the SDK.
pub type CallObserver = fn(Option<Duration>);

static OBSERVER: OnceLock<CallObserver> = OnceLock::new();

/// Registers the process-wide call observer. Only the first registration
/// takes effect; a later one gets its observer back as `Err`.
pub fn set_call_observer(observer: CallObserver) -> Result<(), CallObserver> {
    OBSERVER.set(observer)
}

/// Runs `f`, telling the observer (if any) how long it took.
pub(crate) fn timed<R>(f: impl FnOnce() -> R) -> R {
    match OBSERVER.get() {
        None => f(),
        Some(observer) => {
            observer(None);
            let started = Instant::now();
            let r = f();
            observer(Some(started.elapsed()));
            r
        }
    }
}
