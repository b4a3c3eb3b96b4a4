/*
 * ddp_api.h -- gpbackup_ddboost_plugin's own declaration of the subset of the
 * DD Boost SDK C API that the plugin calls.
 *
 * The vendor header is not redistributable. This file declares only the names
 * whose shape is known from public callers of the SDK. Rust code uses only the symbolic names
 * declared here and never their numeric values, never struct sizes, and
 * touches only the named struct fields, so the same source builds against the
 * vendor header (set DDBOOST_SDK_DIR) and against this one.
 *
 * Numeric values below are this project's choice and are meaningful only to
 * the mock library (ddboost-sys/mock), which is built against this header.
 */
#ifndef GPBACKUP_DDBOOST_PLUGIN_DDP_API_H
#define GPBACKUP_DDBOOST_PLUGIN_DDP_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- scalar types ------------------------------------------------------ */

typedef int32_t ddp_inst_desc_t;
typedef int32_t ddp_conn_desc_t;
typedef int32_t ddp_file_desc_t;
typedef int32_t ddp_dir_desc_t;
typedef uint64_t ddp_uint64_t;
typedef char ddp_char_t;
typedef int32_t dd_errno_t;

#define DDP_INVALID_DESCRIPTOR (-1)

/* ---- return codes ------------------------------------------------------ */
/* Names known from public callers. */
#define DD_ERR_NONE 0
#define DD_OK 0
#define DD_ERR_EMPTY 5001       /* readdir: no more entries */
#define DD_ERR_EXIST 5002       /* mkdir/open: already exists */
#define DD_ERR_NOTEMPTY 5003    /* rmdir: directory not empty */
#define DD_ERR_FILE_IS_DIR 5004 /* unlink: target is a directory */
/* Names of this project's mock. The crate matches them by name, never by
 * value (Error::is_not_found, is_transient...): with a header that lacks one,
 * that check is false and the error stays an error. */
#define DD_ERR_NOT_FOUND 5010
#define DD_ERR_PERM 5011
#define DD_ERR_AUTH 5012
#define DD_ERR_CONNECT 5013
#define DD_ERR_CONN_LOST 5014
#define DD_ERR_NOSPACE 5015
#define DD_ERR_INVALID 5016
#define DD_ERR_BADF 5017
#define DD_ERR_NOTDIR 5018
#define DD_ERR_STREAM_LIMIT 5019
#define DD_ERR_IO 5020
#define DD_ERR_NOT_INIT 5021

/* ---- open flags -------------------------------------------------------- */
#define DDP_O_READ 0x1
#define DDP_O_RDWR 0x2
#define DDP_O_CREAT 0x4

/* ---- logging ----------------------------------------------------------- */
typedef enum ddp_severity {
    DDP_SEV_NONE = 0,
    DDP_SEV_ERROR = 1,
    DDP_SEV_WARN = 2,
    DDP_SEV_INFO = 3,
    DDP_SEV_DEBUG = 4
} ddp_severity_t;

typedef void (*ddp_log_cb_t)(const void *session_ptr, const ddp_char_t *log_msg,
                             ddp_severity_t severity);

/* ---- structures -------------------------------------------------------- */
typedef struct ddp_path {
    char *su_name;   /* storage unit */
    char *path_name; /* path inside the storage unit */
} ddp_path_t;

typedef struct ddp_stat {
    ddp_uint64_t st_size;
    uint32_t st_mode; /* POSIX mode bits, S_IFDIR/S_IFREG and permissions */
} ddp_stat_t;

typedef struct ddp_statvfs {
    ddp_uint64_t f_blocks;
    ddp_uint64_t f_bfree;
} ddp_statvfs_t;

#define DDP_MAX_NAME_LEN 256
typedef struct ddp_dirent {
    char d_name[DDP_MAX_NAME_LEN];
} ddp_dirent_t;

#define DDP_CL_INFO_LEN 128
typedef struct ddp_client_info {
    int32_t cl_type;
    char cl_info[DDP_CL_INFO_LEN];
} ddp_client_info_t;

