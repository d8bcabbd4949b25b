//! SIMD primitives shared by the kernels of one target (the exact quantize
//! step, the nibble decoders, lane reductions), so that each operation's
//! kernel file holds only what is its own.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
