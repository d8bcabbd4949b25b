//! Layout queries, pack and unpack through the C ABI.
//!
//! Lengths always count elements of the pointed-to type. Buffers may be
//! longer than the layout needs; only the layout's prefix is touched.

use std::ptr::null;

use half::{bf16, f16};

use super::call::Call;
use super::cq4_status;
use super::encoders::{cq4_encoder_options, read_encoder, EncoderOptionsHead, Encoding};
use super::options::{cq4_options, read_options};
use crate::element::Element;
use crate::layout::Layout;
use crate::options::Options;
use crate::slice_api::Quantizer;

/// Largest accepted `group_size`.
pub const CQ4_MAX_GROUP_SIZE: usize = 1048576;

/// Sizes and strides of a `[rows, cols]` matrix packed with `group_size`.
///
/// Row `r` of the packed matrix starts at byte `r * packed_row_bytes`, its
/// scales at element `r * groups_per_row` and its unpacked values at element
/// `r * cols`: to split a matrix over your own threads, give each thread a
/// row range `[r0, r1)` and call pack or unpack with `rows = r1 - r0` and
/// pointers advanced by those offsets.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct cq4_layout {
    pub rows: usize,
    pub cols: usize,
    pub group_size: usize,
    /// ceil(cols / group_size): scales per row, the scale row stride.
    pub groups_per_row: usize,
    /// ceil(group_size / 2).
    pub bytes_per_group: usize,
    /// groups_per_row * bytes_per_group: the packed row stride in bytes.
    pub packed_row_bytes: usize,
    /// rows * cols: unpacked elements.
    pub elements: usize,
    /// rows * packed_row_bytes: packed bytes in all.
    pub packed_len: usize,
    /// rows * groups_per_row: scales in all.
    pub scales_len: usize,
}

impl From<Layout> for cq4_layout {
    fn from(l: Layout) -> Self {
        cq4_layout {
            rows: l.rows,
            cols: l.cols,
            group_size: l.group_size,
            groups_per_row: l.groups_per_row,
            bytes_per_group: l.bytes_per_group,
            packed_row_bytes: l.packed_row_bytes,
            elements: l.elements,
            packed_len: l.packed_len,
            scales_len: l.scales_len,
        }
    }
}

call_kind! {
    /// `cq4_layout_get`: the layout, written to `out`.
    struct LayoutQuery {
        rows: usize,
        cols: usize,
        group_size: usize,
        out: value_out<cq4_layout>,
    }
}

impl Call for LayoutQuery {
    type Choices = ();
    type Shape = Layout;

    unsafe fn choose(&mut self) -> Result<(), cq4_status> {
        Ok(())
    }

    fn shape(&mut self, _: &()) -> Result<Layout, cq4_status> {
        Ok(Layout::new(self.rows, self.cols, self.group_size)?)
    }

    unsafe fn run(self, _: (), layout: Layout) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        unsafe { self.out.write(layout.into()) };
        Ok(())
    }
}

/// Computes the layout of a `[rows, cols]` matrix packed with `group_size`.
///
/// Reads nothing; writes `*out` on success only.
/// Returns `CQ4_OK`, `CQ4_ERR_NULL_POINTER` / `CQ4_ERR_MISALIGNED_POINTER`
/// (`out`), `CQ4_ERR_BAD_GROUP_SIZE` or `CQ4_ERR_SIZE_OVERFLOW`.
///
/// # Safety
/// `out` must be NULL or valid for writing one `cq4_layout`.
#[no_mangle]
pub unsafe extern "C" fn cq4_layout_get(
    rows: usize,
    cols: usize,
    group_size: usize,
    out: *mut cq4_layout,
) -> cq4_status {
    forward! { LayoutQuery::new(rows, cols, group_size, out) }
}

call_kind! {
    /// The `cq4_pack_*` functions: `src` into `packed` and `scales`, each
    /// group's scale chosen by `encoder`.
    struct Pack<T> {
        src: input<T>[src_len],
        rows: usize,
        cols: usize,
        group_size: usize,
        packed: output<u8>[packed_len],
        scales: output<f32>[scales_len],
        options: value_in<cq4_options>.optional(),
        /// `*encoder` as every version of it starts; counted as the bytes
        /// its `struct_size` declares once read.
        encoder: value_in<EncoderOptionsHead>.optional(),
        /// The weights `encoder` points to, once read.
        later importance: Buf<f32>,
        /// The Hessian `encoder` points to, once read.
        later hessian: Buf<f64>,
    }
}

