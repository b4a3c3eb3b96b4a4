//! Pointer arguments of the C ABI, wrapped: the only code of the mock that reads or writes
//! caller memory.
//!
//! Each exported function (see [`crate::exports`]) wraps its pointer arguments in these
//! types as soon as it is called. That is the one `unsafe` step: the pointer must honour
//! its C contract. After it, the behaviour modules use the wrappers without `unsafe`, and
//! still decide when a NULL pointer is an error, so every call checks its arguments in the
//! order its documentation gives.

use crate::error::{DdError, DdResult};
use crate::faults;
use crate::ffi::ddp_path_t;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::c_char;

/// Reads a C string (NULL or non-UTF-8 → `DD_ERR_INVALID`).
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for `'a`.
unsafe fn cstr<'a>(p: *const c_char) -> DdResult<&'a str> {
    if p.is_null() {
        return Err(DdError::INVALID);
    }
    // SAFETY: non-NULL and, per the C contract, NUL-terminated and live for 'a.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| DdError::INVALID)
}

/// A `const char *` argument.
#[derive(Clone, Copy)]
pub(crate) struct CStrArg<'a> {
    ptr: *const c_char,
    _life: PhantomData<&'a CStr>,
}

impl<'a> CStrArg<'a> {
    /// # Safety
    /// `ptr` must be NULL or point to a NUL-terminated string valid for `'a`.
    pub(crate) unsafe fn new(ptr: *const c_char) -> Self {
        CStrArg {
            ptr,
            _life: PhantomData,
        }
    }

    /// The string; NULL or non-UTF-8 → `DD_ERR_INVALID`.
    pub(crate) fn get(self) -> DdResult<&'a str> {
        // SAFETY: `new`'s contract.
        unsafe { cstr(self.ptr) }
    }
}

/// A `ddp_path_t *` argument.
#[derive(Clone, Copy)]
pub(crate) struct PathArg<'a> {
    ptr: *const ddp_path_t,
    _life: PhantomData<&'a ddp_path_t>,
}

impl<'a> PathArg<'a> {
    /// # Safety
    /// `ptr` must be NULL or point to a `ddp_path_t` valid for `'a` whose `su_name` is NULL
    /// or a NUL-terminated string and whose `path_name` is NULL or a NUL-terminated string,
    /// both valid for `'a`.
    pub(crate) unsafe fn new(ptr: *const ddp_path_t) -> Self {
        PathArg {
            ptr,
            _life: PhantomData,
        }
    }

    /// (storage unit, path inside it). A NULL path is `DD_ERR_INVALID`, a NULL storage
    /// unit too, a NULL `path_name` is `""`.
    pub(crate) fn get(self) -> DdResult<(&'a str, &'a str)> {
        if self.ptr.is_null() {
            return Err(DdError::INVALID);
        }
        // SAFETY: non-NULL; `new`'s contract makes it a valid ddp_path_t for 'a.
        let path = unsafe { *self.ptr };
        // SAFETY: the struct's fields are NULL or NUL-terminated strings (`new`'s contract).
        let su = unsafe { cstr(path.su_name) }?;
        let name = if path.path_name.is_null() {
            ""
        } else {
            // SAFETY: as above.
            unsafe { cstr(path.path_name) }?
        };
        Ok((su, name))
    }
}

/// An out-pointer argument `T *`: caller storage the call writes its result to.
pub(crate) struct Out<'a, T> {
    ptr: *mut T,
    _life: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// # Safety
    /// `ptr` must be NULL or valid for writing a `T` for the lifetime of the wrapper; for
    /// [`Out::put_struct`] in wide mode (`DDBOOST_MOCK_WIDE_STRUCTS=1`), valid for writing
    /// `ddboost::struct_buffer_len(size_of::<T>())` bytes.
    pub(crate) unsafe fn new(ptr: *mut T) -> Self {
        Out {
            ptr,
            _life: PhantomData,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    /// Writes `v` (NULL → `DD_ERR_INVALID`).
    pub(crate) fn put(&mut self, v: T) -> DdResult<()> {
        if self.ptr.is_null() {
            return Err(DdError::INVALID);
        }
        // SAFETY: non-NULL and, per `new`'s contract, valid for a write of T.
        unsafe { self.ptr.write(v) };
        Ok(())
    }
}

impl<T> Out<'_, T> {
    /// Writes the structure `v` (NULL → `DD_ERR_INVALID`). In wide mode
    /// (`DDBOOST_MOCK_WIDE_STRUCTS=1`) it then fills the bytes after it, up to
    /// `ddboost::struct_buffer_len` of its size, with [`faults::WIDE_FILL`], as an SDK
    /// whose structure is larger than the header's would.
    pub(crate) fn put_struct(&mut self, v: T) -> DdResult<()> {
        self.put(v)?;
        if faults::wide_structs() {
            let declared = size_of::<T>();
            let tail = ddboost::struct_buffer_len(declared) - declared;
            // SAFETY: non-NULL (`put` succeeded) and, in wide mode, valid for writes of
            // `struct_buffer_len(declared)` bytes (`new`'s contract): emulating a larger
            // structure is what the mode is for, and ddboost-sys passes buffers that large.
            unsafe {
                self.ptr
                    .cast::<u8>()
                    .add(declared)
                    .write_bytes(faults::WIDE_FILL, tail)
            };
        }
        Ok(())
    }
}

/// A `const char *buf` argument of `count` bytes that the call reads (`ddp_write`).
pub(crate) struct Buf<'a> {
    ptr: *const c_char,
    len: u64,
    _life: PhantomData<&'a [u8]>,
}

impl<'a> Buf<'a> {
    /// # Safety
    /// `ptr` must be NULL or valid for reads of `len` bytes for `'a`.
    pub(crate) unsafe fn new(ptr: *const c_char, len: u64) -> Self {
        Buf {
            ptr,
            len,
            _life: PhantomData,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    /// The bytes (empty for a NULL pointer or a zero count).
    pub(crate) fn as_slice(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: non-NULL and, per `new`'s contract, valid for reads of `len` bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len as usize) }
    }
}

/// A `char *buf` argument of `count` bytes that the call fills (`ddp_read`).
pub(crate) struct BufMut<'a> {
    ptr: *mut c_char,
    len: u64,
    _life: PhantomData<&'a mut [u8]>,
}

impl BufMut<'_> {
    /// # Safety
    /// `ptr` must be NULL or valid for writes of `len` bytes for the wrapper's lifetime.
    pub(crate) unsafe fn new(ptr: *mut c_char, len: u64) -> Self {
        BufMut {
            ptr,
            len,
            _life: PhantomData,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    /// The bytes (empty for a NULL pointer or a zero count).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &mut [];
        }
        // SAFETY: non-NULL and, per `new`'s contract, valid for writes of `len` bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<u8>(), self.len as usize) }
    }
}
