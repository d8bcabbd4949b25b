//! The prepared weight form: a packed matrix rearranged once for products,
//! 16 rows interleaved per panel with each group's scales beside its
//! nibbles, so that register-blocked int8 GEMM kernels read it in one
//! stream at any batch size. The storage format does not change; this is
//! a second copy, about as large (see [`PreparedMatrix::size`]).
//!
//! The bytes are self-describing: a 64-byte header (magic `CQ4PANEL`,
//! [`PREPARED_VERSION`], shape, group size, body length, largest scale
//! magnitude), then the body of [`PanelLayout`]. A C caller may own them
//! (`cq4_prepared_size`, `cq4_prepare`) and hand them to every product;
//! each product checks the header against the buffer's length. The rest
//! is opaque: change it only by preparing again (changed bytes give
//! unspecified outputs, never a fault; the int8 kernels trust the largest
//! scale magnitude to skip their clamp).

use std::ops::Range;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels::gemm::{
    exact_chunk, int8_chunk_groups, max_abs, needs_clamp, ActivationsLayout, PanelActivations,
    PanelLayout, PANEL_ROWS,
};
use crate::kernels::{self, threads};
use crate::layout::Layout;
use crate::matmul_api::{PackedMatrix, Plan, Precision, Sink};
use crate::options::Options;

/// The version of the prepared form this library writes and reads.
pub const PREPARED_VERSION: u32 = 1;
/// Bytes of the header before the body.
pub const PREPARED_HEADER_BYTES: usize = 64;
const MAGIC: [u8; 8] = *b"CQ4PANEL";
const ACTIVATIONS_MAGIC: [u8; 8] = *b"CQ4INT8A";

/// Bytes of int8 activations per row block that a thread keeps in its L2
/// cache while it runs its panels against them (256 KiB measured ahead of
/// 1 MiB at batch 512 on 4096 columns; 128 KiB alike).
const INT8_TILE_BYTES: usize = 1 << 18;
/// The same for the f32 activations of exact products, which decode each
/// panel once per block: larger blocks decode less often.
const EXACT_TILE_BYTES: usize = 1 << 20;

/// A prepared matrix in memory this library allocated, 64-byte aligned.
#[derive(Clone, Debug)]
pub struct PreparedMatrix {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

/// Prepared bytes checked against their header: what products read.
#[derive(Clone, Copy, Debug)]
pub struct PreparedView<'a> {
    layout: PanelLayout,
    body: &'a [u8],
    max_abs_scale: f32,
}

impl PreparedMatrix {
    /// Bytes of the prepared form of a matrix of `layout`: the header and
    /// `ceil(rows / 16) * 16` rows of `groups_per_row` groups of
    /// `ceil(group_size / 8) * 4 + 4` bytes each (nibbles padded to whole
    /// 8-column steps, then the f32 scale).
    ///
    /// Errors: [`Error::SizeOverflow`].
    pub fn size(layout: &Layout) -> Result<usize, Error> {
        PanelLayout::new(*layout)?
            .len
            .checked_add(PREPARED_HEADER_BYTES)
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(Error::SizeOverflow)
    }

    /// Prepares `matrix` on up to `options.threads` threads.
    ///
    /// Errors: [`Error::UnsupportedKernel`], [`Error::SizeOverflow`].
    pub fn new(matrix: &PackedMatrix, options: &Options) -> Result<Self, Error> {
        let len = Self::size(matrix.layout())?;
        options.kernel()?;
        let mut storage = vec![0u8; len + 63];
        let offset = storage.as_ptr().align_offset(64).min(63);
        prepare(matrix, options, &mut storage[offset..offset + len]);
        Ok(PreparedMatrix {
            storage,
            offset,
            len,
        })
    }

    /// Prepares `matrix` into `out` (at least [`size`](Self::size) bytes;
    /// exactly that many are written), on up to `options.threads`
    /// threads. Any alignment works; 64 bytes is fastest.
    ///
    /// Errors, with nothing written: [`Error::UnsupportedKernel`],
    /// [`Error::SizeOverflow`], [`Error::OutputTooSmall`].
    pub fn prepare_into(
        matrix: &PackedMatrix,
        options: &Options,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let len = Self::size(matrix.layout())?;
        options.kernel()?;
        Layout::check_output(Buffer::Prepared, len, out.len())?;
        prepare(matrix, options, &mut out[..len]);
        Ok(())
    }

