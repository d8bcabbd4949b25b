//! Fused products `Y = X W^T` with packed weights: scalar twins in
//! [`scalar`] define both precisions; SIMD kernels sit beside them.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod scalar;

use super::Kernel;

/// Activation rows handled by one pass over the weights.
pub const BATCH_TILE: usize = 64;

/// How a fused product computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Each weight decoded exactly as unpack does, f32 products and sums.
    Exact,
    /// Activations quantized to int8 per group (symmetric, scale
    /// `max |x| / 127`), integer dot products per group, f32 across groups.
    Int8,
}

/// Activation rows quantized for [`Precision::Int8`], in natural order.
pub struct QuantizedActivations {
    q: Vec<i8>,
    /// The same rows in the split order of [`split_pairs`], for the SIMD
    /// kernels.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    split: Vec<i8>,
    scales: Vec<f32>,
    /// `8 * scale * sum(q)` per group: the part of `sum((u - 8) * q)` that
    /// does not depend on the weights, scaled.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    offsets: Vec<f32>,
    cols: usize,
    group_size: usize,
    groups: usize,
}

impl QuantizedActivations {
    /// Quantizes `batch` rows of `cols` values: per group of `group_size`,
    /// `scale = max |x| / 127` (NaN ignored) and `q = round(x / scale)`
    /// (0 where the scale is 0).
    pub fn new(x: &[f32], batch: usize, cols: usize, group_size: usize) -> Self {
        let groups = cols.div_ceil(group_size);
        let mut q = vec![0i8; batch * cols];
        let mut scales = vec![0f32; batch * groups];
        for b in 0..batch {
            let row = &x[b * cols..(b + 1) * cols];
            let q_row = &mut q[b * cols..(b + 1) * cols];
            let groups_of = row.chunks(group_size).zip(q_row.chunks_mut(group_size));
            for (k, (group, q_group)) in groups_of.enumerate() {
                let max_abs = group
                    .iter()
                    .map(|v| v.abs())
                    .fold(0.0f32, crate::kernels::scalar::max_ignoring_nan);
                let scale = max_abs / 127.0;
                scales[b * groups + k] = scale;
                if scale > 0.0 {
                    for (qv, &v) in q_group.iter_mut().zip(group) {
                        *qv = round_to_i8(v / scale);
                    }
                }
            }
        }
        let split = split_pairs(&q, cols);
        let mut offsets = vec![0f32; batch * groups];
        for b in 0..batch {
            let row = &q[b * cols..(b + 1) * cols];
            for (k, group) in row.chunks(group_size).enumerate() {
                let sum: i32 = group.iter().map(|&v| v as i32).sum();
                offsets[b * groups + k] = 8.0 * scales[b * groups + k] * sum as f32;
            }
        }
        QuantizedActivations {
            q,
            split,
            scales,
            offsets,
            cols,
            group_size,
            groups,
        }
    }

    /// Row `b` in the split order.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn split_row(&self, b: usize) -> &[i8] {
        &self.split[b * self.cols..(b + 1) * self.cols]
    }

    /// The scales of row `b`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn scales_row(&self, b: usize) -> &[f32] {
        &self.scales[b * self.groups..(b + 1) * self.groups]
    }

    /// The offsets of row `b`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn offsets_row(&self, b: usize) -> &[f32] {
        &self.offsets[b * self.groups..(b + 1) * self.groups]
    }

    /// The quantized values of group `k` of row `b`.
    pub fn group(&self, b: usize, k: usize) -> &[i8] {
        let start = b * self.cols + k * self.group_size;
        &self.q[start..(b * self.cols + self.cols).min(start + self.group_size)]
    }

    /// The scale of group `k` of row `b`.
    pub fn scale(&self, b: usize, k: usize) -> f32 {
        self.scales[b * self.groups + k]
    }
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

/// Columns per block of the split order.
pub(crate) const SPLIT_BLOCK: usize = 128;

/// `x` (rows of `cols`) in the split order: each whole block of 128 values
/// becomes the even-indexed values of its four 32-value quarters, then
/// their odd-indexed values. A 64-byte load of packed weights splits into
/// low nibbles (even columns) and high nibbles (odd columns) in the same
/// order. Values after the last whole block keep their order.
pub(crate) fn split_pairs<T: Copy>(x: &[T], cols: usize) -> Vec<T> {
    let mut split = x.to_vec();
    for (row, out) in x.chunks_exact(cols).zip(split.chunks_exact_mut(cols)) {
        let blocks = row.chunks_exact(SPLIT_BLOCK);
        for (block, out) in blocks.zip(out.chunks_exact_mut(SPLIT_BLOCK)) {
            for (i, pair) in block.chunks_exact(2).enumerate() {
                out[i] = pair[0];
                out[SPLIT_BLOCK / 2 + i] = pair[1];
            }
        }
    }
    split
}

/// Whether groups of `group_size` tile whole split blocks.
#[cfg(target_arch = "x86_64")]
fn fits_split_blocks(group_size: usize) -> bool {
    group_size == 32 || group_size == 64 || group_size.is_multiple_of(SPLIT_BLOCK)
}

/// The whole groups inside the whole split blocks of a row: what the SIMD
/// kernels cover, for group sizes that tile the blocks or are multiples of
/// 64 (which whole 64-column halves of blocks tile).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
pub(crate) fn split_groups(cols: usize, group_size: usize) -> usize {
    cols / SPLIT_BLOCK * SPLIT_BLOCK / group_size
}

/// What a row kernel reads of the activations.
pub enum Activations<'a> {
    /// f32 rows, `[batch, cols]`, in natural and in split order.
    F32 {
        natural: &'a [f32],
        #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
        split: &'a [f32],
    },
    /// Rows quantized for int8 mode.
    Int8(&'a QuantizedActivations),
}

/// One weight row (its packed bytes and scales) against every activation
/// row of a tile, writing one output per activation row into `out`.
pub(crate) type RowKernel = unsafe fn(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
);

fn scalar_row(
    packed: &[u8],
    scales: &[f32],
    g: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    match acts {
        Activations::F32 { natural, .. } => {
            scalar::row_exact(packed, scales, g, natural, cols, out)
        }
        Activations::Int8(q) => scalar::row_int8(packed, scales, g, q, out),
    }
}

/// The row kernel of `kernel` for `precision` and `group_size`: its SIMD
/// version when the CPU runs it and it has a fast path for that group
/// size, else the scalar twin.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // fast paths by group size
pub(crate) fn row_kernel(kernel: Kernel, precision: Precision, group_size: usize) -> RowKernel {
    if !kernel.is_supported() {
        return scalar_row;
    }
    match (kernel, precision) {
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, Precision::Exact) if fits_split_blocks(group_size) => avx512::row_exact,
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, Precision::Int8) if avx512::int8_fits(group_size) => avx512::row_int8,
        // Group sizes (or CPUs without VNNI) the AVX-512 kernels have no
        // fast path for: the AVX2 kernels, on the same CPU.
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, _) if Kernel::Avx2.is_supported() => {
            row_kernel(Kernel::Avx2, precision, group_size)
        }
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, Precision::Exact) if group_size.is_multiple_of(8) => avx2::row_exact,
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, Precision::Int8) if avx2::int8_fits(group_size) => avx2::row_int8,
        _ => scalar_row,
    }
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
