//! Semantics of every call through the exported C ABI.

mod support;
use ddboost_mock::ffi::*;
use ddboost_mock::*;
use support::*;

#[test]
fn connect_failures() {
    system("sem-auth");
    assert!(try_connect("sem-auth", USER, PASSWORD).is_ok());
    assert_eq!(try_connect("sem-auth", USER, "wrong"), Err(DD_ERR_AUTH));
    assert_eq!(
        try_connect("sem-auth", "nobody", PASSWORD),
        Err(DD_ERR_AUTH)
    );
    assert_eq!(
        try_connect("no-such-host", USER, PASSWORD),
        Err(DD_ERR_CONNECT)
    );
    assert_eq!(
        try_connect("../escape", USER, PASSWORD),
        Err(DD_ERR_CONNECT)
    );
    // No password stored in clear.
    let cfg = std::fs::read_to_string(root().join("sem-auth/system.json")).unwrap();
    assert!(!cfg.contains(PASSWORD));
}

#[test]
fn storage_unit_must_exist() {
    system("sem-su");
    let c = connect("sem-su");
    let dp = DPath::new("OTHER", "f");
    let mut raw = dp.raw();
    let mut fd = -1;
    // SAFETY: valid arguments.
    let rc = unsafe { ddp_open_file(c, &mut raw, DDP_O_CREAT | DDP_O_RDWR, 0o644, &mut fd) };
    assert_eq!(rc, DD_ERR_NOT_FOUND);
    // SAFETY: valid C string.
    assert_eq!(unsafe { ddp_create_storage_unit(c, c"OTHER".as_ptr()) }, 0);
    // SAFETY: valid C string; creating an existing unit succeeds.
    assert_eq!(unsafe { ddp_create_storage_unit(c, c"OTHER".as_ptr()) }, 0);
    // SAFETY: valid arguments.
    let rc = unsafe { ddp_open_file(c, &mut raw, DDP_O_CREAT | DDP_O_RDWR, 0o644, &mut fd) };
    assert_eq!(rc, 0);
    assert_eq!(close(fd), 0);
    // SAFETY: valid C string.
    assert_eq!(
        unsafe { ddp_create_storage_unit(c, c"a/b".as_ptr()) },
        DD_ERR_INVALID
    );
}

#[test]
fn write_read_rules() {
    system("sem-rw");
    let c = connect("sem-rw");
    let fd = create(c, "/f1");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // More than 1 MiB in one call is refused.
    assert_eq!(write_at(fd, &data[..(1 << 20) + 1], 0), Err(DD_ERR_INVALID));
    // Zero-byte write succeeds.
    assert_eq!(write_at(fd, &[], 0), Ok(0));
    assert_eq!(write_at(fd, &data[..1000], 0), Ok(1000));
    // Non-contiguous writes are refused.
    assert_eq!(write_at(fd, &data[1000..2000], 999), Err(DD_ERR_INVALID));
    assert_eq!(write_at(fd, &data[1000..2000], 1001), Err(DD_ERR_INVALID));
    write_all_from(fd, &data, 1000);
    // Visible in the namespace but not readable by others until close.
    let st = stat(c, "f1").unwrap();
    assert_eq!(
        st.st_size,
        data.len() as u64,
        "stat while writing shows the writer's size in its process"
    );
    let other = open(c, "f1", DDP_O_READ).unwrap();
    let mut buf = vec![0u8; 100];
    assert_eq!(read_at(other, &mut buf, 0), Ok(0));
    assert_eq!(close(other), 0);
    // fstat on the write handle
    let mut fst = ddp_stat_t::default();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_fstat(fd, &mut fst) }, 0);
    assert_eq!(fst.st_size, data.len() as u64);
    // Reading back through the write handle.
    let mut b = vec![0u8; 5000];
    assert_eq!(read_at(fd, &mut b, 2_000_000), Ok(5000));
    assert_eq!(&b[..], &data[2_000_000..2_005_000]);
    assert_eq!(close(fd), 0);
    // Using a closed handle.
    assert_eq!(close(fd), DD_ERR_BADF);
    assert_eq!(write_at(fd, &data[..1], 0), Err(DD_ERR_BADF));
    assert_eq!(read_at(12345678, &mut b, 0), Err(DD_ERR_BADF));

    let st = stat(c, "f1").unwrap();
    assert_eq!(st.st_size, data.len() as u64);
    assert_eq!(st.st_mode & S_IFREG, S_IFREG);
    assert_eq!(st.st_mode & 0o7777, 0o644);

    let r = open(c, "f1", DDP_O_READ).unwrap();
    // > 1 MiB read refused
    let mut big = vec![0u8; (1 << 20) + 1];
    assert_eq!(read_at(r, &mut big, 0), Err(DD_ERR_INVALID));
    // reads at arbitrary offsets
    for &(off, len) in &[
        (0usize, 1usize),
        (1, 100_000),
        (8191, 70_000),
        (2_999_990, 10),
        (1_234_567, 1 << 20),
    ] {
        let mut b = vec![0u8; len];
        let n = read_at(r, &mut b, off as u64).unwrap() as usize;
        let want = len.min(data.len() - off);
        assert_eq!(n, want, "read at {off}");
        assert_eq!(&b[..n], &data[off..off + n]);
    }
    // short read at EOF, then 0 at and past EOF
    let mut b = vec![0u8; 100];
    assert_eq!(read_at(r, &mut b, data.len() as u64 - 10), Ok(10));
    assert_eq!(read_at(r, &mut b, data.len() as u64), Ok(0));
    assert_eq!(read_at(r, &mut b, data.len() as u64 + 100), Ok(0));
    // write on a read handle
    assert_eq!(write_at(r, &[1], data.len() as u64), Err(DD_ERR_PERM));
    let mut fst = ddp_stat_t::default();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_fstat(r, &mut fst) }, 0);
    assert_eq!(fst.st_size, data.len() as u64);
    assert_eq!(close(r), 0);
    assert_eq!(read_file(c, "f1").unwrap(), data);
}

