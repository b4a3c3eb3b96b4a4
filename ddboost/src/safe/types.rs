//! Plain data returned by the safe layer.

/// How [`crate::Connection::open_file`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// `DDP_O_READ`.
    Read,
    /// `DDP_O_RDWR | DDP_O_CREAT`: create the file if missing, open it for
    /// reading and writing. Whether an existing file is truncated is not
    /// documented: write to a fresh name and rename it into place.
    CreateReadWrite,
}

/// File attributes from `ddp_stat` / `ddp_fstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `st_size`, in bytes.
    pub size: u64,
    /// Whether `st_mode` says directory.
    pub is_dir: bool,
    /// `st_mode`: POSIX file type and permission bits.
    pub mode: u32,
}

/// Space figures from `ddp_statfs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// `f_blocks`: total blocks.
    pub blocks: u64,
    /// `f_bfree`: free blocks.
    pub free_blocks: u64,
}

/// Stream limits and use from `ddp_get_stream_counts`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounts {
    /// Soft and hard limits per stream type.
    pub limits: StreamLimits,
    /// Streams in use.
    pub inuse: StreamsInUse,
}

/// `ddp_stream_counts_t.limits`.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamLimits {
    pub backup_write_streams: i64,
    pub backup_read_streams: i64,
    pub repl_source_streams: i64,
    pub repl_dest_streams: i64,
    pub nearline_read_streams: i64,
    pub nearline_write_streams: i64,
    pub total_write_streams_hard_limit: i64,
    pub total_streams_hard_limit: i64,
    pub mixed_write_streams: i64,
    pub mixed_read_streams: i64,
    pub mixed_repl_src_streams: i64,
    pub mixed_repl_dst_streams: i64,
    pub mixed_repl_dst_with_write_streams: i64,
    pub mixed_total_streams: i64,
}

/// `ddp_stream_counts_t.inuse`.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamsInUse {
    pub read_streams: i64,
    pub read_write_streams: i64,
    pub replication_streams: i64,
    pub filecopy_streams: i64,
}

/// Severity of an SDK log message (`DDP_SEV_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// `DDP_SEV_NONE`.
    None,
    /// `DDP_SEV_ERROR`.
    Error,
    /// `DDP_SEV_WARN`.
    Warn,
    /// `DDP_SEV_INFO`.
    Info,
    /// `DDP_SEV_DEBUG`.
    Debug,
    /// A value the header in use does not name.
    Other(i64),
}
