//! Output buffers of the allocating functions.

/// Outputs at least this large ask the kernel for huge pages.
const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

/// A zeroed buffer of `n` elements. A large one is, on Linux, advised to
/// use transparent huge pages before it is first written: a fresh 64 MiB
/// output otherwise costs 16384 page faults, more than the unpack itself.
pub(crate) fn zeroed<T: Copy>(n: usize, zero: T) -> Vec<T> {
    let mut buffer = vec![zero; n];
    #[cfg(target_os = "linux")]
    if std::mem::size_of_val(buffer.as_slice()) >= HUGE_PAGE_THRESHOLD {
        advise_huge_pages(
            buffer.as_mut_ptr().cast(),
            std::mem::size_of_val(buffer.as_slice()),
        );
    }
    buffer
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let first = (start as usize).next_multiple_of(HUGE);
    let end = (start as usize + len) / HUGE * HUGE;
    if first < end {
        // SAFETY: [first, end) lies inside the live allocation `start..+len`
        // and MADV_HUGEPAGE only changes how its pages are backed, never
        // their contents; a failure (no THP support) is harmless.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
    }
}
