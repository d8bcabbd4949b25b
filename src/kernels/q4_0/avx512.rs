//! AVX-512 (F/BW/VL) twin of [`super::scalar::quantize_block`]: one block
//! per step, its two halves in two registers.

use std::arch::x86_64::*;

use super::scalar;

/// Quantizes whole blocks of 32 values into 18-byte blocks, byte for byte
/// as [`super::scalar::quantize_block`].
///
/// # Safety
/// The CPU supports AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn quantize_blocks(src: &[f32], blocks: &mut [u8]) {
    let low_nibble_mask = _mm_set1_epi8(0x0F);
    for (x, block) in src.chunks_exact(32).zip(blocks.chunks_exact_mut(18)) {
        // SAFETY: `x` holds 32 f32.
        let (a, b) = unsafe {
            (
                _mm512_loadu_ps(x.as_ptr()),
                _mm512_loadu_ps(x.as_ptr().add(16)),
            )
        };
        let (abs_a, abs_b) = (_mm512_abs_ps(a), _mm512_abs_ps(b));
        // Lane-wise `if amax < |v| { amax = |v| }` from 0: NaN never
        // compares above, as in C, so no NaN reaches the reduction.
        let zero = _mm512_setzero_ps();
        let lane_max =
            _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(zero, abs_a), zero, abs_a);
        let lane_max = _mm512_mask_blend_ps(
            _mm512_cmp_ps_mask::<_CMP_LT_OQ>(lane_max, abs_b),
            lane_max,
            abs_b,
        );
        let amax = _mm512_reduce_max_ps(lane_max);
        // The first element reaching the largest magnitude is the one the
        // scalar loop keeps.
        let hits = (_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(abs_a, _mm512_set1_ps(amax)) as u32)
            | ((_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(abs_b, _mm512_set1_ps(amax)) as u32) << 16);
        let max = if amax > 0.0 {
            x[hits.trailing_zeros() as usize]
        } else {
            0.0
        };
        let id = _mm512_set1_ps(scalar::write_scale(max, block));
        // Two roundings, as C's `x * id + 8.5`; then cvttps2dq (i32::MIN
        // for NaN and out of range), its low byte, min(15) as int8.
        let half = _mm512_set1_ps(8.5);
        let nibbles = |v: __m512| {
            let t = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(v, id), half));
            _mm_min_epi8(_mm512_cvtepi32_epi8(t), _mm_set1_epi8(15))
        };
        let (low, high) = (nibbles(a), nibbles(b));
        let high = _mm_andnot_si128(low_nibble_mask, _mm_slli_epi16::<4>(high));
        // SAFETY: the block holds 18 bytes: 16 from offset 2.
        unsafe { _mm_storeu_si128(block.as_mut_ptr().add(2).cast(), _mm_or_si128(low, high)) };
    }
}
