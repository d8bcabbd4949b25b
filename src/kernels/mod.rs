//! The kernels. [`scalar`] is the reference that defines the format; each
//! SIMD twin sits beside it in a file of its own, must equal it bit for bit,
//! and is picked once at run time from the CPU's features ([`Kernel::auto`])
//! or per call through [`Options`](crate::Options).

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod convert;
pub mod matmul;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod q4_0;
pub mod scalar;
pub(crate) mod threads;

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::element::Element;
use crate::layout::Layout;

/// A kernel family. Every one gives the same bytes; they differ in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The reference: plain Rust, every target.
    Scalar,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 F, BW and VL.
    Avx512,
    /// aarch64 NEON.
    Neon,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: [Kernel; 4] = [Kernel::Avx512, Kernel::Avx2, Kernel::Neon, Kernel::Scalar];

    /// The name used by `CQ4_KERNEL` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
            Kernel::Neon => "neon",
        }
    }

    /// The kernel called `name`, if any.
    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)] // kernels of other targets
            _ => false,
        }
    }

    /// The kernel used when a call does not pick one, decided once per
    /// process: `CQ4_KERNEL` (scalar, avx2, avx512 or neon) when it names a
    /// kernel this CPU supports, else the fastest supported one.
    pub fn auto() -> Kernel {
        static AUTO: OnceLock<Kernel> = OnceLock::new();
        *AUTO.get_or_init(|| {
            std::env::var("CQ4_KERNEL")
                .ok()
                .and_then(|name| Kernel::from_name(name.trim()))
                .filter(|k| k.is_supported())
                .unwrap_or_else(|| Kernel::ALL.into_iter().find(|k| k.is_supported()).unwrap())
        })
    }
}

/// Packs one row: `src` is `cols` long, `packed` one packed row, `scales`
/// one row of scales.
type PackRow<T> = unsafe fn(&[T], usize, &mut [u8], &mut [f32]);
/// Unpacks one row; slices as for [`PackRow`].
type UnpackRow<T> = unsafe fn(&[u8], &[f32], usize, &mut [T]);

/// The row kernels of one element type.
pub struct RowKernels<T> {
    pack: PackRow<T>,
    unpack: UnpackRow<T>,
}

impl<T: Element> RowKernels<T> {
    /// The scalar reference, for any element type.
    pub(crate) fn scalar() -> Self {
        RowKernels {
            pack: scalar::pack_row::<T>,
            unpack: scalar::unpack_row::<T>,
        }
    }
}

/// A SIMD twin of the reference for f32, over whole groups only.
trait FullGroups {
    /// f32 lanes per register: the twin handles group sizes divisible by it.
    const LANES: usize;

    /// Packs whole groups.
    ///
    /// # Safety
    /// The CPU runs the kernel, and `group_size % LANES == 0`.
    unsafe fn pack(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]);

    /// Unpacks whole groups.
    ///
    /// # Safety
    /// As [`FullGroups::pack`].
    unsafe fn unpack(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]);
}

/// Packs a row with `K` over its whole groups and the reference over the
/// ragged last one.
///
/// # Safety
/// As [`FullGroups::pack`].
unsafe fn pack_row_with<K: FullGroups>(
    src: &[f32],
    g: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let full = src.len() / g;
    let (src_full, src_tail) = src.split_at(full * g);
    let (packed_full, packed_tail) = packed.split_at_mut(full * g / 2);
    let (scales_full, scales_tail) = scales.split_at_mut(full);
    // SAFETY: forwarded from the caller.
    unsafe { K::pack(src_full, g, packed_full, scales_full) };
    scalar::pack_row(src_tail, g, packed_tail, scales_tail);
}

/// Unpacks a row as [`pack_row_with`] packs it.
///
/// # Safety
/// As [`FullGroups::pack`].
unsafe fn unpack_row_with<K: FullGroups>(packed: &[u8], scales: &[f32], g: usize, dst: &mut [f32]) {
    let full = dst.len() / g;
    let (dst_full, dst_tail) = dst.split_at_mut(full * g);
    let (packed_full, packed_tail) = packed.split_at(full * g / 2);
    let (scales_full, scales_tail) = scales.split_at(full);
    // SAFETY: forwarded from the caller.
    unsafe { K::unpack(packed_full, scales_full, g, dst_full) };
    scalar::unpack_row(packed_tail, scales_tail, g, dst_tail);
}