fn write_all_from(fd: i32, data: &[u8], from: usize) {
    let mut off = from;
    while off < data.len() {
        let end = (off + (1 << 20)).min(data.len());
        assert_eq!(
            write_at(fd, &data[off..end], off as u64),
            Ok((end - off) as u64)
        );
        off = end;
    }
}

#[test]
fn creat_on_existing_file_appends() {
    system("sem-append");
    let c = connect("sem-append");
    put_file(c, "a", b"hello ");
    let fd = create(c, "a");
    assert_eq!(write_at(fd, b"x", 0), Err(DD_ERR_INVALID));
    assert_eq!(write_at(fd, b"world", 6), Ok(5));
    // Readers still see the old content.
    assert_eq!(read_file(c, "a").unwrap(), b"hello ");
    // A second writer on the same file is refused.
    assert_eq!(open(c, "a", DDP_O_CREAT | DDP_O_RDWR), Err(DD_ERR_PERM));
    assert_eq!(close(fd), 0);
    assert_eq!(read_file(c, "a").unwrap(), b"hello world");
    // RDWR without CREAT on a missing file
    assert_eq!(open(c, "missing", DDP_O_RDWR), Err(DD_ERR_NOT_FOUND));
    assert_eq!(open(c, "missing", DDP_O_READ), Err(DD_ERR_NOT_FOUND));
    assert_eq!(
        open(c, "nodir/x", DDP_O_CREAT | DDP_O_RDWR),
        Err(DD_ERR_NOT_FOUND)
    );
    assert_eq!(open(c, "a", 0), Err(DD_ERR_INVALID));
    assert_eq!(open(c, "a", 0x100), Err(DD_ERR_INVALID));
}

