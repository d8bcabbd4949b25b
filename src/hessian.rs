//! The calibration Hessian `H = Xᵀ X` of a Linear layer's inputs, summed in
//! f64 over batches of activations: what the error-compensating encoder
//! ([`Encoder::ErrorCompensating`](crate::Encoder::ErrorCompensating))
//! reads.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, Par};
use rayon::prelude::*;

use crate::alloc;
use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels::threads;
use crate::layout::Layout;
use crate::options::Options;

/// Activation rows converted to f64 per product: bounds the scratch to
/// `ROWS_PER_STEP * cols` f64.
const ROWS_PER_STEP: usize = 256;
/// Rows of `H` per product. Fixed, so that every entry is summed by the
/// same product whatever the thread count.
const STRIPE: usize = 64;

/// `H = Xᵀ X` (`[cols, cols]`, row-major, f64) accumulated over batches of
/// activations `X` (`[rows, cols]`: one row per token, as the layer reads
/// them), with the number of rows seen. The sum is not divided by that
/// number: the encoder's result does not depend on `H`'s scale.
///
/// Error: products of f32, f16 or bf16 values are exact in f64; each entry
/// is a sum of `samples` of them in f64 arithmetic, so within `samples *
/// 2^-53 * sum |x_ki x_kj|` of the exact sum (the usual bound for a
/// sum of products, Higham, "Accuracy and Stability of Numerical
/// Algorithms", section 3.1). How the rows are split into calls changes
/// only that rounding.
///
/// ```
/// use cortex_q4::{Hessian, Options};
/// let mut h = Hessian::new(2)?;
/// h.accumulate(&Options::default(), &[1f32, 2.0, 3.0, 4.0], 2)?;
/// assert_eq!(h.matrix(), &[10.0, 14.0, 14.0, 20.0]);
/// assert_eq!(h.samples(), 2);
/// # Ok::<(), cortex_q4::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Hessian {
    cols: usize,
    samples: u64,
    matrix: Vec<f64>,
}

impl Hessian {
    /// An all-zero Hessian for inputs of `cols` columns (`cols * cols`
    /// f64).
    ///
    /// Errors: [`Error::SizeOverflow`].
    pub fn new(cols: usize) -> Result<Self, Error> {
        let len = Layout::hessian_len(cols)?;
        Ok(Hessian {
            cols,
            samples: 0,
            matrix: alloc::zeroed(len, 0f64),
        })
    }

    /// Adds `Xᵀ X` for the row-major `x` (`[rows, cols]`, at least `rows *
    /// cols` elements; f32, f64, f16 or bf16, f64 rounded to f32 first) on
    /// up to `options.threads` threads.
    ///
    /// Errors, with nothing changed: [`Error::SizeOverflow`],
    /// [`Error::InputTooShort`] (`x`).
    pub fn accumulate<T: Element>(
        &mut self,
        options: &Options,
        x: &[T],
        rows: usize,
    ) -> Result<(), Error> {
        accumulate(options, x, rows, self.cols, &mut self.matrix)?;
        self.samples += rows as u64;
        Ok(())
    }

    /// Columns of the activations (rows and columns of `H`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Activation rows accumulated so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// `H`, `[cols, cols]` row-major, symmetric bit for bit.
    pub fn matrix(&self) -> &[f64] {
        &self.matrix
    }
}

/// Adds `Xᵀ X` into `h` (`[cols, cols]` row-major, at least `cols * cols`
/// elements): to its upper triangle (`i <= j`), which is then copied to the
/// lower one. What [`Hessian::accumulate`] and the C layer run.
pub(crate) fn accumulate<T: Element>(
    options: &Options,
    x: &[T],
    rows: usize,
    cols: usize,
    h: &mut [f64],
) -> Result<(), Error> {
    let len = Layout::hessian_len(cols)?;
    let elements = rows.checked_mul(cols).ok_or(Error::SizeOverflow)?;
    Layout::check_input(Buffer::Source, elements, x.len())?;
    Layout::check_output(Buffer::Hessian, len, h.len())?;
    let h = &mut h[..len];
    if elements == 0 {
        return Ok(());
    }
    for batch in x[..elements].chunks(ROWS_PER_STEP * cols) {
        let n = batch.len() / cols;
        // Column-major, as the products read it.
        let step = Mat::<f64>::from_fn(n, cols, |i, j| batch[i * cols + j].to_f32() as f64);
        add_products(options.threads, &step, h, cols);
    }
    for i in 0..cols {
        for j in 0..i {
            h[i * cols + j] = h[j * cols + i];
        }
    }
    Ok(())
}

/// `h[i][j] += sum_k x[k][i] x[k][j]` for `i <= j` (and `j < i` inside
/// each stripe's diagonal block), stripe by stripe of [`STRIPE`] rows.
fn add_products(threads: usize, x: &Mat<f64>, h: &mut [f64], cols: usize) {
    let stripes = |first_row: usize, h: &mut [f64]| {
        for (s, stripe) in h.chunks_mut(STRIPE * cols).enumerate() {
            let i0 = first_row + s * STRIPE;
            let height = stripe.len() / cols;
            let dst = MatMut::from_row_major_slice_mut(stripe, height, cols);
            matmul(
                dst.subcols_mut(i0, cols - i0),
                Accum::Add,
                x.subcols(i0, height).transpose(),
                x.subcols(i0, cols - i0),
                1.0,
                Par::Seq,
            );
        }
    };
    // Tasks of whole stripes, so that every stripe is the same product
    // whoever runs it.
    let task_rows =
        threads::rows_per_task(cols, x.nrows() * cols, threads).next_multiple_of(STRIPE);
    if task_rows >= cols {
        return stripes(0, h);
    }
    h.par_chunks_mut(task_rows * cols)
        .enumerate()
        .for_each(|(t, h)| stripes(t * task_rows, h));
}
