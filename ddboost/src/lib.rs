//! A safe layer over the DD Boost SDK (`libDDBoost.so`) for Dell Data Domain
//! systems, through the raw bindings of `ddboost-sys` (re-exported as
//! [`ffi`]), which load the library at run time.
//!
//! Layers:
//!
//! * an internal adapter, the only code that calls the raw bindings: it holds
//!   every `unsafe` SDK call and every spot where vendor headers may differ
//!   (descriptor types, buffer pointer types, struct member shapes).
//! * [`safe`] (re-exported here): [`Library`] (finding and loading
//!   `libDDBoost.so`), RAII handles ([`Instance`], [`Connection`], [`File`],
//!   [`Dir`]) with one method per SDK call, and [`Error`], which names return
//!   codes symbolically.
//!
//! Rust code here uses only the header's symbolic names, never the numeric
//! values of `DD_ERR_*`/`DDP_O_*` or struct sizes, so the same source builds
//! against the vendor header.

#![warn(clippy::undocumented_unsafe_blocks)]

pub use ddboost_sys as ffi;

mod adapter;

pub mod safe;

pub use adapter::{struct_buffer_len, STRUCT_BUFFER_FACTOR, STRUCT_BUFFER_MIN_BYTES};
pub use safe::*;