#[test]
fn directories() {
    system("sem-dir");
    let c = connect("sem-dir");
    assert_eq!(mkdir(c, "d1"), 0);
    assert_eq!(mkdir(c, "/d1"), DD_ERR_EXIST);
    assert_eq!(mkdir(c, "x/y"), DD_ERR_NOT_FOUND, "mkdir is one level");
    assert_eq!(mkdir(c, "d1/d2"), 0);
    put_file(c, "d1/f", b"abc");
    assert_eq!(mkdir(c, "d1/f/z"), DD_ERR_NOTDIR);
    assert_eq!(list(c, "d1").unwrap(), vec![".", "..", "d2", "f"]);
    assert_eq!(
        list(c, "/").unwrap()[..2],
        [".".to_string(), "..".to_string()]
    );
    assert_eq!(list(c, "nope"), Err(DD_ERR_NOT_FOUND));
    assert_eq!(list(c, "d1/f"), Err(DD_ERR_NOTDIR));
    assert_eq!(rmdir(c, "d1"), DD_ERR_NOTEMPTY);
    assert_eq!(unlink(c, "d1/d2"), DD_ERR_FILE_IS_DIR);
    assert_eq!(rmdir(c, "d1/f"), DD_ERR_NOTDIR);
    assert_eq!(unlink(c, "d1/f"), 0);
    assert_eq!(unlink(c, "d1/f"), DD_ERR_NOT_FOUND);
    assert_eq!(rmdir(c, "d1/d2"), 0);
    assert_eq!(rmdir(c, "d1/d2"), DD_ERR_NOT_FOUND);
    assert_eq!(rmdir(c, "d1"), 0);
    assert_eq!(mkdir(c, "a/../b"), DD_ERR_INVALID);
    assert_eq!(open(c, "../x", DDP_O_READ), Err(DD_ERR_INVALID));
    let st = stat(c, "/").unwrap();
    assert_eq!(st.st_mode & S_IFDIR, S_IFDIR);
    assert_eq!(stat(c, "gone"), Err(DD_ERR_NOT_FOUND));
    assert_eq!(open(c, "", DDP_O_READ), Err(DD_ERR_FILE_IS_DIR));
    // readdir end and bad handles
    let mut ent = ddp_dirent_t {
        d_name: [0; DDP_MAX_NAME_LEN],
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_readdir(999_999, &mut ent) }, DD_ERR_BADF);
}

#[test]
fn rename_overwrites_atomically() {
    system("sem-rename");
    let c = connect("sem-rename");
    let old = vec![b'o'; 300_000];
    let new = vec![b'n'; 500_000];
    put_file(c, "dst", &old);
    put_file(c, "tmp", &new);
    // Concurrent reader: each open sees either the old or the new file, whole.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let reader = std::thread::spawn(move || {
        let c = connect("sem-rename");
        let mut seen = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) || seen == 0 {
            let d = read_file(c, "dst").unwrap();
            assert!(
                d == vec![b'o'; 300_000] || d == vec![b'n'; 500_000],
                "mixed content"
            );
            seen += 1;
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(rename(c, "tmp", "dst"), 0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(read_file(c, "dst").unwrap(), new);
    assert_eq!(stat(c, "tmp"), Err(DD_ERR_NOT_FOUND));
    assert_eq!(rename(c, "tmp", "dst"), DD_ERR_NOT_FOUND);
    assert_eq!(mkdir(c, "dd"), 0);
    assert_eq!(rename(c, "dst", "dd"), DD_ERR_FILE_IS_DIR);
    assert_eq!(rename(c, "dst", "dd/moved"), 0);
    assert_eq!(read_file(c, "dd/moved").unwrap(), new);
}

#[test]
fn statfs_and_stream_counts() {
    system("sem-counts");
    let c = connect("sem-counts");
    let mut v = ddp_statvfs_t::default();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_statfs(c, &mut v) }, 0);
    assert!(v.f_blocks > 0 && v.f_bfree <= v.f_blocks);
    let counts = || {
        let mut s = ddp_stream_counts_t::default();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { ddp_get_stream_counts(c, &mut s) }, 0);
        s
    };
    let s0 = counts();
    assert!(s0.limits.backup_write_streams > 0 && s0.limits.total_streams_hard_limit > 0);
    assert_eq!((s0.inuse.read_streams, s0.inuse.read_write_streams), (0, 0));
    let w = create(c, "w");
    let w2 = create(c, "w2");
    put_file(c, "r", b"data");
    let r = open(c, "r", DDP_O_READ).unwrap();
    let s1 = counts();
    assert_eq!((s1.inuse.read_streams, s1.inuse.read_write_streams), (1, 2));
    close(w);
    close(w2);
    close(r);
    let s2 = counts();
    assert_eq!((s2.inuse.read_streams, s2.inuse.read_write_streams), (0, 0));
}

