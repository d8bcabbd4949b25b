//! AVX-512 fused kernels, `exact` and `int8` (VNNI dot products), for
//! group sizes that tile the split blocks: 32, 64 and multiples of 128.
//! Ragged tails go to the scalar twins.

use std::arch::x86_64::*;

use super::{
    prefetch_ahead, scalar, split_groups, Activations, QuantizedActivations, WeightRows,
    BATCH_TILE, SPLIT_BLOCK,
};
use crate::kernels::simd::avx512::weight_table;

/// Columns decoded at a time, then reused by every activation row.
const CHUNK: usize = 256;

/// `exact` precision, as [`scalar::row_exact`] up to the order of the f32
/// sums. Per group, the 16 possible weights `(u - 8) * scale` are computed
/// once (the same products unpack computes), then looked up per column,
/// 32 columns at a time in the split order.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL; `fits_split_blocks(group_size)`;
/// `acts` is f32.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn row_exact(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let (natural, split) = acts.exact();
    let groups = split_groups(cols, group_size);
    let whole = groups * group_size;
    // Cut to the whole groups, which tile whole split blocks: every quarter
    // read below is in bounds.
    let packed_simd = &packed[..whole / 2];
    let scales_simd = &scales[..groups];
    let quarters_per_group = group_size / 32;
    let mut sums = [0f32; BATCH_TILE];
    if out.len() == 1 {
        sums[0] = dot_row(
            packed_simd,
            scales_simd,
            quarters_per_group,
            &split[..whole],
        );
    } else {
        let mut decoded = [0f32; CHUNK];
        let mut first_col = 0;
        let mut quarter = 0;
        for &scale in scales_simd {
            let table = weight_table(scale);
            for _ in 0..quarters_per_group {
                let (even, odd) = quarter_offsets(quarter);
                // SAFETY: the quarter is inside `packed_simd` (see above),
                // and both offsets modulo CHUNK leave room for 16 f32.
                unsafe {
                    let [low, high] = decode32_split(packed_simd.as_ptr().add(16 * quarter), table);
                    _mm512_storeu_ps(decoded.as_mut_ptr().add(even % CHUNK), low);
                    _mm512_storeu_ps(decoded.as_mut_ptr().add(odd % CHUNK), high);
                }
                quarter += 1;
                if 32 * quarter - first_col == CHUNK {
                    add_dots(&decoded, split, cols, first_col, &mut sums[..out.len()]);
                    first_col += CHUNK;
                }
            }
        }
        let filled = 32 * quarter - first_col;
        add_dots(
            &decoded[..filled],
            split,
            cols,
            first_col,
            &mut sums[..out.len()],
        );
    }
    for (b, y) in out.iter_mut().enumerate() {
        let x = &natural[b * cols..(b + 1) * cols];
        *y = sums[b] + scalar::dot_exact(packed, scales, group_size, x, whole..cols);
    }
}

/// Where the even and the odd columns of 32-column quarter `i` of a row sit
/// in the split order.
#[inline]
fn quarter_offsets(i: usize) -> (usize, usize) {
    let even = SPLIT_BLOCK * (i / 4) + 16 * (i % 4);
    (even, even + SPLIT_BLOCK / 2)
}

/// The 32 weights of 16 packed bytes (one group's quarter), looked up in
/// the group's [`weight_table`]: the even columns, then the odd ones.
///
/// # Safety
/// `bytes` is readable for 16 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn decode32_split(bytes: *const u8, table: __m512) -> [__m512; 2] {
    prefetch_ahead(bytes);
    // SAFETY: the caller's promise.
    let wide = _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(bytes.cast()) });
    // vpermps reads only an index's low 4 bits: the low nibble, then the
    // high one once shifted down.
    [
        _mm512_permutexvar_ps(wide, table),
        _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(wide), table),
    ]
}

