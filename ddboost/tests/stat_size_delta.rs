//! What a layout check sees when the library and the header disagree about
//! `ddp_stat_t`: with `DDBOOST_MOCK_STAT_SIZE_DELTA=N` the mock reports every
//! regular file's size N bytes off, so a probe object of known size written
//! and stat'ed back shows the mismatch.

mod support;

use support::{pattern, write_file, Mock, SU};

const DELTA: u64 = 24;

fn mock() -> &'static Mock {
    support::mock_with(&[("DDBOOST_MOCK_STAT_SIZE_DELTA", "24")])
}

#[test]
fn stat_and_fstat_report_the_size_off_by_the_delta() {
    let m = mock();
    let (_inst, conn) = m.system("delta-host");
    let probe = pattern(4096, 9);
    write_file(&conn, "probe", &probe);
    let st = conn.stat(SU, "probe").expect("stat");
    assert_eq!(st.size, probe.len() as u64 + DELTA);
    let f = conn
        .open_file(SU, "probe", ddboost::OpenMode::Read, 0)
        .expect("open");
    assert_eq!(f.fstat().expect("fstat").size, probe.len() as u64 + DELTA);
    // The content itself is unchanged: only the reported size is off.
    let mut buf = vec![0u8; probe.len() + 100];
    let n = f.read_at(&mut buf, 0).expect("read");
    assert_eq!(&buf[..n], &probe[..]);

    // Directories are not shifted.
    conn.mkdir(SU, "d", 0o755).expect("mkdir");
    assert_eq!(conn.stat(SU, "d").expect("stat dir").size, 0);
}
