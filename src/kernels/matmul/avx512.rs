//! AVX-512 fused kernels: `exact` for group sizes that are multiples of
//! 16, `int8` with VNNI dot products for g = 32 and multiples of 64.
//! Ragged tails go to the scalar twins.

use std::arch::x86_64::*;

use super::{scalar, Activations, QuantizedActivations, BATCH_TILE};

/// Columns decoded at a time, then reused by every activation row.
const CHUNK: usize = 256;

/// Whether the int8 kernel has a fast path for `group_size`.
pub(super) fn int8_fits(group_size: usize) -> bool {
    is_x86_feature_detected!("avx512vnni") && (group_size == 32 || group_size.is_multiple_of(64))
}

/// `exact` precision, as [`scalar::row_exact`] up to the order of the f32
/// sums.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL; `group_size % 16 == 0`; `acts` is f32.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
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
    let levels = _mm512_setr_ps(
        -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
    );
    let whole = cols / group_size * group_size;
    let mut sums = [0f32; BATCH_TILE];
    let mut decoded = [0f32; CHUNK];
    for start in (0..whole).step_by(CHUNK) {
        let len = CHUNK.min(whole - start);
        for (v, w) in decoded[..len].chunks_exact_mut(16).enumerate() {
            let c = start + 16 * v;
            // Whole groups of even size: column c's byte is c / 2.
            let bytes = &packed[c / 2..c / 2 + 8];
            // SAFETY: `bytes` holds 8 bytes and `w` 16 f32.
            unsafe {
                let wide = _mm512_cvtepu8_epi64(_mm_loadl_epi64(bytes.as_ptr().cast()));
                let index = _mm512_or_si512(wide, _mm512_slli_epi64::<28>(wide));
                let values = _mm512_mul_ps(
                    _mm512_permutexvar_ps(index, levels),
                    _mm512_set1_ps(scales[c / group_size]),
                );
                _mm512_storeu_ps(w.as_mut_ptr(), values);
            }
        }
        for (b, sum) in sums[..out.len()].iter_mut().enumerate() {
            let xs = &x[b * cols + start..b * cols + start + len];
            let mut acc = [_mm512_setzero_ps(); 4];
            for (i, (w, xv)) in decoded[..len]
                .chunks_exact(16)
                .zip(xs.chunks_exact(16))
                .enumerate()
            {
                // SAFETY: both chunks hold 16 f32.
                unsafe {
                    acc[i % 4] = _mm512_fmadd_ps(
                        _mm512_loadu_ps(w.as_ptr()),
                        _mm512_loadu_ps(xv.as_ptr()),
                        acc[i % 4],
                    );
                }
            }
            let acc = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
            *sum += _mm512_reduce_add_ps(acc);
        }
    }
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

/// `int8` precision, as [`scalar::row_int8`] up to the order of the f32
/// sums: the integer dot products are exact.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI; `int8_fits(group_size)`; `acts`
/// is quantized.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
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
    // Whole groups covered by whole 64-column blocks.
    let simd_groups = if group_size == 32 {
        cols / 64 * 2
    } else {
        cols / group_size
    };
    let blocks = simd_groups * group_size / 64;
    for (b, y) in out.iter_mut().enumerate() {
        let simd = dot_blocks(packed, scales, group_size, q, b, blocks);
        let offsets: f32 = scales[..simd_groups]
            .iter()
            .zip(q.offsets_row(b))
            .fold(0f32, |acc, (w, o)| acc + w * o);
        let tail = scalar::dot_int8(packed, scales, group_size, q, b, simd_groups..scales.len());
        *y = simd - offsets + tail;
    }
}

/// `sum_k w_scale_k * x_scale_k * sum(u * q)` over the first `blocks`
/// 64-column blocks of activation row `b`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn dot_blocks(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    q: &QuantizedActivations,
    b: usize,
    blocks: usize,
) -> f32 {
    let split = q.split_row(b);
    let x_scales = q.scales_row(b);
    let low_nibbles = _mm256_set1_epi8(0x0F);
    let blocks_per_group = (group_size / 64).max(1);
    let mut acc = _mm512_setzero_ps();
    let mut dots = _mm512_setzero_si512();
    for j in 0..blocks {
        // SAFETY: block j's 32 bytes and 64 split values are in bounds
        // (j < blocks, which lie inside whole groups).
        let (weights, xq) = unsafe {
            let w = _mm256_loadu_si256(packed[32 * j..32 * j + 32].as_ptr().cast());
            let low = _mm256_and_si256(w, low_nibbles);
            let high = _mm256_and_si256(_mm256_srli_epi16::<4>(w), low_nibbles);
            let weights = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high);
            (
                weights,
                _mm512_loadu_si512(split[64 * j..64 * j + 64].as_ptr().cast()),
            )
        };
        dots = _mm512_dpbusd_epi32(dots, weights, xq);
        if group_size == 32 {
            // Lanes 0-3 and 8-11 hold group 2j, lanes 4-7 and 12-15 group 2j+1.
            let (k0, k1) = (2 * j, 2 * j + 1);
            let scale = _mm512_mask_blend_ps(
                0xF0F0,
                _mm512_set1_ps(scales[k0] * x_scales[k0]),
                _mm512_set1_ps(scales[k1] * x_scales[k1]),
            );
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), scale, acc);
            dots = _mm512_setzero_si512();
        } else if (j + 1) % blocks_per_group == 0 {
            let k = j / blocks_per_group;
            acc = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(dots),
                _mm512_set1_ps(scales[k] * x_scales[k]),
                acc,
            );
            dots = _mm512_setzero_si512();
        }
    }
    _mm512_reduce_add_ps(acc)
}
