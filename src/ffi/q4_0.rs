//! GGML Q4_0 blocks through the C ABI. Blocks are bytes (18 per block of
//! 32 elements), so any pointer is aligned for them.

use std::ptr::null;

use super::call::Call;
use super::cq4_status;
use super::options::{cq4_options, read_options};
use crate::layout::Layout;
use crate::options::Options;
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

call_kind! {
    /// `cq4_q4_0_import`: GGML blocks into `packed` and `scales`.
    struct Import {
        blocks: input<u8>[blocks_len],
        rows: usize,
        cols: usize,
        packed: output<u8>[packed_len],
        scales: output<f32>[scales_len],
    }
}

impl Call for Import {
    type Choices = ();
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<(), cq4_status> {
        Ok(())
    }

    fn shape(&mut self, _: &()) -> Result<(), cq4_status> {
        let (l, block_bytes) = Layout::q4_0(self.rows, self.cols)?;
        self.blocks.touch(block_bytes);
        self.packed.touch(l.packed_len);
        self.scales.touch(l.scales_len);
        Ok(())
    }

    unsafe fn run(self, _: (), _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (blocks, packed, scales) = unsafe {
            (
                self.blocks.slice(),
                self.packed.slice_mut(),
                self.scales.slice_mut(),
            )
        };
        q4_0::import(blocks, self.rows, self.cols, packed, scales)?;
        Ok(())
    }
}

call_kind! {
    /// `cq4_q4_0_export`: `packed` and `scales` into GGML blocks, and what
    /// happened to the scales into `report`, if given.
    struct Export {
        packed: input<u8>[packed_len],
        scales: input<f32>[scales_len],
        rows: usize,
        cols: usize,
        blocks: output<u8>[blocks_len],
        report: value_out<cq4_q4_0_report>.optional(),
    }
}

impl Call for Export {
    type Choices = ();
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<(), cq4_status> {
        Ok(())
    }

    fn shape(&mut self, _: &()) -> Result<(), cq4_status> {
        let (l, block_bytes) = Layout::q4_0(self.rows, self.cols)?;
        self.packed.touch(l.packed_len);
        self.scales.touch(l.scales_len);
        self.blocks.touch(block_bytes);
        Ok(())
    }

    unsafe fn run(self, _: (), _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (packed, scales, blocks) = unsafe {
            (
                self.packed.slice(),
                self.scales.slice(),
                self.blocks.slice_mut(),
            )
        };
        let done = q4_0::export(packed, scales, self.rows, self.cols, blocks)?;
        // SAFETY: checked by `checked`.
        unsafe { self.report.write(done.into()) };
        Ok(())
    }
}

call_kind! {
    /// `cq4_q4_0_quantize_*`: `src` straight to GGML blocks.
    struct Quantize {
        src: input<f32>[src_len],
        rows: usize,
        cols: usize,
        blocks: output<u8>[blocks_len],
        options: value_in<cq4_options>.optional(),
    }
}

impl Call for Quantize {
    type Choices = Options;
    type Shape = ();

    unsafe fn choose(&mut self) -> Result<Options, cq4_status> {
        // SAFETY: the options pointer passed its checks (`choose`'s contract).
        unsafe { read_options(&self.options) }
    }

    fn shape(&mut self, _: &Options) -> Result<(), cq4_status> {
        let (l, block_bytes) = Layout::q4_0(self.rows, self.cols)?;
        self.src.touch(l.elements);
        self.blocks.touch(block_bytes);
        Ok(())
    }

    unsafe fn run(self, options: Options, _: ()) -> Result<(), cq4_status> {
        // SAFETY: checked by `checked`.
        let (src, blocks) = unsafe { (self.src.slice(), self.blocks.slice_mut()) };
        q4_0::quantize(&options, src, self.rows, self.cols, blocks)?;
        Ok(())
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
    forward! { Import::new(blocks, blocks_len, rows, cols, packed, packed_len, scales, scales_len) }
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
    forward! { Export::new(packed, packed_len, scales, scales_len, rows, cols, blocks, blocks_len,
    report) }
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
    forward! { Quantize::new(src, src_len, rows, cols, blocks, blocks_len, null()) }
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
    forward! { Quantize::new(src, src_len, rows, cols, blocks, blocks_len, options) }
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
