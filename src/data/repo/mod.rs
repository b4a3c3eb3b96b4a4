//! The repository: stored objects as the commands see them. A write runs
//! the whole commit protocol of [`crate::data::integrity`] ([`store`]); a
//! read chooses the object's record entries, reads ahead and checks every
//! block before it is output ([`open_verified`], then
//! [`Verified::copy_to`]). Commands only connect standard input and output
//! and local files to these.
//!
//! `store.rs` runs a write; `read.rs` opens and checks a read. Both take
//! their steps over "lanes", independent connections to one storage, which
//! `lanes.rs` runs: with one, the steps run one after another; with more, a
//! small object's steps that do not depend on each other run at once. What
//! can follow the reply is returned as a [`Deferred`].

mod lanes;
mod read;
mod store;

pub use read::{
    open_recorded, open_recorded_with_lanes, open_verified, restore_with_lanes, Opening, Part,
    Recorded, Verified,
};
pub use store::{store, store_with_lanes, Stored, WriteInfo};

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
