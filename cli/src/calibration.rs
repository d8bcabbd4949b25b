//! `--calibration`: the Hessian `H = XᵀX` the gptq encoder quantizes each
//! weight against, read from a safetensors file one weight at a time.
//!
//! For each weight `W` `[rows, cols]` being quantized the file holds
//! exactly one of
//!
//! - `W.hessian`: `H` itself, F64 or F32 `[cols, cols]`;
//! - `W.activations`: the layer's input rows `X`, F32, F16, BF16 or F64
//!   `[n, cols]` with `n > 0`, each finite as f32, summed into `H` with
//!   the library's [`Hessian::accumulate`] (in f64, F64 values rounded to
//!   f32 first).
//!
//! Presence, dtypes and shapes are checked for every weight when the file
//! is opened, before anything is written; the values when each weight is
//! packed (the library checks `H`). Only one `H` is in memory at a time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use cortex_q4::{Hessian, Options};

use crate::error::CliError;
use crate::input::{first_non_finite, Float, FloatType, Input};
use crate::safetensors::{Dtype, TensorInfo};
use crate::{with_floats, Ui};

/// Suffix of a weight's Hessian in a calibration file.
pub const HESSIAN_SUFFIX: &str = ".hessian";
/// Suffix of a weight's activations in a calibration file.
pub const ACTIVATIONS_SUFFIX: &str = ".activations";

/// A `--calibration` file, its entries checked against the weights they
/// calibrate.
pub struct Calibration {
    input: Input,
}

/// Where a weight's `H` comes from.
enum Entry<'a> {
    Hessian(&'a TensorInfo),
    Activations(&'a TensorInfo),
}

/// A weight's `H`, `[cols, cols]` row-major, and the calibration tensor it
/// comes from.
pub struct WeightHessian<'a> {
    /// The `W.hessian` or `W.activations` tensor.
    tensor: &'a TensorInfo,
    matrix: HessianMatrix<'a>,
}

enum HessianMatrix<'a> {
    /// Stored in the file (borrowed where F64 and aligned).
    Stored(Cow<'a, [f64]>),
    /// Summed from activations.
    Summed(Hessian),
}

impl WeightHessian<'_> {
    /// The name of the `W.hessian` or `W.activations` tensor it comes from.
    pub fn source(&self) -> &str {
        &self.tensor.name
    }

    /// `H`, `[cols, cols]` row-major.
    pub fn matrix(&self) -> &[f64] {
        match &self.matrix {
            HessianMatrix::Stored(values) => values,
            HessianMatrix::Summed(hessian) => hessian.matrix(),
        }
    }
}

