//! The error-compensating encoder's hot loop: the updates a block of
//! quantized columns owes the later columns of each row (GPTQ's lazy batch
//! update). The reference in [`scalar`] defines it; the AVX2 and AVX-512
//! twins keep tiles of 4 rows in registers across the block, with the same
//! f32 multiply then subtract per element in the same order (never fused),
//! so the same bits.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
pub(crate) mod scalar;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::entry::any_group_size;
use super::entry::Entry;

/// One block's updates to the rows it was quantized in.
pub(crate) struct BlockUpdate<'a> {
    /// `[rows, errors_stride]`: each row's errors for the block's columns.
    pub(crate) errors: &'a [f32],
    pub(crate) errors_stride: usize,
    /// `[cols, cols]` row-major, `U` in its upper triangle.
    pub(crate) u: &'a [f32],
    /// The block's columns (positions in the processing order).
    pub(crate) block: std::ops::Range<usize>,
    /// `[rows, cols]`: the rows being quantized.
    pub(crate) w: &'a mut [f32],
    pub(crate) cols: usize,
    pub(crate) rows: usize,
}

/// Applies a [`BlockUpdate`].
pub(crate) type UpdateFn = unsafe fn(BlockUpdate);

pub(crate) static SCALAR_UPDATE: Entry<UpdateFn> = Entry::reference(scalar::update);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_UPDATE: Entry<UpdateFn> =
    Entry::simd(any_group_size, avx2::update, &SCALAR_UPDATE);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_UPDATE: Entry<UpdateFn> =
    Entry::simd(any_group_size, avx512::update, &AVX2_UPDATE);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_UPDATE: Entry<UpdateFn> =
    Entry::simd(any_group_size, neon::update, &SCALAR_UPDATE);
