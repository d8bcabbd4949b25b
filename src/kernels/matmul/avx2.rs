//! AVX2 + FMA fused kernels: `exact` for group sizes that are multiples
//! of 16, `int8` for 32 and multiples of 64, both over the whole split
//! blocks of a row. Ragged tails go to the scalar twins.

use std::arch::x86_64::*;

use super::{prefetch_ahead, scalar, split_groups, Activations, BATCH_TILE, SPLIT_BLOCK};

/// Columns decoded at a time, then reused by every activation row.
const CHUNK: usize = 256;

/// Columns per decoded chunk: the 8 packed bytes of [`decode16_split`].
const SPAN: usize = 16;

/// Whether the exact kernel has a fast path for `group_size`: a 16-column
/// chunk then never straddles two groups.
pub(super) fn exact_fits(group_size: usize) -> bool {
    group_size.is_multiple_of(SPAN)
}

/// `exact` precision, as [`scalar::row_exact`] up to the order of the f32
/// sums: 16 weights at a time, each `(u - 8) * scale` as unpack computes
/// it, against the activations in the split order.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `exact_fits(group_size)`; `acts` is f32.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_exact(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let (natural, split) = acts.exact();
    // The whole split blocks; with an even group size, column c sits in
    // byte c / 2.
    let whole = cols / SPLIT_BLOCK * SPLIT_BLOCK;
    let packed_simd = &packed[..whole / 2];
    let mut sums = [0f32; BATCH_TILE];
    if out.len() == 1 {
        sums[0] = dot_row(packed_simd, scales, group_size, &split[..whole]);
    } else {
        let mut decoded = [0f32; CHUNK];
        for first_col in (0..whole).step_by(CHUNK) {
            let span = (whole - first_col).min(CHUNK);
            for c in (first_col..first_col + span).step_by(SPAN) {
                let (even, odd) = span_offsets(c);
                // SAFETY: the span's 8 bytes are inside `packed_simd`, and
                // both offsets modulo CHUNK leave room for 8 f32.
                unsafe {
                    let [low, high] =
                        decode16_split(packed_simd.as_ptr().add(c / 2), scales[c / group_size]);
                    _mm256_storeu_ps(decoded.as_mut_ptr().add(even % CHUNK), low);
                    _mm256_storeu_ps(decoded.as_mut_ptr().add(odd % CHUNK), high);
                }
            }
            add_dots(
                &decoded[..span],
                split,
                cols,
                first_col,
                &mut sums[..out.len()],
            );
        }
    }
    for (b, y) in out.iter_mut().enumerate() {
        let x = &natural[b * cols..(b + 1) * cols];
        *y = sums[b] + scalar::dot_exact(packed, scales, group_size, x, whole..cols);
    }
}

/// Where the even and the odd columns of the 16 columns from `c` (a
/// multiple of 16) sit in the split order.
#[inline]
fn span_offsets(c: usize) -> (usize, usize) {
    let even = c / SPLIT_BLOCK * SPLIT_BLOCK + (c % SPLIT_BLOCK) / 2;
    (even, even + SPLIT_BLOCK / 2)
}

/// The 16 weights of 8 packed bytes (inside one group): the even columns,
/// then the odd ones, each `(u - 8) * scale`.
///
/// # Safety
/// `bytes` is readable for 8 bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn decode16_split(bytes: *const u8, scale: f32) -> [__m256; 2] {
    prefetch_ahead(bytes);
    // SAFETY: the caller's promise.
    let wide = _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(bytes.cast()) });
    let (eight, scale) = (_mm256_set1_epi32(8), _mm256_set1_ps(scale));
    let low = _mm256_and_si256(wide, _mm256_set1_epi32(0xF));
    let high = _mm256_srli_epi32::<4>(wide);
    [low, high].map(|u| _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(u, eight)), scale))
}

