//! The calibration Hessian through the C ABI: its size, and `Xᵀ X` added
//! into a caller's buffer, for `CQ4_ENCODER_ERROR_COMPENSATING`.

use half::{bf16, f16};

use super::call::Call;
use super::cq4_status;
use super::options::{cq4_options, read_options};
use crate::element::Element;
use crate::hessian;
use crate::layout::Layout;
use crate::options::Options;

/// How far `H[i][j]` may be from `H[j][i]` in the Hessian of
/// `CQ4_ENCODER_ERROR_COMPENSATING`, as a fraction of `sqrt(H[i][i]
/// H[j][j])` (the bound on `|H[i][j]|` of a positive semi-definite matrix):
/// room for a Hessian summed in another order than
/// `cq4_hessian_accumulate_*`'s, which is symmetric bit for bit.
pub const CQ4_HESSIAN_SYMMETRY_TOLERANCE: f64 = 1e-6;
const _: () = assert!(CQ4_HESSIAN_SYMMETRY_TOLERANCE == crate::encoders::SYMMETRY_TOLERANCE);

call_kind! {
    /// `cq4_hessian_size`: `cols * cols`, written to `out`.
    struct HessianSize {
        cols: usize,
        out: value_out<usize>,
    }
}

impl Call for HessianSize {
    type Choices = ();
    type Shape = usize;

    unsafe fn choose(&mut self) -> Result<(), cq4_status> {
        Ok(())
    }

    fn shape(&mut self, _: &()) -> Result<usize, cq4_status> {
        Ok(Layout::hessian_len(self.cols)?)
    }

    unsafe fn run(self, _: (), elements: usize) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        unsafe { self.out.write(elements) };
        Ok(())
    }
}

/// Writes to `*elements` the f64 elements of the Hessian of a layer with
/// `cols` inputs (the weights' `cols`): `cols * cols`, the `hessian_len` of
/// `cq4_hessian_accumulate_*` and of `cq4_encoder_options`; allocate
/// `cols * cols * sizeof(double)` bytes.
///
/// Reads nothing; writes `*elements` on success only. Returns `CQ4_OK`,
/// `CQ4_ERR_NULL_POINTER` / `CQ4_ERR_MISALIGNED_POINTER` (`elements`) or
/// `CQ4_ERR_SIZE_OVERFLOW` (`cols * cols` overflows `size_t`, or its bytes
/// exceed `PTRDIFF_MAX`).
///
/// # Safety
/// `elements` must be NULL or valid for writing one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn cq4_hessian_size(cols: usize, elements: *mut usize) -> cq4_status {
    forward! { HessianSize::new(cols, elements) }
}

call_kind! {
    /// The `cq4_hessian_accumulate_*` functions: `xᵀ x` added into
    /// `hessian`.
    struct Accumulate<T> {
        x: input<T>[x_len],
        rows: usize,
        cols: usize,
        hessian: in_out<f64>[hessian_len],
        options: value_in<cq4_options>.optional(),
    }
}

impl<T: Element> Call for Accumulate<T> {
    type Choices = Options;
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<Options, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        unsafe { read_options(&self.options) }
    }

    fn shape(&mut self, _: &Options) -> Result<(), cq4_status> {
        let h = Layout::hessian_len(self.cols)?;
        let x = self.rows.checked_mul(self.cols);
        self.x.touch(x.ok_or(cq4_status::CQ4_ERR_SIZE_OVERFLOW)?);
        self.hessian.touch(h);
        Ok(())
    }

    unsafe fn run(self, options: Options, _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (x, h) = unsafe { (self.x.slice(), self.hessian.slice_mut()) };
        hessian::accumulate(&options, x, self.rows, self.cols, h)?;
        Ok(())
    }
}

