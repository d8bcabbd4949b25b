//! The prepared weight form through the C ABI: its size, preparing it into
//! caller memory, products on it, and activations quantized once for them.

use std::ops::Range;

use half::{bf16, f16};

use super::call::{Buf, Call};
use super::cq4_status;
use super::matmul::{cq4_matrix, precision_from_id};
use super::options::{cq4_options, read_options};
use crate::element::Element;
use crate::error::Error;
use crate::kernels::gemm::PanelLayout;
use crate::layout::Layout;
use crate::matmul_api::Sink;
use crate::matmul_api::{PackedMatrix, Plan, Precision};
use crate::options::Options;
use crate::prepared::{
    read_activations_header, read_header, Int8Activations, Int8ActivationsView, PreparedMatrix,
    PreparedView, PREPARED_HEADER_BYTES,
};

/// The version of the prepared form this library writes and reads
/// (`cq4_prepare`'s header carries it; a product refuses any other).
pub const CQ4_PREPARED_VERSION: u32 = 1;
const _: () = assert!(CQ4_PREPARED_VERSION == crate::prepared::PREPARED_VERSION);

call_kind! {
    /// `cq4_prepared_size` and `cq4_activations_size`: `size_of(a, cols,
    /// group_size)` (rows or batch first), written to `out`.
    struct SizeQuery {
        size_of: fn(usize, usize, usize) -> Result<usize, Error>,
        rows: usize,
        cols: usize,
        group_size: usize,
        out: value_out<usize>,
    }
}

impl Call for SizeQuery {
    type Choices = ();
    type Shape = usize;

    unsafe fn choose(&mut self) -> Result<(), cq4_status> {
        Ok(())
    }

    fn shape(&mut self, _: &()) -> Result<usize, cq4_status> {
        Ok((self.size_of)(self.rows, self.cols, self.group_size)?)
    }

    unsafe fn run(self, _: (), size: usize) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        unsafe { self.out.write(size) };
        Ok(())
    }
}

/// The prepared form's bytes for a `[rows, cols]` matrix at `group_size`.
fn prepared_size(rows: usize, cols: usize, group_size: usize) -> Result<usize, Error> {
    PreparedMatrix::size(&Layout::new(rows, cols, group_size)?)
}

/// Writes to `*size` the bytes of the prepared form of a `[rows, cols]`
/// matrix packed with `group_size`: a 64-byte header (magic "CQ4PANEL") and
/// `ceil(rows / 16) * 16` rows of `ceil(cols / group_size)` groups of
/// `ceil(group_size / 8) * 4 + 4` bytes each (nibbles padded to whole
/// 8-column steps, and an f32 scale); about `rows * cols / 2` plus the
/// scales, as the packed matrix.
///
/// Reads nothing; writes `*size` on success only. Returns `CQ4_OK`,
/// `CQ4_ERR_NULL_POINTER` / `CQ4_ERR_MISALIGNED_POINTER` (`size`),
/// `CQ4_ERR_BAD_GROUP_SIZE` or `CQ4_ERR_SIZE_OVERFLOW`.
///
/// # Safety
/// `size` must be NULL or valid for writing one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn cq4_prepared_size(
    rows: usize,
    cols: usize,
    group_size: usize,
    size: *mut usize,
) -> cq4_status {
    forward! { SizeQuery::new(prepared_size, rows, cols, group_size, size) }
}

call_kind! {
    /// `cq4_prepare`: the prepared form of `*w` into `prepared`.
    struct Prepare {
        w: value_in<cq4_matrix>,
        prepared: output<u8>[prepared_len],
        options: value_in<cq4_options>.optional(),
        /// `*w`, once read; its buffers are `packed` and `scales`.
        later matrix: Option<cq4_matrix>,
        later packed: Buf<u8>,
        later scales: Buf<f32>,
    }
}

impl Call for Prepare {
    type Choices = Options;
    type Shape = Layout;

    unsafe fn open(&mut self) {
        // SAFETY: `w` passed its checks (`open`'s contract).
        self.matrix = unsafe { self.w.read() };
        if let Some(m) = self.matrix {
            self.packed = Buf::input(m.packed, m.packed_len);
            self.scales = Buf::input(m.scales, m.scales_len);
        }
    }

