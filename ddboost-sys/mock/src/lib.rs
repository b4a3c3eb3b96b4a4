//! A mock `libDDBoost`: emulates Dell Data Domain systems on a local directory, with
//! client-side deduplication (FastCDC content-defined chunking, SHA-256 fingerprints,
//! LZ4-compressed segments in append-only containers), so that `gpbackup_ddboost_plugin`
//! can be built, tested and benchmarked without an appliance.
//!
//! The shared library (`libddboost_mock.so`) exports every function of
//! `ddboost-sys/include/ddp_api.h`. Systems live under `$DDBOOST_MOCK_ROOT/<hostname>/`
//! (see [`store`]) and are created with the `ddboost-mock` command (see the README).
//! Fault injection, latency, bandwidth caps and tracing: see [`faults`].

#![allow(non_camel_case_types)]

pub mod admin;
pub mod api;
pub mod error;
pub mod faults;
pub mod ffi;
mod pool;
pub mod recipe;
pub mod store;
pub mod stream;
pub mod streams;

pub use api::*;
