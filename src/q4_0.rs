//! GGML Q4_0 (llama.cpp's `block_q4_0`) to and from this format at g = 32.
//!
//! A Q4_0 block holds 32 elements: the f16 scale `d` (little-endian), then
//! 16 bytes where byte `j` holds element `j` in its low nibble and element
//! `j + 16` in its high nibble; it decodes to `(nibble - 8) * d`. This
//! format at g = 32 holds the same nibbles in pairs (elements `2i`, `2i + 1`
//! in byte `i`) with an f32 scale, and decodes with the same f32 product,
//! so import is exact; export rounds each scale to f16.

use half::f16;

use crate::error::{Buffer, Error};
use crate::kernels;
pub use crate::kernels::q4_0::scalar;
use crate::layout::{Layout, Q4_0_BLOCK, Q4_0_BLOCK_BYTES};
use crate::options::Options;

/// What export did to scales that f16 cannot hold exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Scales exported.
    pub scales: usize,
    /// Finite scales too large for f16: they became ±Inf.
    pub overflowed: usize,
    /// Non-zero finite scales that lost bits in f16's subnormal range (or
    /// flushed to zero).
    pub subnormal_loss: usize,
    /// Other finite scales rounded to the nearest f16 (normal range).
    pub rounded: usize,
}

/// Where element `e` of a block sits: byte and nibble shift in Q4_0 order.
#[inline]
fn q4_0_position(e: usize) -> (usize, u32) {
    (e % 16, 4 * (e / 16) as u32)
}

/// Splits `blocks` into whole Q4_0 blocks (scale bytes, nibble bytes).
fn blocks_of(blocks: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    blocks.chunks_exact(Q4_0_BLOCK_BYTES).map(|b| b.split_at(2))
}

/// Converts Q4_0 blocks holding a `[rows, cols]` matrix (`blocks`, at
/// least `rows * cols / 32 * 18` bytes) into this format at g = 32:
/// `packed` (at least `rows * cols / 2` bytes) and `scales` (at least
/// `rows * cols / 32` f32). Every element decodes to the same f32 as
/// GGML's dequantization; negative scales stay negative.
///
/// Errors, with nothing written: [`Error::ColsNotWholeBlocks`],
/// [`Error::SizeOverflow`], [`Error::InputTooShort`],
/// [`Error::OutputTooSmall`].
pub fn import(
    blocks: &[u8],
    rows: usize,
    cols: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) -> Result<(), Error> {
    let (l, block_bytes) = Layout::q4_0(rows, cols)?;
    Layout::check_input(Buffer::Blocks, block_bytes, blocks.len())?;
    Layout::check_output(Buffer::Packed, l.packed_len, packed.len())?;
    Layout::check_output(Buffer::Scales, l.scales_len, scales.len())?;
    let groups = blocks_of(&blocks[..block_bytes])
        .zip(packed.chunks_exact_mut(Q4_0_BLOCK / 2))
        .zip(scales.iter_mut());
    for (((d, qs), out), scale) in groups {
        *scale = f16::from_le_bytes([d[0], d[1]]).to_f32();
        let nibble = |e: usize| {
            let (byte, shift) = q4_0_position(e);
            (qs[byte] >> shift) & 0x0F
        };
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = nibble(2 * i) | (nibble(2 * i + 1) << 4);
        }
    }
    Ok(())
}

/// Converts this format at g = 32 (`packed` and `scales` of a `[rows,
/// cols]` matrix) into Q4_0 blocks (at least `rows * cols / 32 * 18`
/// bytes). Nibbles are kept; each scale is rounded to the nearest f16
/// (ties to even), and the report counts the scales that f16 could not
/// hold.
///
/// Errors, with nothing written: [`Error::ColsNotWholeBlocks`],
/// [`Error::SizeOverflow`], [`Error::InputTooShort`],
/// [`Error::OutputTooSmall`].
pub fn export(
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    blocks: &mut [u8],
) -> Result<ExportReport, Error> {
    let (l, block_bytes) = Layout::q4_0(rows, cols)?;
    Layout::check_input(Buffer::Packed, l.packed_len, packed.len())?;
    Layout::check_input(Buffer::Scales, l.scales_len, scales.len())?;
    Layout::check_output(Buffer::Blocks, block_bytes, blocks.len())?;
    let mut report = ExportReport {
        scales: l.scales_len,
        ..ExportReport::default()
    };
    let groups = blocks[..block_bytes]
        .chunks_exact_mut(Q4_0_BLOCK_BYTES)
        .zip(packed.chunks_exact(Q4_0_BLOCK / 2))
        .zip(&scales[..l.scales_len]);
    for ((block, bytes), &scale) in groups {
        let d = f16::from_f32(scale);
        if scale.is_finite() {
            let back = d.to_f32();
            if d.is_infinite() {
                report.overflowed += 1;
            } else if back != scale && scale.abs() < f16::MIN_POSITIVE.to_f32() {
                report.subnormal_loss += 1;
            } else if back != scale {
                report.rounded += 1;
            }
        }
        let (d_out, qs) = block.split_at_mut(2);
        d_out.copy_from_slice(&d.to_le_bytes());
        qs.fill(0);
        for (i, &byte) in bytes.iter().enumerate() {
            for (e, nibble) in [(2 * i, byte & 0x0F), (2 * i + 1, byte >> 4)] {
                let (at, shift) = q4_0_position(e);
                qs[at] |= nibble << shift;
            }
        }
    }
    Ok(report)
}

/// Quantizes the f32 matrix `src` (`[rows, cols]`, at least `rows * cols`
/// elements) straight to Q4_0 blocks in `blocks` (at least `rows * cols /
/// 32 * 18` bytes) with llama.cpp's reference rule
/// ([`scalar::quantize_block`]): per block, `m` the first element of
/// largest magnitude, `d = m / -8`, `id = 1 / d` (0 when `d` is 0), the f16
/// of `d` stored, and per element `min(15, (int8_t)(x * id + 8.5))`.
/// Byte-identical to that C code as x86-64 compilers build it, for every
/// finite input, whatever the `options` (kernel, threads).
///
/// Errors, with nothing written: [`Error::UnsupportedKernel`],
/// [`Error::ColsNotWholeBlocks`], [`Error::SizeOverflow`],
/// [`Error::InputTooShort`], [`Error::OutputTooSmall`].
pub fn quantize(
    options: &Options,
    src: &[f32],
    rows: usize,
    cols: usize,
    blocks: &mut [u8],
) -> Result<(), Error> {
    let kernel = options.kernel()?;
    let (l, block_bytes) = Layout::q4_0(rows, cols)?;
    Layout::check_input(Buffer::Source, l.elements, src.len())?;
    Layout::check_output(Buffer::Blocks, block_bytes, blocks.len())?;
    kernels::quantize_q4_0(
        kernel,
        options.threads,
        &l,
        &src[..l.elements],
        &mut blocks[..block_bytes],
    );
    Ok(())
}