    unsafe fn choose(&mut self) -> Result<Options, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        let options = unsafe { read_options(&self.options) }?;
        options.kernel()?;
        Ok(options)
    }

    fn shape(&mut self, _: &Options) -> Result<Layout, cq4_status> {
        let m = self.matrix.ok_or(cq4_status::CQ4_ERR_INTERNAL)?;
        let l = Layout::new(m.rows, m.cols, m.group_size)?;
        self.packed.touch(l.packed_len);
        self.scales.touch(l.scales_len);
        self.prepared.touch(PreparedMatrix::size(&l)?);
        Ok(l)
    }

    unsafe fn run(self, options: Options, l: Layout) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (packed, scales, out) = unsafe {
            (
                self.packed.slice(),
                self.scales.slice(),
                self.prepared.slice_mut(),
            )
        };
        let matrix = PackedMatrix::new(packed, scales, l.rows, l.cols, l.group_size)?;
        PreparedMatrix::prepare_into(&matrix, &options, out)?;
        Ok(())
    }
}

/// Writes the prepared form of the packed matrix `*w` into
/// `prepared[0 .. size]` (`size` from `cq4_prepared_size`): the form the
/// `cq4_prepared_matmul_*` functions read, built once per matrix. The
/// storage format does not change; `*w`'s buffers may be freed afterwards.
/// `prepared` may have any alignment (64 bytes is fastest); the bytes are
/// self-describing and opaque: change them only by preparing again (the
/// products refuse a header whose magic, version, shape, group size and
/// length disagree; other changes give unspecified outputs, never a
/// fault). They do not depend on the CPU, kernel or threads: they may be
/// stored and reused by any build of the same `CQ4_PREPARED_VERSION`.
/// `options` may be NULL (auto kernel, calling thread only); its threads
/// spread the work.
///
/// Reads `*w`, its `packed` and `scales` (layout prefixes). Writes
/// `prepared[0 .. size]`, nothing else. Returns `CQ4_OK`, or without
/// writing anything, in the order of the shared rules:
/// `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER` (the arguments,
/// then the pointers in `*w`), `CQ4_ERR_BAD_OPTIONS`,
/// `CQ4_ERR_UNSUPPORTED_KERNEL`, `CQ4_ERR_BAD_GROUP_SIZE`,
/// `CQ4_ERR_SIZE_OVERFLOW`, `CQ4_ERR_OVERLAPPING_BUFFERS` (`prepared` and
/// `*w`, `*options` or an input's prefix), `CQ4_ERR_INPUT_TOO_SHORT`
/// (`packed_len`, `scales_len`), `CQ4_ERR_OUTPUT_TOO_SMALL`
/// (`prepared_len`).
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type).
#[no_mangle]
pub unsafe extern "C" fn cq4_prepare(
    w: *const cq4_matrix,
    prepared: *mut u8,
    prepared_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Prepare::new(w, prepared, prepared_len, options) }
}

call_kind! {
    /// The `cq4_prepared_matmul_*` functions: as the `cq4_matmul_*` ones,
    /// with the weights in prepared form.
    struct PreparedProduct<X> {
        prepared: input<u8>[prepared_len],
        x: input<X>[x_len],
        batch: usize,
        precision: u32,
        rows: Option<Range<usize>>,
        y: output<f32>[y_len],
        y_stride: Option<usize>,
        options: value_in<cq4_options>.optional(),
        /// The header's bytes, once read (none when `prepared_len` is
        /// shorter than a header).
        later header: Option<[u8; PREPARED_HEADER_BYTES]>,
    }
}

impl<X: Element> Call for PreparedProduct<X> {
    type Choices = (Options, Precision);
    type Shape = Plan;

    unsafe fn open(&mut self) {
        // SAFETY: `prepared` passed its checks (`open`'s contract).
        self.header = unsafe { self.prepared.read_prefix() };
    }

    unsafe fn choose(&mut self) -> Result<Self::Choices, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        let options = unsafe { read_options(&self.options) }?;
        Ok((options, precision_from_id(self.precision)?))
    }

    fn shape(&mut self, (options, _): &Self::Choices) -> Result<Plan, cq4_status> {
        let header = self.header.as_ref().map_or(&[][..], |h| &h[..]);
        let (layout, _): (PanelLayout, f32) = read_header(header)?;
        let l = layout.weights;
        let rows = self.rows.clone().unwrap_or(0..l.rows);
        let plan = Plan::new(
            options,
            &l,
            self.batch,
            rows,
            self.y_stride.unwrap_or(l.rows),
        )?;
        self.prepared.touch(PREPARED_HEADER_BYTES + layout.len);
        self.x.touch(plan.x_len);
        self.y.touch(plan.y_len);
        Ok(plan)
    }

    unsafe fn run(self, (_, precision): Self::Choices, plan: Plan) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (prepared, x) = unsafe { (self.prepared.slice(), self.x.slice()) };
        let view = PreparedView::from_bytes(prepared)?;
        // SAFETY: `y` holds `plan.y_len` elements and overlaps no input
        // (checked); the caller promised no one else touches the elements
        // this call writes, so no slice spans `y`.
        unsafe { view.execute(&plan, x, precision, self.y.as_mut_ptr()) };
        Ok(())
    }
}

