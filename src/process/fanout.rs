//! One runner for work spread over several connections: the per-file calls
//! of listings, deletes, verification and replication.
//!
//! [`run`] takes the first items, and workers take them in order, each with
//! a connection of its own; work on an item may add more items (a folder's
//! entries, found while the folder is read), which idle workers pick up at
//! once. Workers start as items wait for them (all at once for a long list,
//! one by one as a folder read finds entries), up to `width`: the first uses
//! the connection the caller holds, every other opens its own when it
//! starts (a login), so a run of few items logs in few times. A worker
//! whose connection cannot be opened leaves its share to the others (with a
//! warning); the first failure of an item stops every worker and is the
//! run's result, as is a signal.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// What a worker can do besides its item: add more items.
pub struct Adder<'q, T> {
    queue: &'q Queue<T>,
    /// Starts workers for the items that wait.
    more: &'q dyn Fn(),
}

impl<T> Adder<'_, T> {
    /// Queues `item` for the next free worker; false once the run stopped
    /// (a failure or a signal), so that a long producer can stop early.
    pub fn add(&self, item: T) -> bool {
        let mut s = self.queue.lock();
        if s.failed.is_some() {
            return false;
        }
        s.items.push_back(item);
        s.pending += 1;
        drop(s);
        self.queue.ready.notify_one();
        (self.more)();
        true
    }
}

struct State<T> {
    items: VecDeque<T>,
    /// Items queued or being worked on: the run ends when none are left.
    pending: usize,
    /// Workers started, those still opening their connection, and those
    /// waiting for an item.
    workers: usize,
    opening: usize,
    idle: usize,
    failed: Option<Error>,
}

struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, e: Error) {
        let mut s = self.lock();
        s.failed.get_or_insert(e);
        s.items.clear();
        drop(s);
        self.ready.notify_all();
    }

    /// The next item, waiting while other workers may still add some; None
    /// when the run is over (or stopped).
    fn next(&self) -> Option<T> {
        let mut s = self.lock();
        loop {
            if s.failed.is_some() {
                return None;
            }
            if crate::process::signals::interrupted() {
                s.failed
                    .get_or_insert_with(|| Error::interrupted("interrupted by a signal"));
                drop(s);
                self.ready.notify_all();
                return None;
            }
            if let Some(item) = s.items.pop_front() {
                return Some(item);
            }
            if s.pending == 0 {
                return None;
            }
            s.idle += 1;
            // A timeout, so that a signal stops waiting workers too.
            s = self
                .ready
                .wait_timeout(s, std::time::Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            s.idle -= 1;
        }
    }

    fn done_one(&self) {
        let mut s = self.lock();
        s.pending -= 1;
        let over = s.pending == 0;
        drop(s);
        if over {
            self.ready.notify_all();
        }
    }

    /// Whether one more worker should start: items wait, no worker is idle,
    /// and fewer than `width` run. Counts it as started.
    fn wants_worker(&self, width: usize) -> bool {
        let mut s = self.lock();
        let wanted = s.failed.is_none() && s.items.len() > s.idle + s.opening && s.workers < width;
        if wanted {
            s.workers += 1;
            s.opening += 1;
        }
        wanted
    }

    /// A worker started by [`Queue::wants_worker`] has its connection (or
    /// gave up).
    fn opened(&self) {
        self.lock().opening -= 1;
    }
}

