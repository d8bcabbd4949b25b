//! GGML Q4_0 blocks through the C ABI. Blocks are bytes (18 per block of
//! 32 elements), so any pointer is aligned for them.

use super::buffers::{check_disjoint, Raw};
use super::options::{cq4_options, read_options};
use super::{cq4_status, guard};
use crate::layout::Layout;
use crate::q4_0;

/// Elements per GGML Q4_0 block.
pub const CQ4_Q4_0_BLOCK: usize = 32;
/// Bytes per GGML Q4_0 block (`block_q4_0`): the f16 scale `d`,
/// little-endian, then 16 bytes of nibbles.
pub const CQ4_Q4_0_BLOCK_BYTES: usize = 18;

/// What `cq4_q4_0_export` did to scales f16 cannot hold exactly.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct cq4_q4_0_report {
    /// Scales exported.
    pub scales: usize,
    /// Finite scales too large for f16: they became +/-Inf.
    pub overflowed: usize,
    /// Non-zero finite scales that lost bits in f16's subnormal range (or
    /// flushed to zero).
    pub subnormal_loss: usize,
    /// Other finite scales rounded to the nearest f16 (normal range).
    pub rounded: usize,
}

impl From<q4_0::ExportReport> for cq4_q4_0_report {
    fn from(r: q4_0::ExportReport) -> Self {
        cq4_q4_0_report {
            scales: r.scales,
            overflowed: r.overflowed,
            subnormal_loss: r.subnormal_loss,
            rounded: r.rounded,
        }
    }
}

/// Converts GGML Q4_0 blocks holding a `[rows, cols]` matrix into this
/// format at group size 32. Every element decodes (`cq4_unpack_*`) to the
/// same float as GGML's dequantization; negative scales stay negative.
///
/// Reads `blocks[0 .. rows*cols/32*18]`. Writes `packed[0 .. rows*cols/2]`
/// and `scales[0 .. rows*cols/32]`, nothing else. Returns `CQ4_OK`, or
/// without writing anything: `CQ4_ERR_NULL_POINTER`,
/// `CQ4_ERR_MISALIGNED_POINTER` (`scales`), `CQ4_ERR_BAD_COLS` (`cols` not
/// a multiple of 32), `CQ4_ERR_SIZE_OVERFLOW`,
/// `CQ4_ERR_OVERLAPPING_BUFFERS`, `CQ4_ERR_INPUT_TOO_SHORT` (`blocks_len`,
/// in bytes), `CQ4_ERR_OUTPUT_TOO_SMALL` (`packed_len`, `scales_len`).
///
/// # Safety
/// Each pointer must be NULL or valid for its declared length (in elements
/// of its type); outputs must not overlap any other buffer of the call.
#[no_mangle]
pub unsafe extern "C" fn cq4_q4_0_import(
    blocks: *const u8,
    blocks_len: usize,
    rows: usize,
    cols: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
) -> cq4_status {
    guard(|| {
        let blocks = Raw::new(blocks, blocks_len)?;
        let packed = Raw::new(packed.cast_const(), packed_len)?;
        let scales = Raw::new(scales.cast_const(), scales_len)?;
        let (l, block_bytes) = Layout::q4_0(rows, cols)?;
        check_disjoint(
            &[packed.span(l.packed_len), scales.span(l.scales_len)],
            &[blocks.span(block_bytes)],
        )?;
        // SAFETY: pointers checked non-null, aligned and disjoint above; the
        // caller promised each valid for its declared length.
        let (blocks, packed, scales) = unsafe {
            (
                blocks.as_slice(),
                packed.as_mut_slice(),
                scales.as_mut_slice(),
            )
        };
        q4_0::import(blocks, rows, cols, packed, scales)?;
        Ok(())
    })
}

