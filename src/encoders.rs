//! Encoders: ways to choose each group's scale. All write the same layout,
//! quantize elements with the same rule, `clamp(round(w / scale), -8, 7)`
//! ([`scalar::quantize`]), and are read by the same decoder. The default,
//! [`Encoder::AbsMax`], is the format's definition; the others are scalar
//! references in this file.

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels;
use crate::kernels::scalar::{self, dequantize, group_scale, quantize, MIN_SCALE};
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
    /// error among a fixed candidate set ([`search_candidates`]).
    Search {
        /// Per-column weights (`cols` of them, finite and >= 0), for
        /// instance mean squared activations; `None` weighs all columns 1.
        importance: Option<&'a [f32]>,
    },
}

/// The first element of largest magnitude, with its sign; NaN elements
/// are ignored and an all-zero (or all-NaN) group gives 0.
fn signed_max<T: Element>(group: &[T]) -> f32 {
    group
        .iter()
        .map(|w| w.to_f32())
        .fold(0f32, |m, w| if w.abs() > m.abs() { w } else { m })
}

/// The signed encoder's scale: `s = max(|m| / 8, 1e-5)`, negated when `m`
/// is positive, so that `m / scale = -8` (exactly, where `|m| / 8` is a
/// normal f32). A group of zeros gets `1e-5`, as with the default; a group
/// holding an infinity gets an infinite scale, and so all its elements
/// become 0, as with the default.
pub fn signed_scale<T: Element>(group: &[T]) -> f32 {
    let m = signed_max(group);
    let s = (m.abs() / 8.0).max(MIN_SCALE);
    if m > 0.0 {
        -s
    } else {
        s
    }
}

/// `sum c_i (w_i - decoded_i)^2` in f64, in element order, with `decoded`
/// what unpack returns for `w` packed with `scale`; `c_i` = 1 without
/// importance.
pub fn weighted_error(group: &[f32], importance: Option<&[f32]>, scale: f32) -> f64 {
    fit(group, importance, scale).0
}

/// [`weighted_error`] for `scale`, and the least-squares scale for the
/// levels `q` it gives: `sum c w q / sum c q^2` (f64 sums, then f32), if
/// that is finite and not 0.
fn fit(group: &[f32], importance: Option<&[f32]>, scale: f32) -> (f64, Option<f32>) {
    let (mut error, mut num, mut den) = (0f64, 0f64, 0f64);
    for (i, &w) in group.iter().enumerate() {
        let u = quantize(w, scale);
        let c = importance.map_or(1.0, |c| c[i] as f64);
        let e = w as f64 - dequantize(u, scale) as f64;
        let q = (u as i32 - 8) as f64;
        error += c * e * e;
        num += c * w as f64 * q;
        den += c * q * q;
    }
    let refit = (num / den) as f32;
    (
        error,
        (den > 0.0 && refit.is_finite() && refit != 0.0).then_some(refit),
    )
}

/// The search encoder's scale: among the candidates below, the first with
/// the least [`weighted_error`]. A group holding a NaN or an infinity, or
/// only zeros, gets the default scale. With `a` the group's largest
/// magnitude, the candidates are, in order:
///
/// 1. the default scale ([`group_scale`]), then the signed one
///    ([`signed_scale`]);
/// 2. `a / t` then `-a / t` for `t = 6.5, 6.625, ..., 8.5` (17 values);
/// 3. for each scale above, in order, its least-squares refit: with the
///    levels `q` it gives, `sum c w q / sum c q^2` (f64 sums, rounded to
///    f32; left out when not finite or 0).
pub fn search_scale<T: Element>(group: &[T], importance: Option<&[f32]>) -> f32 {
    let values: Vec<f32> = group.iter().map(|w| w.to_f32()).collect();
    if values.iter().any(|w| !w.is_finite()) || values.iter().all(|&w| w == 0.0) {
        return group_scale(group);
    }
    let a = values.iter().fold(0f32, |m, w| m.max(w.abs()));
    let grid = (0..=16).flat_map(|k| {
        let t = 6.5 + k as f32 / 8.0;
        [a / t, -(a / t)]
    });
    let mut best = (f64::INFINITY, 0f32);
    let mut consider = |error: f64, scale: f32| {
        if error < best.0 {
            best = (error, scale);
        }
    };
    let mut refits = Vec::new();
    for scale in [group_scale(group), signed_scale(group)]
        .into_iter()
        .chain(grid)
    {
        let (error, refit) = fit(&values, importance, scale);
        consider(error, scale);
        refits.extend(refit);
    }
    for scale in refits {
        consider(fit(&values, importance, scale).0, scale);
    }
    best.1
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

    /// Packs one row with this encoder's reference.
    fn pack_row<T: Element>(&self, src: &[T], g: usize, packed: &mut [u8], scales: &mut [f32]) {
        match *self {
            Encoder::AbsMax => scalar::pack_row(src, g, packed, scales),
            Encoder::Signed => {
                scalar::pack_row_scaled(src, g, packed, scales, |_, group| signed_scale(group))
            }
            Encoder::Search { importance } => {
                scalar::pack_row_scaled(src, g, packed, scales, |k, group| {
                    let weights = importance.map(|c| &c[k * g..k * g + group.len()]);
                    search_scale(group, weights)
                })
            }
        }
    }

    /// Packs all rows on up to `threads` threads; the slices are exactly
    /// the layout's lengths, and `check` has passed.
    pub(crate) fn pack<T: Element>(
        &self,
        layout: &Layout,
        threads: usize,
        src: &[T],
        packed: &mut [u8],
        scales: &mut [f32],
    ) {
        kernels::pack_rows(
            layout,
            threads,
            src,
            packed,
            scales,
            |src, packed, scales| self.pack_row(src, layout.group_size, packed, scales),
        );
    }
}