    /// The prepared bytes: header and body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + self.len]
    }

    /// The checked view products read.
    pub fn view(&self) -> PreparedView<'_> {
        // The bytes were written by `prepare`: their header is sound.
        PreparedView::from_bytes(self.as_bytes()).expect("a prepared matrix reads back")
    }

    /// The layout of the packed matrix this was prepared from.
    pub fn layout(&self) -> Layout {
        self.view().layout.weights
    }

    /// [`PreparedView::matmul`].
    pub fn matmul<X: Element>(
        &self,
        options: &Options,
        x: &[X],
        batch: usize,
        precision: Precision,
        y: &mut [f32],
    ) -> Result<(), Error> {
        self.view().matmul(options, x, batch, precision, y)
    }

    /// [`PreparedView::matmul_rows`].
    #[allow(clippy::too_many_arguments)] // mirrors the C entry point
    pub fn matmul_rows<X: Element>(
        &self,
        options: &Options,
        x: &[X],
        batch: usize,
        precision: Precision,
        rows: Range<usize>,
        y: &mut [f32],
        y_stride: usize,
    ) -> Result<(), Error> {
        self.view()
            .matmul_rows(options, x, batch, precision, rows, y, y_stride)
    }
}

/// Writes the header and body of `matrix`'s prepared form into `out`
/// (exactly its size).
fn prepare(matrix: &PackedMatrix, options: &Options, out: &mut [u8]) {
    let layout = PanelLayout::new(*matrix.layout()).expect("sized by the caller");
    let (header, body) = out.split_at_mut(PREPARED_HEADER_BYTES);
    let l = &layout.weights;
    let words = [l.rows, l.cols, l.group_size, layout.len];
    write_header(header, &MAGIC, words, max_abs(matrix.scales()));
    if layout.len == 0 {
        // No rows or no columns: a header alone.
        return;
    }
    let fill = |(p, panel): (usize, &mut [u8])| {
        layout.fill_panel(matrix.packed(), matrix.scales(), p, panel)
    };
    let panels = body.chunks_exact_mut(layout.panel_bytes);
    let per_task = threads::rows_per_task(layout.panels, layout.panel_bytes, options.threads);
    if per_task >= layout.panels {
        panels.enumerate().for_each(fill);
    } else {
        body.par_chunks_exact_mut(layout.panel_bytes)
            .with_min_len(per_task)
            .enumerate()
            .for_each(fill);
    }
}

/// Writes a header of the prepared forms: `magic`, [`PREPARED_VERSION`]
/// (u32), 4 zero bytes, four u64 `words`, an f32 `value`, zeros;
/// little-endian.
fn write_header(header: &mut [u8], magic: &[u8; 8], words: [usize; 4], value: f32) {
    header.fill(0);
    header[..8].copy_from_slice(magic);
    header[8..12].copy_from_slice(&PREPARED_VERSION.to_le_bytes());
    for (i, v) in words.into_iter().enumerate() {
        header[16 + 8 * i..24 + 8 * i].copy_from_slice(&(v as u64).to_le_bytes());
    }
    header[48..52].copy_from_slice(&value.to_le_bytes());
}

/// The words and value of a header [`write_header`] could have written
/// with `magic`, or `None`.
fn read_words(header: &[u8], magic: &[u8; 8]) -> Option<([usize; 4], f32)> {
    let header = header.get(..PREPARED_HEADER_BYTES)?;
    let word = |i: usize| u64::from_le_bytes(header[16 + 8 * i..24 + 8 * i].try_into().unwrap());
    let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
    if header[..8] != magic[..] || version != PREPARED_VERSION || header[12..16] != [0; 4] {
        return None;
    }
    let mut words = [0usize; 4];
    for (i, w) in words.iter_mut().enumerate() {
        *w = usize::try_from(word(i)).ok()?;
    }
    let value = f32::from_le_bytes(header[48..52].try_into().unwrap());
    Some((words, value))
}