impl Calibration {
    /// Opens `path` and checks that every weight in `selected` has exactly
    /// one entry of a dtype and shape it can use. Warns about tensors that
    /// calibrate no selected weight.
    pub fn open(
        path: &Path,
        selected: &HashMap<&str, &TensorInfo>,
        ui: &Ui,
    ) -> Result<Calibration, CliError> {
        let calibration = Calibration {
            input: Input::open(path)?,
        };
        let mut names: Vec<&str> = selected.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            calibration.entry(selected[name])?;
        }
        for t in calibration.input.header().tensors() {
            let calibrates = [HESSIAN_SUFFIX, ACTIVATIONS_SUFFIX].iter().any(|s| {
                t.name
                    .strip_suffix(s)
                    .is_some_and(|w| selected.contains_key(w))
            });
            if !calibrates {
                ui.warn(format!(
                    "{}: tensor \"{}\" calibrates no tensor being quantized; ignored",
                    path.display(),
                    t.name
                ));
            }
        }
        Ok(calibration)
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        self.input.path()
    }

    /// The checked entry of `weight`: present once, of a usable dtype and
    /// shape.
    fn entry<'a>(&'a self, weight: &TensorInfo) -> Result<Entry<'a>, CliError> {
        let name = &weight.name;
        let (_, cols) = weight.matrix().expect("selected tensors are 2-D");
        let header = self.input.header();
        let hessian_key = format!("{name}{HESSIAN_SUFFIX}");
        let activations_key = format!("{name}{ACTIVATIONS_SUFFIX}");
        let needs =
            |what: String| format!("{what}, as the weight \"{name}\" {:?} needs", weight.shape);
        match (header.get(&hessian_key), header.get(&activations_key)) {
            (None, None) => Err(self.input.bad_tensor(
                name,
                format!(
                    "no calibration: the file has neither \"{hessian_key}\" nor \
                     \"{activations_key}\" (pass --exclude \"{name}\" to leave the weight \
                     unquantized)"
                ),
            )),
            (Some(_), Some(_)) => Err(self.input.bad_tensor(
                name,
                format!("the file has both \"{hessian_key}\" and \"{activations_key}\"; keep one"),
            )),
            (Some(t), None) => {
                if !matches!(t.dtype, Dtype::F64 | Dtype::F32) {
                    return Err(self
                        .input
                        .bad_tensor(&t.name, format!("dtype {} is not F64 or F32", t.dtype)));
                }
                if t.shape != [cols, cols] {
                    return Err(self.input.bad_tensor(
                        &t.name,
                        needs(format!("shape {:?} is not [{cols}, {cols}]", t.shape)),
                    ));
                }
                Ok(Entry::Hessian(t))
            }
            (None, Some(t)) => {
                if t.dtype != Dtype::F64 && FloatType::of(t.dtype).is_none() {
                    return Err(self.input.bad_tensor(
                        &t.name,
                        format!("dtype {} is not F32, F16, BF16 or F64", t.dtype),
                    ));
                }
                if !matches!(t.shape[..], [n, c] if n > 0 && c == cols) {
                    return Err(self.input.bad_tensor(
                        &t.name,
                        needs(format!("shape {:?} is not [n, {cols}] with n > 0", t.shape)),
                    ));
                }
                Ok(Entry::Activations(t))
            }
        }
    }

    /// `H` of `weight`: its `W.hessian`, or its `W.activations` summed into
    /// `XᵀX` on `options.threads` threads. Bad input where an activation
    /// is not finite as f32.
    pub fn hessian(
        &self,
        weight: &TensorInfo,
        options: &Options,
    ) -> Result<WeightHessian<'_>, CliError> {
        let (_, cols) = weight.matrix().expect("selected tensors are 2-D");
        let (t, matrix) = match self.entry(weight)? {
            Entry::Hessian(t) => {
                let values = match self.input.f64s(t) {
                    Some(values) => values,
                    None => Cow::Owned(
                        f32::values(self.input.bytes(t))
                            .iter()
                            .map(|&v| f64::from(v))
                            .collect(),
                    ),
                };
                (t, HessianMatrix::Stored(values))
            }
            Entry::Activations(t) => {
                let mut hessian =
                    Hessian::new(cols).map_err(|e| self.input.bad_tensor(&t.name, e))?;
                let rows = t.shape[0];
                let result = match self.input.f64s(t) {
                    Some(xs) => self.accumulate(&mut hessian, options, t, &xs, rows),
                    None => with_floats!(&self.input.floats(t)?, xs =>
                        self.accumulate(&mut hessian, options, t, xs, rows)),
                };
                self.input.release(t);
                result?;
                (t, HessianMatrix::Summed(hessian))
            }
        };
        Ok(WeightHessian { tensor: t, matrix })
    }

    /// Lets the kernel drop the pages of the tensor `hessian` came from.
    pub fn release(&self, hessian: WeightHessian) {
        self.input.release(hessian.tensor);
    }

    /// Adds `XᵀX` of activations tensor `t` (`xs`, `rows` of them) to
    /// `hessian`, after checking that every value is finite as f32.
    fn accumulate<T: cortex_q4::Element>(
        &self,
        hessian: &mut Hessian,
        options: &Options,
        t: &TensorInfo,
        xs: &[T],
        rows: usize,
    ) -> Result<(), CliError> {
        let cols = hessian.cols();
        if let Some((i, v)) = first_non_finite(xs) {
            return Err(self.input.bad_tensor(
                &t.name,
                format!(
                    "element [{}, {}] is {v} as f32 (activations must be finite)",
                    i / cols,
                    i % cols
                ),
            ));
        }
        hessian
            .accumulate(options, xs, rows)
            .map_err(|e| self.input.bad_tensor(&t.name, e))
    }
}
