//! NEON twins of the encoders' references: the signed encoder over whole
//! groups, and the search's [`super::scalar::fit`] with four candidate
//! scales per register, each lane summing over the elements in order with
//! the reference's operations (two f64 registers per four lanes), so every
//! sum is bit-identical.

use std::arch::aarch64::*;

use super::scalar::refit;
use crate::kernels::pack::scalar::MIN_SCALE;
use crate::kernels::simd::neon::{first_of_magnitude, max_abs, quantize_exact, quantize_group};

/// Packs whole groups (`group_size % 4 == 0`) with the signed encoder, as
/// [`super::scalar::signed_scale`] and `scalar::quantize` do.
///
/// # Safety
/// The CPU supports NEON; `group_size % 4 == 0`.
#[target_feature(enable = "neon")]
pub(super) unsafe fn pack_signed(
    src: &[f32],
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let groups = src
        .chunks_exact(group_size)
        .zip(packed.chunks_exact_mut(group_size / 2))
        .zip(scales.iter_mut());
    for ((group, bytes), scale) in groups {
        let amax = max_abs(group);
        // The first element reaching the largest magnitude is the
        // reference's `m` (none for an all-zero group).
        let m = first_of_magnitude(group, amax);
        let s = (amax / 8.0).max(MIN_SCALE);
        *scale = if m > 0.0 { -s } else { s };
        quantize_group(group, bytes, *scale);
    }
}

/// What [`super::scalar::fit`] gives for each of `scales`.
///
/// # Safety
/// The CPU supports NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn fits(
    values: &[f32],
    importance: Option<&[f32]>,
    scales: &[f32],
) -> Vec<(f64, Option<f32>)> {
    let mut out = Vec::with_capacity(scales.len());
    for chunk in scales.chunks(4) {
        // Lanes past the chunk compute with scale 1 and are dropped.
        let mut lanes = [1f32; 4];
        lanes[..chunk.len()].copy_from_slice(chunk);
        // SAFETY: `lanes` holds 4 f32.
        let s = unsafe { vld1q_f32(lanes.as_ptr()) };
        let zero = vdupq_n_f64(0.0);
        let (mut error, mut num, mut den) = ([zero; 2], [zero; 2], [zero; 2]);
        for (i, &w) in values.iter().enumerate() {
            let nibble = quantize_exact(vdivq_f32(vdupq_n_f32(w), s));
            let q = vcvtq_f32_s32(vsubq_s32(nibble, vdupq_n_s32(8)));
            let decoded = vmulq_f32(q, s);
            let c = importance.map_or(1.0, |c| c[i] as f64);
            let (c_v, cw) = (vdupq_n_f64(c), vdupq_n_f64(c * w as f64));
            let halves = [
                (
                    vcvt_f64_f32(vget_low_f32(decoded)),
                    vcvt_f64_f32(vget_low_f32(q)),
                ),
                (vcvt_high_f64_f32(decoded), vcvt_high_f64_f32(q)),
            ];
            for (h, (decoded, q)) in halves.into_iter().enumerate() {
                let e = vsubq_f64(vdupq_n_f64(w as f64), decoded);
                // Separate multiplies and adds: no fused rounding.
                error[h] = vaddq_f64(error[h], vmulq_f64(vmulq_f64(c_v, e), e));
                num[h] = vaddq_f64(num[h], vmulq_f64(cw, q));
                den[h] = vaddq_f64(den[h], vmulq_f64(vmulq_f64(c_v, q), q));
            }
        }
        let store = |v: [float64x2_t; 2]| {
            let mut a = [0f64; 4];
            // SAFETY: `a` holds 4 f64.
            unsafe {
                vst1q_f64(a.as_mut_ptr(), v[0]);
                vst1q_f64(a.as_mut_ptr().add(2), v[1]);
            }
            a
        };
        let (error, num, den) = (store(error), store(num), store(den));
        out.extend((0..chunk.len()).map(|l| (error[l], refit(num[l], den[l]))));
    }
    out
}
