//! Encoders: ways to choose each group's scale. All write the same layout,
//! quantize elements with the same rule, `clamp(round(w / scale), -8, 7)`
//! ([`crate::scalar::quantize`]), and are read by the same decoder. The
//! default, [`Encoder::AbsMax`], is the format's definition; the others are
//! defined by the references in [`scalar`], with SIMD twins beside them.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod scalar;

pub use scalar::{search_scale, signed_scale, weighted_error};

#[cfg(target_arch = "x86_64")]
use std::borrow::Cow;

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels::{self, Kernel};
use crate::layout::Layout;

/// How pack chooses each group's scale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Encoder<'a> {
    /// The format's definition: `max(max |w| / 7, 1e-5)`. Never uses the -8
    /// level.
    #[default]
    AbsMax,
    /// `m / -8`, `m` the first element of largest magnitude with its sign
    /// ([`signed_scale`]), so that `m` lands on -8.
    Signed,
    /// Per group, the scale with the least (importance-weighted) squared
    /// error among a fixed candidate set ([`search_scale`]).
    Search {
        /// Per-column weights (`cols` of them, finite and >= 0), for
        /// instance mean squared activations; `None` weighs all columns 1.
        importance: Option<&'a [f32]>,
    },
}

impl Encoder<'_> {
    /// Refuses an importance vector shorter than `cols` or holding a value
    /// that is negative or not finite.
    pub(crate) fn check(&self, cols: usize) -> Result<(), Error> {
        if let Encoder::Search {
            importance: Some(importance),
        } = self
        {
            Layout::check_input(Buffer::Importance, cols, importance.len())?;
            if let Some(index) = importance[..cols]
                .iter()
                .position(|c| !(c.is_finite() && *c >= 0.0))
            {
                return Err(Error::BadImportance { index });
            }
        }
        Ok(())
    }

    /// Packs one row with `kernel`'s twin of this encoder where it has one,
    /// else the reference.
    fn pack_row<T: Element>(
        &self,
        kernel: Kernel,
        src: &[T],
        g: usize,
        packed: &mut [u8],
        scales: &mut [f32],
    ) {
        use kernels::scalar::{pack_row, pack_row_scaled};
        match *self {
            Encoder::AbsMax => pack_row(src, g, packed, scales),
            #[cfg(target_arch = "x86_64")]
            Encoder::Signed
                if kernel == Kernel::Avx512 && kernel.is_supported() && g.is_multiple_of(16) =>
            {
                // SAFETY: the CPU runs AVX-512 and g % 16 == 0 (checked).
                pack_signed_simd(src, g, packed, scales, |s, g, p, sc| unsafe {
                    avx512::pack_signed(s, g, p, sc)
                })
            }
            #[cfg(target_arch = "x86_64")]
            Encoder::Signed
                if kernel == Kernel::Avx2 && kernel.is_supported() && g.is_multiple_of(8) =>
            {
                // SAFETY: the CPU runs AVX2 and FMA and g % 8 == 0 (checked).
                pack_signed_simd(src, g, packed, scales, |s, g, p, sc| unsafe {
                    avx2::pack_signed(s, g, p, sc)
                })
            }
            Encoder::Signed => {
                pack_row_scaled(src, g, packed, scales, |_, group| signed_scale(group))
            }
            Encoder::Search { importance } => {
                pack_row_scaled(src, g, packed, scales, |k, group| {
                    let weights = importance.map(|c| &c[k * g..k * g + group.len()]);
                    match kernel {
                        #[cfg(target_arch = "x86_64")]
                        Kernel::Avx512 if kernel.is_supported() => {
                            // SAFETY: the CPU runs AVX-512 (checked just above).
                            scalar::search_scale_with(group, weights, |v, c, s| unsafe {
                                avx512::fits(v, c, s)
                            })
                        }
                        #[cfg(target_arch = "x86_64")]
                        Kernel::Avx2 if kernel.is_supported() => {
                            // SAFETY: the CPU runs AVX2 and FMA (checked just above).
                            scalar::search_scale_with(group, weights, |v, c, s| unsafe {
                                avx2::fits(v, c, s)
                            })
                        }
                        _ => search_scale(group, weights),
                    }
                })
            }
        }
    }

    /// Packs all rows on up to `threads` threads; the slices are exactly
    /// the layout's lengths, and `check` has passed.
    pub(crate) fn pack<T: Element>(
        &self,
        layout: &Layout,
        kernel: Kernel,
        threads: usize,
        src: &[T],
        packed: &mut [u8],
        scales: &mut [f32],
    ) {
        if let Encoder::AbsMax = self {
            // The format's own kernels.
            return kernels::pack(layout, kernel, threads, src, packed, scales);
        }
        kernels::pack_rows(
            layout,
            threads,
            src,
            packed,
            scales,
            |src, packed, scales| self.pack_row(kernel, src, layout.group_size, packed, scales),
        );
    }
}

/// The signed encoder on one row: `whole_groups` (a SIMD twin) over the
/// row's whole groups, as f32, and the reference over its ragged last one.
#[cfg(target_arch = "x86_64")]
fn pack_signed_simd<T: Element>(
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
    let (packed_head, packed_tail) = packed.split_at_mut(whole * g / 2);
    let (scales_head, scales_tail) = scales.split_at_mut(whole);
    whole_groups(head, g, packed_head, scales_head);
    kernels::scalar::pack_row_scaled(tail, g, packed_tail, scales_tail, |_, group| {
        signed_scale(group)
    });
}
