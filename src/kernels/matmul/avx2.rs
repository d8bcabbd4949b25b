//! AVX2 + FMA fused kernel: `exact` for group sizes that are multiples of
//! 8. Ragged tails go to the scalar twin.

use std::arch::x86_64::*;

use super::{scalar, Activations, BATCH_TILE};
use crate::kernels::avx2::decode8;

/// Columns decoded at a time, then reused by every activation row.
const CHUNK: usize = 256;

/// `exact` precision, as [`scalar::row_exact`] up to the order of the f32
/// sums.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `group_size % 8 == 0`; `acts` is f32.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_exact(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let Activations::F32(x) = acts else {
        return;
    };
    let groups = cols / group_size;
    let whole = groups * group_size;
    let mut sums = [0f32; BATCH_TILE];
    let mut decoded = [0f32; CHUNK];
    let (mut filled, mut first_col) = (0, 0);
    for (k, &scale) in scales[..groups].iter().enumerate() {
        let scale = _mm256_set1_ps(scale);
        let bytes = &packed[k * group_size / 2..(k + 1) * group_size / 2];
        for b in bytes.chunks_exact(4) {
            // SAFETY: `decoded` has room for 8 more (CHUNK % 8 == 0).
            unsafe {
                _mm256_storeu_ps(decoded[filled..filled + 8].as_mut_ptr(), decode8(b, scale))
            };
            filled += 8;
            if filled == CHUNK {
                add_dots(&decoded, x, cols, first_col, &mut sums[..out.len()]);
                first_col += CHUNK;
                filled = 0;
            }
        }
    }
    add_dots(
        &decoded[..filled],
        x,
        cols,
        first_col,
        &mut sums[..out.len()],
    );
    for (b, y) in out.iter_mut().enumerate() {
        *y = sums[b]
            + scalar::dot_exact(
                packed,
                scales,
                group_size,
                &x[b * cols..(b + 1) * cols],
                whole..cols,
            );
    }
}

/// Adds `decoded . x[b][first_col..]` to `sums[b]` for every activation row.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn add_dots(decoded: &[f32], x: &[f32], cols: usize, first_col: usize, sums: &mut [f32]) {
    for (b, sum) in sums.iter_mut().enumerate() {
        let xs = &x[b * cols + first_col..b * cols + first_col + decoded.len()];
        let mut acc = [_mm256_setzero_ps(); 4];
        for (i, (w, xv)) in decoded.chunks_exact(8).zip(xs.chunks_exact(8)).enumerate() {
            // SAFETY: both chunks hold 8 f32.
            unsafe {
                acc[i % 4] = _mm256_fmadd_ps(
                    _mm256_loadu_ps(w.as_ptr()),
                    _mm256_loadu_ps(xv.as_ptr()),
                    acc[i % 4],
                );
            }
        }
        let acc = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        *sum += _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)));
    }
}

/// Whether the int8 kernel has a fast path for `group_size`.
pub(super) fn int8_fits(group_size: usize) -> bool {
    group_size.is_multiple_of(32)
}

/// `int8` precision, as [`scalar::row_int8`] up to the order of the f32
/// sums: per 32 columns, `vpmaddubsw` multiplies the nibbles (0..=15) by
/// the int8 activations and `vpmaddwd` adds the pairs, exactly (at most
/// 2 * 15 * 127 per 16-bit sum).
///
/// # Safety
/// The CPU supports AVX2 and FMA; `int8_fits(group_size)`; `acts` is
/// quantized.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_int8(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let Activations::Int8(q) = acts else {
        return;
    };
    let groups = cols / group_size;
    let blocks_per_group = group_size / 32;
    let low_nibbles = _mm_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    for (b, y) in out.iter_mut().enumerate() {
        let (split, x_scales, offsets) = (q.split_row(b), q.scales_row(b), q.offsets_row(b));
        let mut acc = _mm256_setzero_ps();
        let mut offset = 0f32;
        for (k, &w_scale) in scales[..groups].iter().enumerate() {
            let mut dots = _mm256_setzero_si256();
            for j in k * blocks_per_group..(k + 1) * blocks_per_group {
                let bytes = &packed[16 * j..16 * j + 16];
                let xq = &split[32 * j..32 * j + 32];
                // SAFETY: `bytes` holds 16 bytes and `xq` 32.
                let (w, xq) = unsafe {
                    (
                        _mm_loadu_si128(bytes.as_ptr().cast()),
                        _mm256_loadu_si256(xq.as_ptr().cast()),
                    )
                };
                let low = _mm_and_si128(w, low_nibbles);
                let high = _mm_and_si128(_mm_srli_epi16::<4>(w), low_nibbles);
                let weights = _mm256_set_m128i(high, low);
                let pairs = _mm256_maddubs_epi16(weights, xq);
                dots = _mm256_add_epi32(dots, _mm256_madd_epi16(pairs, ones));
            }
            acc = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(dots),
                _mm256_set1_ps(w_scale * x_scales[k]),
                acc,
            );
            offset += w_scale * offsets[k];
        }
        let half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        let simd = _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)));
        *y = simd - offset
            + scalar::dot_int8(packed, scales, group_size, q, b, groups..scales.len());
    }
}
