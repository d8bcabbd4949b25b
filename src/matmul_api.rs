//! Fused products with packed weights, `Y = X W^T`: an engine multiplies
//! its activations by 4-bit weights without unpacking them. Same checking
//! rules as the slice API; a refused call writes nothing.

use std::borrow::Cow;
use std::ops::Range;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels;
pub use crate::kernels::matmul::Precision;
use crate::kernels::matmul::{self, Activations, WeightRows, BATCH_TILE};
use crate::kernels::threads;
use crate::layout::Layout;
use crate::options::Options;

/// A packed `[rows, cols]` matrix borrowed from its bytes and scales,
/// checked against its layout once: what products read.
#[derive(Clone, Copy, Debug)]
pub struct PackedMatrix<'a> {
    packed: &'a [u8],
    scales: &'a [f32],
    layout: Layout,
}

impl<'a> PackedMatrix<'a> {
    /// Borrows `packed` (at least the layout's `packed_len` bytes) and
    /// `scales` (at least `scales_len` f32) as the packed `[rows, cols]`
    /// matrix at `group_size`; longer buffers are cut to the layout.
    ///
    /// Errors: [`Error::BadGroupSize`], [`Error::SizeOverflow`],
    /// [`Error::InputTooShort`].
    pub fn new(
        packed: &'a [u8],
        scales: &'a [f32],
        rows: usize,
        cols: usize,
        group_size: usize,
    ) -> Result<Self, Error> {
        let layout = Layout::new(rows, cols, group_size)?;
        Layout::check_input(Buffer::Packed, layout.packed_len, packed.len())?;
        Layout::check_input(Buffer::Scales, layout.scales_len, scales.len())?;
        Ok(Self::from_checked(packed, scales, layout))
    }

    /// The view of buffers already known to hold `layout`.
    pub(crate) fn from_checked(packed: &'a [u8], scales: &'a [f32], layout: Layout) -> Self {
        PackedMatrix {
            packed: &packed[..layout.packed_len],
            scales: &scales[..layout.scales_len],
            layout,
        }
    }

    /// The matrix's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The packed nibbles: exactly `packed_len` bytes.
    pub fn packed(&self) -> &'a [u8] {
        self.packed
    }

    /// The scales: exactly `scales_len` f32.
    pub fn scales(&self) -> &'a [f32] {
        self.scales
    }

    /// `Y = X W^T` with this matrix as `W`: `y[b * rows + r] = sum_c
    /// x[b * cols + c] * w[r, c]` for the `batch` activation rows of `x`
    /// (`[batch, cols]`, at least `batch * cols` elements) into `y` (f32,
    /// at least `batch * rows`), in `precision`, run as `options` say.
    ///
    /// Errors, with nothing written: [`Error::UnsupportedKernel`],
    /// [`Error::SizeOverflow`], [`Error::InputTooShort`] (`x`),
    /// [`Error::OutputTooSmall`] (`y`).
    pub fn matmul<X: Element>(
        &self,
        options: &Options,
        x: &[X],
        batch: usize,
        precision: Precision,
        y: &mut [f32],
    ) -> Result<(), Error> {
        let rows = self.layout.rows;
        self.matmul_rows(options, x, batch, precision, 0..rows, y, rows)
    }

    /// [`matmul`](Self::matmul) for weight rows `rows` only, so that an
    /// engine can spread a product over its own threads: writes
    /// `y[b * y_stride + (r - rows.start)]` for each activation row `b`
    /// and weight row `r` in `rows`, nothing else (`y` holds at least
    /// `(batch - 1) * y_stride + rows.len()` f32 when anything is
    /// written). For a given kernel and precision, every output is the
    /// same whatever the split.
    ///
    /// Errors, with nothing written: those of `matmul`,
    /// [`Error::BadRowRange`] (reversed, or past the matrix),
    /// [`Error::BadStride`] (`y_stride < rows.len()` with `batch > 1`).
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
        let plan = Plan::new(options, &self.layout, batch, rows, y_stride)?;
        Layout::check_input(Buffer::Source, plan.x_len, x.len())?;
        Layout::check_output(Buffer::Destination, plan.y_len, y.len())?;
        // SAFETY: `y` is exclusively borrowed and holds the planned `y_len`.
        unsafe { plan.execute(self, x, precision, y.as_mut_ptr()) };
        Ok(())
    }

    /// Rows `rows`, as the kernels read them.
    fn rows(&self, rows: Range<usize>) -> WeightRows<'_> {
        let l = &self.layout;
        WeightRows {
            packed: &self.packed[rows.start * l.packed_row_bytes..rows.end * l.packed_row_bytes],
            scales: &self.scales[rows.start * l.groups_per_row..rows.end * l.groups_per_row],
            layout: l,
        }
    }
}

/// Weight rows per kernel call: its outputs stay on the stack, and what a
/// kernel prepares once per call (activation slices, tables) is shared.
const ROWS_PER_CALL: usize = 16;

/// A checked product: what it computes and how many output elements, from
/// its output pointer, it may write.
pub(crate) struct Plan {
    pub(crate) kernel: crate::Kernel,
    pub(crate) threads: usize,
    pub(crate) batch: usize,
    pub(crate) rows: Range<usize>,
    pub(crate) y_stride: usize,
    /// `batch * cols`: activations read.
    pub(crate) x_len: usize,
    /// `(batch - 1) * y_stride + rows.len()`, or 0 when nothing is written.
    pub(crate) y_len: usize,
}

