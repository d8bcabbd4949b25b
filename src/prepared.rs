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
//! each product checks the header against the buffer's length. The body is
//! opaque: change it only by preparing again.

use std::ops::Range;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels::gemm::{
    exact_chunk, max_abs, needs_clamp, PanelActivations, PanelLayout, PANEL_ROWS,
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

/// Bytes of activations per row block that a thread keeps in its L2 cache
/// while it runs its panels against them.
const ACTIVATION_TILE_BYTES: usize = 1 << 20;

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
    write_header(header, &layout, max_abs(matrix.scales()));
    let fill = |(p, panel): (usize, &mut [u8])| {
        layout.fill_panel(matrix.packed(), matrix.scales(), p, panel)
    };
    let panels = body.chunks_exact_mut(layout.panel_bytes.max(1));
    let per_task = threads::rows_per_task(layout.panels, layout.panel_bytes, options.threads);
    // Panels of no bytes (no columns) leave nothing to spread, and rayon
    // takes no empty chunks.
    if per_task >= layout.panels || layout.panel_bytes == 0 {
        panels.enumerate().for_each(fill);
    } else {
        body.par_chunks_exact_mut(layout.panel_bytes)
            .with_min_len(per_task)
            .enumerate()
            .for_each(fill);
    }
}

/// The header: magic, version (u32), 4 zero bytes, rows, cols, group size
/// and body length (u64 each), the largest `|scale|` (f32, NaN when a
/// scale is NaN), zeros; little-endian.
fn write_header(header: &mut [u8], layout: &PanelLayout, max_abs_scale: f32) {
    let l = &layout.weights;
    header.fill(0);
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&PREPARED_VERSION.to_le_bytes());
    for (i, v) in [l.rows, l.cols, l.group_size, layout.len]
        .into_iter()
        .enumerate()
    {
        header[16 + 8 * i..24 + 8 * i].copy_from_slice(&(v as u64).to_le_bytes());
    }
    header[48..52].copy_from_slice(&max_abs_scale.to_le_bytes());
}

/// The panel layout and largest scale magnitude a header (its first
/// [`PREPARED_HEADER_BYTES`] bytes) describes; [`Error::BadPrepared`]
/// unless it is one [`write_header`] could have written.
pub(crate) fn read_header(header: &[u8]) -> Result<(PanelLayout, f32), Error> {
    let header = header
        .get(..PREPARED_HEADER_BYTES)
        .filter(|h| h[..8] == MAGIC)
        .ok_or(Error::BadPrepared)?;
    let word = |i: usize| u64::from_le_bytes(header[16 + 8 * i..24 + 8 * i].try_into().unwrap());
    let field = |i: usize| usize::try_from(word(i)).map_err(|_| Error::BadPrepared);
    let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
    if version != PREPARED_VERSION || header[12..16] != [0; 4] {
        return Err(Error::BadPrepared);
    }
    let weights = Layout::new(field(0)?, field(1)?, field(2)?).map_err(|_| Error::BadPrepared)?;
    let layout = PanelLayout::new(weights).map_err(|_| Error::BadPrepared)?;
    if field(3)? != layout.len {
        return Err(Error::BadPrepared);
    }
    let max_abs_scale = f32::from_le_bytes(header[48..52].try_into().unwrap());
    Ok((layout, max_abs_scale))
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
        let x = Plan::as_f32(x, batch * cols);
        let panel = |p: usize| &self.body[p * l.panel_bytes..(p + 1) * l.panel_bytes];
        match precision {
            Precision::Int8 => {
                let quantized = kernels::quantize_activations(
                    plan.kernel,
                    &x,
                    batch,
                    cols,
                    l.weights.group_size,
                );
                let acts = PanelActivations::new(&quantized, batch, l.padded_group);
                let clamp = needs_clamp(self.max_abs_scale, acts.max_abs_scale);
                let panel_fn = kernels::panel_kernel(plan.kernel);
                let tile = ACTIVATION_TILE_BYTES / acts.row_len;
                let compute = |_: &mut (), p, tile_rows, out: &mut [f32]| {
                    // SAFETY: `panel_kernel` returns kernels this CPU runs;
                    // the kernel checks its arguments.
                    unsafe { panel_fn(panel(p), l, &acts, tile_rows, clamp, out) }
                };
                // SAFETY: the caller's promise.
                unsafe { self.run_panels(plan, &sink, tile, || (), compute) };
            }
            Precision::Exact => {
                let exact_fn = kernels::panel_exact_kernel(plan.kernel);
                let chunk = exact_chunk(cols).min(cols);
                let tile = ACTIVATION_TILE_BYTES / 4 / cols;
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