/// The panel layout and largest scale magnitude a prepared matrix's header
/// (its first [`PREPARED_HEADER_BYTES`] bytes) describes;
/// [`Error::BadPrepared`] unless `prepare` could have written it.
pub(crate) fn read_header(header: &[u8]) -> Result<(PanelLayout, f32), Error> {
    let ([rows, cols, group_size, len], max) =
        read_words(header, &MAGIC).ok_or(Error::BadPrepared)?;
    let weights = Layout::new(rows, cols, group_size).map_err(|_| Error::BadPrepared)?;
    let layout = PanelLayout::new(weights).map_err(|_| Error::BadPrepared)?;
    if len != layout.len {
        return Err(Error::BadPrepared);
    }
    Ok((layout, max))
}

impl<'a> PreparedView<'a> {
    /// Checks prepared bytes (from [`PreparedMatrix::as_bytes`] or
    /// `cq4_prepare`): header, then length. Longer buffers are cut to the
    /// prepared size.
    ///
    /// Errors: [`Error::BadPrepared`] (no header of this version, or one
    /// whose shape or length is impossible), [`Error::InputTooShort`]
    /// (fewer bytes than the header says).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let header = bytes
            .get(..PREPARED_HEADER_BYTES)
            .ok_or(Error::BadPrepared)?;
        let (layout, max_abs_scale) = read_header(header)?;
        let end = PREPARED_HEADER_BYTES + layout.len;
        Layout::check_input(Buffer::Prepared, end, bytes.len())?;
        Ok(PreparedView {
            layout,
            body: &bytes[PREPARED_HEADER_BYTES..end],
            max_abs_scale,
        })
    }

    /// The layout of the packed matrix this was prepared from.
    pub fn layout(&self) -> &Layout {
        &self.layout.weights
    }

    /// [`PackedMatrix::matmul`] on the prepared form: the same shapes,
    /// buffers and errors. Int8 outputs are those of the panel kernels'
    /// scalar twin bit for bit (each output one f32 chain over its groups,
    /// see `kernels::gemm`), whatever the kernel, threads and row split;
    /// they agree with the unprepared int8 product up to the order of the
    /// f32 sums.
    pub fn matmul<X: Element>(
        &self,
        options: &Options,
        x: &[X],
        batch: usize,
        precision: Precision,
        y: &mut [f32],
    ) -> Result<(), Error> {
        let rows = self.layout.weights.rows;
        self.matmul_rows(options, x, batch, precision, 0..rows, y, rows)
    }

    /// [`PackedMatrix::matmul_rows`] on the prepared form.
    #[allow(clippy::too_many_arguments)] // mirrors the C entry point
    pub fn matmul_rows<X: Element>(
        &self,
        options: &Options,
        x: &[X],
        batch: usize,
        precision: Precision,
        rows: Range<usize>,
        y: &mut [f32],
        y_stride: usize,
    ) -> Result<(), Error> {
        let plan = Plan::new(options, &self.layout.weights, batch, rows, y_stride)?;
        Layout::check_input(Buffer::Source, plan.x_len, x.len())?;
        Layout::check_output(Buffer::Destination, plan.y_len, y.len())?;
        // SAFETY: `y` is exclusively borrowed and holds the planned `y_len`.
        unsafe { self.execute(&plan, x, precision, y.as_mut_ptr()) };
        Ok(())
    }

    /// Runs a checked product.
    ///
    /// # Safety
    /// As [`Plan::execute`].
    pub(crate) unsafe fn execute<X: Element>(
        &self,
        plan: &Plan,
        x: &[X],
        precision: Precision,
        y: *mut f32,
    ) {
        let (l, batch) = (&self.layout, plan.batch);
        let sink = Sink::new(y, plan.y_stride);
        // SAFETY: the caller's promise.
        if plan.y_len == 0 || unsafe { plan.write_empty_sums(&sink, l.weights.cols) } {
            return;
        }
        let cols = l.weights.cols;
        match precision {
            Precision::Int8 => {
                let acts =
                    Int8Activations::quantize(plan.kernel, x, batch, cols, l.weights.group_size);
                // SAFETY: the caller's promise; `acts` has the matrix's
                // columns and group size, and the plan's rows.
                unsafe { self.execute_int8(plan, &acts.view().acts, &sink) };
            }
            Precision::Exact => {
                let x = Plan::as_f32(x, batch * cols);
                let panel = |p: usize| &self.body[p * l.panel_bytes..(p + 1) * l.panel_bytes];
                let exact_fn = kernels::panel_exact_kernel(plan.kernel);
                let chunk = exact_chunk(cols).min(cols);
                let tile = EXACT_TILE_BYTES / 4 / cols;
                let scratch = || vec![0f32; chunk * PANEL_ROWS];
                let compute =
                    |scratch: &mut Vec<f32>, p, tile_rows: Range<usize>, out: &mut [f32]| {
                        let x = &x[tile_rows.start * cols..tile_rows.end * cols];
                        out.fill(0.0);
                        for first in (0..cols).step_by(chunk) {
                            let columns = first..(first + chunk).min(cols);
                            // SAFETY: `panel_exact_kernel` returns kernels this
                            // CPU runs; the kernel checks its arguments.
                            unsafe { exact_fn(panel(p), l, x, columns, scratch, out) };
                        }
                    };
                // SAFETY: the caller's promise.
                unsafe { self.run_panels(plan, &sink, tile, scratch, compute) };
            }
        }
    }

    /// Runs a checked int8 product on activations quantized beforehand,
    /// after the empty cases.
    ///
    /// # Safety
    /// As [`Plan::execute`], for `sink`'s pointer; `acts` holds the plan's
    /// activation rows, with this matrix's columns and group size.
    unsafe fn execute_int8(&self, plan: &Plan, acts: &PanelActivations, sink: &Sink) {
        let l = &self.layout;
        let clamp = needs_clamp(self.max_abs_scale, acts.max_abs_scale);
        let panel_fn = kernels::panel_kernel(plan.kernel);
        let tile = INT8_TILE_BYTES / acts.layout.row_len.max(1);
        let (groups, chunk) = (l.weights.groups_per_row, int8_chunk_groups(l));
        let compute = |_: &mut (), p: usize, tile_rows: Range<usize>, out: &mut [f32]| {
            let panel = &self.body[p * l.panel_bytes..(p + 1) * l.panel_bytes];
            out.fill(0.0);
            for first in (0..groups).step_by(chunk) {
                let chunk = first..(first + chunk).min(groups);
                // SAFETY: `panel_kernel` returns kernels this CPU runs; the
                // kernel checks its arguments.
                unsafe { panel_fn(panel, l, acts, tile_rows.clone(), chunk, clamp, out) }
            }
        };
        // SAFETY: the caller's promise.
        unsafe { self.run_panels(plan, sink, tile, || (), compute) };
    }

    /// [`matmul_rows`](Self::matmul_rows) in int8 precision on activations
    /// quantized beforehand ([`Int8Activations`]), so that an engine that
    /// splits one product over its own threads quantizes them once: the
    /// same outputs, bit for bit, as `matmul_rows` on the activations `x`
    /// was quantized from.
    ///
    /// Errors, with nothing written: [`Error::UnsupportedKernel`],
    /// [`Error::BadActivations`] (made for other columns or another group
    /// size than this matrix's), [`Error::BadRowRange`],
    /// [`Error::BadStride`], [`Error::SizeOverflow`],
    /// [`Error::OutputTooSmall`].
    pub fn matmul_rows_int8(
        &self,
        options: &Options,
        x: &Int8ActivationsView,
        rows: Range<usize>,
        y: &mut [f32],
        y_stride: usize,
    ) -> Result<(), Error> {
        let plan = self.plan_int8(options, x, rows, y_stride)?;
        Layout::check_output(Buffer::Destination, plan.y_len, y.len())?;
        let sink = Sink::new(y.as_mut_ptr(), y_stride);
        // SAFETY: `y` is exclusively borrowed and holds the planned
        // `y_len`; `plan_int8` checked `x` against the matrix.
        unsafe { self.execute_int8_checked(&plan, &x.acts, &sink) };
        Ok(())
    }

    /// The checked plan of an int8 product on quantized activations.
    pub(crate) fn plan_int8(
        &self,
        options: &Options,
        x: &Int8ActivationsView,
        rows: Range<usize>,
        y_stride: usize,
    ) -> Result<Plan, Error> {
        options.kernel()?;
        let (w, a) = (&self.layout.weights, &x.acts.layout);
        if (a.cols, a.group_size) != (w.cols, w.group_size) {
            return Err(Error::BadActivations);
        }
        Plan::new(options, w, a.batch, rows, y_stride)
    }

    /// [`Self::execute_int8`] with the empty cases first.
    ///
    /// # Safety
    /// As [`Self::execute_int8`].
    pub(crate) unsafe fn execute_int8_checked(
        &self,
        plan: &Plan,
        acts: &PanelActivations,
        sink: &Sink,
    ) {
        // SAFETY: the caller's promise.
        if plan.y_len == 0 || unsafe { plan.write_empty_sums(sink, self.layout.weights.cols) } {
            return;
        }
        // SAFETY: the caller's promise.
        unsafe { self.execute_int8(plan, acts, sink) };
    }

    /// Runs `compute(state, panel, activation_rows, out)` over the panels
    /// of the plan's rows, `tile` activation rows at a time (at least
    /// one), each task with its own `state`, and writes the plan's rows of
    /// each `out` (16 per activation row) to `sink`.
    ///
    /// # Safety
    /// As [`Plan::execute`], for `sink`'s pointer.
    unsafe fn run_panels<S>(
        &self,
        plan: &Plan,
        sink: &Sink,
        tile: usize,
        state: impl Fn() -> S + Sync,
        compute: impl Fn(&mut S, usize, Range<usize>, &mut [f32]) + Sync,
    ) {
        let (batch, rows) = (plan.batch, plan.rows.clone());
        let tile = tile.clamp(1, batch);
        let panels = rows.start / PANEL_ROWS..rows.end.div_ceil(PANEL_ROWS);
        let run = |task: Range<usize>| {
            let mut state = state();
            let mut out = vec![0f32; tile * PANEL_ROWS];
            for first in (0..batch).step_by(tile) {
                let tile_rows = first..(first + tile).min(batch);
                let out = &mut out[..tile_rows.len() * PANEL_ROWS];
                for p in task.clone() {
                    compute(&mut state, p, tile_rows.clone(), out);
                    let r0 = p * PANEL_ROWS;
                    for r in r0.max(rows.start)..(r0 + PANEL_ROWS).min(rows.end) {
                        for (t, b) in tile_rows.clone().enumerate() {
                            // SAFETY: inside the planned output (the caller's
                            // promise); no other task writes panel p's rows.
                            unsafe { sink.write(b, r - rows.start, out[PANEL_ROWS * t + r - r0]) };
                        }
                    }
                }
            }
        };
        let elements = self.layout.weights.cols.saturating_mul(PANEL_ROWS);
        let per_task = threads::rows_per_task(panels.len(), elements, plan.threads);
        if per_task >= panels.len() {
            run(panels);
        } else {
            let starts: Vec<usize> = panels.clone().step_by(per_task).collect();
            starts
                .into_par_iter()
                .for_each(|start| run(start..(start + per_task).min(panels.end)));
        }
    }
}

