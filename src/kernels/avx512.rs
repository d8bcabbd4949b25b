//! AVX-512 (F/BW/VL) twin of [`super::scalar`] for f32, for group sizes
//! that are multiples of 16: one zmm register per 16 elements.
//! Ragged last groups fall back to the scalar reference.

use std::arch::x86_64::*;

use super::scalar::{self, MIN_SCALE};

/// Lanes per register.
pub(super) const LANES: usize = 16;

/// Packs one row, as [`scalar::pack_row`].
///
/// # Safety
/// The CPU supports AVX-512F, BW and VL, and `group_size % 16 == 0`.
pub(super) unsafe fn pack_row(
    src: &[f32],
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let full = src.len() / group_size;
    let (src_full, src_tail) = src.split_at(full * group_size);
    let (packed_full, packed_tail) = packed.split_at_mut(full * group_size / 2);
    let (scales_full, scales_tail) = scales.split_at_mut(full);
    // SAFETY: the caller guarantees the CPU features and the group size.
    unsafe { pack_full_groups(src_full, group_size, packed_full, scales_full) };
    scalar::pack_row(src_tail, group_size, packed_tail, scales_tail);
}

/// Unpacks one row, as [`scalar::unpack_row`].
///
/// # Safety
/// As [`pack_row`].
pub(super) unsafe fn unpack_row(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let full = dst.len() / group_size;
    let (dst_full, dst_tail) = dst.split_at_mut(full * group_size);
    let (packed_full, packed_tail) = packed.split_at(full * group_size / 2);
    let (scales_full, scales_tail) = scales.split_at(full);
    // SAFETY: the caller guarantees the CPU features and the group size.
    unsafe { unpack_full_groups(packed_full, scales_full, group_size, dst_full) };
    scalar::unpack_row(packed_tail, scales_tail, group_size, dst_tail);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn pack_full_groups(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    let groups = src
        .chunks_exact(group_size)
        .zip(packed.chunks_exact_mut(group_size / 2))
        .zip(scales.iter_mut());
    for ((group, bytes), scale_out) in groups {
        let mut max_abs = _mm512_setzero_ps();
        for v in group.chunks_exact(LANES) {
            // SAFETY: `v` holds exactly 16 f32.
            let x = unsafe { _mm512_loadu_ps(v.as_ptr()) };
            // vmaxps returns its second operand when either is NaN: NaN
            // elements are ignored, as in the scalar fold.
            max_abs = _mm512_max_ps(_mm512_abs_ps(x), max_abs);
        }
        let scale = (_mm512_reduce_max_ps(max_abs) / 7.0).max(MIN_SCALE);
        *scale_out = scale;
        let scale = _mm512_set1_ps(scale);
        for (v, out) in group
            .chunks_exact(LANES)
            .zip(bytes.chunks_exact_mut(LANES / 2))
        {
            // SAFETY: `v` holds 16 f32 and `out` 8 bytes.
            unsafe {
                let x = _mm512_loadu_ps(v.as_ptr());
                let nibbles = quantize(_mm512_div_ps(x, scale));
                // Lanes 2j and 2j+1 share a 64-bit lane: fold the odd one
                // down to bits 4..8, then keep each 64-bit lane's low byte.
                let pairs = _mm512_or_si512(nibbles, _mm512_srli_epi64::<28>(nibbles));
                _mm_storel_epi64(out.as_mut_ptr().cast(), _mm512_cvtepi64_epi8(pairs));
            }
        }
    }
}

/// `clamp(round(q), -8, 7) + 8` per lane, rounding half away from zero and
/// sending NaN to 8, exactly as `scalar::quantize` does.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn quantize(q: __m512) -> __m512i {
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
    // (u - 8) as f32 for every nibble u; vpermps reads only an index's low 4 bits.
    let levels = _mm512_setr_ps(
        -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
    );
    let groups = dst
        .chunks_exact_mut(group_size)
        .zip(packed.chunks_exact(group_size / 2))
        .zip(scales);
    for ((group, bytes), &scale) in groups {
        let scale = _mm512_set1_ps(scale);
        for (out, b) in group
            .chunks_exact_mut(LANES)
            .zip(bytes.chunks_exact(LANES / 2))
        {
            // SAFETY: `b` holds 8 bytes and `out` 16 f32.
            unsafe {
                let wide = _mm512_cvtepu8_epi64(_mm_loadl_epi64(b.as_ptr().cast()));
                // Each byte's high nibble moves to bits 32..36 of its lane.
                let index = _mm512_or_si512(wide, _mm512_slli_epi64::<28>(wide));
                let values = _mm512_mul_ps(_mm512_permutexvar_ps(index, levels), scale);
                _mm512_storeu_ps(out.as_mut_ptr(), values);
            }
        }
    }
}
