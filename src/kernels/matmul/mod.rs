//! Fused products `Y = X W^T` with packed weights: scalar twins in
//! [`scalar`] define both precisions; SIMD kernels sit beside them.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod scalar;

use super::table::Entry;
use super::Kernel;
use crate::layout::Layout;

/// Activation rows handled by one pass over the weights.
pub const BATCH_TILE: usize = 64;

/// How a fused product computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// (0 where the scale is 0), as [`scalar::quantize_activations`] does,
    /// with `kernel`'s twin of it.
    pub fn new(kernel: Kernel, x: &[f32], batch: usize, cols: usize, group_size: usize) -> Self {
        let quantize = kernel.table().activations.pick(group_size);
        // SAFETY: the table only holds kernels this CPU runs.
        unsafe { quantize(x, batch, cols, group_size) }
    }

    /// [`Self::new`] with the reference.
    fn reference(x: &[f32], batch: usize, cols: usize, group_size: usize) -> Self {
        Self::build(x, batch, cols, group_size, scalar::quantize_activations)
    }

    /// [`Self::new`] with the AVX-512 twin, inlined (with the split copy)
    /// into code compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F/BW/VL.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn new_avx512(x: &[f32], batch: usize, cols: usize, group_size: usize) -> Self {
        Self::build(x, batch, cols, group_size, |group, q| {
            // SAFETY: this function's target features; `q` is as long as
            // `group`.
            unsafe { avx512::quantize_activations(group, q) }
        })
    }

    /// Quantizes each group with `quantize_group` (the reference or a
    /// twin: it fills `q` and returns the scale and `sum(q)`).
    #[inline(always)]
    fn build(
        x: &[f32],
        batch: usize,
        cols: usize,
        group_size: usize,
        quantize_group: impl Fn(&[f32], &mut [i8]) -> (f32, i32),
    ) -> Self {
        let groups = cols.div_ceil(group_size);
        let mut q = vec![0i8; batch * cols];
        let mut scales = vec![0f32; batch * groups];
        let mut offsets = vec![0f32; batch * groups];
        for b in 0..batch {
            let row = &x[b * cols..(b + 1) * cols];
            let q_row = &mut q[b * cols..(b + 1) * cols];
            let groups_of = row.chunks(group_size).zip(q_row.chunks_mut(group_size));
            for (k, (group, q_group)) in groups_of.enumerate() {
                let (scale, sum) = quantize_group(group, q_group);
                scales[b * groups + k] = scale;
                offsets[b * groups + k] = 8.0 * scale * sum as f32;
            }
        }
        let split = split_pairs(&q, cols);
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

/// How far ahead of its reads a kernel asks for weight bytes (into L2).
/// The hardware prefetchers alone leave a compute-heavy loop waiting on
/// memory; 8-64 KiB ahead measured alike, 16 KiB sits in the middle.
#[cfg(target_arch = "x86_64")]
const PREFETCH_DISTANCE: usize = 16 * 1024;

/// Asks for the cache line `PREFETCH_DISTANCE` bytes after `p` to be
/// brought into L2. The rows of a matrix are contiguous, so past the end
/// of a row these are the next rows' bytes; past the matrix the hint is
/// only wasted.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_ahead<T>(p: *const T) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
    // SAFETY: a prefetch is a hint: it never faults and reads nothing the
    // program sees, whatever the address (hence `wrapping_add`).
    unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>().wrapping_add(PREFETCH_DISTANCE)) }
}

/// Columns per block of the split order.
pub(crate) const SPLIT_BLOCK: usize = 128;

