//! Structures are passed in oversized buffers.
//!
//! The project's `ddp_api.h` is a reconstruction: the real SDK's `ddp_stat_t`,
//! `ddp_statvfs_t`, `ddp_dirent_t`, `ddp_stream_counts_t` (and the structures
//! it reads, `ddp_path_t` and `ddp_client_info_t`) are very likely larger than
//! declared here. An SDK that writes its whole structure into a Rust value of
//! the declared size would corrupt memory. So every structure crosses the
//! boundary in a [`Wide`] buffer: zeroed, 64-byte aligned, and
//! [`struct_buffer_len`] bytes long (4 times the declared size, at least
//! 4 KiB); only the fields the header names are read back from its start.

use std::marker::PhantomData;

/// How many times its declared size a structure's buffer is.
pub const STRUCT_BUFFER_FACTOR: usize = 4;
/// The smallest buffer a structure is passed in, in bytes.
pub const STRUCT_BUFFER_MIN_BYTES: usize = 4096;
/// Alignment of the buffers, in bytes (more than any C structure needs).
pub(super) const STRUCT_BUFFER_ALIGN: usize = 64;

/// The size of the zeroed buffer in which a structure of `declared` bytes (its
/// size in the bindings) is passed to the SDK: `max(4 * declared, 4096)`,
/// rounded up to a multiple of 64. The SDK may write (or read) that many bytes
/// without touching anything else.
pub fn struct_buffer_len(declared: usize) -> usize {
    let len = declared
        .saturating_mul(STRUCT_BUFFER_FACTOR)
        .max(STRUCT_BUFFER_MIN_BYTES);
    // Round up; only for sizes near usize::MAX (never a structure's) down.
    len.checked_next_multiple_of(STRUCT_BUFFER_ALIGN)
        .unwrap_or(len / STRUCT_BUFFER_ALIGN * STRUCT_BUFFER_ALIGN)
}

/// A zeroed, 64-byte aligned buffer of [`struct_buffer_len`] bytes standing in
/// for one `T` that the SDK writes or reads; `T` sits at its start. The
/// buffer is taken from an ordinary allocation 64 bytes longer than it, at
/// its first 64-byte boundary: an allocation with that alignment itself
/// (`memalign`) is one glibc does not reuse well, and a listing of 200,000
/// entries (a structure per entry) left 200 MiB of heap that way.
pub(super) struct Wide<T> {
    bytes: Vec<u8>,
    start: usize,
    _t: PhantomData<T>,
}

impl<T: Copy> Wide<T> {
    /// An all-zero buffer, as GPDB's `= {0}` structures.
    pub(super) fn zeroed() -> Self {
        const { assert!(align_of::<T>() <= STRUCT_BUFFER_ALIGN) };
        let len = struct_buffer_len(size_of::<T>());
        let bytes = vec![0u8; len + STRUCT_BUFFER_ALIGN];
        let addr = bytes.as_ptr() as usize;
        let start = (STRUCT_BUFFER_ALIGN - addr % STRUCT_BUFFER_ALIGN) % STRUCT_BUFFER_ALIGN;
        Wide {
            bytes,
            start,
            _t: PhantomData,
        }
    }

    /// The buffer: [`struct_buffer_len`] bytes from an aligned start.
    fn buffer(&self) -> &[u8] {
        &self.bytes[self.start..self.start + struct_buffer_len(size_of::<T>())]
    }

    /// A zeroed buffer holding `value` at its start (for structures the SDK
    /// reads: whatever it reads past our declaration is zero).
    pub(super) fn holding(value: T) -> Self {
        let mut w = Self::zeroed();
        // SAFETY: the buffer is at least `size_of::<T>()` bytes (`struct_buffer_len`
        // is at least 4 KiB and 4 times the size), its start is aligned for `T`
        // (a 64-byte boundary, alignment checked in `zeroed`), and it is ours alone.
        unsafe { w.as_mut_ptr().write(value) };
        w
    }

    /// The pointer to pass to the SDK: valid for reads and writes of the whole
    /// buffer while `self` lives and is not otherwise used.
    pub(super) fn as_mut_ptr(&mut self) -> *mut T {
        let end = self.start + struct_buffer_len(size_of::<T>());
        self.bytes[self.start..end].as_mut_ptr().cast()
    }

    /// The `T` at the start of the buffer: the fields the header names.
    ///
    /// # Safety
    /// Every bit pattern must be a valid `T`: a C structure of integers,
    /// integer arrays and raw pointers, as the SDK's structures are.
    pub(super) unsafe fn get(&self) -> T {
        // SAFETY: the buffer is initialised (zeroed, then written by us or the
        // SDK), large enough and aligned for `T` (see `holding`); any bytes are
        // a valid `T` by the caller's contract.
        unsafe { self.buffer().as_ptr().cast::<T>().read() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ddboost_sys::raw;

    #[test]
    fn structure_buffers_are_four_times_larger_and_at_least_4_kib() {
        for declared in [1, 16, 72, 256, 1000, 1024, 1025, 5000] {
            let len = struct_buffer_len(declared);
            assert!(len >= 4 * declared, "{declared} -> {len}");
            assert!(len >= 4096, "{declared} -> {len}");
            assert_eq!(len % 64, 0, "{declared} -> {len}");
        }
        assert_eq!(struct_buffer_len(16), 4096);
        assert_eq!(struct_buffer_len(2000), 8000);
        assert_eq!(struct_buffer_len(usize::MAX), usize::MAX - 63);
    }

    #[test]
    fn wide_buffers_are_zeroed_aligned_and_hold_the_value_at_their_start() {
        let mut w = Wide::<raw::ddp_stat_t>::zeroed();
        let len = w.buffer().len();
        assert_eq!(len, struct_buffer_len(size_of::<raw::ddp_stat_t>()));
        assert_eq!(w.as_mut_ptr() as usize % STRUCT_BUFFER_ALIGN, 0);
        assert!(w.buffer().iter().all(|&b| b == 0));
        // SAFETY: a structure of integers.
        assert_eq!(unsafe { w.get() }, raw::ddp_stat_t::default());

        let mut st = raw::ddp_stat_t::default();
        st.st_size = 12345;
        st.st_mode = 0o100644;
        let w = Wide::holding(st);
        // SAFETY: a structure of integers.
        assert_eq!(unsafe { w.get() }, st);
        let tail = &w.buffer()[size_of::<raw::ddp_stat_t>()..];
        assert!(tail.iter().all(|&b| b == 0), "the rest stays zero");
    }
}
