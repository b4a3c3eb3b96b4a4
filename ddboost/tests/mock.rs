//! The safe layer against the mock libDDBoost (`ddboost-sys/mock`); see
//! `support/mod.rs` for how the mock is found or built.

mod support;

use std::sync::Mutex;

use ddboost::{
    filecopy, set_log_sink, Connection, Instance, Library, OpenMode, Severity, MAX_IO_SIZE,
};
use support::{pattern, read_file, write_file, Mock, PASSWORD, SU, USER};

static LOG: Mutex<Vec<(Severity, String)>> = Mutex::new(Vec::new());

fn log_sink(severity: Severity, message: &str) {
    LOG.lock().unwrap().push((severity, message.to_owned()));
}

/// The mock with its default configuration, its SDK log going to [`LOG`].
fn mock() -> &'static Mock {
    let m = support::mock_with(&[]);
    let _ = set_log_sink(log_sink);
    m
}

#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    send::<Library>();
    send::<Instance>();
    send::<Connection>();
    send::<ddboost::File>();
    send::<ddboost::Dir>();
}

#[test]
fn connect_and_mkdir_reports_exist() {
    let m = mock();
    let (_inst, conn) = m.system("mkdir-host");
    assert_eq!(conn.host(), "mkdir-host");
    conn.mkdir(SU, "backups", 0o755).expect("mkdir");
    let err = conn.mkdir(SU, "/backups", 0o755).unwrap_err();
    assert!(err.is_exist(), "{err}");
    assert_eq!(err.name, Some("DD_ERR_EXIST"));
    assert_eq!(
        err.to_string(),
        format!("ddp_mkdir /{SU}/backups: DD_ERR_EXIST ({})", err.code)
    );
    let st = conn.stat(SU, "backups").expect("stat");
    assert!(st.is_dir);
}

#[test]
fn write_three_mib_and_read_back_at_offsets() {
    let m = mock();
    let (_inst, conn) = m.system("io-host");
    let data = pattern(3 * MAX_IO_SIZE, 1);
    let f = conn
        .open_file(SU, "big.bin", OpenMode::CreateReadWrite, 0o600)
        .expect("open");
    // Two writes, the first larger than one SDK call allows.
    let first = MAX_IO_SIZE + MAX_IO_SIZE / 2 + 3;
    assert_eq!(f.write_at(&data[..first], 0).unwrap(), first);
    assert_eq!(
        f.write_at(&data[first..], first as u64).unwrap(),
        data.len() - first
    );
    f.close().expect("close finalises the file");

    let st = conn.stat(SU, "big.bin").expect("stat");
    assert_eq!(st.size, data.len() as u64);
    assert!(!st.is_dir);

    let f = conn
        .open_file(SU, "big.bin", OpenMode::Read, 0)
        .expect("open for read");
    assert_eq!(f.fstat().unwrap().size, data.len() as u64);
    // Whole file through a larger buffer: stops at the end.
    let mut all = vec![0u8; 4 * MAX_IO_SIZE];
    let n = f.read_at(&mut all, 0).expect("read all");
    assert_eq!(n, data.len());
    assert!(all[..n] == data[..], "content differs");
    // Reads at offsets, across the 1 MiB boundaries.
    for &(off, len) in &[
        (0usize, 10usize),
        (MAX_IO_SIZE - 5, 10),
        (MAX_IO_SIZE + 12_345, 2 * MAX_IO_SIZE - 20_000),
    ] {
        let mut buf = vec![0u8; len];
        assert_eq!(f.read_at(&mut buf, off as u64).unwrap(), len);
        assert!(buf[..] == data[off..off + len], "content differs at {off}");
    }
    // A read running past the end is short; at the end it is empty.
    let mut buf = vec![0u8; 100];
    assert_eq!(f.read_at(&mut buf, data.len() as u64 - 40).unwrap(), 40);
    assert_eq!(f.read_at(&mut buf, data.len() as u64).unwrap(), 0);
    f.close().unwrap();
}

