//! GGML Q4_0 quantization: the reference in [`scalar`], SIMD twins beside
//! it that must equal it byte for byte.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod scalar;

use rayon::prelude::*;

use super::{threads, Kernel};
use crate::layout::{Layout, Q4_0_BLOCK, Q4_0_BLOCK_BYTES};

/// Quantizes `src` (the matrix of `layout`, from [`Layout::q4_0`]) into
/// `blocks` (exactly the byte count `Layout::q4_0` gives) with `kernel`'s
/// twin where it has one and the CPU runs it, else the reference, on up to
/// `threads` threads.
pub(crate) fn quantize(
    kernel: Kernel,
    threads: usize,
    layout: &Layout,
    src: &[f32],
    blocks: &mut [u8],
) {
    if src.is_empty() {
        return;
    }
    let run = |src: &[f32], blocks: &mut [u8]| match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU runs the kernel (checked just above).
        Kernel::Avx512 if kernel.is_supported() => unsafe { avx512::quantize_blocks(src, blocks) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Kernel::Avx2 if kernel.is_supported() => unsafe { avx2::quantize_blocks(src, blocks) },
        _ => {
            for (x, block) in src
                .chunks_exact(Q4_0_BLOCK)
                .zip(blocks.chunks_exact_mut(Q4_0_BLOCK_BYTES))
            {
                scalar::quantize_block(x, block);
            }
        }
    };
    let (rows, cols) = (layout.rows, layout.cols);
    let task_rows = threads::rows_per_task(rows, cols, threads);
    if task_rows >= rows {
        return run(src, blocks);
    }
    let row_bytes = layout.groups_per_row * Q4_0_BLOCK_BYTES;
    src.par_chunks(task_rows * cols)
        .zip(blocks.par_chunks_mut(task_rows * row_bytes))
        .for_each(|(src, blocks)| run(src, blocks));
}