/// Activation rows quantized once for int8 products on prepared matrices
/// of their columns and group size (`scale = max |x| / 127` per group, as
/// every int8 product quantizes), in the order the panel kernels read:
/// a 64-byte header (magic `CQ4INT8A`, [`PREPARED_VERSION`], batch,
/// columns, group size, length) and per row the groups' values padded to
/// whole 8-column steps, then the rows' scales and integer corrections.
/// About `batch * cols * 1.25` bytes at g = 32.
#[derive(Clone, Debug)]
pub struct Int8Activations {
    bytes: Vec<u8>,
}

/// Quantized activation bytes checked against their header.
#[derive(Clone, Copy, Debug)]
pub struct Int8ActivationsView<'a> {
    acts: PanelActivations<'a>,
}

impl Int8Activations {
    /// Bytes of `batch` rows of `cols` activations quantized with
    /// `group_size`.
    ///
    /// Errors: [`Error::BadGroupSize`], [`Error::SizeOverflow`].
    pub fn size(batch: usize, cols: usize, group_size: usize) -> Result<usize, Error> {
        ActivationsLayout::new(batch, cols, group_size)?
            .len
            .checked_add(PREPARED_HEADER_BYTES)
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(Error::SizeOverflow)
    }

    /// Quantizes the `batch` rows of `x` (`[batch, cols]`, at least
    /// `batch * cols` elements) with `group_size`.
    ///
    /// Errors: [`Error::UnsupportedKernel`], [`Error::BadGroupSize`],
    /// [`Error::SizeOverflow`], [`Error::InputTooShort`].
    pub fn new<X: Element>(
        options: &Options,
        x: &[X],
        batch: usize,
        cols: usize,
        group_size: usize,
    ) -> Result<Self, Error> {
        let kernel = options.kernel()?;
        Self::size(batch, cols, group_size)?;
        Layout::check_input(Buffer::Source, batch * cols, x.len())?;
        Ok(Self::quantize(kernel, x, batch, cols, group_size))
    }

