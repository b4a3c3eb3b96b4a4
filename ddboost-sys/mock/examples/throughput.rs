//! Throughput of the mock through its C ABI, the way the plugin drives it: one thread,
//! `ddp_write` of exactly 1 MiB per call.
//!
//! ```text
//! cargo run -p ddboost-mock --release --example throughput -- [GiB] [--first-only] [--emit]
//! ```
//!
//! Phases: first write (all new data), identical rewrite, modified stream (one row inserted
//! near the start, 5% of rows changed in runs of 200), read-back with 1 MiB reads.
//! Prints MB/s (10^6 bytes/s) per phase, stored bytes added and the peak RSS. GiB defaults
//! to 2. `--first-only` runs only the first write (the SDK's own sequential write rate, for
//! comparison with a plugin at the same `DDBOOST_MOCK_LATENCY_MS`); `--emit` writes the
//! first write's bytes to standard output instead, so a plugin can be fed the same stream.

use ddboost_mock::ffi::*;
use ddboost_mock::*;
use std::ffi::CString;
use std::time::Instant;

const BLOCK: usize = 1 << 20;

/// CSV-like rows: a unique id followed by one of a pool of random-looking tails.
struct Rows {
    pool: Vec<Vec<u8>>,
    next_row: u64,
    modified: bool,
    carry: Vec<u8>,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

impl Rows {
    fn new(modified: bool) -> Rows {
        let pool = (0..8192u64)
            .map(|i| {
                let r = mix(i + 1);
                format!(
                    ",customer_{},{}.{:02},2024-{:02}-{:02},{},comment {} lorem ipsum dolor {}\n",
                    r % 100_000,
                    (r >> 7) % 1_000_000,
                    r % 100,
                    (r >> 20) % 12 + 1,
                    (r >> 30) % 28 + 1,
                    ["NEW", "PAID", "SHIPPED", "RETURNED"][(r >> 50) as usize % 4],
                    (r >> 8) % 977,
                    (r >> 40) % 10_000
                )
                .into_bytes()
            })
            .collect();
        Rows {
            pool,
            next_row: 0,
            modified,
            carry: Vec::new(),
        }
    }

    fn push_row(&mut self, out: &mut Vec<u8>) {
        let i = self.next_row;
        self.next_row += 1;
        if self.modified && i == 10 {
            out.extend_from_slice(
                b"4242424242,inserted,1.00,2024-01-01,NEW,comment inserted row\n",
            );
        }
        let mut buf = itoa_buf(i);
        out.append(&mut buf);
        let changed = self.modified && mix(i / 200 + 7).is_multiple_of(20);
        let k = if changed {
            mix(i ^ 0xdead_beef)
        } else {
            mix(i)
        } as usize
            % self.pool.len();
        out.extend_from_slice(&self.pool[k]);
    }