/// One activation row (split order) against the whole groups of one
/// weight row, decoding straight into four accumulators: each quarter adds
/// to the pair the quarter before last left. These add runs of whole
/// groups (or, for groups longer than a run, of a group's quarters) of
/// about `8 sqrt(n)` columns (`sqrt(n) / 8` per lane), then start again
/// from 0, the runs adding up apart: no sum is longer than about
/// `sqrt(n) / 4`, well inside the bound on the error.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn dot_row(packed: &[u8], scales: &[f32], quarters_per_group: usize, split: &[f32]) -> f32 {
    // [newer, older] pairs, and the runs' sums.
    let mut acc = [[_mm512_setzero_ps(); 2]; 2];
    let mut runs = [_mm512_setzero_ps(); 4];
    let run_quarters = (split.len().isqrt() / 4).max(1);
    let mut quarter = 0;
    if quarters_per_group <= run_quarters {
        for run_scales in scales.chunks(run_quarters / quarters_per_group) {
            for &scale in run_scales {
                let table = weight_table(scale);
                let end = quarter + quarters_per_group;
                add_quarters(packed, split, table, quarter..end, &mut acc);
                quarter = end;
            }
            add_run_vectors(&mut runs, &mut acc);
        }
    } else {
        for &scale in scales {
            let table = weight_table(scale);
            let end = quarter + quarters_per_group;
            for first in (quarter..end).step_by(run_quarters) {
                let piece = first..(first + run_quarters).min(end);
                add_quarters(packed, split, table, piece, &mut acc);
                add_run_vectors(&mut runs, &mut acc);
            }
            quarter = end;
        }
    }
    add_run_vectors(&mut runs, &mut acc);
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(runs[0], runs[1]),
        _mm512_add_ps(runs[2], runs[3]),
    ))
}

/// Adds `quarters` (of one group, whose weights `table` holds) of a row
/// to the `[newer, older]` accumulator pairs of [`dot_row`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn add_quarters(
    packed: &[u8],
    split: &[f32],
    table: __m512,
    quarters: std::ops::Range<usize>,
    [newer, older]: &mut [[__m512; 2]; 2],
) {
    for quarter in quarters {
        let (even, odd) = quarter_offsets(quarter);
        // SAFETY: the groups tile whole split blocks, so the quarter's
        // 16 bytes and 32 split values are inside `packed` and `split`.
        let added = unsafe {
            let [low, high] = decode32_split(packed.as_ptr().add(16 * quarter), table);
            [
                _mm512_fmadd_ps(low, _mm512_loadu_ps(split.as_ptr().add(even)), older[0]),
                _mm512_fmadd_ps(high, _mm512_loadu_ps(split.as_ptr().add(odd)), older[1]),
            ]
        };
        *older = *newer;
        *newer = added;
    }
}

/// `runs += acc` lane by lane, and the accumulators start again from 0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn add_run_vectors(runs: &mut [__m512; 4], acc: &mut [[__m512; 2]; 2]) {
    for (run, acc) in runs.iter_mut().zip(acc.as_flattened_mut()) {
        *run = _mm512_add_ps(*run, std::mem::replace(acc, _mm512_setzero_ps()));
    }
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

/// `int8` precision, as [`scalar::row_int8`] on each weight row of `w`, up
/// to the order of the f32 sums: the integer dot products are exact, and
/// each 32-bit lane holds the exact `sum((u - 8) * q)` of its 8 columns
/// (the activations' corrections start the lane) before it is scaled. Each
/// 128-column block of weights is split into nibbles once and used by up
/// to four activation rows; what depends only on the activations is
/// prepared once per call.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI; `fits_split_blocks(group_size)`; `acts`
/// is quantized (else this panics); `w` holds at least one row and `out`
/// `w.len() * batch` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn rows_int8(w: &WeightRows, acts: &Activations, out: &mut [f32]) {
    let q = acts.int8();
    let batch = out.len() / w.len();
    let mut first = 0;
    while first < batch {
        let rows = (batch - first).min(ROWS_IN_REGISTERS);
        match rows {
            1 => int8_tile::<1>(w, q, first, out),
            2 => int8_tile::<2>(w, q, first, out),
            3 => int8_tile::<3>(w, q, first, out),
            _ => int8_tile::<4>(w, q, first, out),
        }
        first += rows;
    }
}

