//! The scalar reference: the format's definition (README, "The format")
//! written as plainly as possible.
//! It defines the format; every other kernel must equal it bit for bit.

use crate::element::Element;

/// The nibble that encodes 0: padding and the unused high nibble of odd groups.
pub const ZERO_NIBBLE: u8 = 8;

/// Smallest scale a group can get, so an all-zero group divides safely.
pub const MIN_SCALE: f32 = 1e-5;

/// How close to a half-integer a SIMD kernel's estimate `w * (1 / scale)`
/// of the quotient may come before the true division decides. The estimate
/// is within 2^-19 of `w / scale`, so 2^-16 leaves a wide margin.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
pub(crate) const NEAR_HALF: f32 = 1.0 / 65536.0;

/// The larger of `max` and `value`, where a NaN `value` (quiet or
/// signaling) is ignored: `f32::max` on aarch64 lowers to `fmaxnm`, which
/// turns a signaling NaN into NaN instead of ignoring it.
#[inline]
pub fn max_ignoring_nan(max: f32, value: f32) -> f32 {
    if value > max {
        value
    } else {
        max
    }
}

/// A group's scale: `max(max |w| / 7, 1e-5)`, NaN elements ignored.
#[inline]
pub fn group_scale<T: Element>(group: &[T]) -> f32 {
    let max_abs = group
        .iter()
        .map(|w| w.to_f32().abs())
        .fold(0.0f32, max_ignoring_nan);
    (max_abs / 7.0).max(MIN_SCALE)
}

/// One element's nibble: `clamp(round(w / scale), -8, 7) + 8`; a NaN
/// quotient becomes 0 through `as i8`.
#[inline]
pub fn quantize(w: f32, scale: f32) -> u8 {
    let q = (w / scale).round().clamp(-8.0, 7.0) as i8;
    (q + 8) as u8
}

/// One element's value: `(u - 8) * scale`, a single f32 multiply.
#[inline]
pub fn dequantize(nibble: u8, scale: f32) -> f32 {
    (nibble as i8 - 8) as f32 * scale
}

/// Packs one row of `cols` elements into `packed` (`packed_row_bytes`) and
/// `scales` (`groups_per_row`).
pub fn pack_row<T: Element>(src: &[T], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    pack_row_scaled(src, group_size, packed, scales, |_, group| {
        group_scale(group)
    });
}

/// [`pack_row`] with each group's scale chosen by `scale_of(k, group)`
/// (`k` the group's index in the row): how the other encoders write the
/// same layout.
pub(crate) fn pack_row_scaled<T: Element>(
    src: &[T],
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
    scale_of: impl Fn(usize, &[T]) -> f32,
) {
    let bytes_per_group = group_size.div_ceil(2);
    let groups = src
        .chunks(group_size)
        .zip(packed.chunks_exact_mut(bytes_per_group))
        .zip(scales.iter_mut());
    for (k, ((group, bytes), scale_out)) in groups.enumerate() {
        let scale = scale_of(k, group);
        *scale_out = scale;
        write_group(bytes, |i| group.get(i).map(|w| quantize(w.to_f32(), scale)));
    }
}

/// Writes one group's bytes, element `i`'s nibble (`nibble(i)`, `None`
/// past the group's end: padding) in the low half of byte `i / 2` when `i`
/// is even, the high half when odd.
pub(crate) fn write_group(bytes: &mut [u8], nibble: impl Fn(usize) -> Option<u8>) {
    let nibble = |i| nibble(i).unwrap_or(ZERO_NIBBLE);
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = nibble(2 * i) | (nibble(2 * i + 1) << 4);
    }
}

/// Unpacks one row: the inverse of [`pack_row`], padding dropped.
pub fn unpack_row<T: Element>(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [T]) {
    let bytes_per_group = group_size.div_ceil(2);
    let groups = dst
        .chunks_mut(group_size)
        .zip(packed.chunks_exact(bytes_per_group))
        .zip(scales);
    for ((group, bytes), &scale) in groups {
        for (i, out) in group.iter_mut().enumerate() {
            let byte = bytes[i / 2];
            let nibble = if i % 2 == 0 { byte & 0x0F } else { byte >> 4 };
            *out = T::from_f32(dequantize(nibble, scale));
        }
    }
}
