//! gpbackup_ddboost_plugin: a storage plugin for gpbackup and gprestore.
//!
//! The modules form layers. A module imports only from layers below its
//! own (the test `tests/layers.rs` checks every `crate::` path outside unit
//! tests against this list, top to bottom):
//!
//! 1. `app`: the program (argv to exit code and the one stderr line);
//! 2. `commands`: what each command does, against the `storage::Storage` trait;
//! 3. `backups`: the backups as gpbackup describes them (its config and TOCs);
//! 4. `backends`: the backend registry and the plugin config assembled from it;
//! 5. `data`: the repository (`data::repo`: a whole write through its commit
//!    point, verified reads), moving bytes with bounded memory, checksum records;
//! 6. `storage`: the `Storage` trait and the backends (`local`, `ddboost`);
//! 7. `crypto`: encrypted passwords (OpenPGP, the `.encrypt` key file);
//! 8. `config`: the config file's options, typed option access, secrets;
//! 9. `protocol`: the command line, object keys, offsets files;
//! 10. `process`: the log, signals, temporary names, test pause points;
//! 11. `path`: storage paths (`StoragePath`), checked once where they are built;
//! 12. `about`, `error`: the plugin's name and versions; the error type.

#![forbid(unsafe_code)]

pub mod about;
pub mod app;
pub mod backends;
pub mod backups;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod data;
pub mod error;
pub mod path;
pub mod process;
pub mod protocol;
pub mod storage;
