//! An independent model of how the header says a call refuses its
//! arguments, written from its "Rules shared by every function" and each
//! function's own list, in the header's order:
//!
//!  1. a NULL pointer, then a misaligned one (a `cq4_matrix`'s pointers
//!     after the arguments');
//!  2. `cq4_options`, then `cq4_encoder_options` (read as far as its
//!     `struct_size` goes; its importance and Hessian pointers' alignment
//!     last), then the precision id;
//!  3. the shape: the layout, a product's row range and stride, every other
//!     size, each prefix's byte count (at most `PTRDIFF_MAX`);
//!  4. an output's prefix sharing a byte with another buffer's prefix,
//!     each counted within its declared length;
//!  5. an input shorter than its prefix; 6. an output (a buffer read and
//!     written counts as one); 7. the values read: importance weights, a
//!     Hessian's entries, then whether it is positive definite once damped.
//!
//! The prepared form's products check its header (`CQ4_ERR_BAD_PREPARED`)
//! at the start of step 3, before the row range; a product on quantized
//! activations then theirs (`CQ4_ERR_BAD_ACTIVATIONS`: no header, or
//! quantized for other columns or another group size).
//!
//! Each target strings these steps together for its entry points; none of
//! the library's own checks is called.

use std::mem::{align_of, offset_of, size_of};

use cortex_q4::ffi::cq4_status::{self, *};
use cortex_q4::ffi::{cq4_encoder_options, cq4_kernel_supported, cq4_options};

/// What a call must return: `Ok` when every check passes (it then runs).
pub type Verdict = Result<(), cq4_status>;

/// One buffer of a call, as the checks see it.
#[derive(Clone, Copy, Debug)]
pub struct Buf {
    pub addr: usize,
    /// Bytes per element.
    pub size: usize,
    pub align: usize,
    /// The declared length, in elements.
    pub len: usize,
    /// The prefix the call touches, in elements (known after step 3).
    pub used: usize,
    pub out: bool,
    /// NULL is an error; otherwise NULL means "not given".
    pub required: bool,
}

impl Buf {
    fn new<T>(addr: usize, len: usize, used: usize, out: bool) -> Buf {
        Buf {
            addr,
            size: size_of::<T>(),
            align: align_of::<T>(),
            len,
            used,
            out,
            required: true,
        }
    }

    /// An array of `T` the call reads, `len` elements declared.
    pub fn input<T>(addr: usize, len: usize) -> Buf {
        Buf::new::<T>(addr, len, 0, false)
    }

    /// An array of `T` the call writes.
    pub fn output<T>(addr: usize, len: usize) -> Buf {
        Buf::new::<T>(addr, len, 0, true)
    }

    /// One struct the call reads: an input of one element.
    pub fn value_in<T>(addr: usize) -> Buf {
        Buf::new::<T>(addr, 1, 1, false)
    }

    /// One struct the call writes.
    pub fn value_out<T>(addr: usize) -> Buf {
        Buf::new::<T>(addr, 1, 1, true)
    }

    /// This buffer, NULL meaning "not given".
    pub fn optional(self) -> Buf {
        Buf {
            required: false,
            ..self
        }
    }

    /// This buffer touching `used` elements.
    pub fn touching(self, used: usize) -> Buf {
        Buf { used, ..self }
    }

    pub fn given(&self) -> bool {
        self.addr != 0
    }

    /// The prefix's bytes, if their count fits `PTRDIFF_MAX`.
    pub fn prefix_bytes(&self) -> Option<usize> {
        self.used
            .checked_mul(self.size)
            .filter(|&b| b <= isize::MAX as usize)
    }

    /// The bytes of the prefix within the declared length, as addresses
    /// (in u128: a dangling address near the top must not wrap).
    fn span(&self) -> (u128, u128) {
        let start = self.addr as u128;
        let bytes = self.used.min(self.len) as u128 * self.size as u128;
        (start, start + if self.given() { bytes } else { 0 })
    }
}

