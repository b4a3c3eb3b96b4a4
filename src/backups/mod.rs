//! The backups on the storage as gpbackup describes them: its own manifest
//! of each backup (`manifest`), and finding the backups below `directory`
//! (`catalog`). Both read through the `Storage` trait only and write nothing.

pub mod catalog;
pub mod manifest;
