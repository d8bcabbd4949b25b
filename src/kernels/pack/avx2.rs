//! AVX2 + FMA twin of [`super::scalar`] for f32, for group sizes that are
//! multiples of 8: one ymm register per 8 elements.
//! Whole groups only: `super::FullGroups` sends ragged tails to the
//! scalar reference.

use std::arch::x86_64::*;

use super::scalar::MIN_SCALE;
use crate::kernels::simd::avx2::{abs, decode8, horizontal_max, quantize_group, LANES};

/// This kernel, for [`super::FullGroups`].
pub(crate) struct Avx2;

impl super::FullGroups for Avx2 {
    const LANES: usize = LANES;

    unsafe fn pack(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
        // SAFETY: the caller guarantees AVX2 and FMA and the group size.
        unsafe { pack_full_groups(src, group_size, packed, scales) }
    }

    unsafe fn unpack(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX2 and FMA and the group size.
        unsafe { unpack_full_groups(packed, scales, group_size, dst) }
    }
}

#[target_feature(enable = "avx2,fma")]
fn pack_full_groups(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    let groups = src
        .chunks_exact(group_size)
        .zip(packed.chunks_exact_mut(group_size / 2))
        .zip(scales.iter_mut());
    for ((group, bytes), scale_out) in groups {
        let mut max_abs = _mm256_setzero_ps();
        for v in group.chunks_exact(LANES) {
            super::prefetch_source(v.as_ptr());
            // SAFETY: `v` holds exactly 8 f32.
            let x = unsafe { _mm256_loadu_ps(v.as_ptr()) };
            // vmaxps returns its second operand when either is NaN: NaN
            // elements are ignored, as in the scalar fold.
            max_abs = _mm256_max_ps(abs(x), max_abs);
        }
        let scale = (horizontal_max(max_abs) / 7.0).max(MIN_SCALE);
        *scale_out = scale;
        // SAFETY: this function's target features, the caller's group size.
        unsafe { quantize_group(group, bytes, scale) };
    }
}

#[target_feature(enable = "avx2,fma")]
fn unpack_full_groups(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let groups = dst
        .chunks_exact_mut(group_size)
        .zip(packed.chunks_exact(group_size / 2))
        .zip(scales);
    for ((group, bytes), &scale) in groups {
        let scale = _mm256_set1_ps(scale);
        for (out, b) in group
            .chunks_exact_mut(LANES)
            .zip(bytes.chunks_exact(LANES / 2))
        {
            // SAFETY: `out` holds 8 f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), decode8(b, scale)) };
        }
    }
}