    /// [`new`](Self::new) into `out` (at least [`size`](Self::size)
    /// bytes; exactly that many are written).
    ///
    /// Errors, with nothing written: those of `new`,
    /// [`Error::OutputTooSmall`].
    pub fn quantize_into<X: Element>(
        options: &Options,
        x: &[X],
        batch: usize,
        cols: usize,
        group_size: usize,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let kernel = options.kernel()?;
        let size = Self::size(batch, cols, group_size)?;
        Layout::check_input(Buffer::Source, batch * cols, x.len())?;
        Layout::check_output(Buffer::Activations, size, out.len())?;
        write_activations(kernel, x, batch, cols, group_size, &mut out[..size]);
        Ok(())
    }

    /// Quantizes checked arguments.
    fn quantize<X: Element>(
        kernel: crate::Kernel,
        x: &[X],
        batch: usize,
        cols: usize,
        group_size: usize,
    ) -> Self {
        let size = Self::size(batch, cols, group_size).expect("checked by the caller");
        let mut bytes = vec![0u8; size];
        write_activations(kernel, x, batch, cols, group_size, &mut bytes);
        Int8Activations { bytes }
    }

    /// The bytes: header and body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The checked view products read.
    pub fn view(&self) -> Int8ActivationsView<'_> {
        // The bytes were written by `write_activations`.
        Int8ActivationsView::from_bytes(&self.bytes).expect("quantized activations read back")
    }
}

