//! Emulating an SDK whose structures differ from the header: `DDBOOST_MOCK_WIDE_STRUCTS`
//! (structures written as if larger) and `DDBOOST_MOCK_STAT_SIZE_DELTA` (sizes reported
//! off). The configuration is process-wide, so these tests run one at a time.

mod support;
use ddboost_mock::faults::{self, Config, WIDE_FILL};
use ddboost_mock::ffi::*;
use ddboost_mock::*;
use std::mem::size_of;
use std::sync::Mutex;
use support::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn with(cfg: Config) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _ = root();
    faults::install(cfg);
    g
}

const GUARD: u8 = 0x3C;

/// An 8-byte aligned buffer for a `T`: `struct_buffer_len` bytes of zeros, then 64 guard
/// bytes that no call may touch.
struct Probe<T> {
    words: Vec<u64>,
    _t: std::marker::PhantomData<T>,
}

impl<T> Probe<T> {
    fn new() -> Self {
        let len = ddboost::struct_buffer_len(size_of::<T>());
        let mut words = vec![0u64; (len + 64) / 8];
        let bytes = words.len() * 8;
        // Fill the guard zone.
        for w in words[len / 8..].iter_mut() {
            *w = u64::from_ne_bytes([GUARD; 8]);
        }
        assert_eq!(bytes, len + 64);
        Probe {
            words,
            _t: std::marker::PhantomData,
        }
    }
    fn ptr(&mut self) -> *mut T {
        self.words.as_mut_ptr().cast()
    }
    fn bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }
    fn value(&self) -> T {
        // SAFETY: the buffer is larger than T, 8-byte aligned (enough for these C structs of
        // integers), and initialised; every bit pattern is a valid T.
        unsafe { self.ptr_const().read() }
    }
    fn ptr_const(&self) -> *const T {
        self.words.as_ptr().cast()
    }
    /// Checks the bytes after the declared structure: `fill` up to `struct_buffer_len`,
    /// then the untouched guard.
    fn assert_tail(&self, fill: u8) {
        let declared = size_of::<T>();
        let len = ddboost::struct_buffer_len(declared);
        let b = self.bytes();
        assert!(
            b[declared..len].iter().all(|&x| x == fill),
            "tail of a {declared}-byte structure is not {fill:#x}"
        );
        assert!(b[len..].iter().all(|&x| x == GUARD), "guard zone touched");
    }
}

#[test]
fn wide_mode_fills_the_tail_of_every_structure_and_no_more() {
    let _g = with(Config {
        wide_structs: true,
        ..Default::default()
    });
    system("lay-wide");
    let c = connect("lay-wide");
    put_file(c, "f", &[5u8; 3000]);

    let dp = p("f");
    let mut raw = dp.raw();
    let mut st = Probe::<ddp_stat_t>::new();
    // SAFETY: valid path; the out buffer holds struct_buffer_len bytes (wide mode's contract).
    assert_eq!(unsafe { ddp_stat(c, &mut raw, st.ptr()) }, 0);
    assert_eq!(st.value().st_size, 3000);
    assert_eq!(st.value().st_mode & S_IFREG, S_IFREG);
    st.assert_tail(WIDE_FILL);

    let fd = open(c, "f", DDP_O_READ).unwrap();
    let mut fst = Probe::<ddp_stat_t>::new();
    // SAFETY: as above.
    assert_eq!(unsafe { ddp_fstat(fd, fst.ptr()) }, 0);
    assert_eq!(fst.value().st_size, 3000);
    fst.assert_tail(WIDE_FILL);

    let mut fs = Probe::<ddp_statvfs_t>::new();
    // SAFETY: as above.
    assert_eq!(unsafe { ddp_statfs(c, fs.ptr()) }, 0);
    assert!(fs.value().f_blocks > 0);
    fs.assert_tail(WIDE_FILL);

    let mut sc = Probe::<ddp_stream_counts_t>::new();
    // SAFETY: as above.
    assert_eq!(unsafe { ddp_get_stream_counts(c, sc.ptr()) }, 0);
    assert_eq!(sc.value().limits.backup_write_streams, 90);
    assert!(sc.value().inuse.read_streams >= 1);
    sc.assert_tail(WIDE_FILL);
    assert_eq!(close(fd), 0);

    let dp = p("");
    let mut raw = dp.raw();
    let mut d = -1;
    // SAFETY: valid path and out-pointer.
    assert_eq!(unsafe { ddp_open_dir(c, &mut raw, &mut d) }, 0);
    let mut ent = Probe::<ddp_dirent_t>::new();
    // SAFETY: as above.
    assert_eq!(unsafe { ddp_readdir(d, ent.ptr()) }, 0);
    assert_eq!(ent.value().d_name[0] as u8, b'.');
    ent.assert_tail(WIDE_FILL);
    // SAFETY: plain descriptor.
    unsafe { ddp_close_dir(d) };
}

