//! The kernels. [`scalar`] is the reference that defines the format; each
//! SIMD twin sits beside it in a file of its own, must equal it bit for bit,
//! and is picked once at run time from the CPU's features ([`Kernel::auto`])
//! or per call through [`Options`](crate::Options).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;
mod threads;

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
        Kernel::Avx512 if group_size.is_multiple_of(avx512::LANES) => RowKernels {
            pack: avx512::pack_row,
            unpack: avx512::unpack_row,
        },
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 if group_size.is_multiple_of(avx2::LANES) => RowKernels {
            pack: avx2::pack_row,
            unpack: avx2::unpack_row,
        },
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon if group_size.is_multiple_of(neon::LANES) => RowKernels {
            pack: neon::pack_row,
            unpack: neon::unpack_row,
        },
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
    if layout.elements == 0 {
        return;
    }
    let row_kernel = T::row_kernels(kernel, layout.group_size).pack;
    let pack_rows = |src: &[T], packed: &mut [u8], scales: &mut [f32]| {
        let rows = src
            .chunks_exact(layout.cols)
            .zip(packed.chunks_exact_mut(layout.packed_row_bytes))
            .zip(scales.chunks_exact_mut(layout.groups_per_row));
        for ((src_row, packed_row), scales_row) in rows {
            // SAFETY: `row_kernels` only returns kernels this CPU runs, for
            // a group size they handle; the slices are whole rows.
            unsafe { row_kernel(src_row, layout.group_size, packed_row, scales_row) };
        }
    };
    let task_rows = threads::rows_per_task(layout, threads);
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
    let task_rows = threads::rows_per_task(layout, threads);
    if task_rows >= layout.rows {
        return unpack_rows(dst, packed, scales);
    }
    dst.par_chunks_mut(task_rows * layout.cols)
        .zip(packed.par_chunks(task_rows * layout.packed_row_bytes))
        .zip(scales.par_chunks(task_rows * layout.groups_per_row))
        .for_each(|((dst, packed), scales)| unpack_rows(dst, packed, scales));
}
