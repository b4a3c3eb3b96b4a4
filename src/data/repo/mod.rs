//! The repository: stored objects as the commands see them. A write runs
//! the whole commit protocol of [`crate::data::integrity`] ([`store`]); a
//! read chooses the object's record entries, reads ahead and checks every
//! block before it is output ([`open_verified`], then
//! [`Verified::copy_to`]). Commands only connect standard input and output
//! and local files to these.
//!
//! `store.rs` runs a write; `read.rs` opens and checks a read. Both take
//! their steps over "lanes", independent connections to one storage: with
//! one, the steps run one after another; with more, a small object's steps
//! that do not depend on each other run at once, and what can follow the
//! reply is returned as a [`Deferred`].

mod read;
mod store;

pub use read::{
    open_recorded, open_recorded_with_lanes, open_verified, restore_with_lanes, Opening, Part,
    Recorded, Verified,
};
pub use store::{store, store_with_lanes, Stored, WriteInfo};

use crate::error::{Error, Result};
use crate::process::signals;
use crate::storage::Storage;

/// The first of `lanes`: the storage itself.
fn first_lane<'a>(lanes: &[&'a dyn Storage]) -> Result<&'a dyn Storage> {
    lanes
        .first()
        .copied()
        .ok_or_else(|| Error::invalid("no connection to the storage was given"))
}

/// Runs `step` on its own thread of `scope`, unless a signal arrived (each
/// concurrent step of a request starts here).
fn spawn_step<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    step: impl FnOnce() -> Result<T> + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, Result<T>> {
    spawn_in_command(scope, move || {
        signals::check()?;
        step()
    })
}

/// Runs `step` on its own thread of `scope`, as part of the calling command
/// (a broker request's): its signals, cleanups and pause points.
fn spawn_in_command<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    step: impl FnOnce() -> Result<T> + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, Result<T>> {
    let command = crate::process::scope::Scope::current();
    scope.spawn(move || {
        let _in = command.enter();
        step()
    })
}

/// The result of a step started with [`spawn_step`] or [`spawn_in_command`].
fn join_step<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle.join().unwrap_or_else(|_| {
        Err(Error::internal(
            "a step of the request stopped unexpectedly",
        ))
    })
}

/// Steps of a request that can follow its reply: a write's record renamed
/// into place after its commit, a read's files closed after its last byte.
/// [`Deferred::finish`] runs them; so does dropping it.
#[must_use = "dropping it runs the deferred steps at once"]
pub struct Deferred<'a> {
    steps: Vec<Box<dyn FnOnce() + Send + 'a>>,
}

impl<'a> Deferred<'a> {
    fn with(step: impl FnOnce() + Send + 'a) -> Self {
        Deferred {
            steps: vec![Box::new(step)],
        }
    }

    /// Runs the deferred steps.
    pub fn finish(self) {}

    fn run(&mut self) {
        for step in self.steps.drain(..) {
            step();
        }
    }
}

impl Drop for Deferred<'_> {
    fn drop(&mut self) {
        self.run();
    }
}
