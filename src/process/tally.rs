//! A command's counts of where its time went (see `process::metrics`):
//! atomic, so that any thread of the command adds to them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds, in seconds, of the storage call latency histogram's
/// buckets (the last bucket, +Inf, follows them).
pub const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Buckets with +Inf.
pub const BUCKET_COUNT: usize = BUCKETS.len() + 1;

/// A command's counts so far (atomic: any thread of the command adds).
#[derive(Default)]
pub struct Tally {
    io_ns: AtomicU64,
    storage_ns: AtomicU64,
    busy_ns: AtomicU64,
    /// Storage calls in flight, and since when one has been.
    busy: Mutex<(u64, Option<Instant>)>,
    wait_ns: AtomicU64,
    calls: AtomicU64,
    waits: AtomicU64,
    retries: AtomicU64,
    buckets: [AtomicU64; BUCKET_COUNT],
    /// Time waiting for a connection broker's connection.
    conn_wait_ns: AtomicU64,
    /// What the command's first broker connection met: the broker's
    /// connections in use and the requests waiting.
    broker: Mutex<Option<(u64, u64)>>,
    /// When the process the command serves began, when known (in the
    /// connection broker, its client).
    began: Mutex<Option<Instant>>,
}

/// A snapshot of a [`Tally`], or the sum of many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub io_ns: u64,
    /// The storage calls' durations added up.
    pub storage_ns: u64,
    /// The time at least one storage call was in flight (calls on several
    /// connections at once count once).
    pub busy_ns: u64,
    pub wait_ns: u64,
    pub calls: u64,
    pub waits: u64,
    pub retries: u64,
    pub buckets: [u64; BUCKET_COUNT],
    /// Time waiting for a connection broker's connection.
    pub conn_wait_ns: u64,
    pub broker: BrokerSeen,
}

/// What commands met as they took their first connection of the connection
/// broker: its connections in use (their own included) and the requests
/// waiting for a first connection (their own included when they waited).
/// One command's, or many added up (sums and maxima); none for a command
/// that did not go through the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerSeen {
    /// Commands that took a broker connection.
    pub requests: u64,
    pub in_use_sum: u64,
    pub in_use_max: u64,
    pub waiting_sum: u64,
    pub waiting_max: u64,
}

impl BrokerSeen {
    /// One command's: it met `in_use` connections in use and `waiting`
    /// requests waiting.
    pub fn one(in_use: u64, waiting: u64) -> BrokerSeen {
        BrokerSeen {
            requests: 1,
            in_use_sum: in_use,
            in_use_max: in_use,
            waiting_sum: waiting,
            waiting_max: waiting,
        }
    }

    /// Adds `other` (its commands) into this.
    pub fn add(&mut self, other: &BrokerSeen) {
        self.requests = self.requests.saturating_add(other.requests);
        self.in_use_sum = self.in_use_sum.saturating_add(other.in_use_sum);
        self.in_use_max = self.in_use_max.max(other.in_use_max);
        self.waiting_sum = self.waiting_sum.saturating_add(other.waiting_sum);
        self.waiting_max = self.waiting_max.max(other.waiting_max);
    }

    /// The mean connections in use the commands met (0 without any).
    pub fn in_use_mean(&self) -> f64 {
        mean(self.in_use_sum, self.requests)
    }

    /// The mean requests waiting the commands met (0 without any).
    pub fn waiting_mean(&self) -> f64 {
        mean(self.waiting_sum, self.requests)
    }
}

