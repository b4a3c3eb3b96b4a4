//! The types and constants of `ddboost-sys/include/ddp_api.h`.
//!
//! They are not declared here: they are ddboost-sys's generated bindings
//! (`ddboost_sys::raw`, from the same header), so a header change reaches the mock
//! through `scripts/regen-ddboost-bindings.sh` like everything else. Only the POSIX mode
//! bits the mock reports in `st_mode`, which the header does not declare, are defined here.
//!
//! `crate::exports` checks at compile time that the mock exports every function of the
//! bindings with the header's exact signature.

pub use ddboost_sys::raw::*;

/// S_IFDIR / S_IFREG as reported in `ddp_stat_t::st_mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
