//! Encoders: ways to choose each group's scale. All write the same layout,
//! quantize elements with the same rule, `clamp(round(w / scale), -8, 7)`
//! ([`crate::scalar::quantize`]), and are read by the same decoder. The
//! default, [`Encoder::AbsMax`], is the format's definition; the signed and
//! search encoders are defined by the references re-exported here
//! ([`signed_scale`], [`search_scale`], [`weighted_error`]), with SIMD twins
//! in the kernels. The error-compensating encoder also chooses the levels
//! themselves (still on the format's grid), from a calibration Hessian.

pub use crate::kernels::encode::scalar::{search_scale, signed_scale, weighted_error};

use crate::compensating;
pub use crate::compensating::SYMMETRY_TOLERANCE;
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
    /// GPTQ (Frantar et al. 2022, arXiv:2210.17323) on this format's grid:
    /// quantizes each row column by column and pushes each column's
    /// rounding error onto the columns not yet quantized, through the
    /// inverse of the calibration Hessian `H = Xᵀ X`, so that the layer's
    /// output error `‖X ΔWᵀ‖` on activations like the calibration ones is
    /// small rather than each weight's. Each group's scale is the search
    /// encoder's choice ([`search_scale`]) on the error-updated weights
    /// when the group is entered, weighted by what an error in each column
    /// costs. Columns are quantized group by group (groups in decreasing
    /// order of their Hessian diagonal, columns likewise within each); the
    /// output has the same layout and decoder as every encoder's. Details
    /// and the definition: [`compensating`].
    ///
    /// Slower than the others: one Cholesky factorization of `H` and one
    /// triangular inverse per call (about `2 cols³ / 3` flops, in f64, on
    /// the calling thread)
    /// and `rows * cols² / 2` multiply-adds (f32) shared out over the
    /// threads; 16 `cols²` bytes of memory during the factorization, 4
    /// `cols²` after it.
    ErrorCompensating {
        /// `H`, `[cols, cols]` row-major (at least `cols * cols` values),
        /// for instance [`Hessian::matrix`](crate::Hessian::matrix): finite,
        /// diagonal >= 0, and symmetric to within [`SYMMETRY_TOLERANCE`]
        /// times `sqrt(H[i][i] H[j][j])`. Its scale does not matter.
        hessian: &'a [f64],
        /// Added to `H`'s diagonal, as a fraction of the diagonal's mean;
        /// finite and >= 0. [`Encoder::DEFAULT_DAMPING`] unless you have
        /// measured better. With 0, a dead input (`H[i][i] = 0`) makes
        /// the call fail.
        damping: f64,
    },
}

impl<'a> Encoder<'a> {
    /// The damping the command-line tool and the C default use: 0.05 of the
    /// mean diagonal (GPTQ's is 0.01; on all-MiniLM-L6-v2's activations,
    /// 0.03 to 0.1 gave the least output error on held-out tokens).
    pub const DEFAULT_DAMPING: f64 = 0.05;

    /// The error-compensating encoder for `hessian` with
    /// [`DEFAULT_DAMPING`](Self::DEFAULT_DAMPING).
    pub fn error_compensating(hessian: &'a [f64]) -> Self {
        Encoder::ErrorCompensating {
            hessian,
            damping: Self::DEFAULT_DAMPING,
        }
    }
}

impl Encoder<'_> {
    /// Refuses an importance vector shorter than `cols` or holding a value
    /// that is negative or not finite, and a Hessian or damping that
    /// [`Encoder::ErrorCompensating`] does not accept.
    pub(crate) fn check(&self, cols: usize) -> Result<(), Error> {
        match *self {
            Encoder::Search {
                importance: Some(importance),
            } => {
                Layout::check_input(Buffer::Importance, cols, importance.len())?;
                if let Some(index) = importance[..cols]
                    .iter()
                    .position(|c| !(c.is_finite() && *c >= 0.0))
                {
                    return Err(Error::BadImportance { index });
                }
            }
            Encoder::ErrorCompensating { hessian, damping } => {
                compensating::check(hessian, cols, damping)?
            }
            _ => {}
        }
        Ok(())
    }

    /// Packs all rows on up to `threads` threads; the slices are exactly
    /// the layout's lengths, and `check` has passed. Fails, having written
    /// nothing, only where the error-compensating encoder's damped Hessian
    /// is not positive definite ([`Error::BadHessian`]).
    pub(crate) fn pack<T: Element>(
        &self,
        layout: &Layout,
        kernel: Kernel,
        threads: usize,
        src: &[T],
        packed: &mut [u8],
        scales: &mut [f32],
    ) -> Result<(), Error> {
        match *self {
            Encoder::AbsMax => kernels::pack(layout, kernel, threads, src, packed, scales),
            Encoder::Signed => kernels::pack_signed(layout, kernel, threads, src, packed, scales),
            Encoder::Search { importance } => {
                kernels::pack_search(layout, kernel, threads, importance, src, packed, scales)
            }
            Encoder::ErrorCompensating { hessian, damping } => {
                let factor =
                    compensating::factor(hessian, layout.cols, layout.group_size, damping)?;
                compensating::pack(layout, kernel, threads, &factor, src, packed, scales);
            }
        }
        Ok(())
    }
}
