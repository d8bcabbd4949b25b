//! AVX2 + FMA primitives shared by every AVX2 kernel: the exact quantize
//! step of the format, the nibble decoder, and lane reductions.

use std::arch::x86_64::*;

use crate::kernels::pack::scalar::NEAR_HALF;

/// f32 lanes per register.
pub(crate) const LANES: usize = 8;

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn abs(x: __m256) -> __m256 {
    _mm256_andnot_ps(_mm256_set1_ps(-0.0), x)
}

/// Packs one whole group with `scale`, as `scalar::quantize` would: the
/// quotients are clamped, so scales below `max |w| / 7` (the signed
/// encoder's) work too.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `group.len() % 8 == 0` and `bytes` holds
/// half as many bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn quantize_group(group: &[f32], bytes: &mut [u8], scale: f32) {
    let inverse = _mm256_set1_ps(1.0 / scale);
    let scale = _mm256_set1_ps(scale);
    for (v, out) in group
        .chunks_exact(LANES)
        .zip(bytes.chunks_exact_mut(LANES / 2))
    {
        // SAFETY: `v` holds 8 f32.
        let x = unsafe { _mm256_loadu_ps(v.as_ptr()) };
        let nibbles = quantize(x, scale, inverse);
        // Lanes 2j and 2j+1 share a 64-bit lane: fold the odd one down to
        // bits 4..8, then gather each 64-bit lane's low byte.
        let pairs = _mm256_or_si256(nibbles, _mm256_srli_epi64::<28>(nibbles));
        let gather = _mm256_setr_epi8(
            0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
            0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        );
        let gathered = _mm256_shuffle_epi8(pairs, gather);
        let four = _mm_unpacklo_epi16(
            _mm256_castsi256_si128(gathered),
            _mm256_extracti128_si256::<1>(gathered),
        );
        out.copy_from_slice(&_mm_cvtsi128_si32(four).to_le_bytes());
    }
}

/// Largest lane of a vector holding no NaN.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn horizontal_max(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

/// `scalar::quantize(x, scale)` per lane, estimating the quotient as
/// `x * (1 / scale)` and taking the true division only near half-integers,
/// as explained on `avx512::quantize`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn quantize(x: __m256, scale: __m256, inverse: __m256) -> __m256i {
    let estimate = _mm256_mul_ps(x, inverse);
    let nearest = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(estimate);
    let off_half = _mm256_sub_ps(abs(_mm256_sub_ps(estimate, nearest)), _mm256_set1_ps(0.5));
    let near = _mm256_cmp_ps::<_CMP_LT_OQ>(abs(off_half), _mm256_set1_ps(NEAR_HALF));
    if _mm256_movemask_ps(near) != 0 {
        return quantize_exact(_mm256_div_ps(x, scale));
    }
    clamp_to_nibble(nearest, estimate)
}

/// `clamp(rounded, -8, 7) + 8`, with 8 where `q` is NaN (as `as i8` gives 0).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn clamp_to_nibble(rounded: __m256, q: __m256) -> __m256i {
    let clamped = _mm256_min_ps(
        _mm256_max_ps(rounded, _mm256_set1_ps(-8.0)),
        _mm256_set1_ps(7.0),
    );
    // NaN lanes become 0 before the conversion.
    let ordered = _mm256_cmp_ps::<_CMP_ORD_Q>(q, q);
    let q = _mm256_cvttps_epi32(_mm256_and_ps(ordered, clamped));
    _mm256_add_epi32(q, _mm256_set1_epi32(8))
}

/// `clamp(round(q), -8, 7) + 8` per lane for the true quotient `q`,
/// rounding half away from zero, exactly as `scalar::quantize` does.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn quantize_exact(q: __m256) -> __m256i {
    let truncated = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(q);
    // q - trunc(q) is exact, so this is the true distance to the integer.
    let frac = abs(_mm256_sub_ps(q, truncated));
    let away = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
    let one = _mm256_or_ps(_mm256_and_ps(q, _mm256_set1_ps(-0.0)), _mm256_set1_ps(1.0));
    clamp_to_nibble(_mm256_add_ps(truncated, _mm256_and_ps(away, one)), q)
}

/// The 8 weights of 4 packed bytes: `(u - 8) * scale`, the single f32
/// multiply unpack defines.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn decode8(bytes: &[u8], scale: __m256) -> __m256 {
    let four = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let wide = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(four));
    // Each byte's high nibble moves to bits 32..36 of its lane.
    let split = _mm256_or_si256(wide, _mm256_slli_epi64::<28>(wide));
    let nibbles = _mm256_and_si256(split, _mm256_set1_epi32(0xF));
    let levels = _mm256_cvtepi32_ps(_mm256_sub_epi32(nibbles, _mm256_set1_epi32(8)));
    _mm256_mul_ps(levels, scale)
}
