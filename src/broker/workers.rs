//! The broker's threads for requests and their watchers, kept for the next
//! request when one is done. Starting a thread for each (its stack mapped,
//! its signal stack set up, both unmapped at its end, which interrupts the
//! other cores to flush their address translations) was a fifth of the
//! broker's CPU for a small object's read with 64 requests at once.
//!
//! A job goes to an idle thread if there is one, else to a new thread; a
//! thread idle for [`IDLE`] ends. Jobs run in the scope they enter
//! themselves (`process::scope`), as on a thread of their own.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long an idle thread waits for a job before it ends.
const IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// Idle threads and the jobs handed to them.
#[derive(Default)]
pub struct Workers {
    state: Arc<(Mutex<State>, Condvar)>,
}

#[derive(Default)]
struct State {
    /// Jobs handed to idle threads and not yet taken.
    jobs: Vec<Job>,
    /// Threads waiting for a job.
    idle: usize,
}

impl Workers {
    /// Runs `job` on an idle thread, or on a new one named `name`.
    pub fn spawn(&self, name: &str, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let (lock, ready) = &*self.state;
        {
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            if state.idle > state.jobs.len() {
                state.jobs.push(Box::new(job));
                ready.notify_one();
                return Ok(());
            }
        }
        let state = Arc::clone(&self.state);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                job();
                serve(&state);
            })
            .map(drop)
    }
}

/// An idle thread: runs the jobs it is handed until none comes for [`IDLE`].
fn serve(state: &(Mutex<State>, Condvar)) {
    let (lock, ready) = state;
    let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(job) = s.jobs.pop() {
            drop(s);
            // A panicking job ends its thread only (as before: a thread each).
            job();
            s = lock.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        s.idle += 1;
        let (next, timeout) = ready
            .wait_timeout(s, IDLE)
            .unwrap_or_else(|p| p.into_inner());
        s = next;
        s.idle -= 1;
        if timeout.timed_out() && s.jobs.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_thread_done_with_a_job_takes_the_next() {
        let workers = Workers::default();
        let (tx, rx) = mpsc::channel();
        let mut used = std::collections::HashSet::new();
        for i in 0..20 {
            let tx = tx.clone();
            workers
                .spawn("t", move || {
                    tx.send((i, std::thread::current().id())).unwrap()
                })
                .unwrap();
            let (got, thread) = rx.recv().unwrap();
            assert_eq!(got, i);
            used.insert(thread);
            // Until the thread is idle again, a new job starts a thread.
            while workers.state.0.lock().unwrap().idle == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(tx);
        assert_eq!(used.len(), 1, "one thread, reused");
        let threads = {
            let (tx, rx) = mpsc::channel();
            for _ in 0..3 {
                let tx = tx.clone();
                workers
                    .spawn("t", move || {
                        std::thread::sleep(Duration::from_millis(20));
                        tx.send(std::thread::current().id()).unwrap()
                    })
                    .unwrap();
            }
            drop(tx);
            rx.iter().collect::<std::collections::HashSet<_>>()
        };
        // Three at once: the idle thread and two new ones.
        assert_eq!(threads.len(), 3);
    }
}
