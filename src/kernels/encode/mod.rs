//! The encoders beyond the format's default: the signed and search
//! encoders' references in [`scalar`], SIMD twins beside them that choose
//! bit-identical scales.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;

use std::borrow::Cow;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::entry::any_group_size;
use super::entry::Entry;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::pack::multiple_of;
use super::pack::scalar::pack_row_scaled;
use crate::element::Element;

/// Packs whole groups of f32 with the signed encoder:
/// `(src, group_size, packed, scales)`.
pub(crate) type SignedFn = unsafe fn(&[f32], usize, &mut [u8], &mut [f32]);
/// What [`scalar::fits`] gives: `(values, importance, scales)`.
pub(crate) type FitsFn = unsafe fn(&[f32], Option<&[f32]>, &[f32]) -> Vec<(f64, Option<f32>)>;

fn reference_signed(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    pack_row_scaled(src, group_size, packed, scales, |_, group| {
        scalar::signed_scale(group)
    });
}

pub(crate) static SCALAR_SIGNED: Entry<SignedFn> = Entry::reference(reference_signed);
pub(crate) static SCALAR_FITS: Entry<FitsFn> = Entry::reference(scalar::fits);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_SIGNED: Entry<SignedFn> =
    Entry::simd(multiple_of::<8>, avx2::pack_signed, &SCALAR_SIGNED);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_SIGNED: Entry<SignedFn> =
    Entry::simd(multiple_of::<16>, avx512::pack_signed, &AVX2_SIGNED);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_FITS: Entry<FitsFn> = Entry::simd(any_group_size, avx2::fits, &SCALAR_FITS);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_FITS: Entry<FitsFn> =
    Entry::simd(any_group_size, avx512::fits, &AVX2_FITS);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_SIGNED: Entry<SignedFn> =
    Entry::simd(multiple_of::<4>, neon::pack_signed, &SCALAR_SIGNED);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_FITS: Entry<FitsFn> = Entry::simd(any_group_size, neon::fits, &SCALAR_FITS);

/// Packs one row with the signed encoder: `whole_groups` (a kernel for
/// `g`, with [`SignedFn`]'s arguments) over the row's whole groups, as
/// f32, and the reference over its ragged last one.
pub(crate) fn pack_signed_row<T: Element>(
    src: &[T],
    g: usize,
    packed: &mut [u8],
    scales: &mut [f32],
    whole_groups: impl Fn(&[f32], usize, &mut [u8], &mut [f32]),
) {
    let row: Cow<[f32]> = T::as_f32(src).map_or_else(
        || Cow::Owned(src.iter().map(|w| w.to_f32()).collect()),
        Cow::Borrowed,
    );
    let whole = src.len() / g;
    let (head, tail) = row.split_at(whole * g);
    let (packed_head, packed_tail) = packed.split_at_mut(whole * g.div_ceil(2));
    let (scales_head, scales_tail) = scales.split_at_mut(whole);
    whole_groups(head, g, packed_head, scales_head);
    reference_signed(tail, g, packed_tail, scales_tail);
}

/// Packs one row with the search encoder, each group's candidates
/// evaluated by `fits` (with [`FitsFn`]'s arguments).
pub(crate) fn pack_search_row<T: Element>(
    importance: Option<&[f32]>,
    src: &[T],
    g: usize,
    packed: &mut [u8],
    scales: &mut [f32],
    fits: impl Fn(&[f32], Option<&[f32]>, &[f32]) -> Vec<(f64, Option<f32>)>,
) {
    pack_row_scaled(src, g, packed, scales, |k, group| {
        let weights = importance.map(|c| &c[k * g..k * g + group.len()]);
        scalar::search_scale_with(group, weights, &fits)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Kernel;
    use proptest::prelude::*;

    /// Every value of `fit` counts, not only the scale the search keeps: a
    /// twin that sums in another order must fail here even where the
    /// choice would not change.
    fn check_fits(values: &[f32], importance: Option<&[f32]>, scales: &[f32]) {
        let bits = |fits: Vec<(f64, Option<f32>)>| -> Vec<(u64, Option<u32>)> {
            let bits = fits
                .into_iter()
                .map(|(e, s)| (e.to_bits(), s.map(f32::to_bits)));
            bits.collect()
        };
        let reference = bits(scalar::fits(values, importance, scales));
        for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let fits = kernel.table().search_fits.pick(values.len());
            // SAFETY: the kernel's table is this CPU's.
            let fast = bits(unsafe { fits(values, importance, scales) });
            assert_eq!(fast, reference, "{kernel:?}");
        }
    }

    proptest! {
        #[test]
        fn fits_match_the_reference_bit_for_bit(
            values in proptest::collection::vec(-4.0f32..4.0, 1..70),
            importance in proptest::collection::vec(0.0f32..1000.0, 70),
            scales in proptest::collection::vec(
                prop_oneof![-1.0f32..1.0, Just(0.0), Just(1e-30), Just(f32::MAX)],
                1..40,
            ),
            weighted in any::<bool>(),
        ) {
            let importance = weighted.then(|| &importance[..values.len()]);
            check_fits(&values, importance, &scales);
        }
    }
}
