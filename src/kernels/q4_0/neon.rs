//! NEON twin of [`super::scalar::quantize_block`]: one block per step, in
//! eight registers of four.

use std::arch::aarch64::*;

use super::scalar;
use crate::kernels::simd::neon::{first_of_magnitude, max_abs};

/// Quantizes whole blocks of 32 values into 18-byte blocks, byte for byte
/// as [`super::scalar::quantize_block`].
///
/// # Safety
/// The CPU supports NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn quantize_blocks(src: &[f32], blocks: &mut [u8]) {
    for (x, block) in src.chunks_exact(32).zip(blocks.chunks_exact_mut(18)) {
        // SAFETY: `x` holds 32 f32.
        let v: [float32x4_t; 8] =
            std::array::from_fn(|i| unsafe { vld1q_f32(x.as_ptr().add(4 * i)) });
        // `if amax < |v| { amax = |v| }` from 0 (NaN never compares above,
        // as in C), then the first element reaching it, which the scalar
        // loop keeps; none for an all-zero block, whose -0.0 must not
        // become the maximum.
        let amax = max_abs(x);
        let max = if amax > 0.0 {
            first_of_magnitude(x, amax)
        } else {
            0.0
        };
        let id = vdupq_n_f32(scalar::write_scale(max, block));
        // Two roundings, as C's `x * id + 8.5`, then a truncation as
        // x86-64's cvttss2si: for finite `id`, |x * id| <= 8.0001, so the
        // integers are 0..=16; an infinite `id` gives infinities or NaN,
        // whose i32::MIN there has the low byte 0.
        let t = v.map(|v| {
            let t = vaddq_f32(vmulq_f32(v, id), vdupq_n_f32(8.5));
            let in_range = vcaltq_f32(t, vdupq_n_f32(2147483648.0));
            vandq_s32(vcvtq_s32_f32(t), vreinterpretq_s32_u32(in_range))
        });
        // Values 0..=16 narrow without saturating.
        let narrow = |a: int32x4_t, b: int32x4_t| vcombine_s16(vmovn_s32(a), vmovn_s32(b));
        let low = vcombine_s8(vmovn_s16(narrow(t[0], t[1])), vmovn_s16(narrow(t[2], t[3])));
        let high = vcombine_s8(vmovn_s16(narrow(t[4], t[5])), vmovn_s16(narrow(t[6], t[7])));
        let fifteen = vdupq_n_s8(15);
        let (low, high) = (
            vreinterpretq_u8_s8(vminq_s8(low, fifteen)),
            vreinterpretq_u8_s8(vminq_s8(high, fifteen)),
        );
        let bytes = vorrq_u8(low, vshlq_n_u8::<4>(high));
        // SAFETY: the block holds 18 bytes: 16 from offset 2.
        unsafe { vst1q_u8(block.as_mut_ptr().add(2), bytes) };
    }
}