/// Activation rows `first..first + ROWS` against every weight row of `w`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn int8_tile<const ROWS: usize>(
    w: &WeightRows,
    q: &QuantizedActivations,
    first: usize,
    out: &mut [f32],
) {
    let (group_size, cols) = (w.layout.group_size, w.layout.cols);
    let groups = split_groups(cols, group_size);
    let blocks = groups * group_size / SPLIT_BLOCK;
    let x: [_; ROWS] = std::array::from_fn(|t| row_slices(q, blocks, first + t));
    let lanes = if group_size == 64 {
        lanes_of_blocks::<2>()
    } else {
        lanes_of_blocks::<4>()
    };
    for (packed, scales, out) in w.with_outputs(out) {
        // Cut to the whole blocks, so that every block read is in bounds.
        let packed_simd = &packed[..SPLIT_BLOCK / 2 * blocks];
        // SAFETY: `packed_simd` and each split row of `x` hold the `blocks`
        // whole blocks of the first `groups` groups, the correction rows
        // their 16 lanes each; the scale rows hold every group of a row.
        let sums = unsafe {
            match group_size {
                32 => sums_small_groups::<4, ROWS>(packed_simd, scales, &x, &lanes, groups),
                64 => sums_small_groups::<2, ROWS>(packed_simd, scales, &x, &lanes, groups),
                _ => sums_large_groups::<ROWS>(packed_simd, scales, group_size, &x, groups),
            }
        };
        for (t, sum) in sums.into_iter().enumerate() {
            let tail = if groups < scales.len() {
                scalar::dot_int8(
                    packed,
                    scales,
                    group_size,
                    q,
                    first + t,
                    groups..scales.len(),
                )
            } else {
                0.0
            };
            out[first + t] = _mm512_reduce_add_ps(sum) + tail;
        }
    }
}

/// Activation rows whose sums one pass over a weight row keeps in registers.
const ROWS_IN_REGISTERS: usize = 4;

/// The low and high nibbles of a 64-byte block of packed weights, each
/// as bytes: the even and odd columns of [`super::split_pairs`]'s order.
///
/// # Safety
/// `block` is readable for 64 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn nibbles(block: *const u8) -> [__m512i; 2] {
    prefetch_ahead(block);
    // SAFETY: the caller's promise.
    let w = unsafe { _mm512_loadu_si512(block.cast()) };
    let low_nibbles = _mm512_set1_epi8(0x0F);
    [
        _mm512_and_si512(w, low_nibbles),
        _mm512_and_si512(_mm512_srli_epi16::<4>(w), low_nibbles),
    ]
}

/// `acc + sum(u * q)` per lane of a block against its 128 split
/// activations: lane `i` covers columns `8i..8i + 8` of the block (the
/// lane of [`super::super::activations::CORRECTION_SPAN`] columns the
/// corrections are made for).
///
/// # Safety
/// `xq` is readable for 128 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn block_dot(acc: __m512i, [low, high]: [__m512i; 2], xq: *const i8) -> __m512i {
    // SAFETY: the caller's promise.
    let (even, odd) = unsafe {
        (
            _mm512_loadu_si512(xq.cast()),
            _mm512_loadu_si512(xq.add(64).cast()),
        )
    };
    _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc, low, even), high, odd)
}

/// An activation row in the split order, its scales and its corrections.
type RowSlices<'a> = (&'a [i8], &'a [f32], &'a [i32]);

/// Row `b`'s cut to the first `blocks` split blocks, its scales and its
/// corrections (16 per block), cut alike.
fn row_slices(q: &QuantizedActivations, blocks: usize, b: usize) -> RowSlices<'_> {
    (
        &q.split_row(b)[..SPLIT_BLOCK * blocks],
        q.scales_row(b),
        &q.corrections_row(b)[..16 * blocks],
    )
}

