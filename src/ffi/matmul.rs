//! Fused products `Y = X W^T` with packed weights through the C ABI.

use half::{bf16, f16};

use super::buffers::{check_disjoint, Raw};
use super::options::{cq4_options, read_options};
use super::{cq4_status, guard};
use crate::element::Element;
use crate::matmul_api::{PackedMatrix, Plan, Precision};

/// Precision ids for the `precision` argument of the `cq4_matmul_*`
/// functions.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cq4_precision {
    /// Weights decoded exactly as unpack does; f32 products and sums. Error
    /// against an f64 unpack-then-multiply: at most
    /// `(4 sqrt(cols) + 4) * 2^-24 * sum |x * w|`.
    CQ4_PRECISION_EXACT = 0,
    /// Activations quantized per group to int8 (scale `max |x| / 127`),
    /// integer dot products per group, f32 across groups. Adds at most
    /// `sum |w| * x_scale / 2` to the exact error.
    CQ4_PRECISION_INT8 = 1,
}

/// A packed `[rows, cols]` matrix as `cq4_pack_*` wrote it.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
pub struct cq4_matrix {
    /// The packed bytes, `packed_len` of them (at least the layout's).
    pub packed: *const u8,
    pub packed_len: usize,
    /// The scales, `scales_len` of them (at least the layout's).
    pub scales: *const f32,
    pub scales_len: usize,
    /// The shape and group size the matrix was packed with.
    pub rows: usize,
    pub cols: usize,
    pub group_size: usize,
}

fn precision_from_id(id: u32) -> Result<Precision, cq4_status> {
    match id {
        0 => Ok(Precision::Exact),
        1 => Ok(Precision::Int8),
        _ => Err(cq4_status::CQ4_ERR_BAD_PRECISION),
    }
}

/// Shared body of the `cq4_matmul_*` functions: `rows` (all of them when
/// `None`) into `y[b * y_stride + (r - rows.start)]` (`y_stride` = the row
/// count when `None`).
///
/// # Safety
/// As documented on [`cq4_matmul_rows_f32`].
#[allow(clippy::too_many_arguments)] // mirrors the C signatures
unsafe fn matmul_any<X: Element>(
    w: *const cq4_matrix,
    x: *const X,
    x_len: usize,
    batch: usize,
    precision: u32,
    rows: Option<std::ops::Range<usize>>,
    y: *mut f32,
    y_len: usize,
    y_stride: Option<usize>,
    options: *const cq4_options,
) -> cq4_status {
    guard(|| {
        let w = Raw::new(w, 1)?;
        // SAFETY: non-null and aligned (checked); the caller promised one
        // readable `cq4_matrix`.
        let m = unsafe { w.as_slice()[0] };
        let packed_raw = Raw::new(m.packed, m.packed_len)?;
        let scales_raw = Raw::new(m.scales, m.scales_len)?;
        let x_raw = Raw::new(x, x_len)?;
        let y = Raw::new(y.cast_const(), y_len)?;
        let options = read_options(options)?;
        let precision = precision_from_id(precision)?;
        // SAFETY: non-null, aligned, and valid for their declared lengths
        // (the caller's contract); inputs are only read.
        let (packed, scales, x) = unsafe {
            (
                packed_raw.as_slice(),
                scales_raw.as_slice(),
                x_raw.as_slice(),
            )
        };
        let matrix = PackedMatrix::new(packed, scales, m.rows, m.cols, m.group_size)?;
        let rows = rows.unwrap_or(0..m.rows);
        let plan = Plan::new(
            &options,
            &matrix,
            x,
            batch,
            rows,
            y_stride.unwrap_or(m.rows),
        )?;
        let l = matrix.layout();
        check_disjoint(
            &[y.span(plan.y_len)],
            &[
                packed_raw.span(l.packed_len),
                scales_raw.span(l.scales_len),
                x_raw.span(usize::MAX),
            ],
        )?;
        crate::Layout::check_output(crate::Buffer::Destination, plan.y_len, y_len)?;
        // SAFETY: `y` is valid for `y_len >= plan.y_len` writes (the
        // caller's contract, checked length), overlaps no input, and the
        // caller promised no one else touches the elements this call writes.
        unsafe { plan.execute(&matrix, x, precision, y.as_mut_ptr()) };
        Ok(())
    })
}

