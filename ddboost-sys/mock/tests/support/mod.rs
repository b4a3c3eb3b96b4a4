//! Test helpers: a thin Rust wrapper over the exported C ABI.
#![allow(dead_code)]

use ddboost_mock::ffi::*;
use ddboost_mock::*;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

pub const USER: &str = "ddboost";
pub const PASSWORD: &str = "secret";
pub const SU: &str = "GPDB";

static ROOT: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let d = tempfile::tempdir().expect("tempdir");
    std::env::set_var("DDBOOST_MOCK_ROOT", d.path());
    // SAFETY: calling the library's C entry points with valid arguments.
    let rc = unsafe { ddp_init(c"tests".as_ptr()) };
    assert_eq!(rc, 0);
    d
});

/// The root of the systems of this test binary (DDBOOST_MOCK_ROOT is set to it).
pub fn root() -> &'static Path {
    ROOT.path()
}

/// Creates a system `host` with the test user and storage unit SU.
pub fn system(host: &str) -> PathBuf {
    ddboost_mock::admin::create_system(root(), host, USER, PASSWORD, Some(SU))
        .expect("create system");
    root().join(host)
}

pub fn instance() -> i32 {
    let _ = root();
    let mut inst = -1;
    // SAFETY: valid out-pointer; cl_info may be NULL.
    let rc = unsafe { ddp_instance_create(64 << 20, std::ptr::null_mut(), &mut inst) };
    assert_eq!(rc, 0);
    assert_ne!(inst, DDP_INVALID_DESCRIPTOR);
    inst
}

pub fn try_connect(host: &str, user: &str, pwd: &str) -> Result<i32, i32> {
    let inst = instance();
    let h = CString::new(host).unwrap();
    let u = CString::new(user).unwrap();
    let p = CString::new(pwd).unwrap();
    let mut c = -1;
    // SAFETY: valid NUL-terminated strings and out-pointer.
    let rc = unsafe {
        ddp_connect_with_user_pwd(
            inst,
            h.as_ptr(),
            std::ptr::null_mut(),
            u.as_ptr(),
            p.as_ptr(),
            &mut c,
        )
    };
    if rc == 0 {
        Ok(c)
    } else {
        Err(rc)
    }
}

pub fn connect(host: &str) -> i32 {
    try_connect(host, USER, PASSWORD).expect("connect")
}

/// A ddp_path_t with owned strings.
pub struct DPath {
    su: CString,
    p: CString,
}

impl DPath {
    pub fn new(su: &str, p: &str) -> Self {
        DPath {
            su: CString::new(su).unwrap(),
            p: CString::new(p).unwrap(),
        }
    }
    pub fn raw(&self) -> ddp_path_t {
        ddp_path_t {
            su_name: self.su.as_ptr() as *mut _,
            path_name: self.p.as_ptr() as *mut _,
        }
    }
}

pub fn p(path: &str) -> DPath {
    DPath::new(SU, path)
}

pub fn open(conn: i32, path: &str, flags: i32) -> Result<i32, i32> {
    let dp = p(path);
    let mut raw = dp.raw();
    let mut fd = -1;
    // SAFETY: valid path struct and out-pointer.
    let rc = unsafe { ddp_open_file(conn, &mut raw, flags, 0o644, &mut fd) };
    if rc == 0 {
        assert!(fd > 0);
        Ok(fd)
    } else {
        Err(rc)
    }
}

pub fn create(conn: i32, path: &str) -> i32 {
    open(conn, path, DDP_O_CREAT | DDP_O_RDWR).expect("create")
}

pub fn write_at(fd: i32, data: &[u8], off: u64) -> Result<u64, i32> {
    let mut n = 0u64;
    // SAFETY: buffer valid for data.len() bytes.
    let rc = unsafe { ddp_write(fd, data.as_ptr().cast(), data.len() as u64, off, &mut n) };
    if rc == 0 {
        Ok(n)
    } else {
        Err(rc)
    }
}

pub fn read_at(fd: i32, buf: &mut [u8], off: u64) -> Result<u64, i32> {
    let mut n = 0u64;
    // SAFETY: buffer valid for buf.len() bytes.
    let rc = unsafe { ddp_read(fd, buf.as_mut_ptr().cast(), buf.len() as u64, off, &mut n) };
    if rc == 0 {
        Ok(n)
    } else {
        Err(rc)
    }
}