/// Step 1: NULL first, then misalignment.
pub fn pointers(bufs: &[Buf]) -> Verdict {
    if bufs.iter().any(|b| b.required && !b.given()) {
        return Err(CQ4_ERR_NULL_POINTER);
    }
    if bufs.iter().any(|b| b.addr % b.align != 0) {
        return Err(CQ4_ERR_MISALIGNED_POINTER);
    }
    Ok(())
}

/// The end of step 3 (each prefix's byte count) and steps 4 to 6, over
/// every buffer of the call.
pub fn extents(bufs: &[Buf]) -> Verdict {
    let given = || bufs.iter().filter(|b| b.given());
    if given().any(|b| b.prefix_bytes().is_none()) {
        return Err(CQ4_ERR_SIZE_OVERFLOW);
    }
    for (i, out) in bufs.iter().enumerate().filter(|(_, b)| b.out) {
        let (s, e) = out.span();
        let shares = |b: &Buf| {
            let (t, f) = b.span();
            s < e && t < f && s < f && t < e
        };
        if bufs.iter().enumerate().any(|(j, b)| j != i && shares(b)) {
            return Err(CQ4_ERR_OVERLAPPING_BUFFERS);
        }
    }
    if given().any(|b| !b.out && b.len < b.used) {
        return Err(CQ4_ERR_INPUT_TOO_SHORT);
    }
    if given().any(|b| b.out && b.len < b.used) {
        return Err(CQ4_ERR_OUTPUT_TOO_SMALL);
    }
    Ok(())
}

/// Kernel ids the header defines (`cq4_kernel`): AUTO to NEON_I8MM.
const KERNEL_IDS: u32 = 8;

/// Step 2 for `cq4_options` (`None`: NULL, the defaults): a `struct_size`
/// other than this version's or an unknown kernel id is BAD_OPTIONS, a
/// kernel this CPU does not run UNSUPPORTED_KERNEL.
pub fn options(o: Option<cq4_options>) -> Verdict {
    let Some(o) = o else { return Ok(()) };
    if o.struct_size as usize != size_of::<cq4_options>() || o.kernel >= KERNEL_IDS {
        return Err(CQ4_ERR_BAD_OPTIONS);
    }
    if cq4_kernel_supported(o.kernel) == 0 {
        return Err(CQ4_ERR_UNSUPPORTED_KERNEL);
    }
    Ok(())
}

/// `CQ4_ENCODER_SEARCH`, the one encoder that takes importance weights.
pub const SEARCH: u32 = 2;
/// `CQ4_ENCODER_ERROR_COMPENSATING`, the one that takes (and needs) a
/// Hessian.
pub const ERROR_COMPENSATING: u32 = 3;
/// The damping `cq4_encoder_options_default` sets, and 0.2's struct, which
/// has none, stands for.
pub const DEFAULT_DAMPING: f64 = 0.05;
/// `sizeof` of version 0.2's `cq4_encoder_options`: its fields up to
/// `importance_len`.
pub const ENCODER_OPTIONS_0_2: usize =
    offset_of!(cq4_encoder_options, importance_len) + size_of::<usize>();

/// Version 0.2's `cq4_encoder_options`, as its callers pass it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EncoderOptions02 {
    pub struct_size: u32,
    pub encoder: u32,
    pub importance: *const f32,
    pub importance_len: usize,
}
const _: () = assert!(size_of::<EncoderOptions02>() == ENCODER_OPTIONS_0_2);
/// `CQ4_HESSIAN_SYMMETRY_TOLERANCE`.
pub const SYMMETRY_TOLERANCE: f64 = 1e-6;

