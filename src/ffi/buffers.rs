//! Checks on caller-supplied pointers, made before any slice exists.

use std::mem::size_of;
use std::ops::Range;

use super::cq4_status::{self, *};

/// A caller's buffer: a non-null, aligned pointer and the element count a
/// slice over it may claim.
pub(super) struct Raw<T> {
    ptr: *const T,
    len: usize,
}

impl<T> Raw<T> {
    /// Refuses NULL and misaligned pointers. Lengths are capped at what a
    /// real allocation can span; only the layout's prefix is ever touched.
    pub(super) fn new(ptr: *const T, len: usize) -> Result<Self, cq4_status> {
        if ptr.is_null() {
            return Err(CQ4_ERR_NULL_POINTER);
        }
        if !ptr.is_aligned() {
            return Err(CQ4_ERR_MISALIGNED_POINTER);
        }
        let len = len.min(isize::MAX as usize / size_of::<T>());
        Ok(Raw { ptr, len })
    }

    /// The pointer, for writes through a checked plan rather than a slice
    /// (outputs that other threads' calls may share).
    pub(super) fn as_mut_ptr(&self) -> *mut T {
        self.ptr as *mut T
    }

    /// The bytes of the first `used` elements (at most the declared length):
    /// what a call may touch, for [`check_disjoint`].
    pub(super) fn span(&self, used: usize) -> Range<usize> {
        let start = self.ptr as usize;
        start..start.saturating_add(self.len.min(used) * size_of::<T>())
    }

    /// # Safety
    /// The caller of the `extern "C"` function promised `ptr` valid for
    /// reads of `len` elements, and no output of the call overlaps it.
    pub(super) unsafe fn as_slice<'a>(&self) -> &'a [T] {
        // SAFETY: non-null and aligned (checked in `new`), valid for `len`
        // reads (the caller's contract), `len` capped to `isize::MAX` bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// # Safety
    /// As [`Raw::as_slice`], for writes, and no other buffer of the call
    /// overlaps the part of it the call touches (checked by
    /// [`check_disjoint`]).
    pub(super) unsafe fn as_mut_slice<'a>(&self) -> &'a mut [T] {
        // SAFETY: as in `as_slice`. Only the layout's prefix is ever
        // touched, and `check_disjoint` proved no other buffer of this call
        // shares a byte with that prefix.
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut T, self.len) }
    }
}

/// Refuses a call whose output buffer shares a byte with any other buffer.
pub(super) fn check_disjoint(
    outputs: &[Range<usize>],
    inputs: &[Range<usize>],
) -> Result<(), cq4_status> {
    let overlap = |a: &Range<usize>, b: &Range<usize>| {
        !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end
    };
    for (i, out) in outputs.iter().enumerate() {
        let others = outputs[i + 1..].iter().chain(inputs);
        if others.into_iter().any(|other| overlap(out, other)) {
            return Err(CQ4_ERR_OVERLAPPING_BUFFERS);
        }
    }
    Ok(())
}
