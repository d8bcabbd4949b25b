//! Pack and unpack of the format: [`scalar`] is the reference that
//! defines it; `avx2`, `avx512` and `neon` are its f32 twins over whole
//! groups, which must equal it bit for bit.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub mod scalar;

use rayon::prelude::*;

use super::entry::Entry;
use super::threads;
use crate::element::Element;
use crate::layout::Layout;

/// Packs one row: `src` is `cols` long, `packed` one packed row, `scales`
/// one row of scales.
pub(crate) type PackRow<T> = unsafe fn(&[T], usize, &mut [u8], &mut [f32]);
/// Unpacks one row; slices as for [`PackRow`].
pub(crate) type UnpackRow<T> = unsafe fn(&[u8], &[f32], usize, &mut [T]);

/// The row kernels of one element type.
pub(crate) struct RowKernels<T> {
    pub(crate) pack: PackRow<T>,
    pub(crate) unpack: UnpackRow<T>,
    /// `unpack`'s bytes written with non-temporal stores where the kernel
    /// has them (else `unpack` itself), for outputs of at least
    /// [`STREAMING_UNPACK_BYTES`].
    pub(crate) unpack_streaming: UnpackRow<T>,
}

/// Unpack outputs of at least this many bytes are written with
/// non-temporal stores: an output this large is out of the cache before
/// it is read again, and ordinary stores would first read every line they
/// fill (1.6-1.8x faster on a 64 MiB output, one thread). glibc's
/// `memset` and `memcpy` switch to such stores at a threshold of the same
/// order (three quarters of a thread's share of the last-level cache).
pub(crate) const STREAMING_UNPACK_BYTES: usize = 8 << 20;

impl<T> Clone for RowKernels<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for RowKernels<T> {}

impl<T: Element> RowKernels<T> {
    /// The scalar reference, for any element type.
    pub(crate) const fn reference() -> Self {
        RowKernels {
            pack: scalar::pack_row::<T>,
            unpack: scalar::unpack_row::<T>,
            unpack_streaming: scalar::unpack_row::<T>,
        }
    }
}

/// A SIMD twin of the reference for f32, over whole groups only.
pub(crate) trait FullGroups {
    /// f32 lanes per register: the twin handles group sizes divisible by it.
    const LANES: usize;

    /// Packs whole groups.
    ///
    /// # Safety
    /// The CPU runs the kernel, and `group_size % LANES == 0`.
    unsafe fn pack(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]);

    /// Unpacks whole groups.
    ///
    /// # Safety
    /// As [`FullGroups::pack`].
    unsafe fn unpack(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]);

    /// [`FullGroups::unpack`] with non-temporal stores: the same values,
    /// written around the cache (whatever `dst`'s alignment). Only the
    /// kernels that have such stores override it.
    ///
    /// # Safety
    /// As [`FullGroups::pack`].
    unsafe fn unpack_streaming(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: forwarded from the caller.
        unsafe { Self::unpack(packed, scales, group_size, dst) }
    }
}

/// How far ahead of its reads pack asks for source floats into L1 (and,
/// as the products do, 16 KiB ahead into L2): its quantize pass is
/// compute-heavy, and with the hardware prefetchers alone the next groups'
/// loads wait on memory (g = 32, one thread: about 0.5x of the streaming
/// read without hints, 0.7x with the L1 one, 0.8x with both; 1-8 KiB
/// measured alike for the L1 one).
#[cfg(target_arch = "x86_64")]
const PREFETCH_DISTANCE: usize = 4096;

/// Asks for the cache line `PREFETCH_DISTANCE` bytes after `p` to be
/// brought into L1, and the one [`super::matmul::prefetch_ahead`] names
/// into L2. Rows are contiguous, so past a row's end these are the next
/// row's floats; past the matrix the hints are only wasted.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn prefetch_source(p: *const f32) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is a hint: it never faults and reads nothing the
    // program sees, whatever the address (hence `wrapping_add`).
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(PREFETCH_DISTANCE)) }
    super::matmul::prefetch_ahead(p);
}

