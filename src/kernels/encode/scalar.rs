//! The scalar references of the encoders beyond the default: they define
//! what each computes; SIMD twins must choose the same scales.

use crate::element::Element;
use crate::kernels::pack::scalar::{dequantize, group_scale, quantize, MIN_SCALE};

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
/// that is finite and not 0. Each sum runs in element order, one rounding
/// per operation: `c * e * e`, `c * w * q`, `c * q * q`, left to right.
pub(crate) fn fit(group: &[f32], importance: Option<&[f32]>, scale: f32) -> (f64, Option<f32>) {
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
    (error, refit(num, den))
}

/// `num / den` rounded to f32, when that is a usable scale.
pub(crate) fn refit(num: f64, den: f64) -> Option<f32> {
    let s = (num / den) as f32;
    (den > 0.0 && s.is_finite() && s != 0.0).then_some(s)
}

/// Candidates in the search's first round: the default scale
/// ([`group_scale`]), the signed one ([`signed_scale`]), then `a / t` and
/// `-a / t` for `t = 6.5, 6.625, ..., 8.5`, `a` the largest magnitude.
pub(crate) fn first_candidates(values: &[f32]) -> [f32; 36] {
    let a = values.iter().fold(0f32, |m, w| m.max(w.abs()));
    let mut candidates = [0f32; 36];
    candidates[0] = group_scale(values);
    candidates[1] = signed_scale(values);
    for k in 0..17 {
        let t = 6.5 + k as f32 / 8.0;
        candidates[2 + 2 * k] = a / t;
        candidates[3 + 2 * k] = -(a / t);
    }
    candidates
}

/// The search encoder's scale: among the candidates below, the first with
/// the least [`weighted_error`]. A group holding a NaN or an infinity, or
/// only zeros, gets the default scale. The candidates are, in order:
///
/// 1. the default scale ([`group_scale`]), then the signed one
///    ([`signed_scale`]);
/// 2. `a / t` then `-a / t` for `t = 6.5, 6.625, ..., 8.5` (17 values), `a`
///    the group's largest magnitude;
/// 3. for each scale above, in order, its least-squares refit: with the
///    levels `q` it gives, `sum c w q / sum c q^2` (f64 sums, rounded to
///    f32; left out when not finite or 0).
pub fn search_scale<T: Element>(group: &[T], importance: Option<&[f32]>) -> f32 {
    search_scale_with(group, importance, fits)
}

/// What [`fit`] gives for each of `scales`: the reference the search's
/// twins follow.
pub(crate) fn fits(
    values: &[f32],
    importance: Option<&[f32]>,
    scales: &[f32],
) -> Vec<(f64, Option<f32>)> {
    scales.iter().map(|&s| fit(values, importance, s)).collect()
}

/// [`search_scale`], with `fits(values, importance, scales)` giving what
/// [`fit`] gives for each scale: the reference, or a SIMD twin of it.
pub(crate) fn search_scale_with<T: Element>(
    group: &[T],
    importance: Option<&[f32]>,
    fits: impl Fn(&[f32], Option<&[f32]>, &[f32]) -> Vec<(f64, Option<f32>)>,
) -> f32 {
    let values: Vec<f32> = group.iter().map(|w| w.to_f32()).collect();
    if values.iter().any(|w| !w.is_finite()) || values.iter().all(|&w| w == 0.0) {
        return group_scale(group);
    }
    let first = first_candidates(&values);
    let first_fits = fits(&values, importance, &first);
    let refits: Vec<f32> = first_fits.iter().filter_map(|f| f.1).collect();
    let refit_fits = fits(&values, importance, &refits);
    let errors = first_fits.iter().chain(&refit_fits).map(|f| f.0);
    let mut best = (f64::INFINITY, 0f32);
    for (error, scale) in errors.zip(first.into_iter().chain(refits)) {
        if error < best.0 {
            best = (error, scale);
        }
    }
    best.1
}
