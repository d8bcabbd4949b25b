//! The one place that asks the CPU what it runs: each [`Kernel`] family's
//! features, and the family used when a call names none.

use std::ffi::CStr;
use std::sync::OnceLock;

/// A kernel family. Every one gives the same bytes; they differ in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kernel {
    /// The reference: plain Rust, every target.
    Scalar,
    /// x86-64 AVX2 + FMA (F16C where the CPU has it, for f16).
    Avx2,
    /// x86-64 AVX2 + FMA with AVX-VNNI (VEX `vpdpbusd`, for int8 products
    /// on the prepared form): [`Kernel::Avx2`] otherwise.
    AvxVnni,
    /// x86-64 AVX-512 F, BW and VL (VNNI where the CPU has it, for int8
    /// products), on a CPU that also runs [`Kernel::Avx2`] and F16C.
    Avx512,
    /// aarch64 NEON.
    Neon,
    /// aarch64 NEON with the dot-product extension (`sdot`, FEAT_DotProd)
    /// for int8 products: [`Kernel::Neon`] otherwise.
    NeonDotprod,
    /// aarch64 NEON with the dot-product and int8 matrix-multiply
    /// extensions (`smmla`, FEAT_I8MM, for int8 products on the prepared
    /// form): [`Kernel::NeonDotprod`] otherwise.
    NeonI8mm,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: [Kernel; 7] = [
        Kernel::Avx512,
        Kernel::AvxVnni,
        Kernel::Avx2,
        Kernel::NeonI8mm,
        Kernel::NeonDotprod,
        Kernel::Neon,
        Kernel::Scalar,
    ];

    /// The name used by `CQ4_KERNEL` and in reports.
    pub fn name(self) -> &'static str {
        // The names are ASCII, so this never takes the fallback.
        self.c_name().to_str().unwrap_or("unknown")
    }

    /// [`Kernel::name`], NUL-terminated for C.
    pub(crate) fn c_name(self) -> &'static CStr {
        match self {
            Kernel::Scalar => c"scalar",
            Kernel::Avx2 => c"avx2",
            Kernel::AvxVnni => c"avxvnni",
            Kernel::Avx512 => c"avx512",
            Kernel::Neon => c"neon",
            Kernel::NeonDotprod => c"neondotprod",
            Kernel::NeonI8mm => c"neoni8mm",
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
            Kernel::AvxVnni => Kernel::Avx2.is_supported() && is_x86_feature_detected!("avxvnni"),
            // Group sizes the AVX-512 kernels have no fast path for run the
            // AVX2 ones (f16 with F16C), so the family needs them too.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                Kernel::Avx2.is_supported()
                    && has_f16c()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonDotprod => {
                Kernel::Neon.is_supported() && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Kernel::NeonI8mm => {
                Kernel::NeonDotprod.is_supported()
                    && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            #[allow(unreachable_patterns)] // kernels of other targets
            _ => false,
        }
    }

    /// The kernel used when a call does not pick one, decided once per
    /// process: `CQ4_KERNEL` (scalar, avx2, avxvnni, avx512,
    /// neon, neondotprod or neoni8mm) when it names a
    /// kernel this CPU supports, else the fastest supported one.
    pub fn auto() -> Kernel {
        static AUTO: OnceLock<Kernel> = OnceLock::new();
        *AUTO.get_or_init(|| {
            std::env::var("CQ4_KERNEL")
                .ok()
                .and_then(|name| Kernel::from_name(name.trim()))
                .filter(|k| k.is_supported())
                .unwrap_or_else(|| {
                    let fastest = Kernel::ALL.into_iter().find(|k| k.is_supported());
                    fastest.unwrap_or(Kernel::Scalar)
                })
        })
    }
}

/// Whether this x86-64 CPU runs AVX-512 VNNI (`vpdpbusd`).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512_vnni() -> bool {
    is_x86_feature_detected!("avx512vnni")
}

/// Whether this x86-64 CPU runs F16C (`vcvtph2ps`, `vcvtps2ph` on ymm).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_f16c() -> bool {
    is_x86_feature_detected!("f16c")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the CPU's features are known (`CQ4_EXPECT_KERNELS`: the names
    /// of the kernels it runs, as `.ci/test-aarch64` sets for each emulated
    /// CPU), exactly those are supported, and the automatic choice is the
    /// fastest of them: a family is never offered on a CPU lacking one of
    /// its extensions, and never withheld from one that has them.
    #[test]
    fn supported_kernels_are_the_cpus() {
        let Ok(expected) = std::env::var("CQ4_EXPECT_KERNELS") else {
            return;
        };
        let mut expected: Vec<&str> = expected.split_whitespace().collect();
        expected.sort_unstable();
        let mut supported: Vec<&str> = Kernel::ALL
            .into_iter()
            .filter(|k| k.is_supported())
            .map(Kernel::name)
            .collect();
        supported.sort_unstable();
        assert_eq!(supported, expected);
        if std::env::var_os("CQ4_KERNEL").is_none() {
            let fastest = Kernel::ALL.into_iter().find(|k| k.is_supported());
            assert_eq!(Some(Kernel::auto()), fastest);
        }
    }
}
