//! Fault injection, latency, bandwidth caps and tracing. The configuration is process-wide,
//! so these tests run one at a time.

mod support;
use ddboost_mock::faults::{self, Config};
use ddboost_mock::ffi::*;
use ddboost_mock::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the test lock (after the library is initialised, so ddp_init's own configuration
/// from the environment is not installed over the test's).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _ = root();
    g
}

fn with_faults(spec: &str) -> std::sync::MutexGuard<'static, ()> {
    let g = serial();
    faults::install(Config {
        rules: faults::parse_faults(spec).unwrap(),
        ..Default::default()
    });
    g
}

fn reset() {
    faults::install(Config::default());
}

#[test]
fn nth_write_fails_with_nospace() {
    let _g = with_faults("write:nth=3:err=DD_ERR_NOSPACE");
    system("f-nth");
    let c = connect("f-nth");
    let fd = create(c, "f");
    let b = vec![1u8; 1000];
    assert_eq!(write_at(fd, &b, 0), Ok(1000));
    assert_eq!(write_at(fd, &b, 1000), Ok(1000));
    assert_eq!(write_at(fd, &b, 2000), Err(DD_ERR_NOSPACE));
    // The failed write wrote nothing; the next one continues.
    assert_eq!(write_at(fd, &b, 2000), Ok(1000));
    assert_eq!(close(fd), 0);
    assert_eq!(read_file(c, "f").unwrap().len(), 3000);
    reset();
}

#[test]
fn path_restricted_open_fault() {
    let _g = with_faults("open:nth=1:err=PERM:path=backup.data");
    system("f-path");
    let c = connect("f-path");
    assert_eq!(
        open(c, "backup.sum", DDP_O_CREAT | DDP_O_RDWR).map(close),
        Ok(0)
    );
    assert_eq!(
        open(c, "backup.data", DDP_O_CREAT | DDP_O_RDWR),
        Err(DD_ERR_PERM)
    );
    assert!(
        open(c, "backup.data", DDP_O_CREAT | DDP_O_RDWR)
            .map(close)
            .is_ok(),
        "fires once"
    );
    reset();
}

fn with_faults_reset(spec: &str) {
    faults::install(Config {
        rules: faults::parse_faults(spec).unwrap(),
        ..Default::default()
    });
}

