//! Layout queries, pack and unpack through the C ABI.
//!
//! Lengths always count elements of the pointed-to type. Buffers may be
//! longer than the layout needs; only the layout's prefix is touched.

use half::{bf16, f16};

use super::buffers::{check_disjoint, Raw};
use super::encoders::{cq4_encoder_options, read_encoder};
use super::options::{cq4_options, read_options};
use super::{cq4_status, guard};
use crate::element::Element;
use crate::layout::Layout;
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
    guard(|| {
        let out = Raw::new(out.cast_const(), 1)?;
        let layout = Layout::new(rows, cols, group_size)?;
        // SAFETY: `out` is non-null and aligned (checked), and the caller
        // promised it valid for one write.
        unsafe { out.as_mut_slice()[0] = layout.into() };
        Ok(())
    })
}

/// Shared body of the `cq4_pack_*` functions.
///
/// # Safety
/// As documented on [`cq4_pack_f32`].
#[allow(clippy::too_many_arguments)] // mirrors the C signatures
pub(super) unsafe fn pack_any<T: Element>(
    src: *const T,
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
    guard(|| {
        let src = Raw::new(src, src_len)?;
        let packed = Raw::new(packed.cast_const(), packed_len)?;
        let scales = Raw::new(scales.cast_const(), scales_len)?;
        let options = read_options(options)?;
        let encoder = read_encoder(encoder)?;
        let l = Layout::new(rows, cols, group_size)?;
        check_disjoint(
            &[packed.span(l.packed_len), scales.span(l.scales_len)],
            &[src.span(l.elements), encoder.importance_span(cols)],
        )?;
        // SAFETY: pointers checked non-null, aligned and disjoint above; the
        // caller promised each valid for its declared length.
        let (src, packed, scales, encoder) = unsafe {
            (
                src.as_slice(),
                packed.as_mut_slice(),
                scales.as_mut_slice(),
                encoder.to_encoder(),
            )
        };
        Quantizer::new(group_size)
            .with_encoder(encoder)
            .with_options(options)
            .pack(src, rows, cols, packed, scales)?;
        Ok(())
    })
}

/// Shared body of the `cq4_unpack_*` functions.
///
/// # Safety
/// As documented on [`cq4_unpack_f32`].
#[allow(clippy::too_many_arguments)] // mirrors the C signatures
unsafe fn unpack_any<T: Element>(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: *mut T,
    dst_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    guard(|| {
        let packed = Raw::new(packed, packed_len)?;
        let scales = Raw::new(scales, scales_len)?;
        let dst = Raw::new(dst.cast_const(), dst_len)?;
        let options = read_options(options)?;
        let l = Layout::new(rows, cols, group_size)?;
        check_disjoint(
            &[dst.span(l.elements)],
            &[packed.span(l.packed_len), scales.span(l.scales_len)],
        )?;
        // SAFETY: pointers checked non-null, aligned and disjoint above; the
        // caller promised each valid for its declared length.
        let (packed, scales, dst) =
            unsafe { (packed.as_slice(), scales.as_slice(), dst.as_mut_slice()) };
        Quantizer::new(group_size)
            .with_options(options)
            .unpack(packed, scales, rows, cols, dst)?;
        Ok(())
    })
}

/// Packs the row-major f32 matrix `src[rows * cols]` with `group_size`,
/// with the default options (best kernel, calling thread only).
///
/// Reads `src[0 .. rows*cols]`. Writes `packed[0 .. layout.packed_len]` and
/// `scales[0 .. layout.scales_len]` (see `cq4_layout_get`), nothing else.
/// Returns `CQ4_OK`, or without writing anything:
/// `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_OVERLAPPING_BUFFERS`, `CQ4_ERR_BAD_GROUP_SIZE`,
/// `CQ4_ERR_SIZE_OVERFLOW`, `CQ4_ERR_INPUT_TOO_SHORT` (`src_len`),
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
    // SAFETY: the caller's contract is the one `pack_any` needs.
    unsafe {
        let defaults = std::ptr::null();
        pack_any(
            src,
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            defaults,
            std::ptr::null(),
        )
    }
}