/// One activation row (split order) against the whole split blocks of one
/// weight row, decoding straight into four accumulators.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn dot_row(packed: &[u8], scales: &[f32], group_size: usize, split: &[f32]) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    // The group of the current span, followed without a division.
    let (mut group, mut group_end) = (0, group_size);
    // Two spans per step (whole blocks hold an even number), each into its
    // own pair of accumulators, at indices the compiler keeps in registers.
    for c in (0..split.len()).step_by(2 * SPAN) {
        for (pair, c) in [(0, c), (2, c + SPAN)] {
            if c == group_end {
                group += 1;
                group_end += group_size;
            }
            let (even, odd) = span_offsets(c);
            // SAFETY: the span's 8 bytes and 16 split values are inside
            // `packed` and `split`, which cover the same whole blocks.
            unsafe {
                let [low, high] = decode16_split(packed.as_ptr().add(c / 2), scales[group]);
                let (x_even, x_odd) = (
                    _mm256_loadu_ps(split.as_ptr().add(even)),
                    _mm256_loadu_ps(split.as_ptr().add(odd)),
                );
                acc[pair] = _mm256_fmadd_ps(low, x_even, acc[pair]);
                acc[pair + 1] = _mm256_fmadd_ps(high, x_odd, acc[pair + 1]);
            }
        }
    }
    horizontal_sum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ))
}

/// The sum of the 8 lanes of `v`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn horizontal_sum(v: __m256) -> f32 {
    let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
    _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)))
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
        *sum += horizontal_sum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
    }
}

/// Whether the int8 kernel has a fast path for `group_size`.
pub(super) fn int8_fits(group_size: usize) -> bool {
    group_size == 32 || group_size.is_multiple_of(64)
}

/// `int8` precision, as [`scalar::row_int8`] up to the order of the f32
/// sums: per 64 columns, `vpmaddubsw` multiplies the nibbles (0..=15) by
/// the int8 activations and `vpmaddwd` adds the pairs, exactly (at most
/// 4 * 15 * 127 per 16-bit sum); the activations' corrections make each
/// 32-bit lane the exact `sum((u - 8) * q)` of its 8 columns before it is
/// scaled.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `int8_fits(group_size)`; `acts` is
/// quantized (else this panics).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_int8(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let q = acts.int8();
    let groups = split_groups(cols, group_size);
    // Cut to the whole groups, so that every half block read is in bounds.
    let packed_simd = &packed[..groups * group_size / 2];
    for (b, y) in out.iter_mut().enumerate() {
        let x = Row {
            split: &q.split_row(b)[..groups * group_size],
            scales: q.scales_row(b),
            corrections: q.corrections_row(b),
        };
        let acc = if group_size == 32 {
            sums_g32(packed_simd, &scales[..groups], &x)
        } else {
            sums_g64k(packed_simd, &scales[..groups], group_size, &x)
        };
        *y = horizontal_sum(acc)
            + scalar::dot_int8(packed, scales, group_size, q, b, groups..scales.len());
    }
}

/// One activation row as the int8 kernel reads it: the split order (cut
/// to the whole groups), the scales and the corrections.
struct Row<'a> {
    split: &'a [i8],
    scales: &'a [f32],
    corrections: &'a [i32],
}

/// `sum((u - 8) * q)` of half block `m` (64 columns, 32 packed bytes)
/// against its split activations, exactly, per lane: lane `i` covers
/// columns `8i..8i + 8` of the half block.
///
/// # Safety
/// Half block `m` is inside `packed`, `x.split` is twice as long and
/// `x.corrections` holds the half block's 8.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn half_block_dot(packed: &[u8], x: &Row, m: usize) -> __m256i {
    let even = SPLIT_BLOCK * (m / 2) + SPLIT_BLOCK / 4 * (m % 2);
    prefetch_ahead(packed.as_ptr().wrapping_add(32 * m));
    // SAFETY: the caller's promise; the odd values sit 64 after the even.
    let (w, x_even, x_odd, correction) = unsafe {
        (
            _mm256_loadu_si256(packed.as_ptr().add(32 * m).cast()),
            _mm256_loadu_si256(x.split.as_ptr().add(even).cast()),
            _mm256_loadu_si256(x.split.as_ptr().add(even + SPLIT_BLOCK / 2).cast()),
            _mm256_loadu_si256(x.corrections.as_ptr().add(8 * m).cast()),
        )
    };
    let low_nibbles = _mm256_set1_epi8(0x0F);
    let low = _mm256_and_si256(w, low_nibbles);
    let high = _mm256_and_si256(_mm256_srli_epi16::<4>(w), low_nibbles);
    let pairs = _mm256_add_epi16(
        _mm256_maddubs_epi16(low, x_even),
        _mm256_maddubs_epi16(high, x_odd),
    );
    _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), correction)
}

