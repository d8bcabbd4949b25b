//! The encoders beyond the format's default: the signed and search
//! encoders' references in [`scalar`], SIMD twins beside them that choose
//! bit-identical scales.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod scalar;

use std::borrow::Cow;

#[cfg(target_arch = "x86_64")]
use super::entry::any_group_size;
use super::entry::Entry;
#[cfg(target_arch = "x86_64")]
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