impl<T: Element> Call for Pack<T> {
    type Choices = (Options, Encoding);
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<Self::Choices, cq4_status> {
        // SAFETY: the option pointers passed their checks (`choose`'s contract).
        let (options, (encoding, importance, hessian)) = unsafe {
            (
                read_options(&self.options)?,
                read_encoder(&mut self.encoder)?,
            )
        };
        self.importance = importance;
        self.hessian = hessian;
        Ok((options, encoding))
    }

    fn shape(&mut self, _: &Self::Choices) -> Result<(), cq4_status> {
        let l = Layout::new(self.rows, self.cols, self.group_size)?;
        self.src.touch(l.elements);
        self.packed.touch(l.packed_len);
        self.scales.touch(l.scales_len);
        self.importance.touch(self.cols);
        if self.hessian.is_given() {
            self.hessian.touch(Layout::hessian_len(self.cols)?);
        }
        Ok(())
    }

    unsafe fn run(self, (options, encoding): Self::Choices, _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (src, packed, scales, importance, hessian) = unsafe {
            let importance = self.importance.is_given().then(|| self.importance.slice());
            (
                self.src.slice(),
                self.packed.slice_mut(),
                self.scales.slice_mut(),
                importance,
                self.hessian.slice(),
            )
        };
        let encoder = encoding.with(importance, hessian);
        Quantizer::new(self.group_size)
            .with_encoder(encoder)
            .with_options(options)
            .pack(src, self.rows, self.cols, packed, scales)?;
        Ok(())
    }
}

call_kind! {
    /// The `cq4_unpack_*` functions: `packed` and `scales` into `dst`.
    struct Unpack<T> {
        packed: input<u8>[packed_len],
        scales: input<f32>[scales_len],
        rows: usize,
        cols: usize,
        group_size: usize,
        dst: output<T>[dst_len],
        options: value_in<cq4_options>.optional(),
    }
}

impl<T: Element> Call for Unpack<T> {
    type Choices = Options;
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<Options, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        unsafe { read_options(&self.options) }
    }

    fn shape(&mut self, _: &Options) -> Result<(), cq4_status> {
        let l = Layout::new(self.rows, self.cols, self.group_size)?;
        self.packed.touch(l.packed_len);
        self.scales.touch(l.scales_len);
        self.dst.touch(l.elements);
        Ok(())
    }

    unsafe fn run(self, options: Options, _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (packed, scales, dst) = unsafe {
            (
                self.packed.slice(),
                self.scales.slice(),
                self.dst.slice_mut(),
            )
        };
        Quantizer::new(self.group_size)
            .with_options(options)
            .unpack(packed, scales, self.rows, self.cols, dst)?;
        Ok(())
    }
}

/// Packs the row-major f32 matrix `src[rows * cols]` with `group_size`,
/// with the default options (best kernel, calling thread only).
///
/// Reads `src[0 .. rows*cols]`. Writes `packed[0 .. layout.packed_len]` and
/// `scales[0 .. layout.scales_len]` (see `cq4_layout_get`), nothing else.
/// Returns `CQ4_OK`, or without writing anything, in the order of the
/// shared rules: `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_BAD_GROUP_SIZE`, `CQ4_ERR_SIZE_OVERFLOW`,
/// `CQ4_ERR_OVERLAPPING_BUFFERS`, `CQ4_ERR_INPUT_TOO_SHORT` (`src_len`),
/// `CQ4_ERR_OUTPUT_TOO_SMALL` (`packed_len`, `scales_len`).
/// Rows are independent: see `cq4_layout` for splitting rows over threads.
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type); outputs must not overlap any other buffer of the call.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_f32(
    src: *const f32,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
) -> cq4_status {
    forward! { Pack::new(src, src_len, rows, cols, group_size, packed, packed_len, scales,
    scales_len, null(), null()) }
}

/// Unpacks `packed` and `scales` into the row-major f32 matrix
/// `dst[rows * cols]`: `w = (nibble - 8) * scale`, padding dropped, with the
/// default options. Any scale is accepted; NaN and Inf propagate as IEEE
/// arithmetic says.
///
/// Reads `packed[0 .. layout.packed_len]` and `scales[0 .. layout.scales_len]`.
/// Writes `dst[0 .. rows*cols]`, nothing else.
/// Returns `CQ4_OK`, or without writing anything, in the order of the
/// shared rules: `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_BAD_GROUP_SIZE`, `CQ4_ERR_SIZE_OVERFLOW`,
/// `CQ4_ERR_OVERLAPPING_BUFFERS`, `CQ4_ERR_INPUT_TOO_SHORT` (`packed_len`,
/// `scales_len`), `CQ4_ERR_OUTPUT_TOO_SMALL` (`dst_len`).
/// Rows are independent: see `cq4_layout` for splitting rows over threads.
/// An f32 output of 8 MiB or more (rows*cols*4 bytes) is written with
/// non-temporal stores where the AVX2 or AVX-512 kernel serves the group
/// size (a multiple of 8, or 16): it bypasses the cache, as glibc's
/// `memset` does for large sizes; unpack smaller pieces (row ranges) to
/// keep them cached for immediate use. The f16 and bf16 unpacks never
/// write this way.
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type); `dst` must not overlap `packed` or `scales`.
#[no_mangle]
pub unsafe extern "C" fn cq4_unpack_f32(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: *mut f32,
    dst_len: usize,
) -> cq4_status {
    forward! { Unpack::new(packed, packed_len, scales, scales_len, rows, cols, group_size, dst,
    dst_len, null()) }
}

