//! Where a command's time goes: its time waiting for its input or output
//! (gpbackup or gprestore), in the storage's calls, waiting for a stream,
//! waiting for a connection of the connection broker, and the rest (the
//! plugin's own work: hashing, verifying), with how many storage calls it
//! made and how long each took (a histogram of fixed buckets), and what its
//! first broker connection met (the broker's connections in use, the
//! requests waiting).
//!
//! Each command counts into its [`Scope`]'s tally (a plugin process's own,
//! or in the connection broker its request's), from whichever thread of the
//! command does the work. Counting is a few atomic additions.

use std::io::{self, Read, Write};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::scope::Scope;
pub use super::tally::{BrokerSeen, Counts, Split, Tally, BUCKETS, BUCKET_COUNT};

/// When this process started, as an instant and as Unix time (µs): noted
/// first thing in `app::run`, less the time it took to get there since its
/// caller created it (loading the program and its libraries).
static PROCESS_START: LazyLock<(Instant, u64)> = LazyLock::new(|| {
    let (now, unix) = (Instant::now(), std::time::SystemTime::now());
    let before_main = time_before_main();
    let unix = unix
        .checked_sub(before_main)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    (now.checked_sub(before_main).unwrap_or(now), unix)
});

/// The most a process's start is moved back (loading takes a few
/// milliseconds).
const MOST_BEFORE_MAIN: Duration = Duration::from_millis(100);

/// How long this process has run since its caller created it, read before
/// it starts a thread or waits on anything: its processor time
/// (`getrusage`), loading the program and its libraries. Time it waited
/// for a processor meanwhile is not in it, so a start is never moved back
/// too far.
fn time_before_main() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let us = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    getrusage(UsageWho::RUSAGE_SELF)
        .map_or(Duration::ZERO, |u| us(u.user_time()) + us(u.system_time()))
        .min(MOST_BEFORE_MAIN)
}

/// Notes when this process started.
pub fn note_process_start() {
    LazyLock::force(&PROCESS_START);
}

/// When this process started (Unix time, µs).
pub fn process_start_unix_us() -> u64 {
    PROCESS_START.1
}

/// When the calling thread's command began for its caller: a plugin
/// process's start; in the connection broker, its client's start (when
/// the client said); else `started`.
pub fn began(started: Instant) -> Instant {
    let scope = Scope::current();
    let began = match scope.is_process() {
        true => Some(PROCESS_START.0),
        false => scope.tally.began(),
    };
    began.filter(|b| *b <= started).unwrap_or(started)
}

/// A storage call of the calling thread's command begins (`None`) or ended
/// after `d` (the DD Boost SDK's call observer).
pub fn storage_call(d: Option<Duration>) {
    let scope = Scope::current();
    match d {
        None => scope.tally.call_began(),
        Some(d) => scope.tally.storage_call(d),
    }
}

/// The calling thread's command waited `d` for its input or output.
pub fn io_wait(d: Duration) {
    Scope::current().tally.io_wait(d);
}

/// The calling thread's command paused `d` waiting for a storage stream.
pub fn stream_wait(d: Duration) {
    Scope::current().tally.stream_wait(d);
}

/// The calling thread's command took a connection of the connection broker
/// after waiting `waited`, meeting `in_use` connections in use (its own
/// included) and `waiting` requests waiting (itself included when it waited).
pub fn broker_connection(in_use: usize, waiting: usize, waited: Duration) {
    let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
    Scope::current()
        .tally
        .broker_connection(n(in_use), n(waiting), waited);
}

/// The calling thread's command retried a storage call.
pub fn retry() {
    Scope::current().tally.retry();
}

/// What the calling thread's command counted so far.
pub fn current() -> Counts {
    Scope::current().tally.snapshot()
}

/// A reader or writer whose calls count as waiting for input or output.
pub struct Timed<T>(pub T);

fn timed<R>(f: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let r = f();
    io_wait(started.elapsed());
    r
}

impl<T: Read> Read for Timed<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        timed(|| self.0.read(buf))
    }
}

impl<T: Write> Write for Timed<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        timed(|| self.0.write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        timed(|| self.0.write_all(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        timed(|| self.0.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_fall_into_their_buckets() {
        let request = Scope::request(5, "backup_data", None);
        let _in = request.enter();
        for d in [
            Duration::from_micros(500),
            Duration::from_millis(5),
            Duration::from_secs(9),
        ] {
            storage_call(None);
            storage_call(Some(d));
        }
        stream_wait(Duration::from_millis(50));
        let mut out = Timed(Vec::new());
        out.write_all(b"x").unwrap();
        let c = current();
        assert_eq!((c.calls, c.waits, c.buckets[0], c.buckets[2]), (3, 1, 1, 1));
        assert_eq!(c.buckets[BUCKETS.len()], 1);
        assert!(c.io_ns > 0 && c.wait_ns >= 50_000_000);
        assert_eq!(Scope::process().tally.snapshot().waits, 0);
    }
}
