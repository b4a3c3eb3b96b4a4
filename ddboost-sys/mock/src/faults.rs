//! Fault injection, latency, bandwidth caps and call tracing, configured by environment
//! variables read at `ddp_init` (and by [`install`] from Rust tests).
//!
//! # `DDBOOST_MOCK_FAULTS`
//!
//! A `;`-separated list of rules `OP[:KEY=VALUE]...`:
//!
//! * `OP`: the call kind: `connect`, `disconnect`, `create_su`, `open`, `close`, `read`,
//!   `write`, `stat`, `fstat`, `statfs`, `mkdir`, `rmdir`, `unlink`, `rename`, `opendir`,
//!   `readdir`, `filecopy_start`, `filecopy_status`, `filecopy_stop`, `stream_counts`,
//!   or `any` (every call kind).
//! * `nth=N`: fire on the Nth matching call of this process (1-based), once
//!   (with `count=M`, on M consecutive matching calls from the Nth; `count=0`: forever).
//! * `after_bytes=K`: fire on every matching call once this process has written
//!   (for `write`) or read (for `read`, and for other kinds: written + read) at least K bytes.
//! * `path=SUBSTR`: only calls whose path (`storage-unit/path`) contains SUBSTR match.
//! * `err=NAME`: the error returned, a `DD_ERR_*` name (with or without the prefix) or a
//!   number; default `DD_ERR_IO`. `DD_ERR_CONN_LOST` also marks the connection lost: every
//!   later call on that connection or its files fails with `DD_ERR_CONN_LOST`.
//! * `when=after`: the call takes effect (a rename done, a file closed and published, bytes
//!   written, a file opened and its handle left open), then returns the error, as a real
//!   system does when the connection drops before its answer; `when=before` (the default)
//!   fails the call without effect.
//!
//! With neither `nth` nor `after_bytes`, a rule fires on every matching call. Examples:
//! `write:nth=3:err=DD_ERR_NOSPACE`, `open:nth=1:err=DD_ERR_PERM:path=data`,
//! `write:after_bytes=5242880:err=DD_ERR_CONN_LOST`, `connect:err=DD_ERR_CONNECT`.
//! A failing `close` does not publish the file (its handle is released);
//! a failing `write` writes nothing.
//!
//! # Other variables
//!
//! * `DDBOOST_MOCK_LATENCY_MS=N`: sleep N ms at the start of every call that reaches the
//!   system (every call but `ddp_init`, `ddp_shutdown`, `ddp_instance_create`,
//!   `ddp_instance_destroy` and `ddp_log_init`, which a real SDK answers locally).
//! * `DDBOOST_MOCK_CONNECT_MS=N`: a login costs N ms more than other calls (session set-up).
//! * `DDBOOST_MOCK_READDIR_BATCH=N`: the entries one round trip of a directory listing
//!   returns (default 1). `ddp_readdir` pays the latency only on the calls at positions 0,
//!   N, 2N, ... of its directory handle (counting every call on the handle, `.` and `..`
//!   included; the final `DD_ERR_EMPTY` call pays only when it starts a new batch), as NFS
//!   READDIR, whose port DD Boost uses, returns many entries per round trip; the others
//!   are answered from the batch already fetched. The real SDK's cost per entry is not
//!   known: 1 charges every entry a round trip, as every other call. Trace lines stay one
//!   per call. [`round_trips`] counts the calls that paid a round trip.
//! * `DDBOOST_MOCK_READ_STREAMS`, `DDBOOST_MOCK_WRITE_STREAMS`, `DDBOOST_MOCK_TOTAL_STREAMS`:
//!   the stream limits `ddp_get_stream_counts` reports (default 50, 90, 140) and
//!   `ddp_open_file` enforces: an open that would exceed them fails with
//!   `DD_ERR_STREAM_LIMIT`.
//! * `DDBOOST_MOCK_STREAM_MBPS=R`: cap each open read or write stream at R MB/s (10^6 B/s).
//! * `DDBOOST_MOCK_SYSTEM_MBPS=R`: cap a system at R MB/s shared by all its open streams in
//!   all processes (each stream gets R divided by the system's in-use stream count).
//! * `DDBOOST_MOCK_TRACE=FILE`: append one line per call to FILE:
//!   `op=write path=SU/dir/file count=1048576 offset=0 result=0` (`path=-` when none).
//!
//! # Emulating an SDK whose structures differ from the header
//!
//! * `DDBOOST_MOCK_WIDE_STRUCTS=1`: `ddp_stat`, `ddp_fstat`, `ddp_statfs`, `ddp_readdir` and
//!   `ddp_get_stream_counts` write their structure as if it were larger than the header
//!   declares: the declared structure, then [`WIDE_FILL`] bytes up to
//!   [`ddboost::struct_buffer_len`] of its size (4 times, at least 4 KiB). Only for
//!   callers that pass buffers that large (ddboost-sys does); a program using the header's
//!   structures as declared must not set it.
//! * `DDBOOST_MOCK_STAT_SIZE_DELTA=N`: `ddp_stat` and `ddp_fstat` report every regular
//!   file's `st_size` off by N bytes (N may be negative; the result saturates at 0), as a
//!   layout mismatch between the header and the library would.