#[test]
fn by_default_only_the_declared_structure_is_written() {
    let _g = with(Config::default());
    system("lay-narrow");
    let c = connect("lay-narrow");
    put_file(c, "f", &[5u8; 10]);
    let dp = p("f");
    let mut raw = dp.raw();
    let mut st = Probe::<ddp_stat_t>::new();
    // SAFETY: valid path and out buffer.
    assert_eq!(unsafe { ddp_stat(c, &mut raw, st.ptr()) }, 0);
    assert_eq!(st.value().st_size, 10);
    st.assert_tail(0);
}

#[test]
fn stat_size_delta_shifts_regular_files_only() {
    let _g = with(Config {
        stat_size_delta: 24,
        ..Default::default()
    });
    system("lay-delta");
    let c = connect("lay-delta");
    put_file(c, "f", &[1u8; 1000]);
    assert_eq!(stat(c, "f").unwrap().st_size, 1024);
    let fd = open(c, "f", DDP_O_READ).unwrap();
    let mut fst = ddp_stat_t::default();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_fstat(fd, &mut fst) }, 0);
    assert_eq!(fst.st_size, 1024);
    assert_eq!(close(fd), 0);
    assert_eq!(read_file(c, "f").unwrap().len(), 1000, "content unchanged");
    assert_eq!(mkdir(c, "d"), 0);
    assert_eq!(stat(c, "d").unwrap().st_size, 0, "directories unchanged");

    faults::install(Config {
        stat_size_delta: -5000,
        ..Default::default()
    });
    assert_eq!(stat(c, "f").unwrap().st_size, 0, "saturates at 0");
    faults::install(Config::default());
    assert_eq!(stat(c, "f").unwrap().st_size, 1000);
}

#[test]
fn layout_variables_are_read_from_the_environment() {
    let _g = with(Config::default());
    std::env::set_var("DDBOOST_MOCK_WIDE_STRUCTS", "1");
    std::env::set_var("DDBOOST_MOCK_STAT_SIZE_DELTA", "-8");
    let cfg = Config::from_env().unwrap();
    assert!(cfg.wide_structs);
    assert_eq!(cfg.stat_size_delta, -8);
    std::env::set_var("DDBOOST_MOCK_WIDE_STRUCTS", "2");
    let err = Config::from_env().unwrap_err();
    assert!(err.contains("DDBOOST_MOCK_WIDE_STRUCTS"), "{err}");
    std::env::set_var("DDBOOST_MOCK_WIDE_STRUCTS", "0");
    std::env::set_var("DDBOOST_MOCK_STAT_SIZE_DELTA", "ten");
    let err = Config::from_env().unwrap_err();
    assert!(err.contains("DDBOOST_MOCK_STAT_SIZE_DELTA"), "{err}");
    std::env::remove_var("DDBOOST_MOCK_WIDE_STRUCTS");
    std::env::remove_var("DDBOOST_MOCK_STAT_SIZE_DELTA");
    let cfg = Config::from_env().unwrap();
    assert!(!cfg.wide_structs);
    assert_eq!(cfg.stat_size_delta, 0);
}
