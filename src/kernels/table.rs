//! Which kernel serves each operation on each target: one table per
//! [`Kernel`] family, built once per process from the CPU's features
//! (`kernels::cpu`). Every operation takes its kernel from the table of
//! the call's family, so a forced family applies to every step of a call.
//!
//! An entry serves the group sizes its `serves` accepts and hands the
//! others to the entry it names (AVX-512 → AVX2 → the scalar reference,
//! which serves every group size). Adding a target means one table here
//! and its files in each operation's folder; adding an operation means one
//! field here, a folder beside the others and its function in
//! `kernels/mod.rs`.

use std::any::Any;

use half::{bf16, f16};

use super::activations::ActivationsFn;
use super::compensate::UpdateFn;
use super::cpu::Kernel;
use super::encode::{FitsFn, SignedFn};
use super::entry::Entry;
use super::gemm::{PanelExactFn, PanelFn};
use super::matmul::RowKernel;
use super::pack::RowKernels;
use super::q4_0::BlocksFn;
use super::{activations, compensate, convert, encode, gemm, matmul, pack, q4_0};
use crate::element::Element;

/// The kernels of one target, operation by operation. A SIMD entry may
/// only be run on a CPU that runs the table's family: [`Kernel::table`]
/// hands out a family's table only there.
pub(crate) struct KernelTable {
    /// Pack and unpack rows of f32, f16 and bf16 (f64 always runs the
    /// reference).
    pub(crate) rows_f32: &'static Entry<RowKernels<f32>>,
    pub(crate) rows_f16: &'static Entry<RowKernels<f16>>,
    pub(crate) rows_bf16: &'static Entry<RowKernels<bf16>>,
    /// Products in exact precision, and in int8 precision.
    pub(crate) product_exact: &'static Entry<RowKernel>,
    pub(crate) product_int8: &'static Entry<RowKernel>,
    /// Products on the prepared form, int8 and exact.
    pub(crate) prepared_int8: &'static Entry<PanelFn>,
    pub(crate) prepared_exact: &'static Entry<PanelExactFn>,
    /// The int8 quantization of a product's activations.
    pub(crate) activations: &'static Entry<ActivationsFn>,
    /// GGML Q4_0 quantization.
    pub(crate) q4_0: &'static Entry<BlocksFn>,
    /// The signed encoder over whole groups.
    pub(crate) signed: &'static Entry<SignedFn>,
    /// The search encoder's error of each candidate scale.
    pub(crate) search_fits: &'static Entry<FitsFn>,
    /// The error-compensating encoder's block update.
    pub(crate) compensate: &'static Entry<UpdateFn>,
}

/// The reference, on every target.
static SCALAR: KernelTable = KernelTable {
    rows_f32: &pack::SCALAR_F32,
    rows_f16: &pack::SCALAR_F16,
    rows_bf16: &pack::SCALAR_BF16,
    product_exact: &matmul::SCALAR_EXACT,
    product_int8: &matmul::SCALAR_INT8,
    prepared_int8: &gemm::SCALAR_INT8,
    prepared_exact: &gemm::SCALAR_EXACT,
    activations: &activations::SCALAR_ACTIVATIONS,
    q4_0: &q4_0::SCALAR,
    signed: &encode::SCALAR_SIGNED,
    search_fits: &encode::SCALAR_FITS,
    compensate: &compensate::SCALAR_UPDATE,
};

/// x86-64 AVX2 + FMA; f16 needs F16C too.
#[cfg(target_arch = "x86_64")]
fn avx2() -> KernelTable {
    KernelTable {
        rows_f32: &pack::AVX2_F32,
        rows_f16: if super::cpu::has_f16c() {
            &convert::AVX2_F16
        } else {
            &pack::SCALAR_F16
        },
        rows_bf16: &convert::AVX2_BF16,
        product_exact: &matmul::AVX2_EXACT,
        product_int8: &matmul::AVX2_INT8,
        prepared_int8: &gemm::AVX2_INT8,
        prepared_exact: &gemm::AVX2_EXACT,
        activations: &activations::SCALAR_ACTIVATIONS,
        q4_0: &q4_0::AVX2,
        signed: &encode::AVX2_SIGNED,
        search_fits: &encode::AVX2_FITS,
        compensate: &compensate::AVX2_UPDATE,
    }
}

/// x86-64 AVX2 + FMA with AVX-VNNI: the AVX2 table, with `vpdpbusd` in
/// int8 products on the prepared form.
#[cfg(target_arch = "x86_64")]
fn avx_vnni() -> KernelTable {
    KernelTable {
        prepared_int8: &gemm::AVX_VNNI_INT8,
        ..avx2()
    }
}