/// g = 32, over the whole groups of `scales`: lanes summing to
/// `sum_k group_scale(w_scale_k, x_scale_k) * sum((u - 8) * q)`. Scales are
/// multiplied 8 groups at a time and spread to the lanes of each half
/// block by a permute.
#[target_feature(enable = "avx2,fma")]
fn sums_g32(packed: &[u8], scales: &[f32], x: &Row) -> __m256 {
    let mut acc = [_mm256_setzero_ps(); 2];
    for k0 in (0..scales.len()).step_by(8) {
        let n = (scales.len() - k0).min(8);
        prefetch_ahead(scales[k0..].as_ptr());
        // Lanes below `n` load; the others read as 0 (masked loads never
        // touch the memory of masked-off lanes).
        let mask = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        // SAFETY: the unmasked lanes read `n` values from `k0`, in bounds
        // of each slice (all hold at least `scales.len()` values).
        let (w8, x8) = unsafe {
            (
                _mm256_maskload_ps(scales[k0..].as_ptr(), mask),
                _mm256_maskload_ps(x.scales[k0..].as_ptr(), mask),
            )
        };
        // scalar::group_scale, 8 groups at a time: MINPS and MAXPS return
        // their second operand when one is NaN, so NaN stays NaN.
        let combined = _mm256_max_ps(
            _mm256_set1_ps(-f32::MAX),
            _mm256_min_ps(_mm256_set1_ps(f32::MAX), _mm256_mul_ps(w8, x8)),
        );
        // Alternate half blocks feed two accumulators, to halve the FMA chain.
        for mm in (0..n / 2).step_by(2) {
            // SAFETY: half blocks k0 / 2 + mm (+ 1) hold groups below
            // `scales.len()`, inside `packed` and `x`.
            unsafe {
                acc[0] = half_block_term(packed, x, k0 / 2 + mm, combined, mm, acc[0]);
                if mm + 1 < n / 2 {
                    acc[1] = half_block_term(packed, x, k0 / 2 + mm + 1, combined, mm + 1, acc[1]);
                }
            }
        }
    }
    _mm256_add_ps(acc[0], acc[1])
}

/// `acc + cvt(half block m . split) * scales`, with lanes 0-3 scaled by
/// `combined[2 * mm]` and lanes 4-7 by `combined[2 * mm + 1]`.
///
/// # Safety
/// As [`half_block_dot`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn half_block_term(
    packed: &[u8],
    x: &Row,
    m: usize,
    combined: __m256,
    mm: usize,
    acc: __m256,
) -> __m256 {
    let (first, second) = (2 * mm as i32, 2 * mm as i32 + 1);
    let lanes = _mm256_setr_epi32(first, first, first, first, second, second, second, second);
    // SAFETY: the caller's promise.
    let dots = unsafe { half_block_dot(packed, x, m) };
    _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(dots),
        _mm256_permutevar8x32_ps(combined, lanes),
        acc,
    )
}

/// g a multiple of 64: whole half blocks per group, integer sums across
/// them; returns what [`sums_g32`] returns.
#[target_feature(enable = "avx2,fma")]
fn sums_g64k(packed: &[u8], scales: &[f32], group_size: usize, x: &Row) -> __m256 {
    let halves_per_group = group_size / 64;
    let mut acc = _mm256_setzero_ps();
    for (k, &w_scale) in scales.iter().enumerate() {
        prefetch_ahead(&scales[k]);
        let mut dots = _mm256_setzero_si256();
        for m in k * halves_per_group..(k + 1) * halves_per_group {
            // SAFETY: half block m lies in group k < `scales.len()`, inside
            // `packed` and `x`.
            dots = _mm256_add_epi32(dots, unsafe { half_block_dot(packed, x, m) });
        }
        acc = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(dots),
            _mm256_set1_ps(scalar::group_scale(w_scale, x.scales[k])),
            acc,
        );
    }
    acc
}