/// As `cq4_pack_f32`, from IEEE binary16 bit patterns (converted exactly to
/// f32 first).
///
/// # Safety
/// As `cq4_pack_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_f16(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
) -> cq4_status {
    forward! { Pack::<f16>::new(src.cast(), src_len, rows, cols, group_size, packed, packed_len,
    scales, scales_len, null(), null()) }
}

/// As `cq4_pack_f32`, from bfloat16 bit patterns (converted exactly to f32
/// first).
///
/// # Safety
/// As `cq4_pack_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_bf16(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
) -> cq4_status {
    forward! { Pack::<bf16>::new(src.cast(), src_len, rows, cols, group_size, packed, packed_len,
    scales, scales_len, null(), null()) }
}

/// As `cq4_unpack_f32`, writing IEEE binary16 bit patterns (each f32 result
/// rounded to nearest even).
///
/// # Safety
/// As `cq4_unpack_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_unpack_f16(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: *mut u16,
    dst_len: usize,
) -> cq4_status {
    forward! { Unpack::<f16>::new(packed, packed_len, scales, scales_len, rows, cols, group_size,
    dst.cast(), dst_len, null()) }
}

/// As `cq4_unpack_f32`, writing bfloat16 bit patterns (each f32 result
/// rounded to nearest even).
///
/// # Safety
/// As `cq4_unpack_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_unpack_bf16(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: *mut u16,
    dst_len: usize,
) -> cq4_status {
    forward! { Unpack::<bf16>::new(packed, packed_len, scales, scales_len, rows, cols, group_size,
    dst.cast(), dst_len, null()) }
}

/// As `cq4_pack_f32`, with `options` (NULL = the defaults). Also returns
/// `CQ4_ERR_BAD_OPTIONS` and `CQ4_ERR_UNSUPPORTED_KERNEL`.
///
/// # Safety
/// As `cq4_pack_f32`; `options` is NULL or points to one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_f32_ex(
    src: *const f32,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Pack::new(src, src_len, rows, cols, group_size, packed, packed_len, scales,
    scales_len, options, null()) }
}

/// As `cq4_pack_f32_ex`, from IEEE binary16 bit patterns (converted exactly to f32 first).
///
/// # Safety
/// As `cq4_pack_f32`; `options` is NULL or points to one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_f16_ex(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Pack::<f16>::new(src.cast(), src_len, rows, cols, group_size, packed, packed_len,
    scales, scales_len, options, null()) }
}

/// As `cq4_pack_f32_ex`, from bfloat16 bit patterns (converted exactly to f32 first).
///
/// # Safety
/// As `cq4_pack_f32`; `options` is NULL or points to one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_bf16_ex(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Pack::<bf16>::new(src.cast(), src_len, rows, cols, group_size, packed, packed_len,
    scales, scales_len, options, null()) }
}

/// As `cq4_unpack_f32`, with `options` (NULL = the defaults). Also returns
/// `CQ4_ERR_BAD_OPTIONS` and `CQ4_ERR_UNSUPPORTED_KERNEL`.
///
/// # Safety
/// As `cq4_unpack_f32`; `options` is NULL or points to one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_unpack_f32_ex(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: *mut f32,
    dst_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Unpack::new(packed, packed_len, scales, scales_len, rows, cols, group_size, dst,
    dst_len, options) }
}

/// As `cq4_unpack_f32_ex`, writing IEEE binary16 bit patterns (each f32 result rounded to nearest even).
///
/// # Safety
/// As `cq4_unpack_f32`; `options` is NULL or points to one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_unpack_f16_ex(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: *mut u16,
    dst_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Unpack::<f16>::new(packed, packed_len, scales, scales_len, rows, cols, group_size,
    dst.cast(), dst_len, options) }
}

