//! The safe layer: loading the library, RAII handles with one method per SDK
//! call, and errors that name return codes.
//!
//! This module contains no `unsafe`; every SDK call goes through the crate's
//! adapter module.
//!
//! # Threads
//!
//! Whether the SDK is thread-safe is not documented publicly. Handles are
//! therefore `Send` (they can move to another thread, e.g. inside a `Mutex`)
//! but not `Sync`, and every SDK call made through the handles of one
//! [`Instance`] holds that instance's call lock, so the SDK never sees two
//! concurrent calls on one instance.

#![forbid(unsafe_code)]

mod error;
mod handles;
mod library;
pub mod log;
mod observe;
pub(crate) mod types;

pub use ddboost_sys::{BindingsOrigin, BINDINGS_ORIGIN};
pub use error::{code_by_name, code_name, DdErr, Error, Result, NOT_FOUND_CODES, TRANSIENT_CODES};
pub use handles::{
    filecopy, Connection, Dir, File, Instance, DEFAULT_POOL_SIZE, FILECOPY_EXTENT, MAX_IO_SIZE,
};
pub use library::{Attempt, Library, LoadError, LIBRARY_FILE_NAME};
pub use log::{set_log_sink, LogSink};
pub use observe::{set_call_observer, CallObserver};
pub use types::{OpenMode, Severity, Stat, StatFs, StreamCounts, StreamLimits, StreamsInUse};
