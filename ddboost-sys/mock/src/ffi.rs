//! `#[repr(C)]` mirrors of the types and constants of `ddboost-sys/include/ddp_api.h`.
//!
//! The header is the ABI contract: every layout here matches it field for field.

use std::os::raw::{c_char, c_void};

pub type ddp_inst_desc_t = i32;
pub type ddp_conn_desc_t = i32;
pub type ddp_file_desc_t = i32;
pub type ddp_dir_desc_t = i32;
pub type ddp_uint64_t = u64;
pub type ddp_char_t = c_char;
pub type dd_errno_t = i32;

pub const DDP_INVALID_DESCRIPTOR: i32 = -1;

pub const DD_ERR_NONE: dd_errno_t = 0;
pub const DD_OK: dd_errno_t = 0;
pub const DD_ERR_EMPTY: dd_errno_t = 5001;
pub const DD_ERR_EXIST: dd_errno_t = 5002;
pub const DD_ERR_NOTEMPTY: dd_errno_t = 5003;
pub const DD_ERR_FILE_IS_DIR: dd_errno_t = 5004;
pub const DD_ERR_NOT_FOUND: dd_errno_t = 5010;
pub const DD_ERR_PERM: dd_errno_t = 5011;
pub const DD_ERR_AUTH: dd_errno_t = 5012;
pub const DD_ERR_CONNECT: dd_errno_t = 5013;
pub const DD_ERR_CONN_LOST: dd_errno_t = 5014;
pub const DD_ERR_NOSPACE: dd_errno_t = 5015;
pub const DD_ERR_INVALID: dd_errno_t = 5016;
pub const DD_ERR_BADF: dd_errno_t = 5017;
pub const DD_ERR_NOTDIR: dd_errno_t = 5018;
pub const DD_ERR_STREAM_LIMIT: dd_errno_t = 5019;
pub const DD_ERR_IO: dd_errno_t = 5020;
pub const DD_ERR_NOT_INIT: dd_errno_t = 5021;

pub const DDP_O_READ: i32 = 0x1;
pub const DDP_O_RDWR: i32 = 0x2;
pub const DDP_O_CREAT: i32 = 0x4;

/// `ddp_severity_t`, a C enum (int-sized).
pub type ddp_severity_t = i32;
pub const DDP_SEV_NONE: ddp_severity_t = 0;
pub const DDP_SEV_ERROR: ddp_severity_t = 1;
pub const DDP_SEV_WARN: ddp_severity_t = 2;
pub const DDP_SEV_INFO: ddp_severity_t = 3;
pub const DDP_SEV_DEBUG: ddp_severity_t = 4;

pub type ddp_log_cb_t = Option<
    unsafe extern "C" fn(
        session_ptr: *const c_void,
        log_msg: *const ddp_char_t,
        severity: ddp_severity_t,
    ),
>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ddp_path_t {
    pub su_name: *mut c_char,
    pub path_name: *mut c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ddp_stat_t {
    pub st_size: ddp_uint64_t,
    pub st_mode: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ddp_statvfs_t {
    pub f_blocks: ddp_uint64_t,
    pub f_bfree: ddp_uint64_t,
}

pub const DDP_MAX_NAME_LEN: usize = 256;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ddp_dirent_t {
    pub d_name: [c_char; DDP_MAX_NAME_LEN],
}

pub const DDP_CL_INFO_LEN: usize = 128;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ddp_client_info_t {
    pub cl_type: i32,
    pub cl_info: [c_char; DDP_CL_INFO_LEN],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ddp_stream_limits_t {
    pub backup_write_streams: i32,
    pub backup_read_streams: i32,
    pub repl_source_streams: i32,
    pub repl_dest_streams: i32,
    pub nearline_read_streams: i32,
    pub nearline_write_streams: i32,
    pub total_write_streams_hard_limit: i32,
    pub total_streams_hard_limit: i32,
    pub mixed_write_streams: i32,
    pub mixed_read_streams: i32,
    pub mixed_repl_src_streams: i32,
    pub mixed_repl_dst_streams: i32,
    pub mixed_repl_dst_with_write_streams: i32,
    pub mixed_total_streams: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ddp_stream_inuse_t {
    pub read_streams: i32,
    pub read_write_streams: i32,
    pub replication_streams: i32,
    pub filecopy_streams: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ddp_stream_counts_t {
    pub limits: ddp_stream_limits_t,
    pub inuse: ddp_stream_inuse_t,
}

/// S_IFDIR / S_IFREG as reported in `ddp_stat_t::st_mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
