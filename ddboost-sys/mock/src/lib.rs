//! A mock `libDDBoost`: emulates Dell Data Domain systems on a local directory, with
//! client-side deduplication (FastCDC content-defined chunking, SHA-256 fingerprints,
//! LZ4-compressed segments in append-only containers), so that `gpbackup_ddboost_plugin`
//! can be built, tested and benchmarked without an appliance.
//!
//! The shared library (`libddboost_mock.so`) exports every function of
//! `ddboost-sys/include/ddp_api.h`. Systems live under `$DDBOOST_MOCK_ROOT/<hostname>/`
//! (see [`store`]) and are created with the `ddboost-mock` command (see the README).
//! Fault injection, latency, bandwidth caps and tracing: see [`faults`].
//!
//! Modules of the C interface, from the boundary inwards:
//!
//! * `exports`: the `extern "C"` functions, marshalling only;
//! * `abi`: wrappers of pointer arguments, the only code that touches caller memory;
//! * `entry`: what every call does around its work (latency, no panic into C, trace,
//!   fault injection);
//! * `conn`: instances and connections;
//! * `handles`: the descriptor tables (instances, connections, files, directories);
//! * `session` (init, instances, connections, storage units, statfs, stream counts),
//!   `files`, `folders`, `filecopy`: the behaviour of the calls;
//! * `paths` (names in a system's namespace), `pacing` (bandwidth caps), `log` (an
//!   instance's log callback).
//!
//! The store, below them: [`store`] (a system's containers, index logs and lookups),
//! [`stream`] (write streams and reads through recipes), [`recipe`], [`segment`]
//! (fingerprints, locations, LZ4 coding), [`records`] (index records), [`index`] (the
//! shared index that logs of finished writers are compacted into), [`totals`], and
//! [`fill`] (bulk fill for large test systems).

#![allow(non_camel_case_types)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod abi;
pub mod admin;
mod conn;
mod entry;
pub mod error;
mod exports;
pub mod faults;
pub mod ffi;
mod filecopy;
mod files;
pub mod fill;
mod folders;
mod handles;
pub mod index;
mod log;
mod pacing;
mod paths;
mod pool;
pub mod recipe;
pub mod records;
pub mod segment;
mod session;
pub mod store;
pub mod stream;
pub mod streams;
pub mod totals;
mod util;

pub use exports::*;
pub use files::MAX_IO;
