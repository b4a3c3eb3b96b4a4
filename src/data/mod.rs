//! The data path: moving bytes with bounded memory, checking them, and the
//! repository (the commit protocol and verified reads, `repo`).

pub mod integrity;
pub mod repo;
pub mod stream;
