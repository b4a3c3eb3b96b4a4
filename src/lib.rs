//! gpbackup_ddboost_plugin: a storage plugin for gpbackup and gprestore.
//!
//! Where things live:
//! * `app`: the program (argv to exit code);
//! * `protocol`: the command line, object keys, offsets files;
//! * `config`: the plugin config file, options and secrets;
//! * `commands`: what each command does, against the `storage::Storage` trait;
//! * `storage`: the trait and the backends (`local`, `ddboost`);
//! * `data`: moving bytes with bounded memory, checksum records;
//! * `process`: the log, signals, test pause points;
//! * `about`: the plugin's name and versions; `error`: the error type.

#![forbid(unsafe_code)]

pub mod about;
pub mod app;
pub mod backups;
pub mod commands;
pub mod config;
pub mod data;
pub mod error;
pub mod process;
pub mod protocol;
pub mod storage;
