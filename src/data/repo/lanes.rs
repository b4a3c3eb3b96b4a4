//! Lanes: independent connections to one storage, and the one way a
//! request's steps run on them. Steps that do not depend on each other run
//! at once, each on lanes of its own, when there are several; in order on
//! the first when there is one. Steps running at once open their files
//! without waiting for a stream: a lane that finds every stream taken lets
//! go of everything, and the steps run again in order, which waits holding
//! nothing.

use crate::data::integrity::Open;
use crate::error::{Error, ErrorKind, Result};
use crate::path::StoragePath;
use crate::process::signals;
use crate::storage::Storage;

/// Lanes, and whether the steps given them run beside others.
pub(super) struct Lanes<'l, 's> {
    all: &'l [&'s dyn Storage],
    at_once: bool,
}

impl<'l, 's> Lanes<'l, 's> {
    /// `all`, the first being the one the steps use when they run in order.
    pub fn new(all: &'l [&'s dyn Storage]) -> Result<Lanes<'l, 's>> {
        if all.is_empty() {
            return Err(Error::invalid("no connection to the storage was given"));
        }
        Ok(Lanes {
            all,
            at_once: false,
        })
    }

    /// The storage a step uses: the first lane.
    pub fn first(&self) -> &'s dyn Storage {
        self.all[0]
    }

    /// The first lane alone, for steps one after another.
    pub fn single(&self) -> Lanes<'l, 's> {
        Lanes {
            all: &self.all[..1],
            at_once: false,
        }
    }

    /// Whether there are several lanes.
    pub fn several(&self) -> bool {
        self.all.len() > 1
    }

    /// Whether the steps run beside others (which may hold streams).
    pub fn at_once(&self) -> bool {
        self.at_once
    }

    /// How a step opens its files: at once (failing on a stream limit)
    /// beside others, else waiting for a stream.
    pub fn open(&self) -> Open {
        if self.at_once {
            Open::Now
        } else {
            Open::Waiting
        }
    }

    /// Runs `steps` on these lanes: at once when there are several, and,
    /// when a lane found every stream taken, again in order on the first.
    pub fn run<T>(
        &self,
        path: &StoragePath,
        steps: impl Fn(&Lanes<'_, 's>) -> Result<T>,
    ) -> Result<T> {
        if !self.several() {
            return steps(self);
        }
        let at_once = Lanes {
            all: self.all,
            at_once: true,
        };
        match steps(&at_once) {
            Err(e) if e.kind() == ErrorKind::StreamLimit => {
                log::debug!("{path}: a stream limit reached; its steps run one after another");
                steps(&self.single())
            }
            done => done,
        }
    }

    /// Runs `a` and `b`: at once, `a` on the first lane and `b` on the
    /// others, when there are several; else `a`, then `b` (not after `a`
    /// failed), which is given `a`'s result. At once, a stream limit in
    /// either is the result, so that the caller lets go of everything.
    pub fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce(&Lanes<'_, 's>) -> Result<A> + Send,
        b: impl FnOnce(&Lanes<'_, 's>, Option<&A>) -> Result<B> + Send,
    ) -> Result<(A, B)> {
        if !self.several() {
            let a = a(self)?;
            let b = b(self, Some(&a))?;
            return Ok((a, b));
        }
        let (first, rest) = self.all.split_at(1);
        let (first, rest) = (
            Lanes {
                all: first,
                at_once: true,
            },
            Lanes {
                all: rest,
                at_once: true,
            },
        );
        // `b` on a thread of its own, `a` on this one (one thread started
        // per join, not two).
        let (a, b) = std::thread::scope(|s| {
            let b = spawn_step(s, || b(&rest, None));
            let a = run_step(|| a(&first));
            (a, join_step(b))
        });
        match (a, b) {
            (Err(e), _) if e.kind() == ErrorKind::StreamLimit => Err(e),
            (_, Err(e)) if e.kind() == ErrorKind::StreamLimit => Err(e),
            (a, b) => Ok((a?, b?)),
        }
    }

    /// A step's result as its value, for the caller to judge after the
    /// other steps, except a stream limit at once, which stops them all.
    pub fn kept<T>(&self, result: Result<T>) -> Result<Result<T>> {
        match result {
            Err(e) if self.at_once && e.kind() == ErrorKind::StreamLimit => Err(e),
            result => Ok(result),
        }
    }
}

/// Runs `step` on its own thread of `scope`, unless a signal arrived (each
/// concurrent step of a request starts here).
fn spawn_step<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    step: impl FnOnce() -> Result<T> + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, Result<T>> {
    spawn_in_command(scope, move || {
        signals::check()?;
        step()
    })
}

/// Runs `step` on the calling thread as [`spawn_step`] and [`join_step`]
/// would on one of its own: not after a signal, a panic as an error.
fn run_step<T>(step: impl FnOnce() -> Result<T>) -> Result<T> {
    signals::check()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|_| {
        Err(Error::internal(
            "a step of the request stopped unexpectedly",
        ))
    })
}

/// Runs `step` on its own thread of `scope`, as part of the calling command
/// (a broker request's): its signals, cleanups and pause points.
pub(super) fn spawn_in_command<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    step: impl FnOnce() -> Result<T> + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, Result<T>> {
    let command = crate::process::scope::Scope::current();
    scope.spawn(move || {
        let _in = command.enter();
        step()
    })
}

/// The result of a step started with [`spawn_step`] or [`spawn_in_command`].
pub(super) fn join_step<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle.join().unwrap_or_else(|_| {
        Err(Error::internal(
            "a step of the request stopped unexpectedly",
        ))
    })
}