/// Adds `X^T X` into `hessian` (`[cols, cols]` row-major f64): the
/// calibration Hessian that `CQ4_ENCODER_ERROR_COMPENSATING` reads
/// (`cq4_encoder_options.hessian`). `x` (`[rows, cols]` row-major) holds
/// `rows` of the activations the layer multiplies with its weights (one
/// row per token, `cols` the weights' `cols`); call once per batch of
/// calibration activations, on a buffer of `cols * cols` elements
/// (`cq4_hessian_size`) that you zero-filled before the first call:
/// `hessian[i * cols + j] += sum over the rows k of x[k][i] * x[k][j]`
/// for `i <= j`, each then copied to `hessian[j * cols + i]` (what the
/// buffer held below the diagonal is replaced: with zeros or earlier sums,
/// which are symmetric, this is `+=` everywhere; without rows, nothing is
/// written). The sum is not divided by the number of rows (the encoder
/// does not depend on `H`'s scale).
///
/// Error: each product of two inputs is exact in f64; each entry is a sum
/// of them in f64, within `n * 2^-53 * sum |x[k][i] x[k][j]|` of the exact
/// sum, `n` and the sum over all the rows accumulated into the buffer so
/// far (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1).
/// How the rows are split into calls changes only that rounding; the
/// result is symmetric bit for bit (the upper triangle is summed, then
/// copied), and the same whatever `options` (kernel, threads). NaN and
/// infinite inputs propagate (the encoder then refuses the Hessian).
///
/// `options` may be NULL (the calling thread only); its `threads` spread
/// the rows of `H` over the library's pool. One call at a time per
/// `hessian`: to accumulate on several threads of your own, give each its
/// own buffer and add the buffers.
///
/// Reads `x[0 .. rows*cols]` and `hessian[0 .. cols*cols]`. Writes
/// `hessian[0 .. cols*cols]`, nothing else. Returns `CQ4_OK`, or without
/// writing anything, in the order of the shared rules:
/// `CQ4_ERR_NULL_POINTER` (`x`, `hessian`), `CQ4_ERR_MISALIGNED_POINTER`
/// (those, `options`), `CQ4_ERR_BAD_OPTIONS`,
/// `CQ4_ERR_UNSUPPORTED_KERNEL`, `CQ4_ERR_SIZE_OVERFLOW` (`cols*cols`,
/// `rows*cols`, then their bytes), `CQ4_ERR_OVERLAPPING_BUFFERS`
/// (`hessian[0 .. cols*cols]` and `x[0 .. rows*cols]` or `*options`),
/// `CQ4_ERR_INPUT_TOO_SHORT` (`x_len`), `CQ4_ERR_OUTPUT_TOO_SMALL`
/// (`hessian_len`, though the buffer is also read).
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type); `hessian` valid for reads and writes; `options` NULL or
/// one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_hessian_accumulate_f32(
    x: *const f32,
    x_len: usize,
    rows: usize,
    cols: usize,
    hessian: *mut f64,
    hessian_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Accumulate::new(x, x_len, rows, cols, hessian, hessian_len, options) }
}

/// As `cq4_hessian_accumulate_f32`, from IEEE binary16 bit patterns
/// (converted exactly first).
///
/// # Safety
/// As `cq4_hessian_accumulate_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_hessian_accumulate_f16(
    x: *const u16,
    x_len: usize,
    rows: usize,
    cols: usize,
    hessian: *mut f64,
    hessian_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Accumulate::<f16>::new(x.cast(), x_len, rows, cols, hessian, hessian_len, options) }
}

/// As `cq4_hessian_accumulate_f32`, from bfloat16 bit patterns (converted
/// exactly first).
///
/// # Safety
/// As `cq4_hessian_accumulate_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_hessian_accumulate_bf16(
    x: *const u16,
    x_len: usize,
    rows: usize,
    cols: usize,
    hessian: *mut f64,
    hessian_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Accumulate::<bf16>::new(x.cast(), x_len, rows, cols, hessian, hessian_len, options) }
}