#[test]
fn stale_process_stream_files_are_ignored() {
    let dir = system("sem-stale");
    let c = connect("sem-stale");
    // A process that no longer exists left its counts behind.
    std::fs::write(dir.join("streams").join("999999999"), "3 4 1\n").unwrap();
    let mut s = ddp_stream_counts_t::default();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_get_stream_counts(c, &mut s) }, 0);
    assert_eq!(
        (
            s.inuse.read_streams,
            s.inuse.read_write_streams,
            s.inuse.filecopy_streams
        ),
        (0, 0, 0)
    );
    assert!(!dir.join("streams").join("999999999").exists());
}

extern "C" fn log_cb(
    session: *const std::ffi::c_void,
    msg: *const std::os::raw::c_char,
    sev: ddp_severity_t,
) {
    // SAFETY: the session pointer is the Mutex<Vec<..>> registered below; msg is NUL-terminated.
    let (v, m) = unsafe {
        (
            &*(session as *const parking_lot_free::Log),
            std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned(),
        )
    };
    v.0.lock().unwrap().push((sev, m));
}

mod parking_lot_free {
    pub struct Log(pub std::sync::Mutex<Vec<(super::ddp_severity_t, String)>>);
}

#[test]
fn log_callback_and_descriptors() {
    system("sem-log");
    let inst = instance();
    let log: &'static parking_lot_free::Log = Box::leak(Box::new(parking_lot_free::Log(
        std::sync::Mutex::new(Vec::new()),
    )));
    // SAFETY: the session pointer outlives the instance (leaked); callback has the C signature.
    unsafe { ddp_log_init(inst, log as *const _ as *mut _, Some(log_cb)) };
    let mut c = -1;
    // SAFETY: valid C strings and out-pointer.
    let rc = unsafe {
        ddp_connect_with_user_pwd(
            inst,
            c"sem-log".as_ptr(),
            std::ptr::null_mut(),
            c"ddboost".as_ptr(),
            c"secret".as_ptr(),
            &mut c,
        )
    };
    assert_eq!(rc, 0);
    put_file(c, "logged", &[7u8; 12345]);
    let lines = log.0.lock().unwrap().clone();
    assert!(lines
        .iter()
        .any(|(s, m)| *s == DDP_SEV_INFO && m.contains("connected to sem-log")));
    assert!(lines
        .iter()
        .any(|(s, m)| *s == DDP_SEV_DEBUG && m.contains("open GPDB/logged")));
    assert!(lines
        .iter()
        .any(|(s, m)| *s == DDP_SEV_INFO && m.contains("12345 bytes written")));
    // SAFETY: plain descriptors.
    unsafe {
        assert_eq!(ddp_disconnect(c), 0);
        assert_eq!(ddp_disconnect(c), DD_ERR_BADF);
        assert_eq!(ddp_instance_destroy(inst), 0);
        assert_eq!(ddp_instance_destroy(inst), DD_ERR_BADF);
    }
}

#[test]
fn disconnect_discards_unclosed_writes() {
    system("sem-disc");
    let c = connect("sem-disc");
    let fd = create(c, "unfinished");
    write_at(fd, &[1u8; 5000], 0).unwrap();
    // SAFETY: plain descriptor.
    assert_eq!(unsafe { ddp_disconnect(c) }, 0);
    assert_eq!(write_at(fd, &[1u8; 5], 5000), Err(DD_ERR_BADF));
    let c = connect("sem-disc");
    assert_eq!(stat(c, "unfinished").unwrap().st_size, 0);
}

#[test]
fn null_arguments_are_rejected() {
    system("sem-null");
    let c = connect("sem-null");
    let mut st = ddp_stat_t::default();
    // SAFETY: NULL path is checked by the library.
    assert_eq!(
        unsafe { ddp_stat(c, std::ptr::null_mut(), &mut st) },
        DD_ERR_INVALID
    );
    let dp = p("x");
    let mut raw = dp.raw();
    // SAFETY: NULL out-pointer is checked by the library.
    assert_eq!(
        unsafe {
            ddp_open_file(
                c,
                &mut raw,
                DDP_O_CREAT | DDP_O_RDWR,
                0,
                std::ptr::null_mut(),
            )
        },
        DD_ERR_INVALID
    );
    let fd = create(c, "x");
    // SAFETY: NULL buffer with count > 0 is checked.
    assert_eq!(
        unsafe { ddp_write(fd, std::ptr::null(), 10, 0, &mut 0) },
        DD_ERR_INVALID
    );
    close(fd);
}