fn mean(sum: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum as f64 / n as f64
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Tally {
    /// A storage call begins.
    pub fn call_began(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.0 += 1;
        busy.1.get_or_insert_with(Instant::now);
    }

    /// A storage call that began ([`Tally::call_began`]) took `d`.
    pub fn storage_call(&self, d: Duration) {
        {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            busy.0 = busy.0.saturating_sub(1);
            if busy.0 == 0 {
                if let Some(since) = busy.1.take() {
                    self.busy_ns
                        .fetch_add(nanos(since.elapsed()), Ordering::Relaxed);
                }
            }
        }
        self.storage_ns.fetch_add(nanos(d), Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let secs = d.as_secs_f64();
        let bucket = BUCKETS.iter().position(|b| secs <= *b);
        self.buckets[bucket.unwrap_or(BUCKETS.len())].fetch_add(1, Ordering::Relaxed);
    }

    /// The command waited `d` for its input or output.
    pub fn io_wait(&self, d: Duration) {
        self.io_ns.fetch_add(nanos(d), Ordering::Relaxed);
    }

    /// The command paused `d` waiting for a storage stream.
    pub fn stream_wait(&self, d: Duration) {
        self.wait_ns.fetch_add(nanos(d), Ordering::Relaxed);
        self.waits.fetch_add(1, Ordering::Relaxed);
    }

    /// The command tried a storage call again.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The command took a connection of the connection broker after waiting
    /// `waited` for it; as it did, `in_use` connections were in use (its own
    /// included) and `waiting` requests waited for one (itself included when
    /// it waited). A command's first connection is the one its facts keep.
    pub fn broker_connection(&self, in_use: u64, waiting: u64, waited: Duration) {
        self.conn_wait_ns
            .fetch_add(nanos(waited), Ordering::Relaxed);
        self.broker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert((in_use, waiting));
    }

    /// The process the command serves began at `us` (Unix time, µs).
    pub fn began_at_unix_us(&self, us: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let ago = Duration::from_micros(now.saturating_sub(us));
        *self.began.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now().checked_sub(ago);
    }

    /// When the process the command serves began, if known.
    pub fn began(&self) -> Option<Instant> {
        *self.began.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was counted so far.
    pub fn snapshot(&self) -> Counts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            io_ns: get(&self.io_ns),
            storage_ns: get(&self.storage_ns),
            busy_ns: get(&self.busy_ns),
            wait_ns: get(&self.wait_ns),
            calls: get(&self.calls),
            waits: get(&self.waits),
            retries: get(&self.retries),
            buckets: std::array::from_fn(|i| get(&self.buckets[i])),
            conn_wait_ns: get(&self.conn_wait_ns),
            broker: match *self.broker.lock().unwrap_or_else(|p| p.into_inner()) {
                Some((in_use, waiting)) => BrokerSeen::one(in_use, waiting),
                None => BrokerSeen::default(),
            },
        }
    }
}

impl Counts {
    /// Adds `other` into these counts.
    pub fn add(&mut self, other: &Counts) {
        self.io_ns = self.io_ns.saturating_add(other.io_ns);
        self.storage_ns = self.storage_ns.saturating_add(other.storage_ns);
        self.busy_ns = self.busy_ns.saturating_add(other.busy_ns);
        self.wait_ns = self.wait_ns.saturating_add(other.wait_ns);
        self.calls = self.calls.saturating_add(other.calls);
        self.waits = self.waits.saturating_add(other.waits);
        self.retries = self.retries.saturating_add(other.retries);
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.saturating_add(b);
        }
        self.conn_wait_ns = self.conn_wait_ns.saturating_add(other.conn_wait_ns);
        self.broker.add(&other.broker);
    }

    /// How `wall` splits between the parts (see [`Split`]).
    pub fn split(&self, wall: Duration) -> Split {
        Split::of(
            nanos(wall),
            [self.io_ns, self.busy_ns, self.wait_ns, self.conn_wait_ns],
        )
    }
}

/// A command's wall time in parts that add up to it: input/output, storage
/// calls, stream waits, waiting for a connection of the connection broker,
/// and the plugin's own work (the rest). When measured parts overlap (a
/// large object is read from its input while earlier blocks are stored, or
/// several storage calls run at once) and add up to more than the wall time,
/// each is its share of the wall time in proportion to what was measured,
/// and the plugin's own work is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub wall_ns: u64,
    pub io_ns: u64,
    pub storage_ns: u64,
    pub wait_ns: u64,
    /// Waiting for a connection broker's connection.
    pub conn_wait_ns: u64,
    pub own_ns: u64,
}

