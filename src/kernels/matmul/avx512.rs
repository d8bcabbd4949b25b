//! AVX-512 fused kernels: `exact` for group sizes that are multiples of
//! 16, `int8` with VNNI dot products for g = 32 and multiples of 64.
//! Ragged tails go to the scalar twins.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{scalar, Activations, QuantizedActivations, BATCH_TILE};
use crate::kernels::avx512::{decode16, weight_table};

/// Columns decoded at a time, then reused by every activation row.
const CHUNK: usize = 256;

/// Whether the int8 kernel has a fast path for `group_size`.
pub(super) fn int8_fits(group_size: usize) -> bool {
    is_x86_feature_detected!("avx512vnni") && (group_size == 32 || group_size.is_multiple_of(64))
}

/// `exact` precision, as [`scalar::row_exact`] up to the order of the f32
/// sums. Per group, the 16 possible weights `(u - 8) * scale` are computed
/// once (the same products unpack computes), then looked up per column.
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
    let groups = cols / group_size;
    let whole = groups * group_size;
    let mut sums = [0f32; BATCH_TILE];
    if out.len() == 1 {
        sums[0] = dot_row(packed, scales, group_size, groups, x);
    } else {
        let mut decoded = [0f32; CHUNK];
        let (mut filled, mut first_col) = (0, 0);
        for (k, &scale) in scales[..groups].iter().enumerate() {
            let table = weight_table(scale);
            let bytes = &packed[k * group_size / 2..(k + 1) * group_size / 2];
            for b8 in bytes.chunks_exact(8) {
                // SAFETY: `decoded` has room for 16 more (CHUNK % 16 == 0).
                unsafe {
                    _mm512_storeu_ps(
                        decoded[filled..filled + 16].as_mut_ptr(),
                        decode16(b8, table),
                    )
                };
                filled += 16;
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

/// One activation row against the whole groups of one weight row, decoding
/// straight into four independent accumulators.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn dot_row(packed: &[u8], scales: &[f32], group_size: usize, groups: usize, x: &[f32]) -> f32 {
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    for (k, &scale) in scales[..groups].iter().enumerate() {
        let table = weight_table(scale);
        let bytes = &packed[k * group_size / 2..(k + 1) * group_size / 2];
        let xs = &x[k * group_size..(k + 1) * group_size];
        for (b8, xv) in bytes.chunks_exact(8).zip(xs.chunks_exact(16)) {
            // SAFETY: `xv` holds 16 f32.
            let xv = unsafe { _mm512_loadu_ps(xv.as_ptr()) };
            acc[i % 4] = _mm512_fmadd_ps(decode16(b8, table), xv, acc[i % 4]);
            i += 1;
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]),
        _mm512_add_ps(acc[2], acc[3]),
    ))
}

/// Adds `decoded . x[b][first_col..]` to `sums[b]` for every activation row.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn add_dots(decoded: &[f32], x: &[f32], cols: usize, first_col: usize, sums: &mut [f32]) {
    for (b, sum) in sums.iter_mut().enumerate() {
        let xs = &x[b * cols + first_col..b * cols + first_col + decoded.len()];
        let mut acc = [_mm512_setzero_ps(); 4];
        for (i, (w, xv)) in decoded
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
        *sum += _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ));
    }
}

/// `int8` precision, as [`scalar::row_int8`] up to the order of the f32
/// sums: the integer dot products are exact. Each 64-column block of
/// weights is split into nibbles once and used by every activation row.
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
    let batch = out.len();
    // Whole groups covered by whole 64-column blocks.
    let simd_groups = if group_size == 32 {
        cols / 64 * 2
    } else {
        cols / group_size
    };
    // Four activation rows at a time keep their sums in registers.
    let mut acc = [_mm512_setzero_ps(); BATCH_TILE];
    for first in (0..batch).step_by(ROWS_IN_REGISTERS) {
        let rows = first..batch.min(first + ROWS_IN_REGISTERS);
        let sums = if group_size == 32 {
            sums_g32(packed, scales, q, simd_groups, rows.clone())
        } else {
            sums_g64k(packed, scales, group_size, q, simd_groups, rows.clone())
        };
        acc[rows.clone()].copy_from_slice(&sums[..rows.len()]);
    }
    for (b, y) in out.iter_mut().enumerate() {
        let tail = scalar::dot_int8(packed, scales, group_size, q, b, simd_groups..scales.len());
        *y = _mm512_reduce_add_ps(acc[b]) + tail;
    }
}

/// The 64 nibbles of a 32-byte block as bytes, in the order of `split_row`:
/// for each of its two 32-column halves, 16 low nibbles (even columns) then
/// 16 high ones (odd columns).
///
/// # Safety
/// `block` is readable for 32 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn nibbles(block: *const u8) -> __m512i {
    // SAFETY: the caller's promise.
    let w = unsafe { _mm256_loadu_si256(block.cast()) };
    let low_nibbles = _mm256_set1_epi8(0x0F);
    let low = _mm256_and_si256(w, low_nibbles);
    let high = _mm256_and_si256(_mm256_srli_epi16::<4>(w), low_nibbles);
    // 128-bit lanes [low A, low B, high A, high B] -> [low A, high A, low B, high B].
    let lanes = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high);
    _mm512_shuffle_i64x2::<0b11_01_10_00>(lanes, lanes)
}

/// `sum(u * q)` per lane of a block against 64 split activations.
///
/// # Safety
/// `xq` is readable for 64 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn block_dot(weights: __m512i, xq: *const i8) -> __m512i {
    // SAFETY: the caller's promise.
    let xq = unsafe { _mm512_loadu_si512(xq.cast()) };
    _mm512_dpbusd_epi32(_mm512_setzero_si512(), weights, xq)
}