impl Plan {
    /// Checks everything but the buffers, and sizes them.
    pub(crate) fn new(
        options: &Options,
        l: &Layout,
        batch: usize,
        rows: Range<usize>,
        y_stride: usize,
    ) -> Result<Plan, Error> {
        let kernel = options.kernel()?;
        if rows.start > rows.end || rows.end > l.rows {
            return Err(Error::BadRowRange {
                start: rows.start,
                end: rows.end,
                rows: l.rows,
            });
        }
        let width = rows.len();
        if batch > 1 && y_stride < width {
            return Err(Error::BadStride {
                stride: y_stride,
                width,
            });
        }
        let x_len = batch.checked_mul(l.cols).ok_or(Error::SizeOverflow)?;
        let y_len = match (batch, width) {
            (0, _) | (_, 0) => 0,
            _ => (batch - 1)
                .checked_mul(y_stride)
                .and_then(|n| n.checked_add(width))
                .ok_or(Error::SizeOverflow)?,
        };
        Ok(Plan {
            kernel,
            threads: options.threads,
            batch,
            rows,
            y_stride,
            x_len,
            y_len,
        })
    }

    /// Runs the product.
    ///
    /// # Safety
    /// `y` is valid for writes of `y_len` elements, and during the call no
    /// one else reads or writes the elements this plan writes.
    pub(crate) unsafe fn execute<X: Element>(
        &self,
        w: &PackedMatrix,
        x: &[X],
        precision: Precision,
        y: *mut f32,
    ) {
        let (l, rows, batch) = (w.layout, self.rows.clone(), self.batch);
        let sink = Sink::new(y, self.y_stride);
        // SAFETY: the caller's promise.
        if self.y_len == 0 || unsafe { self.write_empty_sums(&sink, l.cols) } {
            return;
        }
        let x = Self::as_f32(x, batch * l.cols);
        let row_kernel = kernels::product_kernel(self.kernel, precision, l.group_size);
        let task_rows = threads::rows_per_task(rows.len(), l.cols, self.threads);
        for (tile, x_tile) in x.chunks(BATCH_TILE * l.cols).enumerate() {
            let tile_batch = x_tile.len() / l.cols;
            let (quantized, split);
            let acts = match precision {
                Precision::Exact => {
                    split = matmul::split_pairs(x_tile, l.cols);
                    Activations::F32 {
                        natural: x_tile,
                        split: &split,
                    }
                }
                Precision::Int8 => {
                    quantized = kernels::quantize_activations(
                        self.kernel,
                        x_tile,
                        tile_batch,
                        l.cols,
                        l.group_size,
                    );
                    Activations::Int8(&quantized)
                }
            };
            let run = |task_rows: Range<usize>| {
                let mut out = [0f32; ROWS_PER_CALL * BATCH_TILE];
                for start in task_rows.clone().step_by(ROWS_PER_CALL) {
                    let chunk = start..(start + ROWS_PER_CALL).min(task_rows.end);
                    let out = &mut out[..chunk.len() * tile_batch];
                    // SAFETY: `row_kernel` only returns kernels this CPU runs,
                    // for a group size and precision they handle; `acts`
                    // matches the precision; `out` holds `tile_batch`
                    // values per row of the chunk, which is not empty
                    // (nor are the columns).
                    unsafe { row_kernel.run(&w.rows(chunk.clone()), &acts, out) };
                    for (r, row_out) in chunk.zip(out.chunks_exact(tile_batch)) {
                        for (b, &v) in row_out.iter().enumerate() {
                            // SAFETY: inside the planned output (the caller's
                            // promise), and no other task writes row `r`.
                            unsafe { sink.write(tile * BATCH_TILE + b, r - rows.start, v) };
                        }
                    }
                }
            };
            if task_rows >= rows.len() {
                run(rows.clone());
            } else {
                let starts: Vec<usize> = rows.clone().step_by(task_rows).collect();
                starts
                    .into_par_iter()
                    .for_each(|start| run(start..(start + task_rows).min(rows.end)));
            }
        }
    }
}

impl Plan {
    /// With no columns, writes the empty sums (0) of this plan's outputs
    /// and says so; otherwise writes nothing.
    ///
    /// # Safety
    /// As [`Plan::execute`], for `sink`'s pointer.
    pub(crate) unsafe fn write_empty_sums(&self, sink: &Sink, cols: usize) -> bool {
        if cols != 0 {
            return false;
        }
        for b in 0..self.batch {
            for i in 0..self.rows.len() {
                // SAFETY: inside the planned output (the caller's promise).
                unsafe { sink.write(b, i, 0.0) };
            }
        }
        true
    }

    /// The first `n` activations as f32, converted when they are not.
    pub(crate) fn as_f32<X: Element>(x: &[X], n: usize) -> Cow<'_, [f32]> {
        let x = &x[..n];
        match X::as_f32(x) {
            Some(x) => Cow::Borrowed(x),
            None => Cow::Owned(x.iter().map(|v| v.to_f32()).collect()),
        }
    }
}

/// The output of a product, written element by element from several tasks.
pub(crate) struct Sink {
    ptr: *mut f32,
    stride: usize,
}

// SAFETY: tasks share the pointer but write disjoint elements (distinct
// weight rows), and the buffer it points into outlives every task.
unsafe impl Sync for Sink {}

impl Sink {
    /// The output at `ptr`, activation row `b` starting at `b * stride`.
    pub(crate) fn new(ptr: *mut f32, stride: usize) -> Sink {
        Sink { ptr, stride }
    }

    /// # Safety
    /// `b * stride + i` is inside the output, and no other thread writes it.
    pub(crate) unsafe fn write(&self, b: usize, i: usize, value: f32) {
        // SAFETY: as the caller promised.
        unsafe { *self.ptr.add(b * self.stride + i) = value };
    }
}