/// Step 2 for `cq4_encoder_options` (`None`: NULL, ABSMAX): BAD_OPTIONS for
/// a `struct_size` other than this version's or 0.2's (whose struct ends
/// at `importance_len`: no Hessian, the default damping), an unknown
/// encoder id, importance weights given to an encoder other than SEARCH, a
/// Hessian given to one other than ERROR_COMPENSATING or not given to it,
/// a damping negative or not finite; then MISALIGNED_POINTER for the
/// importance and Hessian pointers. Returns the struct as the call reads
/// it.
pub fn encoder(e: Option<cq4_encoder_options>) -> Result<Option<cq4_encoder_options>, cq4_status> {
    let Some(mut e) = e else { return Ok(None) };
    match e.struct_size as usize {
        n if n == size_of::<cq4_encoder_options>() => {}
        ENCODER_OPTIONS_0_2 => {
            e.hessian = std::ptr::null();
            e.hessian_len = 0;
            e.damping = DEFAULT_DAMPING;
        }
        _ => return Err(CQ4_ERR_BAD_OPTIONS),
    }
    let weights = !e.importance.is_null();
    let hessian = !e.hessian.is_null();
    if e.encoder > ERROR_COMPENSATING
        || (weights && e.encoder != SEARCH)
        || hessian != (e.encoder == ERROR_COMPENSATING)
        || !(e.damping.is_finite() && e.damping >= 0.0)
    {
        return Err(CQ4_ERR_BAD_OPTIONS);
    }
    if e.importance.addr() % align_of::<f32>() != 0 || e.hessian.addr() % align_of::<f64>() != 0 {
        return Err(CQ4_ERR_MISALIGNED_POINTER);
    }
    Ok(Some(e))
}

/// `cq4_hessian_size`, and the Hessian's extent wherever one is given:
/// `cols * cols` f64, SIZE_OVERFLOW past `size_t` or `PTRDIFF_MAX` bytes.
pub fn hessian_size(cols: usize) -> Result<usize, cq4_status> {
    cols.checked_mul(cols)
        .filter(|&n| n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize))
        .ok_or(CQ4_ERR_SIZE_OVERFLOW)
}

/// What step 7 says of a Hessian whose length passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HessianVerdict {
    Accepted,
    Refused,
    /// Positive definite or not within what rounding decides: either
    /// status is right.
    EitherWay,
}

/// Step 7 for the `[cols, cols]` Hessian `h`: refused for an entry that is
/// not finite, a diagonal entry below 0, or `|H[i][j] - H[j][i]|` above
/// `SYMMETRY_TOLERANCE * sqrt(H[i][i]) sqrt(H[j][j])` (`cq4_encoder_options`);
/// then for a diagonal all 0, and a damped Hessian (`H` over its mean
/// diagonal, plus `damping` on the diagonal) that is not positive definite,
/// here its least eigenvalue (Jacobi's method), with rounding's margin.
pub fn hessian(h: &[f64], cols: usize, damping: f64) -> HessianVerdict {
    let at = |i: usize, j: usize| h[i * cols + j];
    if (0..cols).any(|i| !(at(i, i).is_finite() && at(i, i) >= 0.0)) {
        return HessianVerdict::Refused;
    }
    for i in 0..cols {
        for j in i + 1..cols {
            let allowed = SYMMETRY_TOLERANCE * at(i, i).sqrt() * at(j, j).sqrt();
            let (a, b) = (at(i, j), at(j, i));
            // Finite entries and diagonal: neither side can be NaN.
            if !a.is_finite() || !b.is_finite() || (a - b).abs() > allowed {
                return HessianVerdict::Refused;
            }
        }
    }
    if cols == 0 {
        return HessianVerdict::Accepted;
    }
    // A diagonal all 0 holds no information: refused.
    let largest = (0..cols).map(|i| at(i, i)).fold(0f64, f64::max);
    if largest == 0.0 {
        return HessianVerdict::Refused;
    }
    // Over the largest diagonal entry first, so that no scale overflows.
    let mean = (0..cols).map(|i| at(i, i) / largest).sum::<f64>() / cols as f64;
    let mut a: Vec<f64> = (0..cols * cols)
        .map(|k| {
            let (i, j) = (k / cols, k % cols);
            let v = (at(i, j) / largest / 2.0 + at(j, i) / largest / 2.0) / mean;
            if i == j {
                v + damping
            } else {
                v
            }
        })
        .collect();
    let scale = (0..cols).map(|i| a[i * cols + i]).fold(0f64, f64::max);
    let least = least_eigenvalue(&mut a, cols);
    // The asymmetry allowed moves eigenvalues by up to cols * 1e-6 of the
    // diagonal; rounding, by far less.
    let margin = 1e-4 * scale.max(f64::MIN_POSITIVE);
    if least > margin {
        HessianVerdict::Accepted
    } else if least < -margin {
        HessianVerdict::Refused
    } else {
        HessianVerdict::EitherWay
    }
}