/// x86-64 AVX-512 F/BW/VL; int8 products need VNNI too. Its product
/// entries hand the group sizes they have no fast path for to AVX2.
#[cfg(target_arch = "x86_64")]
fn avx512() -> KernelTable {
    KernelTable {
        rows_f32: &pack::AVX512_F32,
        rows_f16: &convert::AVX512_F16,
        rows_bf16: &convert::AVX512_BF16,
        product_exact: &matmul::AVX512_EXACT,
        product_int8: if super::cpu::has_avx512_vnni() {
            &matmul::AVX512_INT8
        } else {
            &matmul::AVX2_INT8
        },
        prepared_int8: if super::cpu::has_avx512_vnni() {
            &gemm::AVX512_INT8
        } else {
            &gemm::AVX2_INT8
        },
        prepared_exact: &gemm::AVX512_EXACT,
        activations: &activations::AVX512_ACTIVATIONS,
        q4_0: &q4_0::AVX512,
        signed: &encode::AVX512_SIGNED,
        search_fits: &encode::AVX512_FITS,
        compensate: &compensate::AVX512_UPDATE,
    }
}

/// aarch64 NEON.
#[cfg(target_arch = "aarch64")]
fn neon() -> KernelTable {
    KernelTable {
        rows_f32: &pack::NEON_F32,
        rows_f16: &convert::NEON_F16,
        rows_bf16: &convert::NEON_BF16,
        product_exact: &matmul::NEON_EXACT,
        product_int8: &matmul::NEON_INT8,
        prepared_int8: &gemm::NEON_INT8,
        prepared_exact: &gemm::NEON_EXACT,
        activations: &activations::NEON_ACTIVATIONS,
        q4_0: &q4_0::NEON,
        signed: &encode::NEON_SIGNED,
        search_fits: &encode::NEON_FITS,
        compensate: &compensate::NEON_UPDATE,
    }
}

/// aarch64 NEON with the dot-product extension: the NEON table, with
/// `sdot` in int8 products.
#[cfg(target_arch = "aarch64")]
fn neon_dotprod() -> KernelTable {
    KernelTable {
        product_int8: &matmul::NEON_DOTPROD_INT8,
        prepared_int8: &gemm::NEON_DOTPROD_INT8,
        ..neon()
    }
}

/// aarch64 NEON with the dot-product and int8 matrix-multiply
/// extensions: the dot-product table, with `smmla` in int8 products on
/// the prepared form.
#[cfg(target_arch = "aarch64")]
fn neon_i8mm() -> KernelTable {
    KernelTable {
        prepared_int8: &gemm::NEON_I8MM_INT8,
        ..neon_dotprod()
    }
}

impl KernelTable {
    /// The pack and unpack row kernels for `T` at `group_size` (f64 always
    /// runs the reference).
    pub(crate) fn rows<T: Element>(&self, group_size: usize) -> RowKernels<T> {
        let entries: [&dyn Any; 3] = [self.rows_f32, self.rows_f16, self.rows_bf16];
        entries
            .into_iter()
            .find_map(|entry| entry.downcast_ref::<Entry<RowKernels<T>>>())
            .map_or_else(RowKernels::reference, |entry| entry.pick(group_size))
    }
}

impl Kernel {
    /// This family's table where the CPU runs it, else the reference's.
    /// The only way to a table, so SIMD kernels only run where the CPU
    /// supports them.
    pub(crate) fn table(self) -> &'static KernelTable {
        if !self.is_supported() {
            return &SCALAR;
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                static TABLE: std::sync::OnceLock<KernelTable> = std::sync::OnceLock::new();
                TABLE.get_or_init(avx2)
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::AvxVnni => {
                static TABLE: std::sync::OnceLock<KernelTable> = std::sync::OnceLock::new();
                TABLE.get_or_init(avx_vnni)
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                static TABLE: std::sync::OnceLock<KernelTable> = std::sync::OnceLock::new();
                TABLE.get_or_init(avx512)
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => {
                static TABLE: std::sync::OnceLock<KernelTable> = std::sync::OnceLock::new();
                TABLE.get_or_init(neon)
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonDotprod => {
                static TABLE: std::sync::OnceLock<KernelTable> = std::sync::OnceLock::new();
                TABLE.get_or_init(neon_dotprod)
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonI8mm => {
                static TABLE: std::sync::OnceLock<KernelTable> = std::sync::OnceLock::new();
                TABLE.get_or_init(neon_i8mm)
            }
            _ => &SCALAR,
        }
    }
}
