//! aarch64 NEON twin of [`super::scalar`] for f32, for group sizes that are
//! multiples of 4: one q register per 4 elements.
//! Whole groups only: `super::FullGroups` sends ragged tails to the
//! scalar reference.

use std::arch::aarch64::*;

use super::scalar::MIN_SCALE;

/// Lanes per register.
const LANES: usize = 4;

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
        let mut max_abs = vdupq_n_f32(0.0);
        for v in group.chunks_exact(LANES) {
            // SAFETY: `v` holds exactly 4 f32.
            let x = unsafe { vld1q_f32(v.as_ptr()) };
            // Compare and select: a NaN (even a signaling one, which
            // fmaxnm would propagate) never compares greater, so it is
            // ignored, as in the scalar fold.
            let a = vabsq_f32(x);
            max_abs = vbslq_f32(vcgtq_f32(a, max_abs), a, max_abs);
        }
        let scale = (vmaxvq_f32(max_abs) / 7.0).max(MIN_SCALE);
        *scale_out = scale;
        let scale = vdupq_n_f32(scale);
        for (v, out) in group
            .chunks_exact(LANES)
            .zip(bytes.chunks_exact_mut(LANES / 2))
        {
            // SAFETY: `v` holds 4 f32.
            let x = unsafe { vld1q_f32(v.as_ptr()) };
            // frinta rounds half away from zero, like f32::round; fmax/fmin
            // keep NaN, and fcvtzs turns NaN into 0, like `as i8`.
            let q = vrndaq_f32(vdivq_f32(x, scale));
            let clamped = vminq_f32(vmaxq_f32(q, vdupq_n_f32(-8.0)), vdupq_n_f32(7.0));
            let nibbles = vaddq_s32(vcvtq_s32_f32(clamped), vdupq_n_s32(8));
            // Lanes 2j and 2j+1 share a 64-bit lane: fold the odd one down.
            let wide = vreinterpretq_u64_s32(nibbles);
            let pairs = vorrq_u64(wide, vshrq_n_u64::<28>(wide));
            out[0] = vgetq_lane_u64::<0>(pairs) as u8;
            out[1] = vgetq_lane_u64::<1>(pairs) as u8;
        }
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
