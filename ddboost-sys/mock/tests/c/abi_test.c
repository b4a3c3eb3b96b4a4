/* Exercises the mock through the project's ddp_api.h, as a C caller would. */
#include "ddp_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int failures = 0;
static int log_lines = 0;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

static void log_cb(const void *session, const ddp_char_t *msg, ddp_severity_t sev) {
    (void)session;
    (void)sev;
    if (msg && msg[0]) log_lines++;
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "abi-host";
    ddp_inst_desc_t inst = DDP_INVALID_DESCRIPTOR;
    ddp_conn_desc_t conn = DDP_INVALID_DESCRIPTOR;
    ddp_client_info_t info = {1, "abi test"};
    CHECK(ddp_init("abi_test") == DD_ERR_NONE);
    CHECK(ddp_instance_create(32 * 1024 * 2048, &info, &inst) == DD_ERR_NONE);
    CHECK(inst != DDP_INVALID_DESCRIPTOR);
    ddp_log_init(inst, NULL, log_cb);
    CHECK(ddp_connect_with_user_pwd(inst, host, NULL, "ddboost", "wrong", &conn) == DD_ERR_AUTH);
    if (ddp_connect_with_user_pwd(inst, host, NULL, "ddboost", "secret", &conn) != DD_ERR_NONE) {
        fprintf(stderr, "connect failed\n");
        return 2;
    }
    CHECK(ddp_create_storage_unit(conn, "GPDB") == DD_ERR_NONE);

    ddp_path_t dir = {0};
    dir.su_name = "GPDB";
    dir.path_name = "/backups";
    CHECK(ddp_mkdir(conn, &dir, 0755) == DD_ERR_NONE);
    CHECK(ddp_mkdir(conn, &dir, 0755) == DD_ERR_EXIST);

    ddp_path_t path = {0};
    path.su_name = "GPDB";
    path.path_name = "/backups/file1";
    ddp_file_desc_t fd = DDP_INVALID_DESCRIPTOR;
    CHECK(ddp_open_file(conn, &path, DDP_O_CREAT | DDP_O_RDWR, 0600, &fd) == DD_ERR_NONE);
    size_t total = 3 * 1048576 + 12345;
    char *buf = malloc(total);
    for (size_t i = 0; i < total; i++) buf[i] = (char)("0123456789,abcdef\n"[(i * 31 + i / 97) % 18]);
    ddp_uint64_t off = 0, n = 0;
    while (off < total) {
        ddp_uint64_t len = total - off > 1048576 ? 1048576 : total - off;
        int rc = ddp_write(fd, buf + off, len, off, &n);
        CHECK(rc == DD_ERR_NONE);
        CHECK(n == len);
        if (rc != DD_ERR_NONE) break;
        off += n;
    }
    CHECK(ddp_write(fd, buf, 1048577, off, &n) == DD_ERR_INVALID);
    CHECK(ddp_write(fd, buf, 0, off, &n) == DD_ERR_NONE);
    ddp_stat_t st;
    memset(&st, 0, sizeof st);
    CHECK(ddp_fstat(fd, &st) == DD_ERR_NONE && st.st_size == total);
    CHECK(ddp_close_file(fd) == DD_ERR_NONE);
    CHECK(ddp_close_file(fd) == DD_ERR_BADF);

    memset(&st, 0, sizeof st);
    CHECK(ddp_stat(conn, &path, &st) == DD_ERR_NONE);
    CHECK(st.st_size == total);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);

    CHECK(ddp_open_file(conn, &path, DDP_O_READ, 0, &fd) == DD_ERR_NONE);
    char *back = malloc(total);
    off = 0;
    for (;;) {
        int rc = ddp_read(fd, back + off, 524288, off, &n);
        CHECK(rc == DD_ERR_NONE);
        if (rc != DD_ERR_NONE || n == 0) break;
        off += n;
    }
    CHECK(off == total);
    CHECK(memcmp(buf, back, total) == 0);
    CHECK(ddp_close_file(fd) == DD_ERR_NONE);

    ddp_path_t dst = {0};
    dst.su_name = "GPDB";
    dst.path_name = "backups/file2";
    CHECK(ddp_rename(conn, &path, &dst) == DD_ERR_NONE);
    CHECK(ddp_stat(conn, &path, &st) == DD_ERR_NOT_FOUND);

    ddp_dir_desc_t dd = DDP_INVALID_DESCRIPTOR;
    CHECK(ddp_open_dir(conn, &dir, &dd) == DD_ERR_NONE);
    ddp_dirent_t ent;
    int count = 0, saw_file = 0;
    for (;;) {
        memset(&ent, 0, sizeof ent);
        int rc = ddp_readdir(dd, &ent);
        if (rc == DD_ERR_EMPTY) break;
        CHECK(rc == DD_OK);
        if (rc != DD_OK) break;
        if (strcmp(ent.d_name, "file2") == 0) saw_file = 1;
        count++;
    }
    CHECK(count == 3 && saw_file);
    ddp_close_dir(dd);

    ddp_statvfs_t vfs;
    CHECK(ddp_statfs(conn, &vfs) == DD_ERR_NONE && vfs.f_blocks > 0);
    ddp_stream_counts_t sc;
    memset(&sc, 0, sizeof sc);
    CHECK(ddp_get_stream_counts(conn, &sc) == DD_ERR_NONE);
    CHECK(sc.limits.backup_write_streams > 0);

    /* same-system file copy */
    ddp_file_desc_t sfd, dfd;
    ddp_path_t cpy = {0};
    cpy.su_name = "GPDB";
    cpy.path_name = "backups/copy";
    CHECK(ddp_open_file(conn, &dst, DDP_O_READ, 0, &sfd) == DD_ERR_NONE);
    CHECK(ddp_open_file(conn, &cpy, DDP_O_CREAT | DDP_O_RDWR, 0644, &dfd) == DD_ERR_NONE);
    CHECK(ddp_filecopy_start(sfd, dfd, NULL) == DD_ERR_NONE);
    off = 0;
    while (off < total) {
        ddp_uint64_t done = 0;
        int rc = ddp_filecopy_status(sfd, dfd, off, 262144, &done);
        CHECK(rc == DD_OK);
        if (rc != DD_OK || done == 0) break;
        off += done;
    }
    CHECK(off == total);
    CHECK(ddp_filecopy_stop(conn, dfd) == DD_ERR_NONE);
    CHECK(ddp_close_file(dfd) == DD_ERR_NONE);
    CHECK(ddp_close_file(sfd) == DD_ERR_NONE);
    CHECK(ddp_stat(conn, &cpy, &st) == DD_ERR_NONE && st.st_size == total);

    CHECK(ddp_unlink(conn, &dir) == DD_ERR_FILE_IS_DIR);
    CHECK(ddp_rmdir(conn, &dir) == DD_ERR_NOTEMPTY);
    CHECK(ddp_unlink(conn, &dst) == DD_ERR_NONE);
    CHECK(ddp_unlink(conn, &cpy) == DD_ERR_NONE);
    CHECK(ddp_rmdir(conn, &dir) == DD_ERR_NONE);

    CHECK(ddp_disconnect(conn) == DD_ERR_NONE);
    CHECK(ddp_instance_destroy(inst) == DD_ERR_NONE);
    ddp_shutdown();
    CHECK(log_lines >= 3);
    /* after shutdown, handles are gone */
    CHECK(ddp_disconnect(conn) != DD_ERR_NONE);
    free(buf);
    free(back);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("abi ok\n");
    return 0;
}
