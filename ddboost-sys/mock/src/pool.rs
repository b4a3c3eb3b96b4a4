//! A small process-wide worker pool that hashes and compresses segments.

use crossbeam_channel::{unbounded, Sender};
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send + 'static>;

fn sender() -> &'static Sender<Job> {
    static POOL: OnceLock<Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = unbounded::<Job>();
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        for i in 0..n {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("ddboost-mock-{i}"))
                .spawn(move || {
                    for job in rx {
                        // A panicking job only drops its result sender; the waiter sees an error.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
        }
        tx
    })
}

/// Runs `f` on the pool.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    // The receiver lives as long as the process; if sending fails, run inline.
    if let Err(e) = sender().send(Box::new(f)) {
        (e.0)();
    }
}
