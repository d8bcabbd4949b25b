//! AVX-512 (F/BW/VL) twin of [`super::scalar`] for f32, for group sizes
//! that are multiples of 16: one zmm register per 16 elements.
//! Whole groups only: `super::FullGroups` sends ragged tails to the
//! scalar reference.

use std::arch::x86_64::*;

use super::scalar::{MIN_SCALE, NEAR_HALF};

/// Lanes per register.
const LANES: usize = 16;

/// This kernel, for [`super::FullGroups`].
pub(super) struct Avx512;

impl super::FullGroups for Avx512 {
    const LANES: usize = LANES;

    unsafe fn pack(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL and the group size.
        unsafe { pack_full_groups(src, group_size, packed, scales) }
    }

    unsafe fn unpack(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL and the group size.
        unsafe { unpack_full_groups(packed, scales, group_size, dst) }
    }
}

/// Groups whose scales are computed together, one per lane.
const BATCH: usize = LANES;

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn pack_full_groups(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    let batches = src
        .chunks(BATCH * group_size)
        .zip(packed.chunks_mut(BATCH * group_size / 2))
        .zip(scales.chunks_mut(BATCH));
    for ((src, packed), scales_out) in batches {
        // Lane-wise maxima of |w| per group, then one lane per group.
        let mut maxima = [_mm512_setzero_ps(); BATCH];
        for (max_abs, group) in maxima.iter_mut().zip(src.chunks_exact(group_size)) {
            for v in group.chunks_exact(LANES) {
                // SAFETY: `v` holds exactly 16 f32.
                let x = unsafe { _mm512_loadu_ps(v.as_ptr()) };
                // vmaxps returns its second operand when either is NaN: NaN
                // elements are ignored, as in the scalar fold.
                *max_abs = _mm512_max_ps(_mm512_abs_ps(x), *max_abs);
            }
        }
        let max_abs = transpose_max(maxima);
        let scale = _mm512_max_ps(
            _mm512_div_ps(max_abs, _mm512_set1_ps(7.0)),
            _mm512_set1_ps(MIN_SCALE),
        );
        let (mut scale_of, mut inverse_of) = ([0f32; BATCH], [0f32; BATCH]);
        // SAFETY: both arrays hold 16 f32.
        unsafe {
            _mm512_storeu_ps(scale_of.as_mut_ptr(), scale);
            _mm512_storeu_ps(
                inverse_of.as_mut_ptr(),
                _mm512_div_ps(_mm512_set1_ps(1.0), scale),
            );
        }
        scales_out.copy_from_slice(&scale_of[..scales_out.len()]);
        // SAFETY: this function's target features, the caller's group size;
        // every scale is at least max |w| / 7, so no clamp is needed.
        unsafe { quantize_groups::<false>(src, group_size, &scale_of, &inverse_of, packed) };
    }
}

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

/// Lane `i` of the result is the largest lane of `v[i]` (no NaN in `v`):
/// four rounds of folding pairs of vectors, each halving the lanes per
/// vector, instead of one horizontal reduction per group.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn transpose_max(mut v: [__m512; BATCH]) -> __m512 {
    /// Picks, for output lane i, lane `(i / w) * 2w + i % w` (+ w for the
    /// high half) of the concatenation of two vectors.
    const fn fold_index(w: usize, high: bool) -> [i32; 16] {
        let mut index = [0; 16];
        let mut i = 0;
        while i < 16 {
            index[i] = ((i / w) * 2 * w + i % w + if high { w } else { 0 }) as i32;
            i += 1;
        }
        index
    }
    const INDEX: [[[i32; 16]; 2]; 4] = [
        [fold_index(8, false), fold_index(8, true)],
        [fold_index(4, false), fold_index(4, true)],
        [fold_index(2, false), fold_index(2, true)],
        [fold_index(1, false), fold_index(1, true)],
    ];
    let mut live = BATCH;
    for [low, high] in INDEX {
        // SAFETY: each index array holds 16 i32.
        let (low, high) = unsafe {
            (
                _mm512_loadu_epi32(low.as_ptr()),
                _mm512_loadu_epi32(high.as_ptr()),
            )
        };
        live /= 2;
        for k in 0..live {
            let (a, b) = (v[2 * k], v[2 * k + 1]);
            v[k] = _mm512_max_ps(
                _mm512_permutex2var_ps(a, low, b),
                _mm512_permutex2var_ps(a, high, b),
            );
        }
    }
    v[0]
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

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn unpack_full_groups(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let groups = dst
        .chunks_exact_mut(group_size)
        .zip(packed.chunks_exact(group_size / 2))
        .zip(scales);
    for ((group, bytes), &scale) in groups {
        let table = weight_table(scale);
        for (out, b) in group
            .chunks_exact_mut(LANES)
            .zip(bytes.chunks_exact(LANES / 2))
        {
            // SAFETY: `out` holds 16 f32.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), decode16(b, table)) };
        }
    }
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
