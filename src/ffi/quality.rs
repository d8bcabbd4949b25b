//! The quality report through the C ABI.

use half::{bf16, f16};

use super::buffers::{check_disjoint, Raw};
use super::{cq4_status, guard};
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

/// Shared body of the `cq4_quality_*` functions.
///
/// # Safety
/// As documented on [`cq4_quality_f32`].
#[allow(clippy::too_many_arguments)] // mirrors the C signatures
unsafe fn quality_any<T: Element>(
    original: *const T,
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
    guard(|| {
        let original = Raw::new(original, original_len)?;
        let packed = Raw::new(packed, packed_len)?;
        let scales = Raw::new(scales, scales_len)?;
        let out = Raw::new(out.cast_const(), 1)?;
        let l = Layout::new(rows, cols, group_size)?;
        check_disjoint(
            &[out.span(1)],
            &[
                original.span(l.elements),
                packed.span(l.packed_len),
                scales.span(l.scales_len),
            ],
        )?;
        // SAFETY: pointers checked non-null, aligned and disjoint; the
        // caller promised each valid for its declared length.
        let q = unsafe {
            PackedMatrix::new(packed.as_slice(), scales.as_slice(), rows, cols, group_size)?
                .quality(original.as_slice())?
        };
        // SAFETY: as above; `out` is valid for one write.
        unsafe { out.as_mut_ptr().write(q.into()) };
        Ok(())
    })
}

/// Compares the row-major f32 matrix `original[rows * cols]` with what
/// `cq4_unpack_f32` returns for `packed` and `scales` at `group_size`, and
/// writes RMSE, max abs error, relative Frobenius error and SNR to `*out`.
///
/// Reads `original[0 .. rows*cols]`, `packed[0 .. layout.packed_len]`,
/// `scales[0 .. layout.scales_len]`. Writes `*out` on success only.
/// Returns `CQ4_OK`, or without writing anything: `CQ4_ERR_NULL_POINTER`,
/// `CQ4_ERR_MISALIGNED_POINTER`, `CQ4_ERR_BAD_GROUP_SIZE`,
/// `CQ4_ERR_SIZE_OVERFLOW`, `CQ4_ERR_OVERLAPPING_BUFFERS` (`out`),
/// `CQ4_ERR_INPUT_TOO_SHORT`.
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
    // SAFETY: the caller's contract is the one `quality_any` needs.
    unsafe {
        quality_any(
            original,
            original_len,
            packed,
            packed_len,
            scales,
            scales_len,
            rows,
            cols,
            group_size,
            out,
        )
    }
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
    // SAFETY: as `cq4_quality_f32`; `f16` is a transparent `u16`.
    unsafe {
        quality_any(
            original.cast::<f16>(),
            original_len,
            packed,
            packed_len,
            scales,
            scales_len,
            rows,
            cols,
            group_size,
            out,
        )
    }
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
    // SAFETY: as `cq4_quality_f32`; `bf16` is a transparent `u16`.
    unsafe {
        quality_any(
            original.cast::<bf16>(),
            original_len,
            packed,
            packed_len,
            scales,
            scales_len,
            rows,
            cols,
            group_size,
            out,
        )
    }
}