/// `x` (rows of `cols`) in the split order: each whole block of 128 values
/// becomes the even-indexed values of its four 32-value quarters, then
/// their odd-indexed values. A 64-byte load of packed weights splits into
/// low nibbles (even columns) and high nibbles (odd columns) in the same
/// order. Values after the last whole block keep their order.
#[inline]
pub(crate) fn split_pairs<T: Copy>(x: &[T], cols: usize) -> Vec<T> {
    let mut split = x.to_vec();
    for (row, out) in x.chunks_exact(cols).zip(split.chunks_exact_mut(cols)) {
        let blocks = row.chunks_exact(SPLIT_BLOCK);
        for (block, out) in blocks.zip(out.chunks_exact_mut(SPLIT_BLOCK)) {
            let (even, odd) = out.split_at_mut(SPLIT_BLOCK / 2);
            for ((e, o), pair) in even.iter_mut().zip(odd).zip(block.chunks_exact(2)) {
                *e = pair[0];
                *o = pair[1];
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

/// Consecutive whole rows of a packed matrix, as the kernels read them.
pub(crate) struct WeightRows<'a> {
    /// The rows' packed bytes.
    pub(crate) packed: &'a [u8],
    /// The rows' scales.
    pub(crate) scales: &'a [f32],
    /// The matrix's layout: strides, group size, columns.
    pub(crate) layout: &'a Layout,
}

impl<'a> WeightRows<'a> {
    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        self.scales.len() / self.layout.groups_per_row
    }

    /// Each row's packed bytes and scales with its share of `out` (the
    /// outputs of every activation row, weight row by weight row).
    pub(crate) fn with_outputs<'o>(
        &self,
        out: &'o mut [f32],
    ) -> impl Iterator<Item = (&'a [u8], &'a [f32], &'o mut [f32])> {
        let l = self.layout;
        let batch = out.len() / self.len();
        let rows = self.packed.chunks_exact(l.packed_row_bytes);
        rows.zip(self.scales.chunks_exact(l.groups_per_row))
            .zip(out.chunks_exact_mut(batch))
            .map(|((packed, scales), out)| (packed, scales, out))
    }
}

/// One weight row (its packed bytes and scales) against every activation
/// row of a tile, writing one output per activation row into `out`.
type OneRow = unsafe fn(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
);

/// Consecutive weight rows (at least one, `cols > 0`) against every
/// activation row of a tile, writing `out[i * batch + b]` for weight row
/// `i` and activation row `b`.
type RowsAtOnce = unsafe fn(w: &WeightRows, acts: &Activations, out: &mut [f32]);

/// A product kernel: one row at a time, or rows at once (sharing the work
/// that does not depend on the weight row).
#[derive(Clone, Copy)]
pub(crate) enum RowKernel {
    OneRow(OneRow),
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // made for the x86-64 kernels
    RowsAtOnce(RowsAtOnce),
}

impl RowKernel {
    /// Runs the kernel over `w`: see [`RowsAtOnce`].
    ///
    /// # Safety
    /// The kernel came from [`row_kernel`] for `w`'s group size and the
    /// precision of `acts`; `out` holds `w.len() * batch` values.
    pub(crate) unsafe fn run(self, w: &WeightRows, acts: &Activations, out: &mut [f32]) {
        match self {
            RowKernel::OneRow(one_row) => {
                let l = w.layout;
                for (packed, scales, out) in w.with_outputs(out) {
                    // SAFETY: the caller's promise.
                    unsafe { one_row(packed, scales, l.group_size, l.cols, acts, out) };
                }
            }
            // SAFETY: the caller's promise.
            RowKernel::RowsAtOnce(rows) => unsafe { rows(w, acts, out) },
        }
    }
}

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

/// Quantizes the activations of a product: `(x, batch, cols, group_size)`
/// as for [`QuantizedActivations::new`].
pub(crate) type ActivationsFn = unsafe fn(&[f32], usize, usize, usize) -> QuantizedActivations;

pub(crate) static SCALAR_EXACT: Entry<RowKernel> = Entry::reference(RowKernel::OneRow(scalar_row));
pub(crate) static SCALAR_INT8: Entry<RowKernel> = Entry::reference(RowKernel::OneRow(scalar_row));
pub(crate) static SCALAR_ACTIVATIONS: Entry<ActivationsFn> =
    Entry::reference(QuantizedActivations::reference);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_EXACT: Entry<RowKernel> = Entry::simd(
    avx2::exact_fits,
    RowKernel::OneRow(avx2::row_exact),
    &SCALAR_EXACT,
);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_INT8: Entry<RowKernel> = Entry::simd(
    avx2::int8_fits,
    RowKernel::OneRow(avx2::row_int8),
    &SCALAR_INT8,
);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_EXACT: Entry<RowKernel> = Entry::simd(
    fits_split_blocks,
    RowKernel::OneRow(avx512::row_exact),
    &AVX2_EXACT,
);
/// Needs VNNI besides the family's features (the table checks).
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_INT8: Entry<RowKernel> = Entry::simd(
    fits_split_blocks,
    RowKernel::RowsAtOnce(avx512::rows_int8),
    &AVX2_INT8,
);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_ACTIVATIONS: Entry<ActivationsFn> = Entry::simd(
    super::table::any_group_size,
    QuantizedActivations::new_avx512,
    &SCALAR_ACTIVATIONS,
);

/// The row kernel of `kernel`'s table for `precision` and `group_size`.
pub(crate) fn row_kernel(kernel: Kernel, precision: Precision, group_size: usize) -> RowKernel {
    let table = kernel.table();
    match precision {
        Precision::Exact => table.product_exact.pick(group_size),
        Precision::Int8 => table.product_int8.pick(group_size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values around a group whose scale is `2^e`: ties `(k + 0.5) * 2^e`,
    /// their neighbours, and the special values.
    fn activation(e: i32) -> impl Strategy<Value = f32> {
        let unit = 2f32.powi(e);
        prop_oneof![
            4 => (-128i32..128).prop_map(move |k| (k as f32 + 0.5) * unit),
            2 => (-128i32..128, any::<bool>()).prop_map(move |(k, up)| {
                let bits = ((k as f32 + 0.5) * unit).to_bits();
                f32::from_bits(if up { bits.wrapping_add(1) } else { bits.wrapping_sub(1) })
            }),
            1 => Just(-0.0f32),
            1 => Just(f32::NAN),
            1 => Just(f32::INFINITY),
            1 => Just(f32::NEG_INFINITY),
            1 => Just(1e-41f32),
            1 => any::<u32>().prop_map(f32::from_bits),
            4 => (-1.0f32..1.0).prop_map(move |v| v * 127.0 * unit),
        ]
    }

    /// Groups led by `±127 * 2^e`, so that most of them have scale `2^e`.
    fn group() -> impl Strategy<Value = Vec<f32>> {
        (
            prop_oneof![
                prop::sample::select(vec![16usize, 32, 48, 64, 128, 256]),
                1usize..300
            ],
            prop_oneof![3 => -20i32..20, 1 => -149i32..-120],
            any::<bool>(),
        )
            .prop_flat_map(|(len, e, negative)| {
                let lead = if negative { -127.0 } else { 127.0 } * 2f32.powi(e);
                proptest::collection::vec(activation(e), len).prop_map(move |mut v| {
                    v[0] = lead;
                    v
                })
            })
    }

    /// Everything `new` builds, floats as bits (an infinite scale gives a
    /// NaN offset).
    fn parts(q: &QuantizedActivations) -> (Vec<i8>, Vec<i8>, Vec<u32>, Vec<u32>) {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect();
        (
            q.q.clone(),
            q.split.clone(),
            bits(&q.scales),
            bits(&q.offsets),
        )
    }

    fn check(x: &[f32], batch: usize, cols: usize, group_size: usize) {
        let reference =
            QuantizedActivations::build(x, batch, cols, group_size, scalar::quantize_activations);
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let fast = QuantizedActivations::new(kernel, x, batch, cols, group_size);
            assert_eq!(
                parts(&fast),
                parts(&reference),
                "{kernel:?}, g = {group_size}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn activations_match_reference(
            rows in proptest::collection::vec(group(), 1..4),
            group_size in prop_oneof![prop::sample::select(vec![16usize, 32, 64, 128]), 1usize..300],
        ) {
            // Rows cut to one length, so that some groups are ragged.
            let cols = rows.iter().map(Vec::len).min().unwrap();
            let x: Vec<f32> = rows.iter().flat_map(|r| r[..cols].iter().copied()).collect();
            check(&x, rows.len(), cols, group_size);
        }
    }

    #[test]
    fn activations_match_reference_on_whole_special_rows() {
        let specials = [
            0.0f32,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            1e-45,
            1e-41,
            f32::MAX,
        ];
        for (v, cols) in specials.into_iter().zip([32, 7, 33, 16, 1, 300, 31]) {
            for group_size in [16, 32, 5] {
                check(&vec![v; cols], 1, cols, group_size);
            }
        }
    }
}