/// Writes the header and body of `x`'s quantized form into `out` (exactly
/// its size).
fn write_activations<X: Element>(
    kernel: crate::Kernel,
    x: &[X],
    batch: usize,
    cols: usize,
    group_size: usize,
    out: &mut [u8],
) {
    let layout = ActivationsLayout::new(batch, cols, group_size).expect("checked by the caller");
    let (header, body) = out.split_at_mut(PREPARED_HEADER_BYTES);
    let max = if batch == 0 || cols == 0 {
        0.0
    } else {
        let x = Plan::as_f32(x, batch * cols);
        let quantized = kernels::quantize_activations(kernel, &x, batch, cols, group_size);
        layout.write(&quantized, body)
    };
    let words = [batch, cols, group_size, layout.len];
    write_header(header, &ACTIVATIONS_MAGIC, words, max);
}

/// The layout and largest scale magnitude a quantized activations header
/// describes; [`Error::BadActivations`] unless `write_activations` could
/// have written it.
pub(crate) fn read_activations_header(header: &[u8]) -> Result<(ActivationsLayout, f32), Error> {
    let ([batch, cols, group_size, len], max) =
        read_words(header, &ACTIVATIONS_MAGIC).ok_or(Error::BadActivations)?;
    let layout =
        ActivationsLayout::new(batch, cols, group_size).map_err(|_| Error::BadActivations)?;
    if len != layout.len {
        return Err(Error::BadActivations);
    }
    Ok((layout, max))
}

impl<'a> Int8ActivationsView<'a> {
    /// Checks quantized activation bytes (from
    /// [`Int8Activations::as_bytes`] or `cq4_quantize_activations_*`):
    /// header, then length. Longer buffers are cut to their size.
    ///
    /// Errors: [`Error::BadActivations`], [`Error::InputTooShort`].
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let header = bytes
            .get(..PREPARED_HEADER_BYTES)
            .ok_or(Error::BadActivations)?;
        let (layout, max_abs_scale) = read_activations_header(header)?;
        let end = PREPARED_HEADER_BYTES + layout.len;
        Layout::check_input(Buffer::Activations, end, bytes.len())?;
        Ok(Int8ActivationsView {
            acts: PanelActivations {
                layout,
                body: &bytes[PREPARED_HEADER_BYTES..end],
                max_abs_scale,
            },
        })
    }

    /// Activation rows held.
    pub fn batch(&self) -> usize {
        self.acts.layout.batch
    }

    /// Columns per row.
    pub fn cols(&self) -> usize {
        self.acts.layout.cols
    }

    /// The group size they were quantized with.
    pub fn group_size(&self) -> usize {
        self.acts.layout.group_size
    }

    /// The kernels' view.
    pub(crate) fn panel_activations(&self) -> &PanelActivations<'a> {
        &self.acts
    }
}
