//! The backups on the storage as gpbackup describes them: its files of each
//! backup (`files`: config, TOCs, segment TOCs, names), the objects a
//! restore of it opens, derived from them (`manifest`), and finding the backups below `directory`
//! (`catalog`). Both read through the `Storage` trait only and write nothing.

pub mod catalog;
pub mod files;
pub mod manifest;