/// As `cq4_matmul_f32`, with the weights in the prepared form that
/// `cq4_prepare` wrote to `prepared[0 .. prepared_len]`: faster at every
/// batch size above 1 (register-blocked GEMM kernels). int8 outputs are
/// those of the library's scalar definition bit for bit, whatever the
/// kernel, threads and row split (each output one f32 chain over its
/// groups); they agree with `cq4_matmul_f32`'s up to the order of the f32
/// sums. Exact outputs keep the exact bound of `CQ4_PRECISION_EXACT`.
///
/// Reads `prepared` (its header, then the size it states) and
/// `x[0 .. batch*cols]`. Writes `y[0 .. batch*rows]`, nothing else.
/// Returns `CQ4_OK`, or without writing anything, in the order of the
/// shared rules: `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_BAD_OPTIONS`, `CQ4_ERR_UNSUPPORTED_KERNEL`,
/// `CQ4_ERR_BAD_PRECISION`, `CQ4_ERR_BAD_PREPARED` (`prepared_len` below
/// the 64-byte header, or a header that is not one of this
/// `CQ4_PREPARED_VERSION` with a possible shape and length),
/// `CQ4_ERR_SIZE_OVERFLOW` (`batch*cols` or `y`'s extent),
/// `CQ4_ERR_OVERLAPPING_BUFFERS` (`y` and `*options` or an input's
/// prefix), `CQ4_ERR_INPUT_TOO_SHORT` (`prepared_len` below the size the
/// header states, `x_len`), `CQ4_ERR_OUTPUT_TOO_SMALL` (`y_len`).
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type); `y` must not overlap any input.
#[no_mangle]
pub unsafe extern "C" fn cq4_prepared_matmul_f32(
    prepared: *const u8,
    prepared_len: usize,
    x: *const f32,
    x_len: usize,
    batch: usize,
    precision: u32,
    y: *mut f32,
    y_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { PreparedProduct::new(prepared, prepared_len, x, x_len, batch, precision, None, y,
    y_len, None, options) }
}

/// As `cq4_prepared_matmul_f32` for the weight rows `[row_begin, row_end)`
/// only, as `cq4_matmul_rows_f32` does: writes `y[b * y_stride + (r -
/// row_begin)]` for every `b < batch` and `r` in the range, and nothing
/// else; the results do not depend on how the rows are split (ranges that
/// start inside a panel of 16 rows cost a little more). Also returns
/// `CQ4_ERR_BAD_ROW_RANGE` and `CQ4_ERR_BAD_STRIDE`.
///
/// # Safety
/// As `cq4_prepared_matmul_f32`; in addition, while the call runs no one
/// else may read or write the elements of `y` it writes.
#[no_mangle]
pub unsafe extern "C" fn cq4_prepared_matmul_rows_f32(
    prepared: *const u8,
    prepared_len: usize,
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
    forward! { PreparedProduct::new(prepared, prepared_len, x, x_len, batch, precision,
    Some(row_begin..row_end), y, y_len, Some(y_stride), options) }
}

/// As `cq4_prepared_matmul_rows_f32`, with IEEE binary16 activations
/// (converted exactly to f32 first).
///
/// # Safety
/// As `cq4_prepared_matmul_rows_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_prepared_matmul_rows_f16(
    prepared: *const u8,
    prepared_len: usize,
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
    forward! { PreparedProduct::<f16>::new(prepared, prepared_len, x.cast(), x_len, batch,
    precision, Some(row_begin..row_end), y, y_len, Some(y_stride), options) }
}

/// As `cq4_prepared_matmul_rows_f32`, with bfloat16 activations
/// (converted exactly to f32 first).
///
/// # Safety
/// As `cq4_prepared_matmul_rows_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_prepared_matmul_rows_bf16(
    prepared: *const u8,
    prepared_len: usize,
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
    forward! { PreparedProduct::<bf16>::new(prepared, prepared_len, x.cast(), x_len, batch,
    precision, Some(row_begin..row_end), y, y_len, Some(y_stride), options) }
}

