//! AVX2 twins of the encoders' references: the signed encoder over whole
//! groups, and the search's [`super::scalar::fit`] with eight candidate
//! scales per register, each lane summing over the elements in order with
//! the reference's operations, so every sum is bit-identical.

use std::arch::x86_64::*;

use super::scalar::refit;
use crate::kernels::pack::scalar::MIN_SCALE;
use crate::kernels::simd::avx2::{abs, horizontal_max, quantize_exact, quantize_group};

/// Packs whole groups (`group_size % 8 == 0`) with the signed encoder, as
/// [`super::scalar::signed_scale`] and `scalar::quantize` do.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `group_size % 8 == 0`.
#[target_feature(enable = "avx2,fma")]
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
        let mut lane_max = _mm256_setzero_ps();
        for v in group.chunks_exact(8) {
            // SAFETY: `v` holds 8 f32.
            let x = unsafe { _mm256_loadu_ps(v.as_ptr()) };
            // vmaxps returns its second operand when either is NaN: NaN
            // elements are ignored, as in the reference.
            lane_max = _mm256_max_ps(abs(x), lane_max);
        }
        let amax = horizontal_max(lane_max);
        // The first element reaching the largest magnitude is the
        // reference's `m`.
        let mut m = 0f32;
        if amax > 0.0 {
            for v in group.chunks_exact(8) {
                // SAFETY: `v` holds 8 f32.
                let x = unsafe { _mm256_loadu_ps(v.as_ptr()) };
                let hits =
                    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(abs(x), _mm256_set1_ps(amax)));
                if hits != 0 {
                    m = v[hits.trailing_zeros() as usize];
                    break;
                }
            }
        }
        let s = (amax / 8.0).max(MIN_SCALE);
        *scale = if m > 0.0 { -s } else { s };
        // SAFETY: the caller's CPU and group size.
        unsafe { quantize_group(group, bytes, *scale) };
    }
}

/// What [`super::scalar::fit`] gives for each of `scales`.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn fits(
    values: &[f32],
    importance: Option<&[f32]>,
    scales: &[f32],
) -> Vec<(f64, Option<f32>)> {
    let mut out = Vec::with_capacity(scales.len());
    for chunk in scales.chunks(8) {
        // Lanes past the chunk compute with scale 1 and are dropped.
        let mut lanes = [1f32; 8];
        lanes[..chunk.len()].copy_from_slice(chunk);
        // SAFETY: `lanes` holds 8 f32.
        let s = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
        let zero = _mm256_setzero_pd();
        let (mut error, mut num, mut den) = ([zero; 2], [zero; 2], [zero; 2]);
        for (i, &w) in values.iter().enumerate() {
            let nibble = quantize_exact(_mm256_div_ps(_mm256_set1_ps(w), s));
            let q = _mm256_cvtepi32_ps(_mm256_sub_epi32(nibble, _mm256_set1_epi32(8)));
            let decoded = _mm256_mul_ps(q, s);
            let c = importance.map_or(1.0, |c| c[i] as f64);
            let (c_v, cw) = (_mm256_set1_pd(c), _mm256_set1_pd(c * w as f64));
            let halves = [
                (_mm256_castps256_ps128(decoded), _mm256_castps256_ps128(q)),
                (
                    _mm256_extractf128_ps::<1>(decoded),
                    _mm256_extractf128_ps::<1>(q),
                ),
            ];
            for (h, (decoded, q)) in halves.into_iter().enumerate() {
                let e = _mm256_sub_pd(_mm256_set1_pd(w as f64), _mm256_cvtps_pd(decoded));
                let q = _mm256_cvtps_pd(q);
                // Separate multiplies and adds: no fused rounding.
                error[h] = _mm256_add_pd(error[h], _mm256_mul_pd(_mm256_mul_pd(c_v, e), e));
                num[h] = _mm256_add_pd(num[h], _mm256_mul_pd(cw, q));
                den[h] = _mm256_add_pd(den[h], _mm256_mul_pd(_mm256_mul_pd(c_v, q), q));
            }
        }
        let store = |v: [__m256d; 2]| {
            let mut a = [0f64; 8];
            // SAFETY: `a` holds 8 f64.
            unsafe {
                _mm256_storeu_pd(a.as_mut_ptr(), v[0]);
                _mm256_storeu_pd(a.as_mut_ptr().add(4), v[1]);
            }
            a
        };
        let (error, num, den) = (store(error), store(num), store(den));
        out.extend((0..chunk.len()).map(|l| (error[l], refit(num[l], den[l]))));
    }
    out
}
