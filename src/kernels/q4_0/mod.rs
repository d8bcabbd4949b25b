//! GGML Q4_0 quantization: the reference in [`scalar`], SIMD twins beside
//! it that must equal it byte for byte.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;

use rayon::prelude::*;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::entry::any_group_size;
use super::entry::Entry;
use super::threads;
use crate::layout::{Layout, Q4_0_BLOCK, Q4_0_BLOCK_BYTES};

/// Quantizes whole blocks: `src` holds 32 values per 18-byte block of
/// `blocks`.
pub(crate) type BlocksFn = unsafe fn(&[f32], &mut [u8]);

/// The reference over whole blocks.
fn reference_blocks(src: &[f32], blocks: &mut [u8]) {
    for (x, block) in src
        .chunks_exact(Q4_0_BLOCK)
        .zip(blocks.chunks_exact_mut(Q4_0_BLOCK_BYTES))
    {
        scalar::quantize_block(x, block);
    }
}

pub(crate) static SCALAR: Entry<BlocksFn> = Entry::reference(reference_blocks);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2: Entry<BlocksFn> =
    Entry::simd(any_group_size, avx2::quantize_blocks, &SCALAR);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512: Entry<BlocksFn> =
    Entry::simd(any_group_size, avx512::quantize_blocks, &AVX2);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON: Entry<BlocksFn> =
    Entry::simd(any_group_size, neon::quantize_blocks, &SCALAR);

/// Runs `quantize_blocks(src_rows, block_rows)` over `src` (the matrix of
/// `layout`, from [`Layout::q4_0`]) and `blocks` (exactly the byte count
/// `Layout::q4_0` gives), on up to `threads` threads.
pub(crate) fn quantize_rows(
    threads: usize,
    layout: &Layout,
    src: &[f32],
    blocks: &mut [u8],
    quantize_blocks: impl Fn(&[f32], &mut [u8]) + Sync,
) {
    if src.is_empty() {
        return;
    }
    let (rows, cols) = (layout.rows, layout.cols);
    let task_rows = threads::rows_per_task(rows, cols, threads);
    if task_rows >= rows {
        return quantize_blocks(src, blocks);
    }
    let row_bytes = layout.groups_per_row * Q4_0_BLOCK_BYTES;
    src.par_chunks(task_rows * cols)
        .zip(blocks.par_chunks_mut(task_rows * row_bytes))
        .for_each(|(src, blocks)| quantize_blocks(src, blocks));
}