/// Writes all of `data` in `block`-sized calls.
pub fn write_all(fd: i32, data: &[u8], block: usize) -> Result<(), i32> {
    let mut off = 0u64;
    for c in data.chunks(block) {
        let n = write_at(fd, c, off)?;
        assert_eq!(n, c.len() as u64);
        off += n;
    }
    Ok(())
}

pub fn close(fd: i32) -> i32 {
    // SAFETY: plain descriptor.
    unsafe { ddp_close_file(fd) }
}

pub fn put_file(conn: i32, path: &str, data: &[u8]) {
    let fd = create(conn, path);
    write_all(fd, data, 1 << 20).expect("write");
    assert_eq!(close(fd), 0);
}

pub fn read_file(conn: i32, path: &str) -> Result<Vec<u8>, i32> {
    let fd = open(conn, path, DDP_O_READ)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = read_at(fd, &mut buf, out.len() as u64)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    assert_eq!(close(fd), 0);
    Ok(out)
}

pub fn stat(conn: i32, path: &str) -> Result<ddp_stat_t, i32> {
    let dp = p(path);
    let mut raw = dp.raw();
    let mut st = ddp_stat_t::default();
    // SAFETY: valid path struct and out-pointer.
    let rc = unsafe { ddp_stat(conn, &mut raw, &mut st) };
    if rc == 0 {
        Ok(st)
    } else {
        Err(rc)
    }
}

pub fn mkdir(conn: i32, path: &str) -> i32 {
    let dp = p(path);
    let mut raw = dp.raw();
    // SAFETY: valid path struct.
    unsafe { ddp_mkdir(conn, &mut raw, 0o755) }
}

pub fn rmdir(conn: i32, path: &str) -> i32 {
    let dp = p(path);
    let mut raw = dp.raw();
    // SAFETY: valid path struct.
    unsafe { ddp_rmdir(conn, &mut raw) }
}

pub fn unlink(conn: i32, path: &str) -> i32 {
    let dp = p(path);
    let mut raw = dp.raw();
    // SAFETY: valid path struct.
    unsafe { ddp_unlink(conn, &mut raw) }
}

pub fn rename(conn: i32, from: &str, to: &str) -> i32 {
    let a = p(from);
    let b = p(to);
    let (mut ra, mut rb) = (a.raw(), b.raw());
    // SAFETY: valid path structs.
    unsafe { ddp_rename(conn, &mut ra, &mut rb) }
}

pub fn list(conn: i32, path: &str) -> Result<Vec<String>, i32> {
    let dp = p(path);
    let mut raw = dp.raw();
    let mut d = -1;
    // SAFETY: valid path struct and out-pointer.
    let rc = unsafe { ddp_open_dir(conn, &mut raw, &mut d) };
    if rc != 0 {
        return Err(rc);
    }
    let mut names = Vec::new();
    loop {
        let mut ent = ddp_dirent_t {
            d_name: [0; DDP_MAX_NAME_LEN],
        };
        // SAFETY: valid out-pointer.
        let rc = unsafe { ddp_readdir(d, &mut ent) };
        if rc == DD_ERR_EMPTY {
            break;
        }
        assert_eq!(rc, 0);
        // SAFETY: d_name is NUL-terminated by the library.
        let s = unsafe { std::ffi::CStr::from_ptr(ent.d_name.as_ptr()) };
        names.push(s.to_string_lossy().into_owned());
    }
    // SAFETY: plain descriptor.
    unsafe { ddp_close_dir(d) };
    Ok(names)
}

pub fn totals(sysdir: &Path) -> ddboost_mock::store::Totals {
    ddboost_mock::store::totals(sysdir).expect("totals")
}

/// Deterministic CSV-like rows: `id,name,amount,date,comment`.
pub fn rows(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            format!(
                "{},customer_{},{}.{:02},2024-{:02}-{:02},comment {} lorem ipsum {}\n",
                i,
                r % 100_000,
                r % 1_000_000,
                r % 100,
                (r >> 20) % 12 + 1,
                (r >> 30) % 28 + 1,
                (r >> 8) % 977,
                (r >> 40) % 10_000
            )
            .into_bytes()
        })
        .collect()
}

pub fn join(rows: &[Vec<u8>]) -> Vec<u8> {
    rows.concat()
}
