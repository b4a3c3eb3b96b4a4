//! The broker's logged-in connections: opened when a request first needs
//! one, reused by the requests after it, at most `broker_connections` at a
//! time (a request beyond waits for one to come back). A connection whose
//! request failed on the storage (a lost connection, or anything that
//! cannot be told apart from one) is closed, not reused.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::backends::{self, PluginConfig};
use crate::commands::Lender;
use crate::error::{Error, Result};
use crate::process::{metrics, signals};
use crate::storage::{Remote, Storage};

/// The pool. It holds at most `broker_connections` connections (32 by
/// default: 3 for each of the 8 plugin processes of a host with 2 segments
/// backing up with `--jobs 4`, one each for 32 at once, 4 segments at
/// `--jobs 8`); a request beyond waits for a free one. A
/// request's first connection is its own; more (for steps at once) only
/// while no request waits for its first, and a third only while two stay
/// free.
pub struct Pool {
    config: Arc<PluginConfig>,
    /// The most connections open at once.
    max: usize,
    state: Mutex<State>,
    returned: Condvar,
}

struct State {
    idle: Vec<(Remote, Box<dyn Storage>)>,
    /// Open connections: idle and lent.
    open: usize,
    /// Requests waiting for their first connection.
    waiting: usize,
}

impl Pool {
    /// An empty pool of connections to the storage `config` names.
    pub fn new(config: Arc<PluginConfig>) -> Pool {
        Pool {
            max: config.backend.broker().map_or(1, |b| b.connections).max(1),
            config,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection for `remote`, or a new one while fewer than
    /// `max` are open; else waits for one (not after the
    /// calling request was cancelled). The request's tally notes what it met
    /// and how long it waited.
    fn take(&self, remote: Remote) -> Result<Box<dyn Storage>> {
        let asked = Instant::now();
        let mut state = self.state();
        // Requests waiting as it asked, and whether it waited too.
        let (ahead, mut waited) = (state.waiting, false);
        let met = |state: &State, waited: bool| {
            let in_use = state.open - state.idle.len();
            metrics::broker_connection(in_use, ahead + usize::from(waited), asked.elapsed());
        };
        loop {
            if let Some(i) = state.idle.iter().position(|(r, _)| *r == remote) {
                let storage = state.idle.swap_remove(i).1;
                met(&state, waited);
                return Ok(storage);
            }
            if state.open >= self.max && !state.idle.is_empty() {
                // A connection for the other use: closed to make room.
                let (_, other) = state.idle.swap_remove(0);
                state.open -= 1;
                drop(state);
                drop(other);
                state = self.state();
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                met(&state, waited);
                drop(state);
                let opened = backends::open(&self.config, remote);
                if opened.is_err() {
                    self.state().open -= 1;
                    self.returned.notify_one();
                }
                return opened;
            }
            signals::check()?;
            waited = true;
            state.waiting += 1;
            state = self
                .returned
                .wait_timeout(state, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            state.waiting -= 1;
        }
    }

    /// An idle connection for `remote`, or a new one while fewer than
    /// `max` are open, leaving at least `spare` for other requests; None
    /// rather than waiting, and None while a request waits for its first.
    fn try_take(&self, remote: Remote, spare: usize) -> Option<Box<dyn Storage>> {
        let mut state = self.state();
        let free = state.idle.len() + self.max.saturating_sub(state.open);
        if state.waiting > 0 || free <= spare {
            return None;
        }
        if let Some(i) = state.idle.iter().position(|(r, _)| *r == remote) {
            return Some(state.idle.swap_remove(i).1);
        }
        if state.open >= self.max {
            return None;
        }
        state.open += 1;
        drop(state);
        match backends::open(&self.config, remote) {
            Ok(s) => Some(s),
            Err(e) => {
                log::debug!("connection broker: no more connections: {e}");
                self.forget();
                None
            }
        }
    }

    /// Takes back a connection: kept for the next request when `reuse`,
    /// closed otherwise.
    fn give_back(&self, remote: Remote, storage: Box<dyn Storage>, reuse: bool) {
        let mut state = self.state();
        if reuse {
            state.idle.push((remote, storage));
        } else {
            state.open -= 1;
            drop(state);
            drop(storage);
        }
        self.returned.notify_one();
    }

    /// One connection fewer (a lent one that could not be taken back).
    fn forget(&self) {
        self.state().open -= 1;
        self.returned.notify_one();
    }

    /// Closes every idle connection (logging out).
    pub fn close_idle(&self) {
        let idle = std::mem::take(&mut self.state().idle);
        self.state().open -= idle.len();
        drop(idle);
    }
}

/// A pooled connection, shared between the loan and the command.
type Shared = Arc<Box<dyn Storage>>;

/// The connections one request holds, lent to its command.
pub struct Loan {
    pool: Arc<Pool>,
    taken: Mutex<Vec<(Remote, Shared)>>,
}

impl Loan {
    pub fn new(pool: Arc<Pool>) -> Loan {
        Loan {
            pool,
            taken: Mutex::new(Vec::new()),
        }
    }

    /// Gives every connection back: reused when `reuse`, else closed.
    pub fn end(&self, reuse: bool) {
        let taken = std::mem::take(&mut *self.taken.lock().unwrap_or_else(|p| p.into_inner()));
        for (remote, storage) in taken {
            match Arc::try_unwrap(storage) {
                Ok(storage) => self.pool.give_back(remote, storage, reuse),
                // Still held (a thread of the command outlived it): closed
                // when that lets go.
                Err(_) => self.pool.forget(),
            }
        }
    }
}

impl Loan {
    /// Records `storage` as lent and gives the command its view of it: the
    /// storage itself, shared with the loan.
    fn keep(&self, remote: Remote, storage: Box<dyn Storage>) -> Box<dyn Storage> {
        let storage = Arc::new(storage);
        self.taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((remote, Arc::clone(&storage)));
        Box::new(storage)
    }
}

impl Lender for Loan {
    fn lend(&self, remote: Remote) -> Result<Box<dyn Storage>> {
        if remote == Remote::Required {
            return Err(Error::invalid(
                "the connection broker does not serve commands that need the remote system",
            ));
        }
        let storage = self.pool.take(remote)?;
        Ok(self.keep(remote, storage))
    }

    fn lend_more(&self, remote: Remote, n: usize) -> Vec<Box<dyn Storage>> {
        if remote == Remote::Required {
            return Vec::new();
        }
        // The first extra connection saves a request the most round trips;
        // a second is taken only while two stay free for the next request.
        (0..n)
            .map_while(|i| self.pool.try_take(remote, if i == 0 { 0 } else { 2 }))
            .map(|s| self.keep(remote, s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of at most `max` connections to a local folder.
    fn pool(dir: &std::path::Path, max: usize) -> Arc<Pool> {
        let text = format!(
            "executablepath: /bin/true\noptions:\n  backend: local\n  directory: {}\n",
            dir.display()
        );
        let config = PluginConfig::parse(&text, std::path::Path::new("c.yaml")).unwrap();
        let mut pool = Pool::new(Arc::new(config));
        pool.max = max;
        Arc::new(pool)
    }

    #[test]
    fn a_third_connection_only_while_two_stay_free() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path(), 5);
        let first = pool.take(Remote::Never).unwrap();
        let extra = pool.try_take(Remote::Never, 0).expect("a first extra");
        // 3 free: a third connection leaves 2.
        let third = pool.try_take(Remote::Never, 2).expect("a third");
        // 2 free: no third for the next request, but its first and one extra.
        assert!(pool.try_take(Remote::Never, 2).is_none());
        let next = pool.take(Remote::Never).unwrap();
        let next_extra = pool.try_take(Remote::Never, 0).expect("its extra");
        assert!(pool.try_take(Remote::Never, 0).is_none(), "all 5 taken");
        for s in [first, extra, third, next, next_extra] {
            pool.give_back(Remote::Never, s, true);
        }
        assert_eq!(pool.state().idle.len(), 5);
    }

    #[test]
    fn no_extra_connection_while_a_request_waits_for_its_first() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path(), 2);
        let a = pool.take(Remote::Never).unwrap();
        let b = pool.take(Remote::Never).unwrap();
        let waiter = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.take(Remote::Never).map(drop).is_ok())
        };
        while pool.state().waiting == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // A connection comes back unannounced: the waiter's, not an extra.
        pool.state().idle.push((Remote::Never, a));
        assert!(pool.try_take(Remote::Never, 0).is_none());
        pool.returned.notify_all();
        assert!(waiter.join().unwrap());
        pool.give_back(Remote::Never, b, true);
    }
}
