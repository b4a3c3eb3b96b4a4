//! Deduplication ratios, totals and file copy between systems.

mod support;
use ddboost_mock::ffi::*;
use ddboost_mock::*;
use support::*;

/// About 4 MiB of CSV-like rows (small enough for debug builds).
const ROWS: usize = 45_000;

#[test]
fn repeated_identical_backup_adds_under_one_percent() {
    let dir = system("dd-repeat");
    let c = connect("dd-repeat");
    let data = join(&rows(1, ROWS));
    put_file(c, "empty", &[]);
    put_file(c, "b1", &data);
    let t1 = totals(&dir);
    assert_eq!(t1.logical_bytes_written, data.len() as u64);
    assert!(
        t1.stored_bytes > 0 && t1.stored_bytes < data.len() as u64,
        "compressed: {t1:?}"
    );
    assert!(t1.unique_segment_bytes >= data.len() as u64 * 99 / 100);
    put_file(c, "b2", &data);
    let t2 = totals(&dir);
    assert_eq!(t2.logical_bytes_written, 2 * data.len() as u64);
    let added = t2.stored_bytes - t1.stored_bytes;
    assert!(
        added * 100 < t1.stored_bytes,
        "repeat added {added} of {}",
        t1.stored_bytes
    );
    assert_eq!(t2.files, 3);
    assert_eq!(read_file(c, "b2").unwrap(), data);
    // Dedup spans storage units.
    // SAFETY: valid C string.
    assert_eq!(unsafe { ddp_create_storage_unit(c, c"SU2".as_ptr()) }, 0);
    let dp = DPath::new("SU2", "copy");
    let mut raw = dp.raw();
    let mut fd = -1;
    // SAFETY: valid arguments.
    assert_eq!(
        unsafe { ddp_open_file(c, &mut raw, DDP_O_CREAT | DDP_O_RDWR, 0o600, &mut fd) },
        0
    );
    write_all(fd, &data, 1 << 20).unwrap();
    assert_eq!(close(fd), 0);
    let t3 = totals(&dir);
    assert!((t3.stored_bytes - t2.stored_bytes) * 100 < t1.stored_bytes);
}

#[test]
fn modified_stream_adds_under_twice_the_changed_bytes() {
    let dir = system("dd-modified");
    let c = connect("dd-modified");
    let base = rows(2, ROWS);
    let data = join(&base);
    put_file(c, "full1", &data);
    let t1 = totals(&dir);
    // One row inserted near the start, 5% of rows changed in runs of 150 rows.
    let mut modified = base.clone();
    modified.insert(10, b"999999,inserted row,1.00,2024-01-01,new\n".to_vec());
    let changed_rows = rows(3, ROWS);
    let mut changed_bytes = modified[10].len();
    let run = 150;
    let runs = ROWS * 5 / 100 / run;
    for k in 0..runs {
        let start = 100 + k * (ROWS - 200) / runs;
        for i in start..start + run {
            changed_bytes += changed_rows[i].len();
            modified[i] = changed_rows[i].clone();
        }
    }
    let mdata = join(&modified);
    put_file(c, "full2", &mdata);
    let t2 = totals(&dir);
    let added = t2.stored_bytes - t1.stored_bytes;
    assert!(
        added < 2 * changed_bytes as u64,
        "added {added} stored bytes for {changed_bytes} changed bytes"
    );
    assert!(added > 0);
    assert_eq!(read_file(c, "full2").unwrap(), mdata);
    assert_eq!(read_file(c, "full1").unwrap(), data);
}

#[test]
fn write_block_size_does_not_change_dedup() {
    let dir = system("dd-blocks");
    let c = connect("dd-blocks");
    let data = join(&rows(4, 20_000));
    let fd = create(c, "a");
    write_all(fd, &data, 1 << 20).unwrap();
    assert_eq!(close(fd), 0);
    let t1 = totals(&dir);
    let fd = create(c, "b");
    write_all(fd, &data, 65_537).unwrap();
    assert_eq!(close(fd), 0);
    let t2 = totals(&dir);
    assert_eq!(
        t2.stored_bytes, t1.stored_bytes,
        "same content, other write sizes: nothing new"
    );
    assert_eq!(read_file(c, "b").unwrap(), data);
}

