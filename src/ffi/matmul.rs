//! Fused products `Y = X W^T` with packed weights through the C ABI.

use std::ops::Range;

use half::{bf16, f16};

use super::call::{Buf, Call};
use super::cq4_status;
use super::options::{cq4_options, read_options};
use crate::element::Element;
use crate::layout::Layout;
use crate::matmul_api::{PackedMatrix, Plan, Precision};
use crate::options::Options;

/// Precision ids for the `precision` argument of the `cq4_matmul_*`
/// functions.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cq4_precision {
    /// Weights decoded exactly as unpack does; f32 products and sums. Error
    /// against an f64 unpack-then-multiply: at most
    /// `(4 sqrt(cols) + 4) * 2^-24 * sum |x * w|` on rows of up to 2^18
    /// columns with every kernel (tested); on rows of 2^20 columns and
    /// more the SIMD kernels' running sums may exceed it by a few percent.
    /// Roundings in the subnormal range add at most `cols * 2^-149` more
    /// (absolute); overflowing terms are not covered.
    CQ4_PRECISION_EXACT = 0,
    /// Activations quantized per group to int8 (scale `max |x| / 127`),
    /// integer dot products per group, f32 across groups: each group adds
    /// `s * dot`, `s = w_scale * x_scale` held to `[-FLT_MAX, FLT_MAX]`
    /// and `dot` the exact integer `sum((u - 8) * q)` (or its parts over 8
    /// columns), so a group whose dot is 0 adds 0 however large its scales,
    /// and no step overflows unless such a term or a sum of them does. Adds at most `sum |w| * x_scale / 2` to the exact
    /// error. An activation row holding NaN or an infinity gives NaN in
    /// every output it reads into (exact mode gives NaN or an infinity
    /// there).
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

/// The precision with C id `id`.
pub(super) fn precision_from_id(id: u32) -> Result<Precision, cq4_status> {
    use cq4_precision::*;
    [
        (CQ4_PRECISION_EXACT, Precision::Exact),
        (CQ4_PRECISION_INT8, Precision::Int8),
    ]
    .into_iter()
    .find(|(c, _)| *c as u32 == id)
    .map(|(_, precision)| precision)
    .ok_or(cq4_status::CQ4_ERR_BAD_PRECISION)
}

call_kind! {
    /// The `cq4_matmul_*` functions: weight rows `rows` (all of them when
    /// `None`) into `y[b * y_stride + (r - rows.start)]` (`y_stride` = the
    /// row count when `None`).
    struct Product<X> {
        w: value_in<cq4_matrix>,
        x: input<X>[x_len],
        batch: usize,
        precision: u32,
        rows: Option<Range<usize>>,
        y: output<f32>[y_len],
        y_stride: Option<usize>,
        options: value_in<cq4_options>.optional(),
        /// `*w`, once read; its buffers are `packed` and `scales`.
        later matrix: Option<cq4_matrix>,
        later packed: Buf<u8>,
        later scales: Buf<f32>,
    }
}

impl<X: Element> Call for Product<X> {
    type Choices = (Options, Precision);
    type Shape = (Layout, Plan);

    unsafe fn open(&mut self) {
        // SAFETY: `w` passed its checks (`open`'s contract).
        self.matrix = unsafe { self.w.read() };
        if let Some(m) = self.matrix {
            self.packed = Buf::input(m.packed, m.packed_len);
            self.scales = Buf::input(m.scales, m.scales_len);
        }
    }

    unsafe fn choose(&mut self) -> Result<Self::Choices, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        let options = unsafe { read_options(&self.options) }?;
        Ok((options, precision_from_id(self.precision)?))
    }

    fn shape(&mut self, (options, _): &Self::Choices) -> Result<Self::Shape, cq4_status> {
        let m = self.matrix.ok_or(cq4_status::CQ4_ERR_INTERNAL)?;
        let l = Layout::new(m.rows, m.cols, m.group_size)?;
        let rows = self.rows.clone().unwrap_or(0..l.rows);
        let plan = Plan::new(
            options,
            &l,
            self.batch,
            rows,
            self.y_stride.unwrap_or(l.rows),
        )?;
        self.packed.touch(l.packed_len);
        self.scales.touch(l.scales_len);
        self.x.touch(plan.x_len);
        self.y.touch(plan.y_len);
        Ok((l, plan))
    }

    unsafe fn run(
        self,
        (_, precision): Self::Choices,
        (l, plan): Self::Shape,
    ) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (packed, scales, x) =
            unsafe { (self.packed.slice(), self.scales.slice(), self.x.slice()) };
        let matrix = PackedMatrix::new(packed, scales, l.rows, l.cols, l.group_size)?;
        // SAFETY: `y` holds `plan.y_len` elements and overlaps no input
        // (checked); the caller promised no one else touches the elements
        // this call writes, so no slice spans `y`.
        unsafe { plan.execute(&matrix, x, precision, self.y.as_mut_ptr()) };
        Ok(())
    }
}

