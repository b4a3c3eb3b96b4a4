//! Bandwidth caps of open streams (`DDBOOST_MOCK_STREAM_MBPS`, `DDBOOST_MOCK_SYSTEM_MBPS`).

use crate::faults;
use crate::store::System;
use std::time::{Duration, Instant};

/// The pacing state of one open read or write stream.
#[derive(Default)]
pub(crate) struct Pacer {
    next_free: Option<Instant>,
}

impl Pacer {
    /// Sleeps as needed to keep a stream of `sys` that just moved `n` bytes under the
    /// configured bandwidth caps.
    pub(crate) fn pace(&mut self, sys: &System, n: u64) {
        let (stream_bps, system_bps) = faults::caps();
        let mut rate = f64::INFINITY;
        if let Some(r) = stream_bps {
            rate = rate.min(r);
        }
        if let Some(r) = system_bps {
            let streams = sys.streams.all_cached().total().max(1);
            rate = rate.min(r / streams as f64);
        }
        if !rate.is_finite() || n == 0 {
            return;
        }
        // A token bucket: time already spent on the work counts towards the
        // budget (up to a short burst), so a capped stream reaches its cap
        // instead of cap and work time added up.
        let now = Instant::now();
        let burst = Duration::from_millis(100);
        let start = match self.next_free {
            Some(t) => t.max(now.checked_sub(burst).unwrap_or(now)),
            None => now,
        };
        let next = start + Duration::from_secs_f64(n as f64 / rate);
        self.next_free = Some(next);
        if next > now {
            std::thread::sleep(next - now);
        }
    }
}
