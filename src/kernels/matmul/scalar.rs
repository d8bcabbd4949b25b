//! Scalar twins of the fused kernels: they define what each precision
//! computes, and finish the ragged tails of the SIMD kernels.

use std::ops::Range;

use super::QuantizedActivations;
use crate::kernels::pack::scalar::dequantize;

/// The nibble of column `c` in a packed row.
#[inline]
pub(crate) fn nibble(packed: &[u8], group_size: usize, c: usize) -> u8 {
    let (k, i) = (c / group_size, c % group_size);
    let byte = packed[k * group_size.div_ceil(2) + i / 2];
    if i % 2 == 0 {
        byte & 15
    } else {
        byte >> 4
    }
}

/// Columns of one leaf of [`dot_exact`]'s pairwise sum.
const LEAF: usize = 64;

/// `sum(x[c] * w[c])` over `columns` of one row, each weight decoded as
/// unpack does, products and sums in f32. The sum is pairwise: halves of
/// whole leaves of 64 columns, each leaf summed by 4 running sums (column
/// `i` of a leaf into sum `i % 4`) then `(s0 + s1) + (s2 + s3)`. A product
/// meets at most `19 + ceil(log2(n / 64))` roundings, against the
/// `4 sqrt(n) + 4` the error bound allows.
pub fn dot_exact(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    x: &[f32],
    columns: Range<usize>,
) -> f32 {
    let n = columns.len();
    if n > LEAF {
        let mid = columns.start + n.div_ceil(LEAF) / 2 * LEAF;
        return dot_exact(packed, scales, group_size, x, columns.start..mid)
            + dot_exact(packed, scales, group_size, x, mid..columns.end);
    }
    // Group `k`, index `i` in it: followed column by column, without a
    // division.
    let (mut k, mut i) = (columns.start / group_size, columns.start % group_size);
    let group_bytes = group_size.div_ceil(2);
    let mut acc = [0f32; 4];
    for (j, &x) in x[columns].iter().enumerate() {
        let byte = packed[k * group_bytes + i / 2];
        let u = if i % 2 == 0 { byte & 15 } else { byte >> 4 };
        acc[j % 4] += x * dequantize(u, scales[k]);
        i += 1;
        if i == group_size {
            (k, i) = (k + 1, 0);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `exact` precision: one weight row against every activation row.
pub fn row_exact(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    x: &[f32],
    cols: usize,
    out: &mut [f32],
) {
    for (b, y) in out.iter_mut().enumerate() {
        *y = dot_exact(
            packed,
            scales,
            group_size,
            &x[b * cols..(b + 1) * cols],
            0..cols,
        );
    }
}

/// `int8` precision over `groups` of one row and activation row `b`: per
/// group the exact integer `sum((u - 8) * q)`, then in f32, group by group,
/// `acc += group_scale(w_scale, x_scale) * dot`.
pub fn dot_int8(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    acts: &QuantizedActivations,
    b: usize,
    groups: Range<usize>,
) -> f32 {
    groups.fold(0f32, |acc, k| {
        let dot: i32 = acts
            .group(b, k)
            .iter()
            .enumerate()
            .map(|(i, &q)| (nibble(packed, group_size, k * group_size + i) as i32 - 8) * q as i32)
            .sum();
        acc + group_scale(scales[k], acts.scale(b, k)) * dot as f32
    })
}

/// The factor of one group's integer dot in an int8 product: `w_scale *
/// x_scale`, held to the finite range so that a group whose dot is 0 adds 0
/// even when the product of its scales overflows (an infinity times 0
/// would be NaN). NaN stays NaN. Every kernel scales by this value.
#[inline]
pub fn group_scale(w_scale: f32, x_scale: f32) -> f32 {
    (w_scale * x_scale).clamp(-f32::MAX, f32::MAX)
}

/// `int8` precision: one weight row against every activation row.
pub fn row_int8(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    acts: &QuantizedActivations,
    out: &mut [f32],
) {
    for (b, y) in out.iter_mut().enumerate() {
        *y = dot_int8(packed, scales, group_size, acts, b, 0..scales.len());
    }
}
