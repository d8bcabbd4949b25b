//! How far a packed matrix is from the matrix it was packed from.

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels::scalar;
use crate::layout::Layout;
use crate::matmul_api::PackedMatrix;

/// Error of a packed matrix against its original, from f64 sums over every
/// element of `e = original - unpacked` (NaN and Inf propagate).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// `sqrt(sum e^2 / elements)`; 0 for an empty matrix.
    pub rmse: f64,
    /// `max |e|`.
    pub max_abs_error: f64,
    /// `sqrt(sum e^2 / sum original^2)`: 0 when both sums are 0, +Inf when
    /// only the original's is.
    pub relative_frobenius: f64,
    /// `10 log10(sum original^2 / sum e^2)` in dB: +Inf when `e` is all 0.
    pub snr_db: f64,
}

impl PackedMatrix<'_> {
    /// How far this matrix is from `original` (row-major `[rows, cols]`,
    /// at least `rows * cols` elements), the matrix it was packed from:
    /// compares `original` with what unpack returns.
    ///
    /// Errors: [`Error::InputTooShort`] (`original`).
    pub fn quality<T: Element>(&self, original: &[T]) -> Result<Quality, Error> {
        let l = *self.layout();
        let (cols, group_size) = (l.cols, l.group_size);
        let (packed, scales) = (self.packed(), self.scales());
        Layout::check_input(Buffer::Source, l.elements, original.len())?;
        let (mut error2, mut signal2, mut max_abs) = (0f64, 0f64, 0f64);
        // One row, decoded; none for an empty matrix, whose `cols` alone
        // may be more than memory holds.
        let mut decoded = vec![0f32; if l.elements == 0 { 0 } else { cols }];
        // By row of `original`: an empty matrix may have 2^62 empty rows.
        let original_rows = original[..l.elements].chunks_exact(cols.max(1));
        for (r, original_row) in original_rows.enumerate() {
            scalar::unpack_row(
                &packed[r * l.packed_row_bytes..(r + 1) * l.packed_row_bytes],
                &scales[r * l.groups_per_row..(r + 1) * l.groups_per_row],
                group_size,
                &mut decoded,
            );
            for (w, &d) in original_row.iter().zip(&decoded) {
                let w = w.to_f32() as f64;
                let e = (w - d as f64).abs();
                error2 += e * e;
                signal2 += w * w;
                // Once NaN, the maximum stays NaN.
                if e > max_abs || e.is_nan() {
                    max_abs = e;
                }
            }
        }
        let rmse = if l.elements == 0 {
            0.0
        } else {
            (error2 / l.elements as f64).sqrt()
        };
        let (relative_frobenius, snr_db) = if error2 == 0.0 {
            (0.0, f64::INFINITY)
        } else {
            ((error2 / signal2).sqrt(), 10.0 * (signal2 / error2).log10())
        };
        Ok(Quality {
            rmse,
            max_abs_error: max_abs,
            relative_frobenius,
            snr_db,
        })
    }
}