/// Writes to `*size` the bytes of `batch` rows of `cols` activations
/// quantized with `group_size` by `cq4_quantize_activations_*`: a 64-byte
/// header (magic "CQ4INT8A"), then per row the values (int8) of its groups padded to whole
/// 8-column steps, then 8 bytes per group and row (scale and integer
/// correction); about `batch * cols * 1.25` at `group_size` 32.
///
/// Reads nothing; writes `*size` on success only. Returns `CQ4_OK`,
/// `CQ4_ERR_NULL_POINTER` / `CQ4_ERR_MISALIGNED_POINTER` (`size`),
/// `CQ4_ERR_BAD_GROUP_SIZE` or `CQ4_ERR_SIZE_OVERFLOW`.
///
/// # Safety
/// `size` must be NULL or valid for writing one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn cq4_activations_size(
    batch: usize,
    cols: usize,
    group_size: usize,
    size: *mut usize,
) -> cq4_status {
    forward! { SizeQuery::new(Int8Activations::size, batch, cols, group_size, size) }
}

call_kind! {
    /// The `cq4_quantize_activations_*` functions: `x` into `out`.
    struct QuantizeActivations<X> {
        x: input<X>[x_len],
        batch: usize,
        cols: usize,
        group_size: usize,
        out: output<u8>[out_len],
        options: value_in<cq4_options>.optional(),
    }
}

impl<X: Element> Call for QuantizeActivations<X> {
    type Choices = Options;
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<Options, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        unsafe { read_options(&self.options) }
    }

    fn shape(&mut self, _: &Options) -> Result<(), cq4_status> {
        let size = Int8Activations::size(self.batch, self.cols, self.group_size)?;
        // `size` checked that `batch * cols` fits.
        self.x.touch(self.batch * self.cols);
        self.out.touch(size);
        Ok(())
    }

    unsafe fn run(self, options: Options, _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (x, out) = unsafe { (self.x.slice(), self.out.slice_mut()) };
        Int8Activations::quantize_into(&options, x, self.batch, self.cols, self.group_size, out)?;
        Ok(())
    }
}

/// Quantizes the `batch` rows of `x` (`[batch, cols]`) once for the int8
/// products of any prepared matrix of `cols` columns and `group_size`
/// (`cq4_prepared_matmul_rows_int8`), into `out[0 .. size]` (`size` from
/// `cq4_activations_size`): per group `scale = max |x| / 127`, `q =
/// round(x / scale)`, as every int8 product quantizes. An engine that
/// splits one product over its own threads quantizes once and hands the
/// same bytes to every thread. `q` is rounded half away from zero and
/// held to [-127, 127]; a group holding NaN or an infinity gets scale NaN.
/// `out` may have any alignment; the bytes are self-describing and opaque
/// (changed bytes give unspecified outputs, never a fault). `options` may
/// be NULL.
///
/// Reads `x[0 .. batch*cols]`. Writes `out[0 .. size]`, nothing else.
/// Returns `CQ4_OK`, or without writing anything, in the order of the
/// shared rules: `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_BAD_OPTIONS`, `CQ4_ERR_UNSUPPORTED_KERNEL`,
/// `CQ4_ERR_BAD_GROUP_SIZE`, `CQ4_ERR_SIZE_OVERFLOW`,
/// `CQ4_ERR_OVERLAPPING_BUFFERS` (`out` and `*options` or `x`'s prefix),
/// `CQ4_ERR_INPUT_TOO_SHORT` (`x_len`), `CQ4_ERR_OUTPUT_TOO_SMALL`
/// (`out_len`).
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type).
#[no_mangle]
pub unsafe extern "C" fn cq4_quantize_activations_f32(
    x: *const f32,
    x_len: usize,
    batch: usize,
    cols: usize,
    group_size: usize,
    out: *mut u8,
    out_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { QuantizeActivations::new(x, x_len, batch, cols, group_size, out, out_len, options) }
}

/// As `cq4_quantize_activations_f32`, from IEEE binary16 bit patterns
/// (converted exactly to f32 first).
///
/// # Safety
/// As `cq4_quantize_activations_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_quantize_activations_f16(
    x: *const u16,
    x_len: usize,
    batch: usize,
    cols: usize,
    group_size: usize,
    out: *mut u8,
    out_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { QuantizeActivations::<f16>::new(x.cast(), x_len, batch, cols, group_size, out,
    out_len, options) }
}

/// As `cq4_quantize_activations_f32`, from bfloat16 bit patterns
/// (converted exactly to f32 first).
///
/// # Safety
/// As `cq4_quantize_activations_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_quantize_activations_bf16(
    x: *const u16,
    x_len: usize,
    batch: usize,
    cols: usize,
    group_size: usize,
    out: *mut u8,
    out_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { QuantizeActivations::<bf16>::new(x.cast(), x_len, batch, cols, group_size, out,
    out_len, options) }
}

