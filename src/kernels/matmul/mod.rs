//! Fused products `Y = X W^T` with packed weights: scalar twins in
//! [`scalar`] define both precisions; SIMD kernels sit beside them.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;

pub(crate) use super::activations::split_pairs;
pub(crate) use super::activations::QuantizedActivations;
use super::activations::SPLIT_BLOCK;
use super::entry::Entry;
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
    /// `max |x| / 127`), integer dot products per group, f32 across groups:
    /// each group adds `s * dot`, `s = w_scale * x_scale` held to
    /// `[-f32::MAX, f32::MAX]` and `dot` the exact integer
    /// `sum((u - 8) * q)` (or its parts over 8 columns), so a group whose
    /// dot is 0 adds 0 however large its scales, and no step overflows
    /// unless such a term or a sum of them does. A group holding NaN or an infinity makes every
    /// output of its activation row NaN.
    Int8,
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
pub(crate) fn prefetch_ahead<T>(p: *const T) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
    // SAFETY: a prefetch is a hint: it never faults and reads nothing the
    // program sees, whatever the address (hence `wrapping_add`).
    unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>().wrapping_add(PREFETCH_DISTANCE)) }
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
        #[cfg_attr(
            not(any(target_arch = "x86_64", target_arch = "aarch64")),
            allow(dead_code)
        )] // read through `exact` (the x86-64 kernels use it)
        split: &'a [f32],
    },
    /// Rows quantized for int8 mode.
    Int8(&'a QuantizedActivations),
}

impl<'a> Activations<'a> {
    /// The f32 rows, natural and split, for an exact kernel.
    ///
    /// # Panics
    /// On quantized rows: the kernel was picked for the other precision, a
    /// broken invariant that must not pass for a result.
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )] // read by the SIMD kernels
    pub(crate) fn exact(&self) -> (&'a [f32], &'a [f32]) {
        match *self {
            Activations::F32 { natural, split } => (natural, split),
            Activations::Int8(_) => panic!("an exact product kernel was given int8 activations"),
        }
    }

    /// The quantized rows, for an int8 kernel.
    ///
    /// # Panics
    /// On f32 rows: the kernel was picked for the other precision.
    pub(crate) fn int8(&self) -> &'a QuantizedActivations {
        match *self {
            Activations::Int8(q) => q,
            Activations::F32 { .. } => panic!("an int8 product kernel was given f32 activations"),
        }
    }
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
    /// The kernel came from the table of a kernel family this CPU runs,
    /// for `w`'s group size and the precision of `acts`; `out` holds
    /// `w.len() * batch` values.
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

fn scalar_row_exact(
    packed: &[u8],
    scales: &[f32],
    g: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let (natural, _) = acts.exact();
    scalar::row_exact(packed, scales, g, natural, cols, out)
}

fn scalar_row_int8(
    packed: &[u8],
    scales: &[f32],
    g: usize,
    _cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    scalar::row_int8(packed, scales, g, acts.int8(), out)
}

pub(crate) static SCALAR_EXACT: Entry<RowKernel> =
    Entry::reference(RowKernel::OneRow(scalar_row_exact));
pub(crate) static SCALAR_INT8: Entry<RowKernel> =
    Entry::reference(RowKernel::OneRow(scalar_row_int8));
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

#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_EXACT: Entry<RowKernel> = Entry::simd(
    neon::exact_fits,
    RowKernel::OneRow(neon::row_exact),
    &SCALAR_EXACT,
);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_INT8: Entry<RowKernel> = Entry::simd(
    neon::int8_fits,
    RowKernel::OneRow(neon::row_int8),
    &SCALAR_INT8,
);
/// Needs FEAT_DotProd besides NEON (the `NeonDotprod` family's).
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_DOTPROD_INT8: Entry<RowKernel> = Entry::simd(
    neon::int8_fits,
    RowKernel::OneRow(neon::row_int8_dotprod),
    &SCALAR_INT8,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{product_kernel, quantize_activations, Kernel};

    /// A kernel handed activations of the other precision panics (which
    /// the C layer reports as `CQ4_ERR_INTERNAL`) instead of leaving
    /// plausible numbers in its output.
    #[test]
    fn precision_mismatch_panics_in_every_kernel() {
        let (cols, g) = (256, 32);
        let layout = Layout::new(1, cols, g).unwrap();
        let packed = vec![0x5Au8; layout.packed_len];
        let scales = vec![0.25f32; layout.scales_len];
        let rows = WeightRows {
            packed: &packed,
            scales: &scales,
            layout: &layout,
        };
        let x = vec![1f32; cols];
        let split = split_pairs(&x, cols);
        let f32_rows = Activations::F32 {
            natural: &x,
            split: &split,
        };
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let quantized = quantize_activations(kernel, &x, 1, cols, g);
            let int8_rows = Activations::Int8(&quantized);
            for (precision, wrong) in [(Precision::Exact, &int8_rows), (Precision::Int8, &f32_rows)]
            {
                let row_kernel = product_kernel(kernel, precision, g);
                let mut out = [0f32; 1];
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // SAFETY: the kernel came from this CPU's table for g;
                    // the activations are the wrong precision on purpose,
                    // which the kernel must refuse before reading them.
                    unsafe { row_kernel.run(&rows, wrong, &mut out) }
                }));
                assert!(
                    outcome.is_err(),
                    "{kernel:?} {precision:?} returned {out:?}"
                );
            }
        }
    }
}