#[test]
fn readdir_lists_entries_without_dot_entries() {
    let m = mock();
    let (_inst, conn) = m.system("dir-host");
    conn.mkdir(SU, "d", 0o755).unwrap();
    write_file(&conn, "d/a", b"a");
    write_file(&conn, "d/b", b"bb");
    conn.mkdir(SU, "d/c", 0o755).unwrap();
    let mut names: Vec<String> = conn
        .open_dir(SU, "d")
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(conn.open_dir(SU, "d/c").unwrap().count(), 0);
    let err = conn.open_dir(SU, "missing").unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("ddp_open_dir /{SU}/missing: ")),
        "{err}"
    );
}

#[test]
fn rename_moves_and_replaces() {
    let m = mock();
    let (_inst, conn) = m.system("rename-host");
    write_file(&conn, "tmp.1", b"first");
    write_file(&conn, "final", b"old");
    conn.rename(SU, "tmp.1", "final").expect("rename");
    assert_eq!(read_file(&conn, "final"), b"first");
    let err = conn.stat(SU, "tmp.1").unwrap_err();
    assert_eq!(err.op, "ddp_stat");
    assert_eq!(err.path, format!("/{SU}/tmp.1"));
    assert!(err.name.is_some(), "{err}");
}

#[test]
fn unlink_and_rmdir_errors() {
    let m = mock();
    let (_inst, conn) = m.system("rm-host");
    conn.mkdir(SU, "d", 0o755).unwrap();
    write_file(&conn, "d/f", b"x");
    let err = conn.rmdir(SU, "d").unwrap_err();
    assert!(err.is_not_empty(), "{err}");
    let err = conn.unlink(SU, "d").unwrap_err();
    assert!(err.is_file_is_dir(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("ddp_unlink /{SU}/d: DD_ERR_FILE_IS_DIR ({})", err.code)
    );
    conn.unlink(SU, "d/f").expect("unlink");
    let err = conn.unlink(SU, "d/f").unwrap_err();
    assert!(!err.is_local() && !err.is_file_is_dir(), "{err}");
    conn.rmdir(SU, "d").expect("rmdir");
    assert!(conn.stat(SU, "d").is_err());
}

#[test]
fn stat_statfs_and_stream_counts() {
    let m = mock();
    let (_inst, conn) = m.system("stat-host");
    write_file(&conn, "f", &pattern(1000, 2));
    let st = conn.stat(SU, "f").unwrap();
    assert_eq!(st.size, 1000);
    assert!(!st.is_dir);
    let fs = conn.statfs().expect("statfs");
    assert!(fs.free_blocks <= fs.blocks, "{fs:?}");
    let _open = conn.open_file(SU, "f", OpenMode::Read, 0).unwrap();
    let counts = conn.stream_counts().expect("stream counts");
    assert!(counts.inuse.read_streams >= 1, "{counts:?}");
}

#[test]
fn filecopy_between_two_systems() {
    let m = mock();
    m.create_system("copy-src").unwrap();
    m.create_system("copy-dst").unwrap();
    let inst = m.instance();
    let src_conn = Connection::connect(&inst, "copy-src", USER, PASSWORD).unwrap();
    let dst_conn = Connection::connect(&inst, "copy-dst", USER, PASSWORD).unwrap();
    let data = pattern(2 * MAX_IO_SIZE + 777, 3);
    write_file(&src_conn, "obj", &data);

    let src = src_conn.open_file(SU, "obj", OpenMode::Read, 0).unwrap();
    let dst = dst_conn
        .open_file(SU, "obj.copy", OpenMode::CreateReadWrite, 0o600)
        .unwrap();
    let mut seen = Vec::new();
    let copied = filecopy(&src_conn, &src, &dst, |done, total| {
        seen.push((done, total))
    })
    .expect("filecopy");
    assert_eq!(copied, data.len() as u64);
    assert!(!seen.is_empty());
    assert_eq!(
        seen.last().copied(),
        Some((data.len() as u64, data.len() as u64))
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "progress goes forward"
    );
    dst.close().expect("close copy");
    drop(src);
    assert_eq!(read_file(&dst_conn, "obj.copy"), data);
}

#[test]
fn filecopy_needs_one_instance() {
    let m = mock();
    let (_i1, c1) = m.system("copy-inst-a");
    let (_i2, c2) = m.system("copy-inst-b");
    write_file(&c1, "x", b"data");
    let src = c1.open_file(SU, "x", OpenMode::Read, 0).unwrap();
    let dst = c2
        .open_file(SU, "x", OpenMode::CreateReadWrite, 0o600)
        .unwrap();
    let err = filecopy(&c1, &src, &dst, |_, _| {}).unwrap_err();
    assert!(err.is_local(), "{err}");
}

#[test]
fn wrong_password_names_host_not_password() {
    let m = mock();
    m.create_system("auth-host").unwrap();
    let inst = m.instance();
    let wrong = "not-the-Pa55word";
    let err = Connection::connect(&inst, "auth-host", USER, wrong).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.op, "ddp_connect_with_user_pwd");
    assert_eq!(err.path, "auth-host");
    assert!(
        text.starts_with("ddp_connect_with_user_pwd auth-host: DD_ERR_"),
        "{text}"
    );
    assert_eq!(err.name, Some("DD_ERR_AUTH"), "{text}");
    for shown in [text, format!("{err:?}")] {
        assert!(!shown.contains(wrong), "{shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
}

#[test]
fn unknown_host_fails_to_connect() {
    let m = mock();
    let inst = m.instance();
    let err = Connection::connect(&inst, "no-such-host", USER, PASSWORD).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ddp_connect_with_user_pwd no-such-host: "),
        "{err}"
    );
}

#[test]
fn sdk_log_messages_reach_the_sink() {
    let m = mock();
    let (_inst, _conn) = m.system("log-host");
    let log = LOG.lock().unwrap();
    assert!(
        log.iter().any(|(_, msg)| msg.contains("log-host")),
        "no log message mentions the host: {log:?}"
    );
}

#[test]
fn names_with_nul_bytes_are_rejected_before_the_sdk() {
    let m = mock();
    let (_inst, conn) = m.system("nul-host");
    let err = conn.mkdir(SU, "a\0b", 0o755).unwrap_err();
    assert!(err.is_local(), "{err}");
}

#[test]
fn only_a_missing_object_is_not_found() {
    let m = mock();
    let (_inst, conn) = m.system("notfound-host");
    write_file(&conn, "f", b"x");
    for err in [
        conn.stat(SU, "missing").unwrap_err(),
        conn.unlink(SU, "missing").unwrap_err(),
        conn.rmdir(SU, "dir/missing").unwrap_err(),
        conn.open_file(SU, "missing", OpenMode::Read, 0)
            .unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err}");
        assert!(!err.is_transient(), "{err}");
    }
    // A file where a folder is expected: DD_ERR_NOTDIR, which rmdir and
    // open_dir also return for a file that exists, so it is not "absent".
    for err in [
        conn.stat(SU, "f/x").unwrap_err(),
        conn.rmdir(SU, "f").unwrap_err(),
        conn.open_dir(SU, "f").unwrap_err(),
    ] {
        assert_eq!(err.name, Some("DD_ERR_NOTDIR"), "{err}");
        assert!(!err.is_not_found(), "{err}");
    }
    // A local error says nothing about existence.
    assert!(!conn.stat(SU, "a\0b").unwrap_err().is_not_found());
}

#[test]
fn login_errors_are_not_transient_but_unreachable_hosts_are() {
    let m = mock();
    m.create_system("classify-host").unwrap();
    let inst = m.instance();
    let err = Connection::connect(&inst, "classify-host", USER, "wrong").unwrap_err();
    assert!(err.is_auth() && !err.is_transient(), "{err}");
    let err = Connection::connect(&inst, "classify-nowhere", USER, PASSWORD).unwrap_err();
    assert!(err.is_transient() && !err.is_auth(), "{err}");
}

#[test]
fn reconnect_gives_a_new_connection_to_the_same_host() {
    let m = mock();
    let (inst, conn) = m.system("reconnect-host");
    write_file(&conn, "f", b"data");
    // The connection alone is enough: the Instance value may be gone.
    drop(inst);
    let again = conn.reconnect(USER, PASSWORD).expect("reconnect");
    assert_eq!(again.host(), "reconnect-host");
    drop(conn);
    assert_eq!(read_file(&again, "f"), b"data");
    again.unlink(SU, "f").expect("unlink on the new connection");
    let err = again.reconnect(USER, "wrong-Pa55").unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-Pa55"));
}