#[test]
fn dedup_across_processes_via_index_logs() {
    // A system written by this process is seen by a freshly opened System (as another process would).
    let dir = system("dd-reload");
    let c = connect("dd-reload");
    let data = join(&rows(5, 10_000));
    put_file(c, "x", &data);
    let sys = ddboost_mock::store::System::open(&dir, "dd-reload").unwrap();
    let f = ddboost_mock::recipe::load(&dir.join("su/GPDB/x"))
        .unwrap()
        .1;
    assert!(!f.is_empty());
    for e in &f {
        assert_eq!(sys.lookup(&e.fp), Some(e.loc));
    }
}

fn filecopy(src_conn: i32, src: &str, dst_conn: i32, dst: &str) {
    let s = open(src_conn, src, DDP_O_READ).unwrap();
    let d = create(dst_conn, dst);
    let size = stat(src_conn, src).unwrap().st_size;
    // SAFETY: stop before start is harmless.
    assert_eq!(unsafe { ddp_filecopy_stop(src_conn, d) }, 0);
    // SAFETY: plain descriptors.
    assert_eq!(unsafe { ddp_filecopy_start(s, d, std::ptr::null_mut()) }, 0);
    let mut counts = ddp_stream_counts_t::default();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_get_stream_counts(dst_conn, &mut counts) }, 0);
    assert_eq!(counts.inuse.filecopy_streams, 1);
    let mut off = 0u64;
    let mut polls = 0;
    while off < size {
        let mut done = 0u64;
        // SAFETY: valid out-pointer.
        assert_eq!(
            unsafe { ddp_filecopy_status(s, d, off, 262_144, &mut done) },
            0
        );
        assert!(done <= 262_144);
        assert!(done > 0, "progress at {off}");
        off += done;
        polls += 1;
    }
    assert_eq!(off, size);
    assert!(polls >= (size / 262_144) as usize);
    // SAFETY: plain descriptors.
    assert_eq!(unsafe { ddp_filecopy_stop(src_conn, d) }, 0);
    assert_eq!(close(d), 0);
    assert_eq!(close(s), 0);
}

#[test]
fn filecopy_between_systems_dedups_on_destination() {
    let a = system("dd-copy-a");
    let b = system("dd-copy-b");
    let ca = connect("dd-copy-a");
    let cb = connect("dd-copy-b");
    let data = join(&rows(6, 30_000));
    put_file(ca, "src", &data);
    filecopy(ca, "src", cb, "dst1");
    assert_eq!(read_file(cb, "dst1").unwrap(), data);
    let tb1 = totals(&b);
    let ta = totals(&a);
    assert_eq!(
        tb1.stored_bytes, ta.stored_bytes,
        "compressed segments transferred as stored"
    );
    assert_eq!(tb1.logical_bytes_written, data.len() as u64);
    // A second copy of the same file transfers nothing new.
    filecopy(ca, "src", cb, "dst2");
    assert_eq!(read_file(cb, "dst2").unwrap(), data);
    let tb2 = totals(&b);
    assert_eq!(tb2.stored_bytes, tb1.stored_bytes);
    // Copy within one system
    filecopy(ca, "src", ca, "same");
    assert_eq!(read_file(ca, "same").unwrap(), data);
    assert_eq!(totals(&a).stored_bytes, ta.stored_bytes);
    // Status with a mismatched source, on a read handle, or without start
    let s = open(ca, "src", DDP_O_READ).unwrap();
    let d = create(cb, "dst3");
    let mut done = 0;
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { ddp_filecopy_status(s, d, 0, 1000, &mut done) },
        DD_ERR_INVALID
    );
    // SAFETY: plain descriptors.
    assert_eq!(
        unsafe { ddp_filecopy_start(d, s, std::ptr::null_mut()) },
        DD_ERR_INVALID
    );
    close(d);
    close(s);
}
