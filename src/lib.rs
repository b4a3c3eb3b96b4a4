//! gpbackup_ddboost_plugin: a storage plugin for gpbackup and gprestore.
//!
//! The modules form layers. A module imports only from layers below its
//! own (the test `tests/layers.rs` checks every `crate::` path outside unit
//! tests against this list, top to bottom):
//!
//! 1. `app`: the program (argv to exit code and the one stderr line);
//! 2. `broker`: the per-host connection broker (its process, its clients,
//!    its connection pool) and its start and stop around the hooks;
//! 3. `commands`: what each command does, against the `storage::Storage` trait;
//! 4. `backups`, `observe`: the backups as gpbackup describes them (its config
//!    and TOCs); where the time went (the hosts' summaries, metrics files);
//! 5. `backends`: the backend registry and the plugin config assembled from it;
//! 6. `data`: the repository (`data::repo`: a whole write through its commit
//!    point, verified reads), moving bytes with bounded memory, checksum records;
//! 7. `storage`: the `Storage` trait and the backends (`local`, `ddboost`);
//! 8. `crypto`: encrypted passwords (OpenPGP, the `.encrypt` key file);
//! 9. `config`: the config file's options, typed option access, secrets;
//! 10. `protocol`: the command line, object keys, offsets files;
//! 11. `process`: the log, signals, temporary names, test pause points;
//! 12. `path`: storage paths (`StoragePath`), checked once where they are built;
//! 13. `about`, `error`: the plugin's name and versions; the error type.

#![forbid(unsafe_code)]

pub mod about;
pub mod app;
pub mod backends;
pub mod backups;
pub mod broker;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod data;
pub mod error;
pub mod observe;
pub mod path;
pub mod process;
pub mod protocol;
pub mod storage;