    fn fill(&mut self, out: &mut Vec<u8>, n: usize) {
        out.clear();
        out.append(&mut self.carry);
        while out.len() < n {
            self.push_row(out);
        }
        self.carry.extend_from_slice(&out[n..]);
        out.truncate(n);
    }
}

fn itoa_buf(mut v: u64) -> Vec<u8> {
    let mut b = [0u8; 20];
    let mut i = 20;
    loop {
        i -= 1;
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b[i..].to_vec()
}

fn check(rc: i32, what: &str) {
    assert_eq!(rc, 0, "{what} failed: {}", error::DdError::name(rc));
}

fn path(p: &str) -> (CString, CString) {
    (CString::new("GPDB").unwrap(), CString::new(p).unwrap())
}

fn write_stream(conn: i32, name: &str, total: u64, modified: bool) -> f64 {
    let (su, p) = path(name);
    let mut dp = ddp_path_t {
        su_name: su.as_ptr() as *mut _,
        path_name: p.as_ptr() as *mut _,
    };
    let mut rows = Rows::new(modified);
    let mut buf = Vec::with_capacity(BLOCK + 4096);
    let start = Instant::now();
    let mut fd = -1;
    // SAFETY: valid path struct and out-pointer.
    check(
        unsafe { ddp_open_file(conn, &mut dp, DDP_O_CREAT | DDP_O_RDWR, 0o600, &mut fd) },
        "open",
    );
    let mut off = 0u64;
    while off < total {
        let n = BLOCK.min((total - off) as usize);
        rows.fill(&mut buf, n);
        let mut w = 0;
        // SAFETY: buf holds n bytes.
        check(
            unsafe { ddp_write(fd, buf.as_ptr().cast(), n as u64, off, &mut w) },
            "write",
        );
        off += w;
    }
    // SAFETY: plain descriptor.
    check(unsafe { ddp_close_file(fd) }, "close");
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn read_stream(conn: i32, name: &str) -> (f64, u64) {
    let (su, p) = path(name);
    let mut dp = ddp_path_t {
        su_name: su.as_ptr() as *mut _,
        path_name: p.as_ptr() as *mut _,
    };
    let mut buf = vec![0u8; BLOCK];
    let start = Instant::now();
    let mut fd = -1;
    // SAFETY: valid path struct and out-pointer.
    check(
        unsafe { ddp_open_file(conn, &mut dp, DDP_O_READ, 0, &mut fd) },
        "open",
    );
    let mut off = 0u64;
    let mut sum = 0u64;
    loop {
        let mut n = 0;
        // SAFETY: buf holds BLOCK bytes.
        check(
            unsafe { ddp_read(fd, buf.as_mut_ptr().cast(), BLOCK as u64, off, &mut n) },
            "read",
        );
        if n == 0 {
            break;
        }
        sum = sum.wrapping_add(buf[n as usize - 1] as u64);
        off += n;
    }
    // SAFETY: plain descriptor.
    check(unsafe { ddp_close_file(fd) }, "close");
    (
        off as f64 / start.elapsed().as_secs_f64() / 1e6,
        std::hint::black_box(off + sum) - sum,
    )
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Writes the first write's stream to standard output.
fn emit(total: u64) {
    use std::io::Write;
    let mut rows = Rows::new(false);
    let mut buf = Vec::with_capacity(BLOCK + 4096);
    let mut out = std::io::stdout().lock();
    let mut off = 0u64;
    while off < total {
        let n = BLOCK.min((total - off) as usize);
        rows.fill(&mut buf, n);
        if out.write_all(&buf).is_err() {
            return;
        }
        off += n as u64;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gib: f64 = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let first_only = args.iter().any(|a| a == "--first-only");
    let total = (gib * (1u64 << 30) as f64) as u64;
    if args.iter().any(|a| a == "--emit") {
        emit(total);
        return;
    }
    let root =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    std::env::set_var("DDBOOST_MOCK_ROOT", root.path());
    admin::create_system(root.path(), "bench", "u", "p", Some("GPDB")).unwrap();
    let sysdir = root.path().join("bench");

    // Generator alone, for reference.
    let mut g = Rows::new(false);
    let mut buf = Vec::new();
    let t = Instant::now();
    let gen_bytes = (256u64 << 20).min(total);
    let mut done = 0;
    while done < gen_bytes {
        g.fill(&mut buf, BLOCK);
        done += BLOCK as u64;
    }
    println!(
        "generator alone:   {:8.0} MB/s",
        gen_bytes as f64 / t.elapsed().as_secs_f64() / 1e6
    );

    // SAFETY: C entry points with valid arguments.
    let conn = unsafe {
        check(ddp_init(c"bench".as_ptr()), "init");
        let mut inst = -1;
        check(
            ddp_instance_create(64 << 20, std::ptr::null_mut(), &mut inst),
            "instance",
        );
        let mut conn = -1;
        check(
            ddp_connect_with_user_pwd(
                inst,
                c"bench".as_ptr(),
                std::ptr::null_mut(),
                c"u".as_ptr(),
                c"p".as_ptr(),
                &mut conn,
            ),
            "connect",
        );
        conn
    };
    let stored = || store::totals(&sysdir).unwrap().stored_bytes;
    println!("stream size: {:.2} GiB", total as f64 / (1u64 << 30) as f64);
    let s0 = stored();
    let r = write_stream(conn, "first", total, false);
    let s1 = stored();
    println!(
        "first write:       {r:8.0} MB/s  stored {:>12} bytes ({:.1}% of logical)",
        s1 - s0,
        (s1 - s0) as f64 * 100.0 / total as f64
    );
    if first_only {
        // SAFETY: plain call.
        unsafe { ddp_shutdown() };
        return;
    }
    let r = write_stream(conn, "repeat", total, false);
    let s2 = stored();
    println!(
        "identical rewrite: {r:8.0} MB/s  stored +{:>11} bytes ({:.3}% of first)",
        s2 - s1,
        (s2 - s1) as f64 * 100.0 / (s1 - s0) as f64
    );
    let r = write_stream(conn, "modified", total, true);
    let s3 = stored();
    println!(
        "modified stream:   {r:8.0} MB/s  stored +{:>11} bytes ({:.1}% of first)",
        s3 - s2,
        (s3 - s2) as f64 * 100.0 / (s1 - s0) as f64
    );
    let (r, n) = read_stream(conn, "first");
    assert_eq!(n, total);
    println!("read-back:         {r:8.0} MB/s");
    println!("peak RSS:          {:8.1} MiB", peak_rss_mib());
    // SAFETY: plain call.
    unsafe { ddp_shutdown() };
}