/// The least eigenvalue of the symmetric `[n, n]` matrix `a` (destroyed),
/// by cyclic Jacobi rotations.
fn least_eigenvalue(a: &mut [f64], n: usize) -> f64 {
    for _ in 0..64 {
        let off: f64 = (0..n * n)
            .filter(|k| k / n != k % n)
            .map(|k| a[k] * a[k])
            .sum();
        if off <= 1e-30 * (0..n).map(|i| a[i * n + i].powi(2)).sum::<f64>() {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i * n + i]).fold(f64::INFINITY, f64::min)
}

/// Step 3 of `cq4_hessian_accumulate_*`: the Hessian's `cols * cols`, then
/// `x`'s `rows * cols` (their byte counts with the other extents).
pub fn accumulate_sizes(rows: usize, cols: usize) -> Result<(usize, usize), cq4_status> {
    let h = cols.checked_mul(cols).ok_or(CQ4_ERR_SIZE_OVERFLOW)?;
    let x = rows.checked_mul(cols).ok_or(CQ4_ERR_SIZE_OVERFLOW)?;
    Ok((x, h))
}

/// Step 2 for a product's precision id (`cq4_precision`: EXACT, INT8).
pub fn precision(id: u32) -> Verdict {
    if id > 1 {
        return Err(CQ4_ERR_BAD_PRECISION);
    }
    Ok(())
}

/// `cq4_layout` as the header defines its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub group_size: usize,
    pub groups_per_row: usize,
    pub bytes_per_group: usize,
    pub packed_row_bytes: usize,
    pub elements: usize,
    pub packed_len: usize,
    pub scales_len: usize,
}

/// `CQ4_MAX_GROUP_SIZE`.
pub const MAX_GROUP_SIZE: usize = 1 << 20;

/// The layout, or BAD_GROUP_SIZE (0 or above `CQ4_MAX_GROUP_SIZE`), then
/// SIZE_OVERFLOW: a size that overflows `size_t`, or a byte count above
/// `PTRDIFF_MAX`. The header leaves the element type of `cols` and
/// `elements` open (the layout serves every type); they are counted as
/// f32, the widest unpacked type, as the scales are, and the packed sizes
/// as bytes.
pub fn layout(rows: usize, cols: usize, group_size: usize) -> Result<Layout, cq4_status> {
    if group_size == 0 || group_size > MAX_GROUP_SIZE {
        return Err(CQ4_ERR_BAD_GROUP_SIZE);
    }
    let groups_per_row = cols.div_ceil(group_size);
    let bytes_per_group = group_size.div_ceil(2);
    let sizes = (|| {
        let packed_row_bytes = groups_per_row.checked_mul(bytes_per_group)?;
        let l = Layout {
            rows,
            cols,
            group_size,
            groups_per_row,
            bytes_per_group,
            packed_row_bytes,
            elements: rows.checked_mul(cols)?,
            packed_len: rows.checked_mul(packed_row_bytes)?,
            scales_len: rows.checked_mul(groups_per_row)?,
        };
        let f32_bytes = |n: usize| n.checked_mul(4).filter(|&b| b <= isize::MAX as usize);
        let fits = [l.cols, l.elements, l.groups_per_row, l.scales_len]
            .into_iter()
            .all(|n| f32_bytes(n).is_some())
            && l.packed_row_bytes.max(l.packed_len) <= isize::MAX as usize;
        fits.then_some(l)
    })();
    sizes.ok_or(CQ4_ERR_SIZE_OVERFLOW)
}

