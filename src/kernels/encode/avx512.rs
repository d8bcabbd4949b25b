//! AVX-512 twins of the encoders' references: the signed encoder over
//! whole groups, and the search's [`super::scalar::fit`] with sixteen
//! candidate scales per register, each lane summing over the elements in
//! order with the reference's operations, so every sum is bit-identical.

use std::arch::x86_64::*;

use super::scalar::refit;
use crate::kernels::pack::scalar::MIN_SCALE;
use crate::kernels::simd::avx512::{quantize_exact, quantize_groups};

/// Packs whole groups (`group_size % 16 == 0`) with the signed encoder, as
/// [`super::scalar::signed_scale`] and `scalar::quantize` do.
///
/// # Safety
/// The CPU supports AVX-512 F, BW and VL; `group_size % 16 == 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn pack_signed(
    src: &[f32],
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let mut inverses = vec![0f32; scales.len()];
    for ((group, scale), inverse) in src
        .chunks_exact(group_size)
        .zip(scales.iter_mut())
        .zip(&mut inverses)
    {
        let mut lane_max = _mm512_setzero_ps();
        for v in group.chunks_exact(16) {
            // SAFETY: `v` holds 16 f32.
            let x = unsafe { _mm512_loadu_ps(v.as_ptr()) };
            // vmaxps returns its second operand when either is NaN: NaN
            // elements are ignored, as in the reference.
            lane_max = _mm512_max_ps(_mm512_abs_ps(x), lane_max);
        }
        let amax = _mm512_reduce_max_ps(lane_max);
        // The first element reaching the largest magnitude is the
        // reference's `m`.
        let mut m = 0f32;
        if amax > 0.0 {
            for v in group.chunks_exact(16) {
                // SAFETY: `v` holds 16 f32.
                let x = unsafe { _mm512_loadu_ps(v.as_ptr()) };
                let hits = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(_mm512_abs_ps(x), _mm512_set1_ps(amax));
                if hits != 0 {
                    m = v[hits.trailing_zeros() as usize];
                    break;
                }
            }
        }
        let s = (amax / 8.0).max(MIN_SCALE);
        *scale = if m > 0.0 { -s } else { s };
        *inverse = 1.0 / *scale;
    }
    // SAFETY: the caller's CPU and group size; |w / scale| <= 8, clamped.
    unsafe { quantize_groups::<true>(src, group_size, scales, &inverses, packed) };
}

/// What [`super::scalar::fit`] gives for each of `scales`.
///
/// # Safety
/// The CPU supports AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn fits(
    values: &[f32],
    importance: Option<&[f32]>,
    scales: &[f32],
) -> Vec<(f64, Option<f32>)> {
    let mut out = Vec::with_capacity(scales.len());
    for chunk in scales.chunks(16) {
        // Lanes past the chunk compute with scale 1 and are dropped.
        let mut lanes = [1f32; 16];
        lanes[..chunk.len()].copy_from_slice(chunk);
        // SAFETY: `lanes` holds 16 f32.
        let s = unsafe { _mm512_loadu_ps(lanes.as_ptr()) };
        let zero = _mm512_setzero_pd();
        let (mut error, mut num, mut den) = ([zero; 2], [zero; 2], [zero; 2]);
        for (i, &w) in values.iter().enumerate() {
            let nibble = quantize_exact(_mm512_div_ps(_mm512_set1_ps(w), s));
            let q = _mm512_cvtepi32_ps(_mm512_sub_epi32(nibble, _mm512_set1_epi32(8)));
            let decoded = _mm512_mul_ps(q, s);
            let c = importance.map_or(1.0, |c| c[i] as f64);
            let (c_v, cw) = (_mm512_set1_pd(c), _mm512_set1_pd(c * w as f64));
            let halves = [
                (_mm512_castps512_ps256(decoded), _mm512_castps512_ps256(q)),
                (
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(decoded))),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(q))),
                ),
            ];
            for (h, (decoded, q)) in halves.into_iter().enumerate() {
                let e = _mm512_sub_pd(_mm512_set1_pd(w as f64), _mm512_cvtps_pd(decoded));
                let q = _mm512_cvtps_pd(q);
                // Separate multiplies and adds: no fused rounding.
                error[h] = _mm512_add_pd(error[h], _mm512_mul_pd(_mm512_mul_pd(c_v, e), e));
                num[h] = _mm512_add_pd(num[h], _mm512_mul_pd(cw, q));
                den[h] = _mm512_add_pd(den[h], _mm512_mul_pd(_mm512_mul_pd(c_v, q), q));
            }
        }
        let store = |v: [__m512d; 2]| {
            let mut a = [0f64; 16];
            // SAFETY: `a` holds 16 f64.
            unsafe {
                _mm512_storeu_pd(a.as_mut_ptr(), v[0]);
                _mm512_storeu_pd(a.as_mut_ptr().add(8), v[1]);
            }
            a
        };
        let (error, num, den) = (store(error), store(num), store(den));
        out.extend((0..chunk.len()).map(|l| (error[l], refit(num[l], den[l]))));
    }
    out
}