#[test]
fn connection_lost_after_bytes() {
    let _g = with_faults("write:after_bytes=5242880:err=DD_ERR_CONN_LOST");
    system("f-lost");
    let c = connect("f-lost");
    let c2 = connect("f-lost");
    let fd = create(c, "f");
    let b = vec![7u8; 1 << 20];
    let mut off = 0;
    let mut err = None;
    for _ in 0..10 {
        match write_at(fd, &b, off) {
            Ok(n) => off += n,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(err, Some(DD_ERR_CONN_LOST));
    assert_eq!(off, 5 << 20);
    // Every later call on that connection fails.
    assert_eq!(stat(c, "f"), Err(DD_ERR_CONN_LOST));
    assert_eq!(
        open(c, "g", DDP_O_CREAT | DDP_O_RDWR),
        Err(DD_ERR_CONN_LOST)
    );
    assert_eq!(mkdir(c, "d"), DD_ERR_CONN_LOST);
    assert_eq!(close(fd), DD_ERR_CONN_LOST);
    // The file was never published; another connection still works.
    reset();
    assert_eq!(stat(c2, "f").unwrap().st_size, 0);
    put_file(c2, "ok", b"fine");
}

#[test]
fn close_rename_and_filecopy_faults() {
    let _g = with_faults(
        "close:nth=1;rename:nth=1:err=DD_ERR_NOT_FOUND;filecopy_status:nth=2:err=DD_ERR_IO",
    );
    system("f-misc");
    let c = connect("f-misc");
    let fd = create(c, "a");
    write_at(fd, &vec![3u8; 100_000], 0).unwrap();
    assert_eq!(close(fd), DD_ERR_IO);
    assert_eq!(close(fd), DD_ERR_BADF, "a failed close releases the handle");
    assert_eq!(
        stat(c, "a").unwrap().st_size,
        0,
        "a failed close does not publish"
    );
    put_file(c, "b", &vec![4u8; 600_000]);
    assert_eq!(rename(c, "b", "c"), DD_ERR_NOT_FOUND);
    assert_eq!(rename(c, "b", "c"), 0);
    let s = open(c, "c", DDP_O_READ).unwrap();
    let d = create(c, "copy");
    // SAFETY: plain descriptors.
    assert_eq!(unsafe { ddp_filecopy_start(s, d, std::ptr::null_mut()) }, 0);
    let mut done = 0;
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { ddp_filecopy_status(s, d, 0, 262_144, &mut done) },
        0
    );
    // SAFETY: valid out-pointer.
    assert_eq!(
        unsafe { ddp_filecopy_status(s, d, done, 262_144, &mut done) },
        DD_ERR_IO
    );
    // SAFETY: plain descriptors.
    unsafe { ddp_filecopy_stop(c, d) };
    close(d);
    close(s);
    reset();
}

#[test]
fn connect_fault_and_any() {
    let _g = with_faults("connect:err=DD_ERR_CONNECT");
    system("f-conn");
    assert_eq!(try_connect("f-conn", USER, PASSWORD), Err(DD_ERR_CONNECT));
    with_faults_reset("any:nth=2:count=2:err=DD_ERR_STREAM_LIMIT");
    let c = try_connect("f-conn", USER, PASSWORD).unwrap(); // call 1
    assert_eq!(mkdir(c, "x"), DD_ERR_STREAM_LIMIT); // call 2
    assert_eq!(mkdir(c, "x"), DD_ERR_STREAM_LIMIT); // call 3
    assert_eq!(mkdir(c, "x"), 0); // call 4
    reset();
}

#[test]
fn a_fault_after_the_effect_makes_the_call_then_fails_it() {
    let _g = with_faults("rename:nth=1:err=DD_ERR_CONN_LOST:when=after;close:nth=1:when=after");
    system("f-after");
    let c = connect("f-after");
    let fd = create(c, "a");
    write_all(fd, b"published", 4).unwrap();
    // The close publishes the file, then reports the error.
    assert_eq!(close(fd), DD_ERR_IO);
    let c2 = connect("f-after");
    assert_eq!(read_file(c2, "a").unwrap(), b"published");
    // The rename is done, then the connection is lost.
    assert_eq!(rename(c, "a", "b"), DD_ERR_CONN_LOST);
    assert_eq!(stat(c, "b"), Err(DD_ERR_CONN_LOST));
    assert_eq!(read_file(c2, "b").unwrap(), b"published");
    assert!(stat(c2, "a").is_err());
    reset();
    assert!(faults::parse_faults("rename:when=later").is_err());
}

#[test]
fn bad_specs_are_rejected() {
    assert!(faults::parse_faults("write:nth=x").is_err());
    assert!(faults::parse_faults("write:bogus=1").is_err());
    assert!(faults::parse_faults("write:err=DD_ERR_NOPE").is_err());
    assert!(faults::parse_faults("write:nth").is_err());
    let r = faults::parse_faults("write:nth=3:err=NOSPACE; open:path=x").unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].err, DD_ERR_NOSPACE);
    assert_eq!(r[1].path.as_deref(), Some("x"));
}

#[test]
fn environment_configuration() {
    let _g = serial();
    std::env::set_var("DDBOOST_MOCK_FAULTS", "write:nth=3:err=DD_ERR_NOSPACE;open:nth=1:err=DD_ERR_PERM;write:after_bytes=5242880:err=DD_ERR_CONN_LOST;rename:nth=1;close:nth=1;filecopy_status:nth=2;connect:err=DD_ERR_CONNECT");
    std::env::set_var("DDBOOST_MOCK_LATENCY_MS", "2");
    std::env::set_var("DDBOOST_MOCK_STREAM_MBPS", "150");
    std::env::set_var("DDBOOST_MOCK_SYSTEM_MBPS", "2000");
    let cfg = Config::from_env();
    for v in [
        "DDBOOST_MOCK_FAULTS",
        "DDBOOST_MOCK_LATENCY_MS",
        "DDBOOST_MOCK_STREAM_MBPS",
        "DDBOOST_MOCK_SYSTEM_MBPS",
    ] {
        std::env::remove_var(v);
    }
    let cfg = cfg.unwrap();
    assert_eq!(cfg.rules.len(), 7);
    assert_eq!(cfg.latency, Some(Duration::from_millis(2)));
    assert_eq!(cfg.stream_bps, Some(150e6));
    assert_eq!(cfg.system_bps, Some(2000e6));
}