/// Computes `y[b * rows + r] = sum_c x[b * cols + c] * w[r, c]` for the
/// `batch` rows of `x` (`[batch, cols]`, row-major) and every row of the
/// packed matrix `w`, without unpacking it. `precision` is a
/// `cq4_precision` id; `options` may be NULL (the defaults: auto kernel,
/// calling thread only).
///
/// Reads `*w`, its `packed` and `scales` (layout prefixes) and
/// `x[0 .. batch*cols]`. Writes `y[0 .. batch*rows]`, nothing else.
/// Returns `CQ4_OK`, or without writing anything: `CQ4_ERR_NULL_POINTER`,
/// `CQ4_ERR_MISALIGNED_POINTER`, `CQ4_ERR_BAD_OPTIONS`,
/// `CQ4_ERR_BAD_PRECISION`, `CQ4_ERR_UNSUPPORTED_KERNEL`,
/// `CQ4_ERR_BAD_GROUP_SIZE`, `CQ4_ERR_SIZE_OVERFLOW`,
/// `CQ4_ERR_INPUT_TOO_SHORT` (`packed_len`, `scales_len`, `x_len`),
/// `CQ4_ERR_OVERLAPPING_BUFFERS` (`y` and an input),
/// `CQ4_ERR_OUTPUT_TOO_SMALL` (`y_len`).
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type); `y` must not overlap any input.
#[no_mangle]
pub unsafe extern "C" fn cq4_matmul_f32(
    w: *const cq4_matrix,
    x: *const f32,
    x_len: usize,
    batch: usize,
    precision: u32,
    y: *mut f32,
    y_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    // SAFETY: the caller's contract is the one `matmul_any` needs.
    unsafe { matmul_any(w, x, x_len, batch, precision, None, y, y_len, None, options) }
}

/// As `cq4_matmul_f32` for the weight rows `[row_begin, row_end)` only,
/// so that an engine can spread one product over its own threads: writes
/// `y[b * y_stride + (r - row_begin)]` for every `b < batch` and `r` in the
/// range, and nothing else. To fill a `[batch, rows]` output from several
/// threads, each passes `y = out + row_begin`, `y_stride = rows` and
/// `y_len` counted from `y`. For a given kernel and precision, the results
/// do not depend on how the rows are split. Also returns
/// `CQ4_ERR_BAD_ROW_RANGE` and `CQ4_ERR_BAD_STRIDE`.
///
/// # Safety
/// As `cq4_matmul_f32`; in addition, while the call runs no one else may
/// read or write the elements of `y` it writes (other elements of the
/// declared range may be written by other calls).
#[no_mangle]
pub unsafe extern "C" fn cq4_matmul_rows_f32(
    w: *const cq4_matrix,
    x: *const f32,
    x_len: usize,
    batch: usize,
    precision: u32,
    row_begin: usize,
    row_end: usize,
    y: *mut f32,
    y_len: usize,
    y_stride: usize,
    options: *const cq4_options,
) -> cq4_status {
    // SAFETY: the caller's contract is the one `matmul_any` needs.
    unsafe {
        matmul_any(
            w,
            x,
            x_len,
            batch,
            precision,
            Some(row_begin..row_end),
            y,
            y_len,
            Some(y_stride),
            options,
        )
    }
}

/// As `cq4_matmul_rows_f32`, with IEEE binary16 activations (converted
/// exactly to f32 first).
///
/// # Safety
/// As `cq4_matmul_rows_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_matmul_rows_f16(
    w: *const cq4_matrix,
    x: *const u16,
    x_len: usize,
    batch: usize,
    precision: u32,
    row_begin: usize,
    row_end: usize,
    y: *mut f32,
    y_len: usize,
    y_stride: usize,
    options: *const cq4_options,
) -> cq4_status {
    let x = x.cast::<f16>();
    // SAFETY: `f16` is a transparent `u16`; the contract is `matmul_any`'s.
    unsafe {
        matmul_any(
            w,
            x,
            x_len,
            batch,
            precision,
            Some(row_begin..row_end),
            y,
            y_len,
            Some(y_stride),
            options,
        )
    }
}

/// As `cq4_matmul_rows_f32`, with bfloat16 activations (converted exactly
/// to f32 first).
///
/// # Safety
/// As `cq4_matmul_rows_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_matmul_rows_bf16(
    w: *const cq4_matrix,
    x: *const u16,
    x_len: usize,
    batch: usize,
    precision: u32,
    row_begin: usize,
    row_end: usize,
    y: *mut f32,
    y_len: usize,
    y_stride: usize,
    options: *const cq4_options,
) -> cq4_status {
    let x = x.cast::<bf16>();
    // SAFETY: `bf16` is a transparent `u16`; the contract is `matmul_any`'s.
    unsafe {
        matmul_any(
            w,
            x,
            x_len,
            batch,
            precision,
            Some(row_begin..row_end),
            y,
            y_len,
            Some(y_stride),
            options,
        )
    }
}
