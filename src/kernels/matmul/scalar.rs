//! Scalar twins of the fused kernels: they define what each precision
//! computes, and finish the ragged tails of the SIMD kernels.

use std::ops::Range;

use super::QuantizedActivations;
use crate::kernels::scalar::{dequantize, max_ignoring_nan};

/// The nibble of column `c` in a packed row.
#[inline]
fn nibble(packed: &[u8], group_size: usize, c: usize) -> u8 {
    let (k, i) = (c / group_size, c % group_size);
    let byte = packed[k * group_size.div_ceil(2) + i / 2];
    if i % 2 == 0 {
        byte & 15
    } else {
        byte >> 4
    }
}

/// `sum(x[c] * w[c])` over `columns` of one row, each weight decoded as
/// unpack does, `acc += x * w` in f32, left to right.
pub fn dot_exact(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    x: &[f32],
    columns: Range<usize>,
) -> f32 {
    columns.fold(0f32, |acc, c| {
        acc + x[c] * dequantize(nibble(packed, group_size, c), scales[c / group_size])
    })
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
/// `acc += (w_scale * x_scale) * dot`.
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
        acc + (scales[k] * acts.scale(b, k)) * dot as f32
    })
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

/// Quantizes one group of activations for [`super::Precision::Int8`]:
/// `scale = max |x| / 127` (NaN ignored), `q = round(x / scale)` (0 where
/// the scale is 0). Returns the scale and `sum(q)`.
pub fn quantize_activations(group: &[f32], q: &mut [i8]) -> (f32, i32) {
    let max_abs = group.iter().map(|v| v.abs()).fold(0.0f32, max_ignoring_nan);
    let scale = max_abs / 127.0;
    for (qv, &v) in q.iter_mut().zip(group) {
        *qv = if scale > 0.0 {
            round_to_i8(v / scale)
        } else {
            0
        };
    }
    (scale, q.iter().map(|&v| v as i32).sum())
}

/// `q.round().clamp(-127.0, 127.0) as i8` (half away from zero; NaN gives
/// 0) without a call to libm's `roundf`: truncate, then step away from
/// zero when the exact remainder is at least one half.
#[inline]
fn round_to_i8(q: f32) -> i8 {
    let t = q as i32;
    let frac = q - t as f32;
    let rounded = if frac >= 0.5 {
        t.saturating_add(1)
    } else if frac <= -0.5 {
        t.saturating_sub(1)
    } else {
        t
    };
    rounded.clamp(-127, 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_i8_is_round_then_clamp() {
        let specials = [
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
            126.5,
            127.49,
            127.5,
            -127.5,
            1e9,
            -1e9,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            3e9,
            -3e9,
            1e-40,
        ];
        let mut seed = 0x1234_5678u32;
        let random = std::iter::repeat_with(|| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32 - 0.5) * 300.0
        });
        for q in specials.into_iter().chain(random.take(100_000)) {
            assert_eq!(round_to_i8(q), q.round().clamp(-127.0, 127.0) as i8, "{q}");
        }
    }
}