/// Converts this format at group size 32 (`[rows, cols]`) into GGML Q4_0
/// blocks. Nibbles are kept; each scale is rounded to the nearest f16 (ties
/// to even). When `report` is not NULL, it receives the count of scales
/// that overflowed f16, lost bits in its subnormal range, or were rounded.
///
/// Reads `packed[0 .. rows*cols/2]` and `scales[0 .. rows*cols/32]`.
/// Writes `blocks[0 .. rows*cols/32*18]` and `*report`, nothing else.
/// Returns `CQ4_OK`, or without writing anything: `CQ4_ERR_NULL_POINTER`
/// (`report` may be NULL), `CQ4_ERR_MISALIGNED_POINTER`, `CQ4_ERR_BAD_COLS`,
/// `CQ4_ERR_SIZE_OVERFLOW`, `CQ4_ERR_OVERLAPPING_BUFFERS`,
/// `CQ4_ERR_INPUT_TOO_SHORT` (`packed_len`, `scales_len`),
/// `CQ4_ERR_OUTPUT_TOO_SMALL` (`blocks_len`, in bytes).
///
/// # Safety
/// As `cq4_q4_0_import`; `report` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn cq4_q4_0_export(
    packed: *const u8,
    packed_len: usize,
    scales: *const f32,
    scales_len: usize,
    rows: usize,
    cols: usize,
    blocks: *mut u8,
    blocks_len: usize,
    report: *mut cq4_q4_0_report,
) -> cq4_status {
    guard(|| {
        let packed = Raw::new(packed, packed_len)?;
        let scales = Raw::new(scales, scales_len)?;
        let blocks = Raw::new(blocks.cast_const(), blocks_len)?;
        let report = (!report.is_null())
            .then(|| Raw::new(report.cast_const(), 1))
            .transpose()?;
        let (l, block_bytes) = Layout::q4_0(rows, cols)?;
        let report_span = report.as_ref().map_or(0..0, |r| r.span(1));
        check_disjoint(
            &[blocks.span(block_bytes), report_span],
            &[packed.span(l.packed_len), scales.span(l.scales_len)],
        )?;
        // SAFETY: pointers checked non-null, aligned and disjoint above; the
        // caller promised each valid for its declared length.
        let (packed, scales, blocks) =
            unsafe { (packed.as_slice(), scales.as_slice(), blocks.as_mut_slice()) };
        let done = q4_0::export(packed, scales, rows, cols, blocks)?;
        if let Some(report) = report {
            // SAFETY: checked non-null and aligned, disjoint from the other
            // buffers; the caller promised it valid for one write.
            unsafe { report.as_mut_slice()[0] = done.into() };
        }
        Ok(())
    })
}

/// Quantizes the row-major f32 matrix `src[rows * cols]` straight to GGML
/// Q4_0 blocks with llama.cpp's reference rule (`quantize_row_q4_0_ref`):
/// byte-identical to it, as x86-64 compilers build it, for every finite
/// input. Default options (best kernel, calling thread only).
///
/// Reads `src[0 .. rows*cols]`. Writes `blocks[0 .. rows*cols/32*18]`,
/// nothing else. Returns `CQ4_OK`, or without writing anything:
/// `CQ4_ERR_NULL_POINTER`, `CQ4_ERR_MISALIGNED_POINTER`, `CQ4_ERR_BAD_COLS`,
/// `CQ4_ERR_SIZE_OVERFLOW`, `CQ4_ERR_OVERLAPPING_BUFFERS`,
/// `CQ4_ERR_INPUT_TOO_SHORT` (`src_len`), `CQ4_ERR_OUTPUT_TOO_SMALL`
/// (`blocks_len`, in bytes).
///
/// # Safety
/// As `cq4_q4_0_import`.
#[no_mangle]
pub unsafe extern "C" fn cq4_q4_0_quantize_f32(
    src: *const f32,
    src_len: usize,
    rows: usize,
    cols: usize,
    blocks: *mut u8,
    blocks_len: usize,
) -> cq4_status {
    // SAFETY: the caller's contract is `cq4_q4_0_quantize_f32_ex`'s.
    unsafe {
        cq4_q4_0_quantize_f32_ex(
            src,
            src_len,
            rows,
            cols,
            blocks,
            blocks_len,
            std::ptr::null(),
        )
    }
}

/// As `cq4_q4_0_quantize_f32`, with explicit options (NULL = defaults): the
/// same bytes for every kernel and thread count. Also returns
/// `CQ4_ERR_BAD_OPTIONS` and `CQ4_ERR_UNSUPPORTED_KERNEL`.
///
/// # Safety
/// As `cq4_q4_0_import`; `options` is NULL or points to one `cq4_options`.
#[no_mangle]
pub unsafe extern "C" fn cq4_q4_0_quantize_f32_ex(
    src: *const f32,
    src_len: usize,
    rows: usize,
    cols: usize,
    blocks: *mut u8,
    blocks_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    guard(|| {
        let src = Raw::new(src, src_len)?;
        let blocks = Raw::new(blocks.cast_const(), blocks_len)?;
        let options = read_options(options)?;
        let (l, block_bytes) = Layout::q4_0(rows, cols)?;
        check_disjoint(&[blocks.span(block_bytes)], &[src.span(l.elements)])?;
        // SAFETY: pointers checked non-null, aligned and disjoint above; the
        // caller promised each valid for its declared length.
        let (src, blocks) = unsafe { (src.as_slice(), blocks.as_mut_slice()) };
        q4_0::quantize(&options, src, rows, cols, blocks)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_core() {
        assert_eq!(CQ4_Q4_0_BLOCK, crate::Q4_0_BLOCK);
        assert_eq!(CQ4_Q4_0_BLOCK_BYTES, crate::Q4_0_BLOCK_BYTES);
    }
}
