//! The plugin protocol as gpbackup, gprestore, gpbackup_helper and
//! gpbackup_manager speak it: the command line, object keys, offsets files.

pub mod args;
pub mod keys;
pub mod offsets;