#[test]
fn latency_per_call() {
    let _g = serial();
    faults::install(Config {
        latency: Some(Duration::from_millis(20)),
        ..Default::default()
    });
    system("f-lat");
    let c = connect("f-lat");
    let t = Instant::now();
    for _ in 0..5 {
        let _ = stat(c, "nothing");
    }
    assert!(t.elapsed() >= Duration::from_millis(100));
    reset();
}

/// Lists `folder` (300 entries, `.` and `..` with them: 303 `ddp_readdir` calls with the
/// final `DD_ERR_EMPTY`) at `batch` entries per round trip; returns the round trips of
/// the listing (open, readdir, close) and its time.
fn list_batched(folder: &str, latency_ms: u64, batch: u64) -> (u64, Duration) {
    faults::install(Config {
        latency: Some(Duration::from_millis(latency_ms)),
        readdir_batch: batch,
        ..Default::default()
    });
    let c = connect("f-batch");
    let before = faults::round_trips();
    let t = Instant::now();
    let names = list(c, folder).unwrap();
    let elapsed = t.elapsed();
    assert_eq!(names.len(), 302);
    (faults::round_trips() - before, elapsed)
}

#[test]
fn readdir_pays_one_round_trip_per_batch() {
    let _g = serial();
    reset();
    let sys = system("f-batch");
    let spec = ddboost_mock::fill::Fill {
        su: SU,
        folder: "listed",
        prefix: "entry_",
        first: 0,
        objects: 300,
        size: 10,
        seed: 1,
        records: false,
    };
    ddboost_mock::fill::fill(&sys, &spec, |_| {}).unwrap();
    // Open and close one each; readdir: positions 0..=302 of the handle.
    assert_eq!(list_batched("listed", 0, 1).0, 1 + 303 + 1);
    assert_eq!(
        list_batched("listed", 0, 100).0,
        1 + 4 + 1,
        "0, 100, 200, 300"
    );
    assert_eq!(
        list_batched("listed", 0, 151).0,
        1 + 3 + 1,
        "the EMPTY call starts a batch"
    );
    assert_eq!(
        list_batched("listed", 0, 303).0,
        1 + 1 + 1,
        "the EMPTY call is in the batch"
    );
    assert_eq!(list_batched("listed", 0, 1000).0, 1 + 1 + 1);
    // Timed: 6 round trips of 50 ms, where one per entry would take over 15 s.
    let (trips, took) = list_batched("listed", 50, 100);
    assert_eq!(trips, 6);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A call on no open handle pays one round trip, as before.
    let before = faults::round_trips();
    let mut ent = ddp_dirent_t {
        d_name: [0; DDP_MAX_NAME_LEN],
    };
    // SAFETY: valid out-pointer; the descriptor is not open.
    assert_eq!(unsafe { ddp_readdir(987_654, &mut ent) }, DD_ERR_BADF);
    assert_eq!(faults::round_trips() - before, 1);
    reset();
}

#[test]
fn readdir_batch_from_the_environment() {
    let _g = serial();
    assert_eq!(Config::from_env().unwrap().readdir_batch, 1, "default");
    std::env::set_var("DDBOOST_MOCK_READDIR_BATCH", "250");
    let cfg = Config::from_env();
    std::env::set_var("DDBOOST_MOCK_READDIR_BATCH", "0");
    let zero = Config::from_env();
    std::env::remove_var("DDBOOST_MOCK_READDIR_BATCH");
    assert_eq!(cfg.unwrap().readdir_batch, 250);
    assert!(zero.unwrap_err().contains("DDBOOST_MOCK_READDIR_BATCH"));
}

#[test]
fn local_calls_cost_no_latency_and_logins_cost_more() {
    let _g = serial();
    faults::install(Config {
        latency: Some(Duration::from_millis(30)),
        connect_cost: Some(Duration::from_millis(50)),
        ..Default::default()
    });
    system("f-local");
    let t = Instant::now();
    let inst = instance();
    assert!(t.elapsed() < Duration::from_millis(30), "{:?}", t.elapsed());
    let _ = inst;
    let t = Instant::now();
    let _c = connect("f-local");
    assert!(
        t.elapsed() >= Duration::from_millis(80),
        "{:?}",
        t.elapsed()
    );
    reset();
}

