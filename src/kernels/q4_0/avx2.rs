//! AVX2 twin of [`super::scalar::quantize_block`]: one block per step, in
//! four registers of eight.

use std::arch::x86_64::*;

use super::scalar;

/// Quantizes whole blocks of 32 values into 18-byte blocks, byte for byte
/// as [`super::scalar::quantize_block`].
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn quantize_blocks(src: &[f32], blocks: &mut [u8]) {
    let sign = _mm256_set1_ps(-0.0);
    for (x, block) in src.chunks_exact(32).zip(blocks.chunks_exact_mut(18)) {
        // SAFETY: `x` holds 32 f32.
        let v: [__m256; 4] =
            std::array::from_fn(|i| unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * i)) });
        let abs = v.map(|v| _mm256_andnot_ps(sign, v));
        // Lane-wise `if amax < |v| { amax = |v| }` from 0: NaN never
        // compares above, as in C, so no NaN reaches the reduction.
        let lane_max = abs.iter().fold(_mm256_setzero_ps(), |m, &a| {
            _mm256_blendv_ps(m, a, _mm256_cmp_ps::<_CMP_LT_OQ>(m, a))
        });
        let half = _mm_max_ps(
            _mm256_castps256_ps128(lane_max),
            _mm256_extractf128_ps::<1>(lane_max),
        );
        let quarter = _mm_max_ps(half, _mm_movehl_ps(half, half));
        let amax = _mm_cvtss_f32(_mm_max_ss(quarter, _mm_movehdup_ps(quarter)));
        // The first element reaching the largest magnitude is the one the
        // scalar loop keeps.
        let target = _mm256_set1_ps(amax);
        let hits = abs.iter().enumerate().fold(0u32, |hits, (i, &a)| {
            let eq = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, target)) as u32;
            hits | eq << (8 * i)
        });
        let max = if amax > 0.0 {
            x[hits.trailing_zeros() as usize]
        } else {
            0.0
        };
        let id = _mm256_set1_ps(scalar::write_scale(max, block));
        // Two roundings, as C's `x * id + 8.5`, then cvttps2dq. For finite
        // `id`, |x * id| <= 8.0001, so the integers are 0..=16 and pack
        // without saturating; cvttps2dq's i32::MIN (NaN, out of range)
        // becomes the 0 its low byte is.
        let t = v.map(|v| {
            let t = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v, id), _mm256_set1_ps(8.5)));
            _mm256_andnot_si256(_mm256_cmpeq_epi32(t, _mm256_set1_epi32(i32::MIN)), t)
        });
        // packs interleaves 128-bit lanes; the permute puts them in order.
        let words = [
            _mm256_packs_epi32(t[0], t[1]),
            _mm256_packs_epi32(t[2], t[3]),
        ]
        .map(|w| _mm256_permute4x64_epi64::<0b11_01_10_00>(w));
        let bytes =
            _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi16(words[0], words[1]));
        let nibbles = _mm256_min_epi8(bytes, _mm256_set1_epi8(15));
        let (low, high) = (
            _mm256_castsi256_si128(nibbles),
            _mm256_extracti128_si256::<1>(nibbles),
        );
        let high = _mm_andnot_si128(_mm_set1_epi8(0x0F), _mm_slli_epi16::<4>(high));
        // SAFETY: the block holds 18 bytes: 16 from offset 2.
        unsafe { _mm_storeu_si128(block.as_mut_ptr().add(2).cast(), _mm_or_si128(low, high)) };
    }
}