impl Split {
    fn of(wall_ns: u64, [io, storage, wait, conn_wait]: [u64; 4]) -> Split {
        let sum = io as u128 + storage as u128 + wait as u128 + conn_wait as u128;
        if sum <= wall_ns as u128 {
            return Split {
                wall_ns,
                io_ns: io,
                storage_ns: storage,
                wait_ns: wait,
                conn_wait_ns: conn_wait,
                own_ns: wall_ns - sum as u64,
            };
        }
        let share = |x: u64| (x as u128 * wall_ns as u128 / sum) as u64;
        let (io_ns, wait_ns, conn_wait_ns) = (share(io), share(wait), share(conn_wait));
        Split {
            wall_ns,
            io_ns,
            // What rounding left goes to the storage.
            storage_ns: wall_ns - io_ns - wait_ns - conn_wait_ns,
            wait_ns,
            conn_wait_ns,
            own_ns: 0,
        }
    }

    /// The five parts with their names (as the metrics' `part` label has them).
    pub fn parts(&self) -> [(&'static str, u64); 5] {
        [
            ("io", self.io_ns),
            ("storage", self.storage_ns),
            ("stream_wait", self.wait_ns),
            ("connection_wait", self.conn_wait_ns),
            ("plugin", self.own_ns),
        ]
    }

    /// Adds `other` into this split.
    pub fn add(&mut self, other: &Split) {
        self.wall_ns = self.wall_ns.saturating_add(other.wall_ns);
        self.io_ns = self.io_ns.saturating_add(other.io_ns);
        self.storage_ns = self.storage_ns.saturating_add(other.storage_ns);
        self.wait_ns = self.wait_ns.saturating_add(other.wait_ns);
        self.conn_wait_ns = self.conn_wait_ns.saturating_add(other.conn_wait_ns);
        self.own_ns = self.own_ns.saturating_add(other.own_ns);
    }

    /// "input/output 1 ms, storage 10 ms, stream waits 0 ms, connection
    /// waits 0 ms, plugin 2 ms"
    pub fn describe(&self) -> String {
        let ms = |ns: u64| ns as f64 / 1e6;
        format!(
            "input/output {:.0} ms, storage {:.0} ms, stream waits {:.0} ms, connection waits {:.0} ms, plugin {:.0} ms",
            ms(self.io_ns),
            ms(self.storage_ns),
            ms(self.wait_ns),
            ms(self.conn_wait_ns),
            ms(self.own_ns)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_to_the_wall_time() {
        let ms = |n: u64| n * 1_000_000;
        let s = Split::of(ms(10), [ms(2), ms(5), ms(1), ms(1)]);
        assert_eq!(
            (s.own_ns, s.storage_ns, s.conn_wait_ns),
            (ms(1), ms(5), ms(1))
        );
        let over = Split::of(ms(10), [ms(10), ms(10), 0, 0]);
        assert_eq!(
            (over.io_ns, over.storage_ns, over.own_ns),
            (ms(5), ms(5), 0)
        );
        let odd = Split::of(7, [3, 3, 3, 3]);
        let parts: u64 = odd.parts().iter().map(|p| p.1).sum();
        assert_eq!(parts, 7);
        assert_eq!(odd.wall_ns, 7);
    }

    #[test]
    fn a_commands_first_broker_connection_is_what_it_met() {
        let t = Tally::default();
        assert_eq!(t.snapshot().broker, BrokerSeen::default());
        t.broker_connection(2, 1, Duration::from_millis(3));
        t.broker_connection(5, 4, Duration::from_millis(2));
        let c = t.snapshot();
        assert_eq!(c.broker, BrokerSeen::one(2, 1));
        assert_eq!(c.conn_wait_ns, 5_000_000);
        let mut all = Counts::default();
        for (in_use, waiting) in [(1, 0), (3, 2), (2, 1)] {
            all.add(&Counts {
                broker: BrokerSeen::one(in_use, waiting),
                ..Counts::default()
            });
        }
        all.add(&Counts::default());
        let b = all.broker;
        assert_eq!((b.requests, b.in_use_max, b.waiting_max), (3, 3, 2));
        assert_eq!((b.in_use_mean(), b.waiting_mean()), (2.0, 1.0));
        assert_eq!(BrokerSeen::default().in_use_mean(), 0.0);
    }
}
