//! The kernels, one folder per operation and one file per target in each,
//! the scalar reference first:
//!
//! | folder | operation |
//! | --- | --- |
//! | [`pack`] | pack and unpack of f32 (the format's definition: `pack::scalar`) |
//! | `convert` | pack from and unpack to f16 / bf16 |
//! | [`matmul`] | fused products, exact and int8 |
//! | [`gemm`] | int8 products on the prepared form (panels of 16 rows) |
//! | `activations` | int8 quantization of a product's activations |
//! | [`q4_0`] | GGML Q4_0 quantization |
//! | `encode` | the signed and search encoders |
//! | `compensate` | the error-compensating encoder's block update |
//! | `simd` | primitives shared by one target's kernels |
//!
//! `cpu` asks the CPU what it runs; `table` says which kernel serves each
//! operation on each target. The functions below are the operations as
//! the rest of the crate calls them: each takes its kernel from the table
//! of the call's family, so a forced family applies to every step. Every
//! SIMD twin must equal its reference bit for bit.

pub(crate) mod activations;
pub(crate) mod compensate;
pub(crate) mod convert;
pub(crate) mod cpu;
pub(crate) mod encode;
mod entry;
pub mod gemm;
pub mod matmul;
pub mod pack;
pub mod q4_0;
mod simd;
mod table;
pub(crate) mod threads;

pub use cpu::Kernel;
pub use pack::scalar;

use crate::element::Element;
use crate::layout::{Layout, Q4_0_BLOCK};
use activations::QuantizedActivations;
use matmul::{Precision, RowKernel};

// SAFETY (every `unsafe` call below): `Kernel::table` hands out a family's
// table only where the CPU runs it, and `pick` returns the entry serving
// the call's group size; the slices are those the kernel's type asks for.

/// Packs all rows of `src` with the format's own scale rule, on up to
/// `threads` threads. The slices are exactly `elements`, `packed_len` and
/// `scales_len` long.
pub(crate) fn pack<T: Element>(
    layout: &Layout,
    kernel: Kernel,
    threads: usize,
    src: &[T],
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let g = layout.group_size;
    let row = kernel.table().rows::<T>(g).pack;
    pack::pack_rows(layout, threads, src, packed, scales, |s, p, c| {
        // SAFETY: see the top of this file; whole rows.
        unsafe { row(s, g, p, c) }
    });
}

/// Unpacks all rows; slices as for [`pack`].
pub(crate) fn unpack<T: Element>(
    layout: &Layout,
    kernel: Kernel,
    threads: usize,
    packed: &[u8],
    scales: &[f32],
    dst: &mut [T],
) {
    let g = layout.group_size;
    let rows = kernel.table().rows::<T>(g);
    let streaming = layout.elements.saturating_mul(size_of::<T>()) >= pack::STREAMING_UNPACK_BYTES;
    let row = if streaming {
        rows.unpack_streaming
    } else {
        rows.unpack
    };
    pack::unpack_rows(layout, threads, packed, scales, dst, |p, c, d| {
        // SAFETY: see the top of this file; whole rows.
        unsafe { row(p, c, g, d) }
    });
}

/// [`pack`] with the signed encoder's scales.
pub(crate) fn pack_signed<T: Element>(
    layout: &Layout,
    kernel: Kernel,
    threads: usize,
    src: &[T],
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let whole_groups = kernel.table().signed.pick(layout.group_size);
    pack::pack_rows(layout, threads, src, packed, scales, |s, p, c| {
        encode::pack_signed_row(s, layout.group_size, p, c, |s, g, p, c| {
            // SAFETY: see the top of this file; whole groups of `g`.
            unsafe { whole_groups(s, g, p, c) }
        })
    });
}

/// [`pack`] with the search encoder's scales, weighted by `importance`
/// (`cols` values, checked) when given.
pub(crate) fn pack_search<T: Element>(
    layout: &Layout,
    kernel: Kernel,
    threads: usize,
    importance: Option<&[f32]>,
    src: &[T],
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let fits = kernel.table().search_fits.pick(layout.group_size);
    pack::pack_rows(layout, threads, src, packed, scales, |s, p, c| {
        encode::pack_search_row(importance, s, layout.group_size, p, c, |v, w, s| {
            // SAFETY: see the top of this file.
            unsafe { fits(v, w, s) }
        })
    });
}

/// The search encoder's scale choice for groups of `group_size` (a group
/// may be shorter), its candidates evaluated by the call's kernel: what the
/// error-compensating encoder runs on each group it enters.
pub(crate) fn search_scale(
    kernel: Kernel,
    group_size: usize,
) -> impl Fn(&[f32], &[f32]) -> f32 + Sync {
    let fits = kernel.table().search_fits.pick(group_size);
    move |group, importance| {
        encode::scalar::search_scale_with(group, Some(importance), |v, w, s| {
            // SAFETY: see the top of this file.
            unsafe { fits(v, w, s) }
        })
    }
}

/// The error-compensating encoder's block update, from the call's table.
pub(crate) fn block_update(kernel: Kernel) -> impl Fn(compensate::BlockUpdate) + Sync {
    let update = kernel.table().compensate.pick(0);
    move |b| {
        // SAFETY: see the top of this file.
        unsafe { update(b) }
    }
}

/// Quantizes `src` (the matrix of `layout`, from [`Layout::q4_0`]) into
/// GGML Q4_0 `blocks` (exactly the byte count `Layout::q4_0` gives), on up
/// to `threads` threads.
pub(crate) fn quantize_q4_0(
    kernel: Kernel,
    threads: usize,
    layout: &Layout,
    src: &[f32],
    blocks: &mut [u8],
) {
    let quantize_blocks = kernel.table().q4_0.pick(Q4_0_BLOCK);
    q4_0::quantize_rows(threads, layout, src, blocks, |s, b| {
        // SAFETY: see the top of this file; whole blocks.
        unsafe { quantize_blocks(s, b) }
    });
}

/// Quantizes `batch` rows of `cols` activations for int8 products: per
/// group of `group_size`, `scale = max |x| / 127` (NaN ignored) and
/// `q = round(x / scale)` (0 where the scale is 0), as
/// `activations::scalar::quantize_activations` defines.
pub(crate) fn quantize_activations(
    kernel: Kernel,
    x: &[f32],
    batch: usize,
    cols: usize,
    group_size: usize,
) -> QuantizedActivations {
    let quantize = kernel.table().activations.pick(group_size);
    // SAFETY: see the top of this file; `x` holds `batch * cols` values.
    unsafe { quantize(x, batch, cols, group_size) }
}

/// The product kernel for `precision` at `group_size`. Its `run` asks
/// that it came from here.
pub(crate) fn product_kernel(kernel: Kernel, precision: Precision, group_size: usize) -> RowKernel {
    let table = kernel.table();
    match precision {
        Precision::Exact => table.product_exact.pick(group_size),
        Precision::Int8 => table.product_int8.pick(group_size),
    }
}

/// The int8 panel kernel of the prepared form. Calling it asks that it
/// came from here.
pub(crate) fn panel_kernel(kernel: Kernel) -> gemm::PanelFn {
    kernel.table().prepared_int8.pick(1)
}

/// The exact panel kernel of the prepared form; as [`panel_kernel`].
pub(crate) fn panel_exact_kernel(kernel: Kernel) -> gemm::PanelExactFn {
    kernel.table().prepared_exact.pick(1)
}