/// Computes `y[b * rows + r] = sum_c x[b * cols + c] * w[r, c]` for the
/// `batch` rows of `x` (`[batch, cols]`, row-major) and every row of the
/// packed matrix `w`, without unpacking it. `precision` is a
/// `cq4_precision` id (in either, NaN or infinite activations make the
/// outputs of their row non-finite: NaN in int8 mode); `options` may be
/// NULL (the defaults: auto kernel, calling thread only).
///
/// Reads `*w`, its `packed` and `scales` (layout prefixes) and
/// `x[0 .. batch*cols]`. Writes `y[0 .. batch*rows]`, nothing else.
/// Returns `CQ4_OK`, or without writing anything, in the order of the
/// shared rules: `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER` (the
/// arguments, then the pointers in `*w`), `CQ4_ERR_BAD_OPTIONS`,
/// `CQ4_ERR_UNSUPPORTED_KERNEL`, `CQ4_ERR_BAD_PRECISION`,
/// `CQ4_ERR_BAD_GROUP_SIZE`, `CQ4_ERR_SIZE_OVERFLOW` (the matrix's layout,
/// `batch*cols` or `y`'s extent, in elements or bytes),
/// `CQ4_ERR_OVERLAPPING_BUFFERS` (`y` and `*w`, `*options` or an input's
/// prefix), `CQ4_ERR_INPUT_TOO_SHORT` (`packed_len`, `scales_len`,
/// `x_len`), `CQ4_ERR_OUTPUT_TOO_SMALL` (`y_len`).
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
    forward! { Product::new(w, x, x_len, batch, precision, None, y, y_len, None, options) }
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
    forward! { Product::new(w, x, x_len, batch, precision, Some(row_begin..row_end), y, y_len,
    Some(y_stride), options) }
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
    forward! { Product::<f16>::new(w, x.cast(), x_len, batch, precision, Some(row_begin..row_end),
    y, y_len, Some(y_stride), options) }
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
    forward! { Product::<bf16>::new(w, x.cast(), x_len, batch, precision, Some(row_begin..row_end),
    y, y_len, Some(y_stride), options) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::tests::{header_enum, header_value};
    use crate::Quantizer;

    #[test]
    fn precision_ids_are_the_headers() {
        let (rows, cols, g) = (4, 64, 32);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 2.0)
            .collect();
        // Small activations beside large ones: int8 rounds them away.
        let x: Vec<f32> = (0..cols)
            .map(|i| {
                if i % 2 == 0 {
                    100.0
                } else {
                    0.1 + i as f32 * 1e-3
                }
            })
            .collect();
        let buf = Quantizer::new(g).pack_to_vec(&w, rows, cols).unwrap();
        let matrix = buf.as_matrix();
        let c_matrix = cq4_matrix {
            packed: buf.packed().as_ptr(),
            packed_len: buf.packed().len(),
            scales: buf.scales().as_ptr(),
            scales_len: buf.scales().len(),
            rows,
            cols,
            group_size: g,
        };
        let ids = header_enum("cq4_precision");
        assert_eq!(ids.len(), 2, "{ids:?}");
        let mut results = Vec::new();
        for (name, id) in &ids {
            let precision = match name.as_str() {
                "CQ4_PRECISION_EXACT" => Precision::Exact,
                "CQ4_PRECISION_INT8" => Precision::Int8,
                other => panic!("a header precision this test does not know: {other}"),
            };
            let mut want = vec![0f32; rows];
            matrix
                .matmul(&Options::default(), &x, 1, precision, &mut want)
                .unwrap();
            let mut y = vec![0f32; rows];
            // SAFETY: every buffer is live for its length.
            let status = unsafe {
                cq4_matmul_f32(
                    &c_matrix,
                    x.as_ptr(),
                    x.len(),
                    1,
                    *id as u32,
                    y.as_mut_ptr(),
                    y.len(),
                    std::ptr::null(),
                )
            };
            assert_eq!(status as i64, header_value("CQ4_OK"), "{name}");
            assert_eq!(y, want, "{name} = {id}");
            results.push(y);
        }
        assert_ne!(
            results[0], results[1],
            "the input tells the precisions apart"
        );
        let unknown = ids.iter().map(|(_, id)| *id as u32).max().unwrap() + 1;
        let mut y = vec![0f32; rows];
        // SAFETY: as above.
        let status = unsafe {
            cq4_matmul_f32(
                &c_matrix,
                x.as_ptr(),
                x.len(),
                1,
                unknown,
                y.as_mut_ptr(),
                y.len(),
                std::ptr::null(),
            )
        };
        assert_eq!(status as i64, header_value("CQ4_ERR_BAD_PRECISION"));
    }
}
