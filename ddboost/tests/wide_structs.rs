//! An SDK whose structures are larger than `include/ddp_api.h` declares them
//! (as the real SDK's very likely are) must not corrupt memory: the mock,
//! with `DDBOOST_MOCK_WIDE_STRUCTS=1`, writes every structure it fills
//! followed by a pattern up to `struct_buffer_len` of its declared size (4
//! times it, at least 4 KiB: for `ddp_stat_t`, about 4 KiB into a 16-byte
//! declaration), and the safe layer must still return exactly the right
//! values, call after call.

mod support;

use ddboost::{struct_buffer_len, OpenMode};
use support::{pattern, read_file, write_file, Mock, SU};

fn mock() -> &'static Mock {
    support::mock_with(&[("DDBOOST_MOCK_WIDE_STRUCTS", "1")])
}

#[test]
fn the_mock_writes_far_past_the_declared_structures() {
    let size = std::mem::size_of::<ddboost::ffi::raw::ddp_stat_t>();
    assert!(struct_buffer_len(size) >= 4096, "the tail is several KiB");
    assert!(struct_buffer_len(size) >= 4 * size);
}

#[test]
fn stat_and_fstat_are_right_with_wide_structures() {
    let m = mock();
    let (_inst, conn) = m.system("wide-stat");
    let data = pattern(123_457, 1);
    write_file(&conn, "f", &data);
    conn.mkdir(SU, "d", 0o755).expect("mkdir");
    for _ in 0..50 {
        let st = conn.stat(SU, "f").expect("stat");
        assert_eq!(st.size, data.len() as u64);
        assert!(!st.is_dir);
        assert_eq!(st.mode & 0o7777, 0o600);
        let d = conn.stat(SU, "d").expect("stat dir");
        assert!(d.is_dir, "{d:?}");
        let f = conn.open_file(SU, "f", OpenMode::Read, 0).expect("open");
        let fst = f.fstat().expect("fstat");
        assert_eq!(fst, st);
        f.close().expect("close");
    }
    // The data around the calls is intact.
    assert_eq!(read_file(&conn, "f"), data);
}

#[test]
fn readdir_statfs_and_stream_counts_are_right_with_wide_structures() {
    let m = mock();
    let (_inst, conn) = m.system("wide-dir");
    conn.mkdir(SU, "dir", 0o755).expect("mkdir");
    let mut names: Vec<String> = (0..40).map(|i| format!("dir/name-{i:03}")).collect();
    names.push(format!("dir/{}", "x".repeat(200)));
    for n in &names {
        write_file(&conn, n, b"x");
    }
    let listed: Vec<String> = conn
        .open_dir(SU, "dir")
        .expect("open_dir")
        .map(|e| e.expect("readdir"))
        .collect();
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| n.trim_start_matches("dir/").to_owned())
        .collect();
    expected.sort();
    assert_eq!(listed, expected);

    let fs = conn.statfs().expect("statfs");
    assert!(fs.blocks > 0 && fs.free_blocks <= fs.blocks, "{fs:?}");

    let _open = conn
        .open_file(SU, "dir/name-000", OpenMode::Read, 0)
        .unwrap();
    let counts = conn.stream_counts().expect("stream counts");
    // The mock's fixed limits, field by field: nothing of the pattern leaks in.
    let l = counts.limits;
    assert_eq!(
        (
            l.backup_write_streams,
            l.backup_read_streams,
            l.repl_source_streams,
            l.total_streams_hard_limit,
            l.mixed_total_streams
        ),
        (90, 50, 60, 140, 140),
        "{counts:?}"
    );
    assert!(counts.inuse.read_streams >= 1, "{counts:?}");
    assert!(counts.inuse.read_streams < 1000, "{counts:?}");
    assert_eq!(counts.inuse.replication_streams, 0, "{counts:?}");
}