call_kind! {
    /// `cq4_prepared_matmul_rows_int8`: a product on quantized activations.
    struct QuantizedProduct {
        prepared: input<u8>[prepared_len],
        activations: input<u8>[activations_len],
        rows: Range<usize>,
        y: output<f32>[y_len],
        y_stride: usize,
        options: value_in<cq4_options>.optional(),
        /// The headers' bytes, once read.
        later prepared_header: Option<[u8; PREPARED_HEADER_BYTES]>,
        later activations_header: Option<[u8; PREPARED_HEADER_BYTES]>,
    }
}

impl Call for QuantizedProduct {
    type Choices = Options;
    type Shape = Plan;

    unsafe fn open(&mut self) {
        // SAFETY: both passed their checks (`open`'s contract).
        unsafe {
            self.prepared_header = self.prepared.read_prefix();
            self.activations_header = self.activations.read_prefix();
        }
    }

    unsafe fn choose(&mut self) -> Result<Options, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        unsafe { read_options(&self.options) }
    }

    fn shape(&mut self, options: &Options) -> Result<Plan, cq4_status> {
        let bytes = |h: &Option<[u8; PREPARED_HEADER_BYTES]>| h.map_or(Vec::new(), |h| h.to_vec());
        let (layout, _) = read_header(&bytes(&self.prepared_header))?;
        let (acts, _) = read_activations_header(&bytes(&self.activations_header))?;
        let w = &layout.weights;
        if (acts.cols, acts.group_size) != (w.cols, w.group_size) {
            return Err(cq4_status::CQ4_ERR_BAD_ACTIVATIONS);
        }
        let plan = Plan::new(options, w, acts.batch, self.rows.clone(), self.y_stride)?;
        self.prepared.touch(PREPARED_HEADER_BYTES + layout.len);
        self.activations.touch(PREPARED_HEADER_BYTES + acts.len);
        self.y.touch(plan.y_len);
        Ok(plan)
    }

    unsafe fn run(self, _: Options, plan: Plan) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (prepared, acts) = unsafe { (self.prepared.slice(), self.activations.slice()) };
        let (view, acts) = (
            PreparedView::from_bytes(prepared)?,
            Int8ActivationsView::from_bytes(acts)?,
        );
        let sink = Sink::new(self.y.as_mut_ptr(), plan.y_stride);
        // SAFETY: `y` holds `plan.y_len` elements and overlaps no input
        // (checked); the caller promised no one else touches the elements
        // this call writes; the activations match the matrix (checked).
        unsafe { view.execute_int8_checked(&plan, acts.panel_activations(), &sink) };
        Ok(())
    }
}

/// As `cq4_prepared_matmul_rows_f32` in `CQ4_PRECISION_INT8`, on
/// activations that `cq4_quantize_activations_*` quantized beforehand
/// (`activations[0 .. activations_len]`, their batch as they state it),
/// so that threads sharing one product quantize once: the same outputs,
/// bit for bit, as `cq4_prepared_matmul_rows_f32` on the activations they
/// were quantized from.
///
/// Reads `prepared` and `activations` (each its header, then the size it
/// states). Writes `y[b * y_stride + (r - row_begin)]` for every row `b`
/// of the activations and `r` in the range, nothing else. Returns
/// `CQ4_OK`, or without writing anything, in the order of the shared
/// rules: `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_BAD_OPTIONS`, `CQ4_ERR_UNSUPPORTED_KERNEL`,
/// `CQ4_ERR_BAD_PREPARED`, `CQ4_ERR_BAD_ACTIVATIONS` (no header of this
/// version with a possible shape and length, or other columns or another
/// group size than the matrix's), `CQ4_ERR_BAD_ROW_RANGE`,
/// `CQ4_ERR_BAD_STRIDE`, `CQ4_ERR_SIZE_OVERFLOW` (`y`'s extent),
/// `CQ4_ERR_OVERLAPPING_BUFFERS` (`y` and `*options` or an input's
/// prefix), `CQ4_ERR_INPUT_TOO_SHORT` (`prepared_len`,
/// `activations_len` below the sizes their headers state),
/// `CQ4_ERR_OUTPUT_TOO_SMALL` (`y_len`).
///
/// # Safety
/// As `cq4_prepared_matmul_rows_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_prepared_matmul_rows_int8(
    prepared: *const u8,
    prepared_len: usize,
    activations: *const u8,
    activations_len: usize,
    row_begin: usize,
    row_end: usize,
    y: *mut f32,
    y_len: usize,
    y_stride: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { QuantizedProduct::new(prepared, prepared_len, activations, activations_len,
    row_begin..row_end, y, y_len, y_stride, options) }
}