/// Whether `group_size` is a multiple of `N`: what a twin of `N` lanes
/// serves.
pub(crate) fn multiple_of<const N: usize>(group_size: usize) -> bool {
    group_size.is_multiple_of(N)
}

/// Packs a row with `K` over its whole groups and the reference over the
/// ragged last one.
///
/// # Safety
/// As [`FullGroups::pack`].
pub(crate) unsafe fn pack_row_with<K: FullGroups>(
    src: &[f32],
    g: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let full = src.len() / g;
    let (src_full, src_tail) = src.split_at(full * g);
    let (packed_full, packed_tail) = packed.split_at_mut(full * g / 2);
    let (scales_full, scales_tail) = scales.split_at_mut(full);
    // SAFETY: forwarded from the caller.
    unsafe { K::pack(src_full, g, packed_full, scales_full) };
    scalar::pack_row(src_tail, g, packed_tail, scales_tail);
}

/// Unpacks a row as [`pack_row_with`] packs it, with `K`'s non-temporal
/// stores when `STREAMING`.
///
/// # Safety
/// As [`FullGroups::pack`].
pub(crate) unsafe fn unpack_row_with<K: FullGroups, const STREAMING: bool>(
    packed: &[u8],
    scales: &[f32],
    g: usize,
    dst: &mut [f32],
) {
    let full = dst.len() / g;
    let (dst_full, dst_tail) = dst.split_at_mut(full * g);
    let (packed_full, packed_tail) = packed.split_at(full * g / 2);
    let (scales_full, scales_tail) = scales.split_at(full);
    // SAFETY: forwarded from the caller.
    unsafe {
        if STREAMING {
            K::unpack_streaming(packed_full, scales_full, g, dst_full)
        } else {
            K::unpack(packed_full, scales_full, g, dst_full)
        }
    };
    scalar::unpack_row(packed_tail, scales_tail, g, dst_tail);
}

/// `K`'s f32 row kernels.
const fn full_groups<K: FullGroups>() -> RowKernels<f32> {
    RowKernels {
        pack: pack_row_with::<K>,
        unpack: unpack_row_with::<K, false>,
        unpack_streaming: unpack_row_with::<K, true>,
    }
}

pub(crate) static SCALAR_F32: Entry<RowKernels<f32>> = Entry::reference(RowKernels::reference());
pub(crate) static SCALAR_F16: Entry<RowKernels<half::f16>> =
    Entry::reference(RowKernels::reference());
pub(crate) static SCALAR_BF16: Entry<RowKernels<half::bf16>> =
    Entry::reference(RowKernels::reference());
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_F32: Entry<RowKernels<f32>> = Entry::simd(
    multiple_of::<{ avx2::Avx2::LANES }>,
    full_groups::<avx2::Avx2>(),
    &SCALAR_F32,
);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_F32: Entry<RowKernels<f32>> = Entry::simd(
    multiple_of::<{ avx512::Avx512::LANES }>,
    full_groups::<avx512::Avx512>(),
    &AVX2_F32,
);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_F32: Entry<RowKernels<f32>> = Entry::simd(
    multiple_of::<{ neon::Neon::LANES }>,
    full_groups::<neon::Neon>(),
    &SCALAR_F32,
);

/// Runs `pack_row(src_row, packed_row, scales_row)` over every row, on up
/// to `threads` threads. The slices are exactly the layout's `elements`,
/// `packed_len` and `scales_len` long.
pub(crate) fn pack_rows<T: Element>(
    layout: &Layout,
    threads: usize,
    src: &[T],
    packed: &mut [u8],
    scales: &mut [f32],
    pack_row: impl Fn(&[T], &mut [u8], &mut [f32]) + Sync,
) {
    if layout.elements == 0 {
        return;
    }
    let pack_rows = |src: &[T], packed: &mut [u8], scales: &mut [f32]| {
        let rows = src
            .chunks_exact(layout.cols)
            .zip(packed.chunks_exact_mut(layout.packed_row_bytes))
            .zip(scales.chunks_exact_mut(layout.groups_per_row));
        for ((src_row, packed_row), scales_row) in rows {
            pack_row(src_row, packed_row, scales_row);
        }
    };
    let task_rows = threads::rows_per_task(layout.rows, layout.cols, threads);
    if task_rows >= layout.rows {
        return pack_rows(src, packed, scales);
    }
    src.par_chunks(task_rows * layout.cols)
        .zip(packed.par_chunks_mut(task_rows * layout.packed_row_bytes))
        .zip(scales.par_chunks_mut(task_rows * layout.groups_per_row))
        .for_each(|((src, packed), scales)| pack_rows(src, packed, scales));
}