impl RowKernels<f32> {
    /// `K`'s kernels when `group_size` suits it, else the reference. The
    /// caller has checked that the CPU runs `K`.
    fn simd<K: FullGroups>(group_size: usize) -> Self {
        if !group_size.is_multiple_of(K::LANES) {
            return RowKernels::scalar();
        }
        RowKernels {
            pack: pack_row_with::<K>,
            unpack: unpack_row_with::<K>,
        }
    }
}

/// The f32 row kernels of `kernel` for `group_size`: its SIMD twin when the
/// kernel runs here and has a fast path for that group size, else scalar.
/// Only this function hands out SIMD kernels, so they only run where the
/// CPU supports them.
pub(crate) fn f32_row_kernels(kernel: Kernel, group_size: usize) -> RowKernels<f32> {
    if !kernel.is_supported() {
        return RowKernels::scalar();
    }
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => RowKernels::simd::<avx512::Avx512>(group_size),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => RowKernels::simd::<avx2::Avx2>(group_size),
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon => RowKernels::simd::<neon::Neon>(group_size),
        _ => RowKernels::scalar(),
    }
}

/// Packs all rows with `kernel` on up to `threads` threads. The slices are
/// exactly `elements`, `packed_len` and `scales_len` long.
pub(crate) fn pack<T: Element>(
    layout: &Layout,
    kernel: Kernel,
    threads: usize,
    src: &[T],
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let row_kernel = T::row_kernels(kernel, layout.group_size).pack;
    pack_rows(
        layout,
        threads,
        src,
        packed,
        scales,
        |src, packed, scales| {
            // SAFETY: `row_kernels` only returns kernels this CPU runs, for a
            // group size they handle; the slices are whole rows.
            unsafe { row_kernel(src, layout.group_size, packed, scales) }
        },
    );
}

/// Runs `pack_row(src_row, packed_row, scales_row)` over every row, on up
/// to `threads` threads; arguments as for [`pack`].
pub(crate) fn pack_rows<T: Element>(
    layout: &Layout,
    threads: usize,
    src: &[T],
    packed: &mut [u8],
    scales: &mut [f32],
    pack_row: impl Fn(&[T], &mut [u8], &mut [f32]) + Sync,
) {
    if layout.elements == 0 {
        return;
    }
    let pack_rows = |src: &[T], packed: &mut [u8], scales: &mut [f32]| {
        let rows = src
            .chunks_exact(layout.cols)
            .zip(packed.chunks_exact_mut(layout.packed_row_bytes))
            .zip(scales.chunks_exact_mut(layout.groups_per_row));
        for ((src_row, packed_row), scales_row) in rows {
            pack_row(src_row, packed_row, scales_row);
        }
    };
    let task_rows = threads::rows_per_task(layout.rows, layout.cols, threads);
    if task_rows >= layout.rows {
        return pack_rows(src, packed, scales);
    }
    src.par_chunks(task_rows * layout.cols)
        .zip(packed.par_chunks_mut(task_rows * layout.packed_row_bytes))
        .zip(scales.par_chunks_mut(task_rows * layout.groups_per_row))
        .for_each(|((src, packed), scales)| pack_rows(src, packed, scales));
}

/// Unpacks all rows; arguments as for [`pack`].
pub(crate) fn unpack<T: Element>(
    layout: &Layout,
    kernel: Kernel,
    threads: usize,
    packed: &[u8],
    scales: &[f32],
    dst: &mut [T],
) {
    if layout.elements == 0 {
        return;
    }
    let row_kernel = T::row_kernels(kernel, layout.group_size).unpack;
    let unpack_rows = |dst: &mut [T], packed: &[u8], scales: &[f32]| {
        let rows = dst
            .chunks_exact_mut(layout.cols)
            .zip(packed.chunks_exact(layout.packed_row_bytes))
            .zip(scales.chunks_exact(layout.groups_per_row));
        for ((dst_row, packed_row), scales_row) in rows {
            // SAFETY: as in `pack`.
            unsafe { row_kernel(packed_row, scales_row, layout.group_size, dst_row) };
        }
    };
    let task_rows = threads::rows_per_task(layout.rows, layout.cols, threads);
    if task_rows >= layout.rows {
        return unpack_rows(dst, packed, scales);
    }
    dst.par_chunks_mut(task_rows * layout.cols)
        .zip(packed.par_chunks(task_rows * layout.packed_row_bytes))
        .zip(scales.par_chunks(task_rows * layout.groups_per_row))
        .for_each(|((dst, packed), scales)| unpack_rows(dst, packed, scales));
}
