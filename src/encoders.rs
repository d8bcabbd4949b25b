//! Encoders: ways to choose each group's scale. All write the same layout,
//! quantize elements with the same rule, `clamp(round(w / scale), -8, 7)`
//! ([`crate::scalar::quantize`]), and are read by the same decoder. The
//! default, [`Encoder::AbsMax`], is the format's definition; the others are
//! defined by the references re-exported here ([`signed_scale`],
//! [`search_scale`], [`weighted_error`]), with SIMD twins in the kernels.

pub use crate::kernels::encode::scalar::{search_scale, signed_scale, weighted_error};

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
        match *self {
            Encoder::AbsMax => kernels::pack(layout, kernel, threads, src, packed, scales),
            Encoder::Signed => kernels::pack_signed(layout, kernel, threads, src, packed, scales),
            Encoder::Search { importance } => {
                kernels::pack_search(layout, kernel, threads, importance, src, packed, scales)
            }
        }
    }
}
