//! The data path: moving bytes with bounded memory, and checking them.

pub mod integrity;
pub mod stream;