use crate::error::DdError;
use crate::ffi::dd_errno_t;
use parking_lot::{Mutex, RwLock};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

#[derive(Debug)]
pub struct Rule {
    pub op: String,
    pub nth: Option<u64>,
    pub count: u64,
    pub after_bytes: Option<u64>,
    pub path: Option<String>,
    pub err: dd_errno_t,
    /// `when=after`: the call takes effect before it fails.
    pub after: bool,
    seen: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Config {
    pub rules: Vec<Rule>,
    pub latency: Option<Duration>,
    /// `DDBOOST_MOCK_CONNECT_MS`: extra cost of a login.
    pub connect_cost: Option<Duration>,
    /// `DDBOOST_MOCK_*_STREAMS`: the stream limits reported and enforced.
    pub limits: StreamLimits,
    pub stream_bps: Option<f64>,
    pub system_bps: Option<f64>,
    pub trace: Option<std::path::PathBuf>,
    /// `DDBOOST_MOCK_WIDE_STRUCTS=1`.
    pub wide_structs: bool,
    /// `DDBOOST_MOCK_STAT_SIZE_DELTA`.
    pub stat_size_delta: i64,
    /// `DDBOOST_MOCK_READDIR_BATCH`: entries per round trip of `ddp_readdir` (0 counts as 1).
    pub readdir_batch: u64,
}

/// Stream limits of every system (`DDBOOST_MOCK_READ_STREAMS`, `DDBOOST_MOCK_WRITE_STREAMS`,
/// `DDBOOST_MOCK_TOTAL_STREAMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub read: i32,
    pub write: i32,
    pub total: i32,
}

impl Default for StreamLimits {
    /// A mid-range appliance's limits.
    fn default() -> Self {
        StreamLimits {
            read: 50,
            write: 90,
            total: 140,
        }
    }
}

/// The byte the tail of a wide structure is filled with (`DDBOOST_MOCK_WIDE_STRUCTS`).
pub const WIDE_FILL: u8 = 0xA5;

/// Parses a `DDBOOST_MOCK_FAULTS` value.
pub fn parse_faults(spec: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = part.split(':');
        let op = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut r = Rule {
            op,
            nth: None,
            count: 1,
            after_bytes: None,
            path: None,
            err: crate::ffi::DD_ERR_IO,
            after: false,
            seen: AtomicU64::new(0),
        };
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("bad fault option {kv:?} in {part:?}"))?;
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| format!("bad number {v:?} in {part:?}"))
            };
            match k.trim() {
                "nth" => r.nth = Some(num()?),
                "count" => r.count = num()?,
                "after_bytes" => r.after_bytes = Some(num()?),
                "path" => r.path = Some(v.to_string()),
                "err" => r.err = DdError::parse(v).ok_or_else(|| format!("unknown error {v:?}"))?,
                "when" => {
                    r.after = match v {
                        "before" => false,
                        "after" => true,
                        _ => {
                            return Err(format!("when={v:?} in {part:?}: expected before or after"))
                        }
                    }
                }
                _ => return Err(format!("unknown fault option {k:?} in {part:?}")),
            }
        }
        rules.push(r);
    }
    Ok(rules)
}

/// An integer variable: unset or empty → `default`; not an integer → an error naming it.
fn env_int<T: std::str::FromStr>(name: &str, default: T, what: &str) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?}: expected {what}")),
        _ => Ok(default),
    }
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let rules = match std::env::var("DDBOOST_MOCK_FAULTS") {
            Ok(s) => parse_faults(&s)?,
            Err(_) => Vec::new(),
        };
        Ok(Config {
            rules,
            latency: env_f64("DDBOOST_MOCK_LATENCY_MS")
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            connect_cost: env_f64("DDBOOST_MOCK_CONNECT_MS")
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            limits: {
                let d = StreamLimits::default();
                let limit = |name: &str, default: i32| -> Result<i32, String> {
                    match env_int(name, default, "a positive integer")? {
                        n if n > 0 => Ok(n),
                        n => Err(format!("{name}={n}: expected a positive integer")),
                    }
                };
                StreamLimits {
                    read: limit("DDBOOST_MOCK_READ_STREAMS", d.read)?,
                    write: limit("DDBOOST_MOCK_WRITE_STREAMS", d.write)?,
                    total: limit("DDBOOST_MOCK_TOTAL_STREAMS", d.total)?,
                }
            },
            stream_bps: env_f64("DDBOOST_MOCK_STREAM_MBPS").map(|m| m * 1e6),
            system_bps: env_f64("DDBOOST_MOCK_SYSTEM_MBPS").map(|m| m * 1e6),
            trace: std::env::var_os("DDBOOST_MOCK_TRACE")
                .filter(|v| !v.is_empty())
                .map(Into::into),
            wide_structs: match env_int("DDBOOST_MOCK_WIDE_STRUCTS", 0u8, "0 or 1")? {
                0 => false,
                1 => true,
                n => return Err(format!("DDBOOST_MOCK_WIDE_STRUCTS={n}: expected 0 or 1")),
            },
            stat_size_delta: env_int("DDBOOST_MOCK_STAT_SIZE_DELTA", 0i64, "an integer")?,
            readdir_batch: match env_int("DDBOOST_MOCK_READDIR_BATCH", 1u64, "a positive integer")?
            {
                0 => return Err("DDBOOST_MOCK_READDIR_BATCH=0: expected a positive integer".into()),
                n => n,
            },
        })
    }
}

