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
    /// The same rows with each whole block of 32 values as its 16
    /// even-indexed values then its 16 odd ones: the order of a packed
    /// block's low and high nibbles, for the SIMD kernels.
    split: Vec<i8>,
    scales: Vec<f32>,
    /// `8 * scale * sum(q)` per group: the part of `sum((u - 8) * q)` that
    /// does not depend on the weights, scaled.
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
                        *qv = (v / scale).round().clamp(-127.0, 127.0) as i8;
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
    pub(crate) fn split_row(&self, b: usize) -> &[i8] {
        &self.split[b * self.cols..(b + 1) * self.cols]
    }

    /// The scales of row `b`.
    pub(crate) fn scales_row(&self, b: usize) -> &[f32] {
        &self.scales[b * self.groups..(b + 1) * self.groups]
    }

    /// The offsets of row `b`.
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

/// `x` (rows of `cols`) with each whole block of 32 values reordered as its
/// even-indexed values then its odd ones; a ragged tail keeps its order.
fn split_pairs<T: Copy>(x: &[T], cols: usize) -> Vec<T> {
    let mut split = x.to_vec();
    for (row, out) in x.chunks_exact(cols).zip(split.chunks_exact_mut(cols)) {
        for (block, out) in row.chunks_exact(32).zip(out.chunks_exact_mut(32)) {
            for i in 0..16 {
                out[i] = block[2 * i];
                out[16 + i] = block[2 * i + 1];
            }
        }
    }
    split
}

/// What a row kernel reads of the activations.
pub enum Activations<'a> {
    /// f32 rows, `[batch, cols]`.
    F32(&'a [f32]),
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
        Activations::F32(x) => scalar::row_exact(packed, scales, g, x, cols, out),
        Activations::Int8(q) => scalar::row_int8(packed, scales, g, q, out),
    }
}

/// The row kernel of `kernel` for `precision` and `group_size`: its SIMD
/// version when the CPU runs it and it has a fast path for that group
/// size, else the scalar twin.
pub(crate) fn row_kernel(kernel: Kernel, precision: Precision, group_size: usize) -> RowKernel {
    if !kernel.is_supported() {
        return scalar_row;
    }
    match (kernel, precision) {
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, Precision::Exact) if group_size.is_multiple_of(16) => avx512::row_exact,
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, Precision::Int8) if avx512::int8_fits(group_size) => avx512::row_int8,
        // AVX-512 without VNNI: the AVX2 int8 kernel, on the same CPU.
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, Precision::Int8)
            if avx2::int8_fits(group_size) && Kernel::Avx2.is_supported() =>
        {
            avx2::row_int8
        }
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, Precision::Exact) if group_size.is_multiple_of(8) => avx2::row_exact,
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, Precision::Int8) if avx2::int8_fits(group_size) => avx2::row_int8,
        _ => scalar_row,
    }
}
