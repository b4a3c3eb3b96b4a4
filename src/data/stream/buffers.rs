//! The process's stream buffers of [`BLOCK`] bytes, kept for the next
//! upload or download when one is done with them.
//!
//! A connection broker runs one command after another in one process: a
//! buffer made for each (a megabyte, zeroed) would cost its zeroing or, as
//! a fresh mapping, a page fault per page used, and such faults of many
//! request threads contend on the one address space. Kept here, a buffer is
//! made once and reused: in steady state a request allocates no buffer.
//! At most [`KEPT`] are kept; [`release`] gives back those kept (the
//! broker calls it when it has been idle a while, so that its memory
//! returns to small after a burst).

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use super::BLOCK;

/// The most idle buffers kept: two downloads' worth at the most reads in
/// flight by default (`read_ahead` 8: 16 each), or the buffers of a
/// small object's write of 32 requests at once (a small object's read,
/// whole at its opening, takes none).
const KEPT: usize = 32;

static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn idle() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    IDLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A buffer of a fixed size; one of [`BLOCK`] bytes goes back to the kept
/// ones when dropped. Its bytes are what its last user left (every user
/// fills what it reads).
pub(super) struct Buffer(Vec<u8>);

impl Buffer {
    /// A buffer of `size` bytes: a kept one when `size` is [`BLOCK`] and
    /// one is idle, else a new one.
    pub(super) fn new(size: usize) -> Buffer {
        if size == BLOCK {
            if let Some(b) = idle().pop() {
                return Buffer(b);
            }
        }
        Buffer(vec![0u8; size])
    }
}

impl Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.0.len() == BLOCK {
            let b = std::mem::take(&mut self.0);
            let mut idle = idle();
            if idle.len() < KEPT {
                idle.push(b);
            }
        }
    }
}

/// Frees the idle buffers; returns how many there were.
pub fn release() -> usize {
    let kept = std::mem::take(&mut *idle());
    kept.len()
}

/// Idle buffers now.
#[cfg(test)]
pub(super) fn idle_count() -> usize {
    idle().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_kept_are_kept_and_released() {
        let many: Vec<Buffer> = (0..KEPT + 8).map(|_| Buffer::new(BLOCK)).collect();
        let odd = Buffer::new(4096);
        assert!(many.iter().all(|b| b.len() == BLOCK));
        assert_eq!(odd.len(), 4096);
        drop(many);
        drop(odd);
        // Other tests' downloads and uploads share the pool, and keep at
        // most as many too.
        assert!(idle_count() <= KEPT);
        assert!(release() <= KEPT);
    }
}