/// Runs `work` on each of `items` and on every item work adds, with up to
/// `width` workers: the first on `first`, each other on what `open` gives
/// it. Returns the first failure (the others are dropped; every worker stops
/// after its current item).
pub fn run<C, D, T, O, W>(first: &C, width: usize, open: O, items: Vec<T>, work: W) -> Result<()>
where
    C: Sync + ?Sized,
    D: std::ops::Deref<Target = C> + Send,
    T: Send,
    O: Fn() -> Result<D> + Sync,
    W: Fn(&C, T, &Adder<'_, T>) -> Result<()> + Sync,
{
    let queue = Queue {
        state: Mutex::new(State {
            pending: items.len(),
            items: items.into(),
            workers: 1,
            opening: 0,
            idle: 0,
            failed: None,
        }),
        ready: Condvar::new(),
    };
    let pool = Pool {
        queue: &queue,
        width: width.max(1),
        open: &open,
        work: &work,
    };
    std::thread::scope(|scope| pool.serve::<C, D>(scope, first));
    let failed = queue
        .state
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .failed;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What every worker of one run shares.
struct Pool<'r, T, O, W> {
    queue: &'r Queue<T>,
    width: usize,
    open: &'r O,
    work: &'r W,
}

impl<T, O, W> Clone for Pool<'_, T, O, W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, O, W> Copy for Pool<'_, T, O, W> {}

impl<'r, T, O, W> Pool<'r, T, O, W> {
    /// One worker on `conn`: takes items until the run is over; before each
    /// (and as its work adds items), starts workers for the items that wait.
    fn serve<'s, C, D>(self, scope: &'s std::thread::Scope<'s, 'r>, conn: &C)
    where
        C: Sync + ?Sized + 'r,
        D: std::ops::Deref<Target = C> + Send,
        T: Send + 'r,
        O: Fn() -> Result<D> + Sync,
        W: Fn(&C, T, &Adder<'_, T>) -> Result<()> + Sync,
    {
        // Starts a worker for every item that waits with no worker idle or
        // starting, up to `width`.
        let more = || {
            while self.queue.wants_worker(self.width) {
                scope.spawn(move || {
                    let opened = (self.open)();
                    self.queue.opened();
                    match opened {
                        Ok(own) => self.serve::<C, D>(scope, &*own),
                        Err(e) => log::warn!(
                            "one more connection could not be opened; the others take its share: {e}"
                        ),
                    }
                });
            }
        };
        let adder = Adder {
            queue: self.queue,
            more: &more,
        };
        while let Some(item) = self.queue.next() {
            more();
            if let Err(e) = (self.work)(conn, item, &adder) {
                self.queue.fail(e);
            }
            self.queue.done_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_and_every_added_item_is_worked_once() {
        let seen = Mutex::new(Vec::new());
        let opened = AtomicUsize::new(0);
        run(
            &0usize,
            4,
            || Ok(Box::new(opened.fetch_add(1, Ordering::SeqCst) + 1)),
            vec![0u32, 100],
            |_, n, more| {
                if n % 100 < 20 {
                    more.add(n + 1);
                }
                seen.lock().unwrap().push(n);
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok(())
            },
        )
        .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        let want: Vec<u32> = (0..=20).chain(100..=120).collect();
        assert_eq!(seen, want);
        assert!(
            opened.load(Ordering::SeqCst) <= 3,
            "at most width - 1 opened"
        );
    }

    #[test]
    fn items_run_at_once_on_up_to_width_connections() {
        let busy = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let conns = Mutex::new(std::collections::HashSet::new());
        let next = AtomicUsize::new(1);
        run(
            &0usize,
            5,
            || Ok(Box::new(next.fetch_add(1, Ordering::SeqCst))),
            (0..60).collect(),
            |c, _n: u32, _| {
                conns.lock().unwrap().insert(*c);
                let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(5));
                busy.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 5);
        assert_eq!(conns.lock().unwrap().len(), 5);
    }

    #[test]
    fn the_first_failure_stops_the_run_and_is_its_result() {
        let worked = AtomicUsize::new(0);
        let e = run(
            &(),
            3,
            || Ok(Box::new(())),
            (0..1000).collect(),
            |_, n: u32, _| {
                worked.fetch_add(1, Ordering::SeqCst);
                if n == 10 {
                    return Err(Error::storage("item 10 failed"));
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "item 10 failed");
        assert!(worked.load(Ordering::SeqCst) < 100);
    }

    #[test]
    fn a_connection_that_cannot_be_opened_leaves_its_share_to_the_others() {
        let worked = AtomicUsize::new(0);
        run(
            &(),
            4,
            || Err::<Box<()>, _>(Error::storage("login refused")),
            (0..50).collect(),
            |_, _n: u32, _| {
                worked.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(worked.load(Ordering::SeqCst), 50);
    }

    #[test]
    fn one_item_logs_in_no_more() {
        let opened = AtomicUsize::new(0);
        run(
            &(),
            16,
            || {
                opened.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(()))
            },
            vec![1u8],
            |_, _, _| Ok(()),
        )
        .unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 0);
    }
}
