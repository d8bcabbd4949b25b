//! AVX-512 (F/BW/VL) primitives shared by every AVX-512 kernel: the exact
//! quantize step of the format and the nibble decoder.

use std::arch::x86_64::*;

use crate::kernels::pack::scalar::NEAR_HALF;

/// f32 lanes per register.
pub(crate) const LANES: usize = 16;

/// Packs whole groups of `src` with the given scales and their inverses
/// (one per group), as `scalar::quantize` would, provided every
/// `|w / scale|` is at most 7.0001, or at most 8 with `CLAMP` (the signed
/// encoder's `max |w| / 8`: quotients reach 8 and are clamped to 7).
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL; `group_size % 16 == 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn quantize_groups<const CLAMP: bool>(
    src: &[f32],
    group_size: usize,
    scale_of: &[f32],
    inverse_of: &[f32],
    packed: &mut [u8],
) {
    let groups = src
        .chunks_exact(group_size)
        .zip(packed.chunks_exact_mut(group_size / 2));
    for (j, (group, bytes)) in groups.enumerate() {
        let (scale, inverse) = (_mm512_set1_ps(scale_of[j]), _mm512_set1_ps(inverse_of[j]));
        for (v, out) in group
            .chunks_exact(LANES)
            .zip(bytes.chunks_exact_mut(LANES / 2))
        {
            // SAFETY: `v` holds 16 f32 and `out` 8 bytes.
            unsafe {
                let nibbles = quantize::<CLAMP>(_mm512_loadu_ps(v.as_ptr()), scale, inverse);
                // Lanes 2j and 2j+1 share a 64-bit lane: take bits 0..4
                // from the even one and bits 4..8 from the odd one shifted
                // down (a bit select), then keep each 64-bit lane's low byte.
                let odd = _mm512_srli_epi64::<28>(nibbles);
                let pairs =
                    _mm512_ternarylogic_epi64::<0xE4>(nibbles, odd, _mm512_set1_epi64(0x0F));
                _mm_storel_epi64(out.as_mut_ptr().cast(), _mm512_cvtepi64_epi8(pairs));
            }
        }
    }
}

/// `scalar::quantize(x, scale)` per lane. `fma(x, 1 / scale, 8)` estimates
/// `x / scale + 8` within 2^-19 (|x / scale| is at most 7.0001, or 8 with
/// `CLAMP`), so its nearest integer is the exact nibble unless the estimate
/// lies within `NEAR_HALF` of a half-integer, where the true quotient could
/// round the other way or be a tie (which nearest-even and
/// half-away-from-zero round apart). Those rare vectors, and NaN, take the
/// true division. With `CLAMP`, estimates above 15 (quotients above 7)
/// become 15 first.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn quantize<const CLAMP: bool>(x: __m512, scale: __m512, inverse: __m512) -> __m512i {
    let estimate = _mm512_fmadd_ps(x, inverse, _mm512_set1_ps(8.0));
    let estimate = if CLAMP {
        // vminps returns its second operand when either is NaN: a NaN
        // estimate stays NaN and takes the true division below.
        _mm512_min_ps(_mm512_set1_ps(15.0), estimate)
    } else {
        estimate
    };
    // Adding 2^23 rounds to the nearest integer (ties to even) and leaves it
    // in the low mantissa bits: the nibble, as the estimate is in [0, 15]
    // (0 only with `CLAMP`, for a quotient of -8).
    let magic = _mm512_set1_ps(8_388_608.0);
    let shifted = _mm512_add_ps(estimate, magic);
    let nearest = _mm512_sub_ps(shifted, magic);
    let distance = _mm512_abs_ps(_mm512_sub_ps(estimate, nearest));
    // NLE_UQ also holds for NaN.
    let near = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(distance, _mm512_set1_ps(0.5 - NEAR_HALF));
    if near != 0 {
        return quantize_exact(_mm512_div_ps(x, scale));
    }
    // Only the low 4 bits of each lane are the nibble: the caller masks.
    _mm512_castps_si512(shifted)
}

/// `clamp(round(q), -8, 7) + 8` per lane for the true quotient `q`,
/// rounding half away from zero, exactly as `scalar::quantize` does.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn quantize_exact(q: __m512) -> __m512i {
    let truncated = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(q);
    // q - trunc(q) is exact, so this is the true distance to the integer.
    let frac = _mm512_abs_ps(_mm512_sub_ps(q, truncated));
    let away = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(frac, _mm512_set1_ps(0.5));
    let sign = _mm512_and_si512(_mm512_castps_si512(q), _mm512_set1_epi32(i32::MIN));
    let one = _mm512_castsi512_ps(_mm512_or_si512(
        sign,
        _mm512_castps_si512(_mm512_set1_ps(1.0)),
    ));
    let rounded = _mm512_mask_add_ps(truncated, away, truncated, one);
    let clamped = _mm512_min_ps(
        _mm512_max_ps(rounded, _mm512_set1_ps(-8.0)),
        _mm512_set1_ps(7.0),
    );
    let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(q, q);
    _mm512_add_epi32(
        _mm512_maskz_cvttps_epi32(ordered, clamped),
        _mm512_set1_epi32(8),
    )
}

/// `(u - 8) * scale` for u = 0..16: every weight a group can decode to,
/// each the single f32 multiply unpack defines.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn weight_table(scale: f32) -> __m512 {
    let levels = _mm512_setr_ps(
        -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
    );
    _mm512_mul_ps(levels, _mm512_set1_ps(scale))
}

/// The 16 weights of 8 packed bytes, looked up in a group's
/// [`weight_table`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn decode16(bytes: &[u8], table: __m512) -> __m512 {
    let bytes = &bytes[..8];
    // SAFETY: `bytes` holds 8 bytes.
    let wide = _mm512_cvtepu8_epi64(unsafe { _mm_loadl_epi64(bytes.as_ptr().cast()) });
    // Each byte's high nibble moves to bits 32..36 of its lane; vpermps
    // reads only an index's low 4 bits.
    _mm512_permutexvar_ps(_mm512_or_si512(wide, _mm512_slli_epi64::<28>(wide)), table)
}
