//! The quality report through the C ABI.

use half::{bf16, f16};

use super::call::Call;
use super::cq4_status;
use crate::element::Element;
use crate::layout::Layout;
use crate::matmul_api::PackedMatrix;
use crate::quality::Quality;

/// Error of a packed matrix against its original (f64 sums over every
/// element of `e = original - unpacked`; NaN and Inf propagate).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct cq4_quality {
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

impl From<Quality> for cq4_quality {
    fn from(q: Quality) -> Self {
        cq4_quality {
            rmse: q.rmse,
            max_abs_error: q.max_abs_error,
            relative_frobenius: q.relative_frobenius,
            snr_db: q.snr_db,
        }
    }
}

call_kind! {
    /// The `cq4_quality_*` functions: `original` against `packed` and
    /// `scales`, the report written to `out`.
    struct Report<T> {
        original: input<T>[original_len],
        packed: input<u8>[packed_len],
        scales: input<f32>[scales_len],
        rows: usize,
        cols: usize,
        group_size: usize,
        out: value_out<cq4_quality>,
    }
}

impl<T: Element> Call for Report<T> {
    type Choices = ();
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<(), cq4_status> {
        Ok(())
    }

    fn shape(&mut self, _: &()) -> Result<(), cq4_status> {
        let l = Layout::new(self.rows, self.cols, self.group_size)?;
        self.original.touch(l.elements);
        self.packed.touch(l.packed_len);
        self.scales.touch(l.scales_len);
        Ok(())
    }

    unsafe fn run(self, _: (), _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (original, packed, scales) = unsafe {
            (
                self.original.slice(),
                self.packed.slice(),
                self.scales.slice(),
            )
        };
        let matrix = PackedMatrix::new(packed, scales, self.rows, self.cols, self.group_size)?;
        let q = matrix.quality(original)?;
        // SAFETY: checked by `checked`.
        unsafe { self.out.write(q.into()) };
        Ok(())
    }
}

/// Compares the row-major f32 matrix `original[rows * cols]` with what
/// `cq4_unpack_f32` returns for `packed` and `scales` at `group_size`, and
/// writes RMSE, max abs error, relative Frobenius error and SNR to `*out`.
///
/// Reads `original[0 .. rows*cols]`, `packed[0 .. layout.packed_len]`,
/// `scales[0 .. layout.scales_len]`. Writes `*out` on success only.
/// Returns `CQ4_OK`, or without writing anything, in the order of the
/// shared rules: `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_BAD_GROUP_SIZE`, `CQ4_ERR_SIZE_OVERFLOW`,
/// `CQ4_ERR_OVERLAPPING_BUFFERS` (`out`), `CQ4_ERR_INPUT_TOO_SHORT`.
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type); `out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn cq4_quality_f32(
    original: *const f32,
    original_len: usize,
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    out: *mut cq4_quality,
) -> cq4_status {
    forward! { Report::new(original, original_len, packed, packed_len, scales, scales_len, rows,
    cols, group_size, out) }
}

/// As `cq4_quality_f32`, for an original of IEEE binary16 bit patterns.
///
/// # Safety
/// As `cq4_quality_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_quality_f16(
    original: *const u16,
    original_len: usize,
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    out: *mut cq4_quality,
) -> cq4_status {
    forward! { Report::<f16>::new(original.cast(), original_len, packed, packed_len, scales,
    scales_len, rows, cols, group_size, out) }
}

/// As `cq4_quality_f32`, for an original of bfloat16 bit patterns.
///
/// # Safety
/// As `cq4_quality_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_quality_bf16(
    original: *const u16,
    original_len: usize,
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    out: *mut cq4_quality,
) -> cq4_status {
    forward! { Report::<bf16>::new(original.cast(), original_len, packed, packed_len, scales,
    scales_len, rows, cols, group_size, out) }
}