static CONFIG: LazyLock<RwLock<Config>> = LazyLock::new(|| RwLock::new(Config::default()));
static TRACE_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);
pub static BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);
pub static BYTES_READ: AtomicU64 = AtomicU64::new(0);
static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

/// Replaces the configuration (resets fault counters and byte counters).
pub fn install(cfg: Config) {
    let trace = cfg.trace.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    *TRACE_FILE.lock() = trace;
    BYTES_WRITTEN.store(0, Ordering::Relaxed);
    BYTES_READ.store(0, Ordering::Relaxed);
    ROUND_TRIPS.store(0, Ordering::Relaxed);
    *CONFIG.write() = cfg;
}

/// One round trip to the system: counted, and the configured latency slept.
pub(crate) fn round_trip() {
    ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    if let Some(d) = latency() {
        std::thread::sleep(d);
    }
}

/// The calls of this process that paid a round trip (and so the latency) since the
/// configuration was installed: every call but the local ones, and of `ddp_readdir` only
/// the first of each batch (`DDBOOST_MOCK_READDIR_BATCH`).
pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(Ordering::Relaxed)
}

/// Entries one round trip of `ddp_readdir` returns (`DDBOOST_MOCK_READDIR_BATCH`, at least 1).
pub fn readdir_batch() -> u64 {
    CONFIG.read().readdir_batch.max(1)
}

pub fn latency() -> Option<Duration> {
    CONFIG.read().latency
}

/// The extra cost of a login (`DDBOOST_MOCK_CONNECT_MS`).
pub fn connect_cost() -> Option<Duration> {
    CONFIG.read().connect_cost
}

/// The stream limits of every system.
pub fn limits() -> StreamLimits {
    CONFIG.read().limits
}

/// Whether structures are written as if wider than declared (`DDBOOST_MOCK_WIDE_STRUCTS`).
pub fn wide_structs() -> bool {
    CONFIG.read().wide_structs
}

/// How far off `ddp_stat`/`ddp_fstat` report a file's size (`DDBOOST_MOCK_STAT_SIZE_DELTA`).
pub fn stat_size_delta() -> i64 {
    CONFIG.read().stat_size_delta
}

pub fn caps() -> (Option<f64>, Option<f64>) {
    let c = CONFIG.read();
    (c.stream_bps, c.system_bps)
}

/// Checks the fault rules for a call of kind `op` on `path`. Returns the error to inject,
/// and whether the call takes effect before it fails (`when=after`).
pub fn check(op: &str, path: Option<&str>) -> Option<(dd_errno_t, bool)> {
    let cfg = CONFIG.read();
    for r in &cfg.rules {
        if r.op != op && r.op != "any" {
            continue;
        }
        if let Some(p) = &r.path {
            match path {
                Some(cp) if cp.contains(p.as_str()) => {}
                _ => continue,
            }
        }
        if let Some(k) = r.after_bytes {
            let w = BYTES_WRITTEN.load(Ordering::Relaxed);
            let rd = BYTES_READ.load(Ordering::Relaxed);
            let b = match op {
                "write" => w,
                "read" => rd,
                _ => w + rd,
            };
            if b < k {
                continue;
            }
        }
        let n = r.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(nth) = r.nth {
            if n < nth || (r.count != 0 && n >= nth + r.count) {
                continue;
            }
        }
        return Some((r.err, r.after));
    }
    None
}

/// Appends a trace line when tracing is on.
pub fn trace(op: &str, path: Option<&str>, count: u64, offset: u64, result: dd_errno_t) {
    let mut g = TRACE_FILE.lock();
    if let Some(f) = g.as_mut() {
        let line = format!(
            "op={op} path={} count={count} offset={offset} result={result}\n",
            path.unwrap_or("-")
        );
        let _ = f.write_all(line.as_bytes());
    }
}
