//! aarch64 NEON twin of [`super::scalar`] for f32, for group sizes that are
//! multiples of 4: one q register per 4 elements.
//! Whole groups only: `super::FullGroups` sends ragged tails to the
//! scalar reference.

use std::arch::aarch64::*;

use super::scalar::MIN_SCALE;
use crate::kernels::simd::neon::{max_abs, quantize_group, LANES};

/// This kernel, for [`super::FullGroups`].
pub(crate) struct Neon;

impl super::FullGroups for Neon {
    const LANES: usize = LANES;

    unsafe fn pack(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
        // SAFETY: the caller guarantees NEON and the group size.
        unsafe { pack_full_groups(src, group_size, packed, scales) }
    }

    unsafe fn unpack(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: the caller guarantees NEON and the group size.
        unsafe { unpack_full_groups(packed, scales, group_size, dst) }
    }
}

#[target_feature(enable = "neon")]
fn pack_full_groups(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    let groups = src
        .chunks_exact(group_size)
        .zip(packed.chunks_exact_mut(group_size / 2))
        .zip(scales.iter_mut());
    for ((group, bytes), scale_out) in groups {
        let scale = (max_abs(group) / 7.0).max(MIN_SCALE);
        *scale_out = scale;
        quantize_group(group, bytes, scale);
    }
}

#[target_feature(enable = "neon")]
fn unpack_full_groups(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let groups = dst
        .chunks_exact_mut(group_size)
        .zip(packed.chunks_exact(group_size / 2))
        .zip(scales);
    for ((group, bytes), &scale) in groups {
        let scale = vdupq_n_f32(scale);
        for (out, b) in group
            .chunks_exact_mut(LANES)
            .zip(bytes.chunks_exact(LANES / 2))
        {
            let nibbles = [b[0] & 15, b[0] >> 4, b[1] & 15, b[1] >> 4].map(|n| n as i32 - 8);
            // SAFETY: `nibbles` holds 4 i32 and `out` 4 f32.
            unsafe {
                let levels = vcvtq_f32_s32(vld1q_s32(nibbles.as_ptr()));
                vst1q_f32(out.as_mut_ptr(), vmulq_f32(levels, scale));
            }
        }
    }
}