typedef struct ddp_stream_limits {
    int32_t backup_write_streams;
    int32_t backup_read_streams;
    int32_t repl_source_streams;
    int32_t repl_dest_streams;
    int32_t nearline_read_streams;
    int32_t nearline_write_streams;
    int32_t total_write_streams_hard_limit;
    int32_t total_streams_hard_limit;
    int32_t mixed_write_streams;
    int32_t mixed_read_streams;
    int32_t mixed_repl_src_streams;
    int32_t mixed_repl_dst_streams;
    int32_t mixed_repl_dst_with_write_streams;
    int32_t mixed_total_streams;
} ddp_stream_limits_t;

typedef struct ddp_stream_inuse {
    int32_t read_streams;
    int32_t read_write_streams;
    int32_t replication_streams;
    int32_t filecopy_streams;
} ddp_stream_inuse_t;

typedef struct ddp_stream_counts {
    ddp_stream_limits_t limits;
    ddp_stream_inuse_t inuse;
} ddp_stream_counts_t;

/* ---- functions --------------------------------------------------------- */
dd_errno_t ddp_init(const char *program_name);
void ddp_shutdown(void);

dd_errno_t ddp_instance_create(uint32_t pool_size, ddp_client_info_t *cl_info,
                               ddp_inst_desc_t *out_inst);
dd_errno_t ddp_instance_destroy(ddp_inst_desc_t inst);
void ddp_log_init(ddp_inst_desc_t inst, void *session_ptr, ddp_log_cb_t cb);

dd_errno_t ddp_connect_with_user_pwd(ddp_inst_desc_t inst, const char *hostname,
                                     void *reserved, const char *user,
                                     const char *password, ddp_conn_desc_t *out_conn);
dd_errno_t ddp_disconnect(ddp_conn_desc_t conn);
dd_errno_t ddp_create_storage_unit(ddp_conn_desc_t conn, const char *su_name);

dd_errno_t ddp_open_file(ddp_conn_desc_t conn, ddp_path_t *path, int32_t flags,
                         uint32_t mode, ddp_file_desc_t *out_fd);
dd_errno_t ddp_close_file(ddp_file_desc_t fd);
dd_errno_t ddp_read(ddp_file_desc_t fd, char *buf, ddp_uint64_t count,
                    ddp_uint64_t offset, ddp_uint64_t *out_bytes_read);
dd_errno_t ddp_write(ddp_file_desc_t fd, const char *buf, ddp_uint64_t count,
                     ddp_uint64_t offset, ddp_uint64_t *out_bytes_written);
dd_errno_t ddp_stat(ddp_conn_desc_t conn, ddp_path_t *path, ddp_stat_t *out);
dd_errno_t ddp_fstat(ddp_file_desc_t fd, ddp_stat_t *out);
dd_errno_t ddp_statfs(ddp_conn_desc_t conn, ddp_statvfs_t *out);

dd_errno_t ddp_mkdir(ddp_conn_desc_t conn, ddp_path_t *path, uint32_t mode);
dd_errno_t ddp_rmdir(ddp_conn_desc_t conn, ddp_path_t *path);
dd_errno_t ddp_unlink(ddp_conn_desc_t conn, ddp_path_t *path);
dd_errno_t ddp_rename(ddp_conn_desc_t conn, ddp_path_t *from, ddp_path_t *to);

dd_errno_t ddp_open_dir(ddp_conn_desc_t conn, ddp_path_t *dir, ddp_dir_desc_t *out_dird);
dd_errno_t ddp_readdir(ddp_dir_desc_t dird, ddp_dirent_t *out);
void ddp_close_dir(ddp_dir_desc_t dird);

dd_errno_t ddp_filecopy_start(ddp_file_desc_t src_fd, ddp_file_desc_t dst_fd, void *reserved);
dd_errno_t ddp_filecopy_status(ddp_file_desc_t src_fd, ddp_file_desc_t dst_fd,
                               ddp_uint64_t offset, ddp_uint64_t extent_len,
                               ddp_uint64_t *out_bytes_copied);
dd_errno_t ddp_filecopy_stop(ddp_conn_desc_t src_conn, ddp_file_desc_t dst_fd);

dd_errno_t ddp_get_stream_counts(ddp_conn_desc_t conn, ddp_stream_counts_t *out);

#ifdef __cplusplus
}
#endif

#endif /* GPBACKUP_DDBOOST_PLUGIN_DDP_API_H */
