//! The int8 quantization of a product's activations (per group, scale
//! `max |x| / 127`), and the split order the SIMD product kernels read
//! activations in: the reference in [`scalar`], twins beside it.

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::entry::any_group_size;
use super::entry::Entry;

/// Activation rows quantized for int8 products, in natural order.
pub struct QuantizedActivations {
    q: Vec<i8>,
    /// The same rows in the split order of [`split_pairs`], for the SIMD
    /// kernels.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    split: Vec<i8>,
    scales: Vec<f32>,
    /// `-8 * sum(q)` over each 8 columns of the whole split blocks of a
    /// row ([`CORRECTION_SPAN`]), in natural order: what turns the SIMD
    /// kernels' integer `sum(u * q)` over those columns (`u` the nibble,
    /// 0..=15) into the exact `sum((u - 8) * q)`, before anything is
    /// scaled, so that no float ever holds the two parts apart.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    corrections: Vec<i32>,
    cols: usize,
    group_size: usize,
    groups: usize,
}

impl QuantizedActivations {
    /// Quantizes `batch` rows of `cols` values: per group of `group_size`,
    /// `scale = max |x| / 127` and `q = round(x / scale)` (0 where the
    /// scale is 0; a group holding NaN or an infinity gets scale NaN and
    /// every `q` 0), with the reference,
    /// [`scalar::quantize_activations`].
    fn reference(x: &[f32], batch: usize, cols: usize, group_size: usize) -> Self {
        Self::build(x, batch, cols, group_size, scalar::quantize_activations)
    }

    /// [`Self::reference`] with the AVX-512 twin, inlined (with the split copy)
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

    /// [`Self::reference`] with the NEON twin, inlined (with the split
    /// copy) into code compiled for NEON.
    ///
    /// # Safety
    /// The CPU supports NEON.
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    unsafe fn new_neon(x: &[f32], batch: usize, cols: usize, group_size: usize) -> Self {
        Self::build(x, batch, cols, group_size, |group, q| {
            // SAFETY: this function's target features; `q` is as long as
            // `group`.
            unsafe { neon::quantize_activations(group, q) }
        })
    }

    /// Quantizes each group with `quantize_group` (the reference or a
    /// twin: it fills `q` and returns the scale).
    #[inline(always)]
    fn build(
        x: &[f32],
        batch: usize,
        cols: usize,
        group_size: usize,
        quantize_group: impl Fn(&[f32], &mut [i8]) -> f32,
    ) -> Self {
        let groups = cols.div_ceil(group_size);
        let mut q = vec![0i8; batch * cols];
        let mut scales = vec![0f32; batch * groups];
        for b in 0..batch {
            let row = &x[b * cols..(b + 1) * cols];
            let q_row = &mut q[b * cols..(b + 1) * cols];
            let groups_of = row.chunks(group_size).zip(q_row.chunks_mut(group_size));
            for (k, (group, q_group)) in groups_of.enumerate() {
                scales[b * groups + k] = quantize_group(group, q_group);
            }
        }
        let split = split_pairs(&q, cols);
        QuantizedActivations {
            corrections: corrections(&q, cols),
            q,
            split,
            scales,
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
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )] // read by the SIMD kernels
    pub(crate) fn scales_row(&self, b: usize) -> &[f32] {
        &self.scales[b * self.groups..(b + 1) * self.groups]
    }

    /// The corrections of row `b`: one per [`CORRECTION_SPAN`] columns of
    /// its whole split blocks.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn corrections_row(&self, b: usize) -> &[i32] {
        let per_row = self.cols / SPLIT_BLOCK * SPLIT_BLOCK / CORRECTION_SPAN;
        &self.corrections[b * per_row..(b + 1) * per_row]
    }

    /// Row `b`, in natural order.
    pub(crate) fn row(&self, b: usize) -> &[i8] {
        &self.q[b * self.cols..(b + 1) * self.cols]
    }

    /// The quantized values of group `k` of row `b`.
    pub fn group(&self, b: usize, k: usize) -> &[i8] {
        let start = k * self.group_size;
        &self.row(b)[start..self.cols.min(start + self.group_size)]
    }

    /// The scale of group `k` of row `b`.
    pub fn scale(&self, b: usize, k: usize) -> f32 {
        self.scales[b * self.groups + k]
    }
}

/// Columns per block of the split order.
pub(crate) const SPLIT_BLOCK: usize = 128;

/// Consecutive columns whose products one 32-bit lane of the SIMD int8
/// kernels sums: four even and four odd ones of the split order.
pub(crate) const CORRECTION_SPAN: usize = 8;

/// `-8 * sum(q)` over each [`CORRECTION_SPAN`] columns of the whole split
/// blocks of each row of `q` (rows of `cols`). Exact: at most
/// `8 * 8 * 127` in magnitude.
fn corrections(q: &[i8], cols: usize) -> Vec<i32> {
    let whole = cols / SPLIT_BLOCK * SPLIT_BLOCK;
    q.chunks_exact(cols)
        .flat_map(|row| row[..whole].chunks_exact(CORRECTION_SPAN))
        .map(|span| -8 * span.iter().map(|&v| v as i32).sum::<i32>())
        .collect()
}

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

/// Quantizes the activations of a product: `(x, batch, cols, group_size)`
/// as for [`QuantizedActivations::new`].
pub(crate) type ActivationsFn = unsafe fn(&[f32], usize, usize, usize) -> QuantizedActivations;

pub(crate) static SCALAR_ACTIVATIONS: Entry<ActivationsFn> =
    Entry::reference(QuantizedActivations::reference);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_ACTIVATIONS: Entry<ActivationsFn> = Entry::simd(
    any_group_size,
    QuantizedActivations::new_avx512,
    &SCALAR_ACTIVATIONS,
);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_ACTIVATIONS: Entry<ActivationsFn> = Entry::simd(
    any_group_size,
    QuantizedActivations::new_neon,
    &SCALAR_ACTIVATIONS,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Kernel;
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

    /// Everything `new` builds, floats as bits.
    fn parts(q: &QuantizedActivations) -> (Vec<i8>, Vec<i8>, Vec<u32>, Vec<i32>) {
        (
            q.q.clone(),
            q.split.clone(),
            q.scales.iter().map(|f| f.to_bits()).collect(),
            q.corrections.clone(),
        )
    }

    fn check(x: &[f32], batch: usize, cols: usize, group_size: usize) {
        let reference =
            QuantizedActivations::build(x, batch, cols, group_size, scalar::quantize_activations);
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let fast = crate::kernels::quantize_activations(kernel, x, batch, cols, group_size);
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