/// The 16 corrections of block `j`: the lanes a block's dot products
/// start from.
///
/// # Safety
/// Block `j` is inside `corrections` (16 per block).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn corrections(corrections: &[i32], j: usize) -> __m512i {
    // SAFETY: the caller's promise.
    unsafe { _mm512_loadu_si512(corrections.as_ptr().add(16 * j).cast()) }
}

/// g = 32 or 64 (`PER_BLOCK` = 128 / g groups per block): one weight row
/// (cut to its whole blocks) against the `ROWS` activation rows of `x`,
/// over the first `groups` groups. Scales are multiplied 16 groups (a
/// window) at a time and spread to the lanes of each block by a permute.
/// Returns, per row, lanes summing to `sum_k group_scale(w_scale_k,
/// x_scale_k) * sum((u - 8) * q)`.
///
/// # Safety
/// `packed` and the split and correction rows of each `x` hold the whole
/// blocks of the first `groups` groups; `scales` and the scales of each
/// `x` hold at least `groups` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn sums_small_groups<const PER_BLOCK: usize, const ROWS: usize>(
    packed: &[u8],
    scales: &[f32],
    x: &[RowSlices; ROWS],
    lanes: &[__m512i; 8],
    groups: usize,
) -> [__m512; ROWS] {
    let mut sums = Sums {
        dots: [[_mm512_setzero_ps(); ROWS]; 2],
    };
    let full_windows = groups / WINDOW;
    for w in 0..full_windows {
        // SAFETY: the window's groups are below `groups` (the caller's
        // promise covers them).
        unsafe { sums.add_window::<PER_BLOCK>(packed, scales, x, lanes, WINDOW * w, WINDOW) };
    }
    if !groups.is_multiple_of(WINDOW) {
        let k0 = WINDOW * full_windows;
        // SAFETY: as above, for the last `groups - k0` groups.
        unsafe { sums.add_window::<PER_BLOCK>(packed, scales, x, lanes, k0, groups - k0) };
    }
    std::array::from_fn(|t| _mm512_add_ps(sums.dots[0][t], sums.dots[1][t]))
}

/// Groups whose scales [`sums_small_groups`] loads together.
const WINDOW: usize = 16;

/// Per activation row, the scaled dot products (alternate blocks feed two
/// accumulators, to halve the FMA chain).
struct Sums<const ROWS: usize> {
    dots: [[__m512; ROWS]; 2],
}

impl<const ROWS: usize> Sums<ROWS> {
    /// Adds the `n` groups from `k0` (whole blocks, at most a window).
    /// Inlined, the full windows' block loop unrolls.
    ///
    /// # Safety
    /// `k0 + n <= groups`, the groups `packed` and each row of `x` were
    /// cut to.
    #[inline(always)]
    unsafe fn add_window<const PER_BLOCK: usize>(
        &mut self,
        packed: &[u8],
        scales: &[f32],
        x: &[RowSlices; ROWS],
        lanes: &[__m512i; 8],
        k0: usize,
        n: usize,
    ) {
        let mask = ((1u32 << n) - 1) as u16;
        prefetch_ahead(scales.as_ptr().wrapping_add(k0));
        // SAFETY: the masked loads read `n` values from `k0`, all in bounds
        // (the caller's promise).
        let w_scales = unsafe { _mm512_maskz_loadu_ps(mask, scales.as_ptr().add(k0)) };
        let mut combined = [_mm512_setzero_ps(); ROWS];
        for (t, &(_, x_scales, _)) in x.iter().enumerate() {
            // SAFETY: as above.
            let x_scale = unsafe { _mm512_maskz_loadu_ps(mask, x_scales.as_ptr().add(k0)) };
            // scalar::group_scale, 16 groups at a time: MINPS and MAXPS
            // return their second operand when one is NaN, so NaN stays NaN.
            combined[t] = _mm512_max_ps(
                _mm512_set1_ps(-f32::MAX),
                _mm512_min_ps(_mm512_set1_ps(f32::MAX), _mm512_mul_ps(w_scales, x_scale)),
            );
        }
        let first_block = k0 / PER_BLOCK;
        for (jj, &lanes) in lanes.iter().enumerate().take(n / PER_BLOCK) {
            // SAFETY: the block holds groups below `k0 + n`.
            self.dots[jj % 2] = unsafe {
                add_block(
                    self.dots[jj % 2],
                    packed,
                    x,
                    first_block + jj,
                    lanes,
                    &combined,
                )
            };
        }
    }
}