/// Activation rows whose sums one pass over a weight row keeps in registers.
const ROWS_IN_REGISTERS: usize = 4;

/// g = 32: a block holds two groups (lanes 0-7 the first, 8-15 the
/// second). Scales are multiplied 16 groups at a time and spread
/// to the lanes of each block by a permute. Returns, for the activation
/// rows `rows` (at most four), lanes summing to
/// `sum_k w_scale_k * (x_scale_k * sum(u * q) - offset_k)`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn sums_g32(
    packed: &[u8],
    scales: &[f32],
    q: &QuantizedActivations,
    groups: usize,
    rows: Range<usize>,
) -> [__m512; 4] {
    const fn lanes_of_block(j: usize) -> [i32; 16] {
        let mut index = [0; 16];
        let mut i = 0;
        while i < 16 {
            index[i] = (2 * j + i / 8) as i32;
            i += 1;
        }
        index
    }
    const LANES_OF_BLOCK: [[i32; 16]; 8] = [
        lanes_of_block(0),
        lanes_of_block(1),
        lanes_of_block(2),
        lanes_of_block(3),
        lanes_of_block(4),
        lanes_of_block(5),
        lanes_of_block(6),
        lanes_of_block(7),
    ];
    let n_rows = rows.len();
    // Cut to the whole blocks, so that every block read below is in bounds.
    let blocks = groups / 2;
    let packed = &packed[..32 * blocks];
    let split: [&[i8]; 4] =
        std::array::from_fn(|t| &q.split_row(rows.start + t.min(n_rows - 1))[..64 * blocks]);
    let x_scales: [&[f32]; 4] =
        std::array::from_fn(|t| q.scales_row(rows.start + t.min(n_rows - 1)));
    let offsets: [&[f32]; 4] =
        std::array::from_fn(|t| q.offsets_row(rows.start + t.min(n_rows - 1)));
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut combined = [_mm512_setzero_ps(); 4];
    for k0 in (0..groups).step_by(16) {
        let n = (groups - k0).min(16);
        let mask = ((1u32 << n) - 1) as u16;
        // SAFETY: the masked loads read `n` scales from `k0`, all in bounds.
        let w_scales = unsafe { _mm512_maskz_loadu_ps(mask, scales[k0..].as_ptr()) };
        for t in 0..n_rows {
            // SAFETY: as above, for the activation row's scales and offsets.
            let (x_scale, offset) = unsafe {
                (
                    _mm512_maskz_loadu_ps(mask, x_scales[t][k0..].as_ptr()),
                    _mm512_maskz_loadu_ps(mask, offsets[t][k0..].as_ptr()),
                )
            };
            combined[t] = _mm512_mul_ps(w_scales, x_scale);
            acc[t] = _mm512_fnmadd_ps(w_scales, offset, acc[t]);
        }
        for (jj, lanes) in LANES_OF_BLOCK[..n / 2].iter().enumerate() {
            let j = k0 / 2 + jj;
            // SAFETY: j < blocks: the block and each row's 64 values are in
            // the slices cut above; the index array holds 16 i32.
            let (weights, lanes) = unsafe {
                (
                    nibbles(packed.as_ptr().add(32 * j)),
                    _mm512_loadu_epi32(lanes.as_ptr()),
                )
            };
            for t in 0..4 {
                if t < n_rows {
                    // SAFETY: as above.
                    let dots = unsafe { block_dot(weights, split[t].as_ptr().add(64 * j)) };
                    acc[t] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(dots),
                        _mm512_permutexvar_ps(lanes, combined[t]),
                        acc[t],
                    );
                }
            }
        }
    }
    acc
}

/// g a multiple of 64: whole blocks per group, integer sums across them;
/// returns what [`sums_g32`] returns.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn sums_g64k(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    q: &QuantizedActivations,
    groups: usize,
    rows: Range<usize>,
) -> [__m512; 4] {
    let blocks_per_group = group_size / 64;
    let n_rows = rows.len();
    // Cut to the whole groups, so that every block read below is in bounds.
    let blocks = groups * blocks_per_group;
    let packed = &packed[..32 * blocks];
    let split: [&[i8]; 4] =
        std::array::from_fn(|t| &q.split_row(rows.start + t.min(n_rows - 1))[..64 * blocks]);
    let mut acc = [_mm512_setzero_ps(); 4];
    for (k, &w_scale) in scales[..groups].iter().enumerate() {
        let mut dots = [_mm512_setzero_si512(); 4];
        for j in k * blocks_per_group..(k + 1) * blocks_per_group {
            // SAFETY: j < blocks: inside the slices cut above.
            let weights = unsafe { nibbles(packed.as_ptr().add(32 * j)) };
            for t in 0..4 {
                if t < n_rows {
                    // SAFETY: as above.
                    let dot = unsafe { block_dot(weights, split[t].as_ptr().add(64 * j)) };
                    dots[t] = _mm512_add_epi32(dots[t], dot);
                }
            }
        }
        for t in 0..n_rows {
            let b = rows.start + t;
            let scale = _mm512_set1_ps(w_scale * q.scales_row(b)[k]);
            let offset = _mm512_set1_ps(w_scale * q.offsets_row(b)[k]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[t]), scale, acc[t]);
            // The offset goes to one lane only: the lanes are summed later.
            acc[t] = _mm512_mask_sub_ps(acc[t], 1, acc[t], offset);
        }
    }
    acc
}