/// GGML Q4_0: BAD_COLS (`cols` not a multiple of 32), then the layout at
/// g = 32, then the blocks' byte count `rows * cols / 32 * 18`.
pub fn q4_0_layout(rows: usize, cols: usize) -> Result<(Layout, usize), cq4_status> {
    if !cols.is_multiple_of(32) {
        return Err(CQ4_ERR_BAD_COLS);
    }
    let l = layout(rows, cols, 32)?;
    let blocks = l.scales_len.checked_mul(18).ok_or(CQ4_ERR_SIZE_OVERFLOW)?;
    Ok((l, blocks))
}

/// Bytes of the prepared form's header, and of quantized activations'.
pub const PREPARED_HEADER: usize = 64;

/// `cq4_prepared_size`: the layout's errors, then the header and
/// `ceil(rows / 16) * 16` rows of `groups_per_row` groups of
/// `ceil(g / 8) * 4 + 4` bytes.
pub fn prepared_size(rows: usize, cols: usize, group_size: usize) -> Result<usize, cq4_status> {
    let l = layout(rows, cols, group_size)?;
    let group_bytes = group_size.div_ceil(8) * 4 + 4;
    header_and(&[rows.div_ceil(16), 16, l.groups_per_row, group_bytes])
}

/// `cq4_activations_size`: the layout's errors for `[batch, cols]`, then
/// the header and `batch` rows of `groups_per_row` groups of
/// `ceil(g / 8) * 8` int8 values and 8 bytes (scale and correction).
pub fn activations_size(batch: usize, cols: usize, group_size: usize) -> Result<usize, cq4_status> {
    let l = layout(batch, cols, group_size)?;
    let group_bytes = group_size.div_ceil(8) * 8 + 8;
    header_and(&[batch, l.groups_per_row, group_bytes])
}

/// The header's bytes and a body of the product of `factors`,
/// SIZE_OVERFLOW past `size_t` or `PTRDIFF_MAX`.
fn header_and(factors: &[usize]) -> Result<usize, cq4_status> {
    // The size as a number: a factor 0 makes the product 0, however large
    // the others.
    let body = if factors.contains(&0) {
        Some(0)
    } else {
        factors.iter().try_fold(1usize, |n, &f| n.checked_mul(f))
    };
    body.and_then(|n| n.checked_add(PREPARED_HEADER))
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or(CQ4_ERR_SIZE_OVERFLOW)
}

/// Step 3 of a product of a `[rows, cols]` matrix after its layout: the
/// row range, the stride (which only spaces activation rows: one has none
/// to hold), then the elements `x` and `y` need (`y`'s extent from its
/// first to its last written element).
pub fn product_sizes(
    rows: usize,
    cols: usize,
    batch: usize,
    row_begin: usize,
    row_end: usize,
    y_stride: usize,
) -> Result<(usize, usize), cq4_status> {
    if row_begin > row_end || row_end > rows {
        return Err(CQ4_ERR_BAD_ROW_RANGE);
    }
    let width = row_end - row_begin;
    if batch > 1 && y_stride < width {
        return Err(CQ4_ERR_BAD_STRIDE);
    }
    let x_n = batch.checked_mul(cols);
    let y_n = match (batch, width) {
        (0, _) | (_, 0) => Some(0),
        _ => (batch - 1)
            .checked_mul(y_stride)
            .and_then(|n| n.checked_add(width)),
    };
    x_n.zip(y_n).ok_or(CQ4_ERR_SIZE_OVERFLOW)
}