/// Lane i of block jj of a window of 16 groups holds group
/// `jj * PER_BLOCK + i * PER_BLOCK / 16`.
#[inline]
#[target_feature(enable = "avx512f")]
fn lanes_of_blocks<const PER_BLOCK: usize>() -> [__m512i; 8] {
    const fn table(per_block: usize) -> [[i32; 16]; 8] {
        let mut t = [[0; 16]; 8];
        let mut jj = 0;
        while jj < 8 {
            let mut i = 0;
            while i < 16 {
                t[jj][i] = (jj * per_block + i * per_block / 16) as i32;
                i += 1;
            }
            jj += 1;
        }
        t
    }
    const FOUR: [[i32; 16]; 8] = table(4);
    const TWO: [[i32; 16]; 8] = table(2);
    let table = if PER_BLOCK == 4 { &FOUR } else { &TWO };
    // SAFETY: each row of the table holds 16 i32.
    std::array::from_fn(|jj| unsafe { _mm512_loadu_epi32(table[jj].as_ptr()) })
}

/// `acc[t] += cvt(block j . row t + corrections) * permute(lanes,
/// combined[t])`.
///
/// # Safety
/// Block `j` is inside `packed`, each row's split slice is twice as long
/// as `packed` and its corrections hold 16 per block of `packed`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn add_block<const ROWS: usize>(
    mut acc: [__m512; ROWS],
    packed: &[u8],
    x: &[RowSlices; ROWS],
    j: usize,
    lanes: __m512i,
    combined: &[__m512; ROWS],
) -> [__m512; ROWS] {
    // SAFETY: the caller's promise.
    let weights = unsafe { nibbles(packed.as_ptr().add(SPLIT_BLOCK / 2 * j)) };
    for (t, &(split, _, corr)) in x.iter().enumerate() {
        // SAFETY: the caller's promise.
        let dots = unsafe {
            block_dot(
                corrections(corr, j),
                weights,
                split.as_ptr().add(SPLIT_BLOCK * j),
            )
        };
        acc[t] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(dots),
            _mm512_permutexvar_ps(lanes, combined[t]),
            acc[t],
        );
    }
    acc
}

/// g a multiple of 128: whole blocks per group, integer sums across them;
/// returns what [`sums_small_groups`] returns.
///
/// # Safety
/// As [`sums_small_groups`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn sums_large_groups<const ROWS: usize>(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    x: &[RowSlices; ROWS],
    groups: usize,
) -> [__m512; ROWS] {
    let blocks_per_group = group_size / SPLIT_BLOCK;
    let mut acc = [_mm512_setzero_ps(); ROWS];
    for (k, &w_scale) in scales[..groups].iter().enumerate() {
        prefetch_ahead(&scales[k]);
        let mut dots = [_mm512_setzero_si512(); ROWS];
        for j in k * blocks_per_group..(k + 1) * blocks_per_group {
            // SAFETY: block j holds part of group k < `groups`: inside
            // `packed` and each split row (the caller's promise).
            let weights = unsafe { nibbles(packed.as_ptr().add(SPLIT_BLOCK / 2 * j)) };
            for (t, &(split, _, corr)) in x.iter().enumerate() {
                // SAFETY: as above.
                dots[t] = unsafe {
                    let start = _mm512_add_epi32(dots[t], corrections(corr, j));
                    block_dot(start, weights, split.as_ptr().add(SPLIT_BLOCK * j))
                };
            }
        }
        for (t, &(_, x_scales, _)) in x.iter().enumerate() {
            let scale = _mm512_set1_ps(scalar::group_scale(w_scale, x_scales[k]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[t]), scale, acc[t]);
        }
    }
    acc
}