/// As `cq4_unpack_f32_ex`, writing bfloat16 bit patterns (each f32 result rounded to nearest even).
///
/// # Safety
/// As `cq4_unpack_f32`; `options` is NULL or points to one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_unpack_bf16_ex(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: *mut u16,
    dst_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    forward! { Unpack::<bf16>::new(packed, packed_len, scales, scales_len, rows, cols, group_size,
    dst.cast(), dst_len, options) }
}

/// As `cq4_pack_f32_ex`, with each group's scale chosen by `encoder` (NULL
/// = `CQ4_ENCODER_ABSMAX`): the same layout, read by the same unpack.
/// With `CQ4_ENCODER_ERROR_COMPENSATING` the levels are chosen too, from
/// `encoder->hessian` (see `cq4_hessian_accumulate_f32` for calibrating
/// it), and the bytes are those of the Rust API's
/// `Encoder::ErrorCompensating` for the same Hessian and damping, whatever
/// the kernel and threads.
///
/// Reads `src[0 .. rows*cols]`, `*encoder` (its `struct_size` bytes),
/// `importance[0 .. cols]` and `hessian[0 .. cols*cols]` when given.
/// Writes `packed` and `scales` as `cq4_pack_f32` does, nothing else.
/// Returns `CQ4_OK`, or without writing anything, in the order of the
/// shared rules: `CQ4_ERR_NULL_POINTER` (`src`, `packed`, `scales`),
/// `CQ4_ERR_MISALIGNED_POINTER` (those, `options`, `encoder`),
/// `CQ4_ERR_BAD_OPTIONS` / `CQ4_ERR_UNSUPPORTED_KERNEL` (`*options`),
/// `CQ4_ERR_BAD_OPTIONS` (`*encoder`: a `struct_size` other than this
/// version's or 0.2's, an unknown id, `importance` given to an encoder
/// other than SEARCH, `hessian` given to an encoder other than
/// ERROR_COMPENSATING or not given to it, a `damping` negative or not
/// finite), `CQ4_ERR_MISALIGNED_POINTER` (`importance`, `hessian`),
/// `CQ4_ERR_BAD_GROUP_SIZE`, `CQ4_ERR_SIZE_OVERFLOW` (the layout, then
/// `cols*cols` f64 for a given Hessian), `CQ4_ERR_OVERLAPPING_BUFFERS`
/// (`packed` or `scales` and any other prefix: `src`, `*options`,
/// `*encoder`, `importance[0 .. cols]`, `hessian[0 .. cols*cols]`),
/// `CQ4_ERR_INPUT_TOO_SHORT` (`src_len`, `importance_len < cols`,
/// `hessian_len < cols*cols`), `CQ4_ERR_OUTPUT_TOO_SMALL` (`packed_len`,
/// `scales_len`), `CQ4_ERR_BAD_IMPORTANCE` (a weight negative or not
/// finite), `CQ4_ERR_BAD_HESSIAN` (an entry not finite, a diagonal entry
/// below 0, `|H[i][j] - H[j][i]|` above `CQ4_HESSIAN_SYMMETRY_TOLERANCE *
/// sqrt(H[i][i] H[j][j])`, then the damped Hessian not positive definite:
/// found last, before anything is written).
///
/// # Safety
/// As `cq4_pack_f32_ex`; `encoder` is NULL or points to a
/// `cq4_encoder_options` of this version or of 0.2, readable for the
/// `struct_size` bytes it states, whose `importance` is NULL or valid for
/// `importance_len` reads and (this version's) `hessian` NULL or valid for
/// `hessian_len` reads.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_encoded_f32(
    src: *const f32,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
    encoder: *const cq4_encoder_options,
) -> cq4_status {
    forward! { Pack::new(src, src_len, rows, cols, group_size, packed, packed_len, scales,
    scales_len, options, encoder.cast()) }
}

/// As `cq4_pack_encoded_f32`, from IEEE binary16 bit patterns (converted
/// exactly to f32 first).
///
/// # Safety
/// As `cq4_pack_encoded_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_encoded_f16(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
    encoder: *const cq4_encoder_options,
) -> cq4_status {
    forward! { Pack::<f16>::new(src.cast(), src_len, rows, cols, group_size, packed, packed_len,
    scales, scales_len, options, encoder.cast()) }
}

/// As `cq4_pack_encoded_f32`, from bfloat16 bit patterns (converted exactly
/// to f32 first).
///
/// # Safety
/// As `cq4_pack_encoded_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_encoded_bf16(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
    encoder: *const cq4_encoder_options,
) -> cq4_status {
    forward! { Pack::<bf16>::new(src.cast(), src_len, rows, cols, group_size, packed, packed_len,
    scales, scales_len, options, encoder.cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_group_size_matches_the_core() {
        assert_eq!(CQ4_MAX_GROUP_SIZE, crate::MAX_GROUP_SIZE);
    }
}