/// Runs `unpack_row(packed_row, scales_row, dst_row)` over every row, on
/// up to `threads` threads; slices as for [`pack_rows`].
pub(crate) fn unpack_rows<T: Element>(
    layout: &Layout,
    threads: usize,
    packed: &[u8],
    scales: &[f32],
    dst: &mut [T],
    unpack_row: impl Fn(&[u8], &[f32], &mut [T]) + Sync,
) {
    if layout.elements == 0 {
        return;
    }
    let unpack_rows = |dst: &mut [T], packed: &[u8], scales: &[f32]| {
        let rows = dst
            .chunks_exact_mut(layout.cols)
            .zip(packed.chunks_exact(layout.packed_row_bytes))
            .zip(scales.chunks_exact(layout.groups_per_row));
        for ((dst_row, packed_row), scales_row) in rows {
            unpack_row(packed_row, scales_row, dst_row);
        }
    };
    let task_rows = threads::rows_per_task(layout.rows, layout.cols, threads);
    if task_rows >= layout.rows {
        return unpack_rows(dst, packed, scales);
    }
    dst.par_chunks_mut(task_rows * layout.cols)
        .zip(packed.par_chunks(task_rows * layout.packed_row_bytes))
        .zip(scales.par_chunks(task_rows * layout.groups_per_row))
        .for_each(|((dst, packed), scales)| unpack_rows(dst, packed, scales));
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    //! The streaming unpack twins against the reference, at every
    //! alignment of the output, leaving the floats around it alone.

    use super::*;
    use crate::kernels::Kernel;

    fn check<K: FullGroups>(kernel: Kernel) {
        if !kernel.is_supported() {
            return;
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for g in [K::LANES, 2 * K::LANES, 3 * K::LANES, 64, 128] {
            for groups in 0..6 {
                let n = groups * g;
                let packed: Vec<u8> = (0..n / 2).map(|_| next() as u8).collect();
                let mut scales: Vec<f32> = (0..groups)
                    .map(|_| (next() % 2001) as f32 / 100.0 - 10.0)
                    .collect();
                if groups > 2 {
                    scales[1] = f32::NAN;
                    scales[2] = f32::NEG_INFINITY;
                }
                let mut want = vec![0f32; n];
                scalar::unpack_row(&packed, &scales, g, &mut want);
                // Offsets 0..16 floats from a 64-byte boundary, with guard
                // floats on both sides.
                let mut buffer = vec![0f32; n + 64];
                let base = (16 - buffer.as_ptr() as usize / 4 % 16) % 16;
                for offset in base..base + 16 {
                    buffer.fill(-1.5);
                    let dst = &mut buffer[offset..offset + n];
                    // SAFETY: the CPU runs `kernel`; `g` is a multiple of its lanes.
                    unsafe { K::unpack_streaming(&packed, &scales, g, dst) };
                    let got: Vec<u32> = dst.iter().map(|v| v.to_bits()).collect();
                    let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(
                        got,
                        want,
                        "{} g {g} groups {groups} offset {offset}",
                        kernel.name()
                    );
                    let outside = buffer[..offset].iter().chain(&buffer[offset + n..]);
                    assert!(
                        outside.into_iter().all(|&v| v == -1.5),
                        "{} wrote outside",
                        kernel.name()
                    );
                }
            }
        }
    }

    #[test]
    fn avx512_streaming_unpack_matches_the_reference() {
        check::<avx512::Avx512>(Kernel::Avx512);
    }

    #[test]
    fn avx2_streaming_unpack_matches_the_reference() {
        check::<avx2::Avx2>(Kernel::Avx2);
    }
}