#[test]
fn stream_limits_are_reported_and_enforced() {
    let _g = serial();
    std::env::set_var("DDBOOST_MOCK_READ_STREAMS", "2");
    std::env::set_var("DDBOOST_MOCK_WRITE_STREAMS", "1");
    std::env::set_var("DDBOOST_MOCK_TOTAL_STREAMS", "3");
    let cfg = Config::from_env();
    std::env::set_var("DDBOOST_MOCK_READ_STREAMS", "0");
    let bad = Config::from_env();
    for v in [
        "DDBOOST_MOCK_READ_STREAMS",
        "DDBOOST_MOCK_WRITE_STREAMS",
        "DDBOOST_MOCK_TOTAL_STREAMS",
    ] {
        std::env::remove_var(v);
    }
    assert!(bad.is_err());
    faults::install(cfg.unwrap());
    system("f-limits");
    let c = connect("f-limits");
    put_file(c, "r", b"data");
    let mut s = ddp_stream_counts_t::default();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { ddp_get_stream_counts(c, &mut s) }, 0);
    assert_eq!(
        (
            s.limits.backup_read_streams,
            s.limits.backup_write_streams,
            s.limits.total_streams_hard_limit
        ),
        (2, 1, 3)
    );
    let r1 = open(c, "r", DDP_O_READ).unwrap();
    let r2 = open(c, "r", DDP_O_READ).unwrap();
    assert_eq!(open(c, "r", DDP_O_READ), Err(DD_ERR_STREAM_LIMIT));
    let w = create(c, "w");
    // The total limit: 2 reads and 1 write are open.
    faults::install(Config {
        limits: faults::StreamLimits {
            read: 2,
            write: 2,
            total: 3,
        },
        ..Default::default()
    });
    assert_eq!(
        open(c, "w2", DDP_O_CREAT | DDP_O_RDWR),
        Err(DD_ERR_STREAM_LIMIT)
    );
    close(r1);
    let w2 = create(c, "w2");
    assert_eq!(open(c, "r", DDP_O_READ), Err(DD_ERR_STREAM_LIMIT));
    for fd in [r2, w, w2] {
        close(fd);
    }
    reset();
}

fn timed_write(c: i32, name: &str, bytes: usize) -> Duration {
    let t = Instant::now();
    let fd = create(c, name);
    write_all(fd, &vec![9u8; bytes], 1 << 20).unwrap();
    close(fd);
    t.elapsed()
}

#[test]
fn stream_and_system_bandwidth_caps() {
    let _g = serial();
    system("f-bw");
    let c = connect("f-bw");
    let fast = timed_write(c, "fast", 4 << 20);
    faults::install(Config {
        stream_bps: Some(20e6),
        ..Default::default()
    });
    // 4 MiB at 20 MB/s: at least 0.2 s (the first MiB goes at once).
    let slow = timed_write(c, "slow", 4 << 20);
    assert!(
        slow >= Duration::from_millis(150),
        "capped stream took {slow:?} (uncapped {fast:?})"
    );
    // Reads are capped too.
    let t = Instant::now();
    read_file(c, "slow").unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    // A system cap is shared: two concurrent streams at 40 MB/s together take about as long
    // as one stream of the sum.
    faults::install(Config {
        system_bps: Some(40e6),
        ..Default::default()
    });
    let t = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                let c = connect("f-bw");
                timed_write(c, &format!("sys{i}"), 4 << 20);
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    // 8 MiB at 40 MB/s with the first MiB of each stream free: at least 0.15 s (each stream
    // alone at 40 MB/s would take 0.08 s).
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "system cap: {:?}",
        t.elapsed()
    );
    reset();
}

#[test]
fn trace_lines_per_call() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.log");
    faults::install(Config {
        trace: Some(trace.clone()),
        ..Default::default()
    });
    system("f-trace");
    let c = connect("f-trace");
    let fd = create(c, "traced");
    write_all(fd, &vec![5u8; (3 << 20) + 100], 1 << 20).unwrap();
    close(fd);
    reset();
    let t = std::fs::read_to_string(&trace).unwrap();
    let writes: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("op=write path=GPDB/traced "))
        .collect();
    assert_eq!(writes.len(), 4);
    assert!(writes[..3]
        .iter()
        .all(|l| l.contains(" count=1048576 ") && l.ends_with("result=0")));
    assert!(writes[3].contains(" count=100 offset=3145728 "));
    assert!(t.lines().any(|l| l.starts_with("op=connect path=f-trace")));
    assert!(t
        .lines()
        .any(|l| l.starts_with("op=close path=GPDB/traced count=3145828")));
}