/// Unpacks `packed` and `scales` into the row-major f32 matrix
/// `dst[rows * cols]`: `w = (nibble - 8) * scale`, padding dropped, with the
/// default options. Any scale is accepted; NaN and Inf propagate as IEEE
/// arithmetic says.
///
/// Reads `packed[0 .. layout.packed_len]` and `scales[0 .. layout.scales_len]`.
/// Writes `dst[0 .. rows*cols]`, nothing else.
/// Returns `CQ4_OK`, or without writing anything:
/// `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`,
/// `CQ4_ERR_OVERLAPPING_BUFFERS`, `CQ4_ERR_BAD_GROUP_SIZE`,
/// `CQ4_ERR_SIZE_OVERFLOW`, `CQ4_ERR_INPUT_TOO_SHORT` (`packed_len`,
/// `scales_len`), `CQ4_ERR_OUTPUT_TOO_SMALL` (`dst_len`).
/// Rows are independent: see `cq4_layout` for splitting rows over threads.
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
    // SAFETY: the caller's contract is the one `unpack_any` needs.
    unsafe {
        let defaults = std::ptr::null();
        unpack_any(
            packed, packed_len, scales, scales_len, rows, cols, group_size, dst, dst_len, defaults,
        )
    }
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
    // SAFETY: `f16` is a transparent `u16`; the contract is `pack_any`'s.
    unsafe {
        let (src, defaults) = (src.cast::<f16>(), std::ptr::null());
        pack_any(
            src,
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            defaults,
            std::ptr::null(),
        )
    }
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
    // SAFETY: `bf16` is a transparent `u16`; the contract is `pack_any`'s.
    unsafe {
        let (src, defaults) = (src.cast::<bf16>(), std::ptr::null());
        pack_any(
            src,
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            defaults,
            std::ptr::null(),
        )
    }
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
    // SAFETY: `f16` is a transparent `u16`; the contract is `unpack_any`'s.
    unsafe {
        let (dst, defaults) = (dst.cast::<f16>(), std::ptr::null());
        unpack_any(
            packed, packed_len, scales, scales_len, rows, cols, group_size, dst, dst_len, defaults,
        )
    }
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
    // SAFETY: `bf16` is a transparent `u16`; the contract is `unpack_any`'s.
    unsafe {
        let (dst, defaults) = (dst.cast::<bf16>(), std::ptr::null());
        unpack_any(
            packed, packed_len, scales, scales_len, rows, cols, group_size, dst, dst_len, defaults,
        )
    }
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
    // SAFETY: the caller's contract is the one `pack_any` needs.
    unsafe {
        pack_any(
            src,
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            options,
            std::ptr::null(),
        )
    }
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
    // SAFETY: the caller's contract is the one `pack_any` needs; `f16` is a transparent `u16`.
    unsafe {
        let src = src.cast::<f16>();
        pack_any(
            src,
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            options,
            std::ptr::null(),
        )
    }
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
    // SAFETY: the caller's contract is the one `pack_any` needs; `bf16` is a transparent `u16`.
    unsafe {
        let src = src.cast::<bf16>();
        pack_any(
            src,
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            options,
            std::ptr::null(),
        )
    }
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
    // SAFETY: the caller's contract is the one `unpack_any` needs.
    unsafe {
        unpack_any(
            packed, packed_len, scales, scales_len, rows, cols, group_size, dst, dst_len, options,
        )
    }
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
    // SAFETY: the caller's contract is the one `unpack_any` needs; `f16` is a transparent `u16`.
    unsafe {
        let dst = dst.cast::<f16>();
        unpack_any(
            packed, packed_len, scales, scales_len, rows, cols, group_size, dst, dst_len, options,
        )
    }
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
    // SAFETY: the caller's contract is the one `unpack_any` needs; `bf16` is a transparent `u16`.
    unsafe {
        let dst = dst.cast::<bf16>();
        unpack_any(
            packed, packed_len, scales, scales_len, rows, cols, group_size, dst, dst_len, options,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_group_size_matches_the_core() {
        assert_eq!(CQ4_MAX_GROUP_SIZE, crate::MAX_GROUP_SIZE);
    }
}
