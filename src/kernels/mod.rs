//! The kernels, one folder per operation and one file per target in each,
//! the scalar reference first:
//!
//! | folder | operation |
//! | --- | --- |
//! | [`pack`] | pack and unpack of f32 (the format's definition: `pack::scalar`) |
//! | `convert` | pack from and unpack to f16 / bf16 |
//! | [`matmul`] | fused products, exact and int8 |
//! | `activations` | int8 quantization of a product's activations |
//! | [`q4_0`] | GGML Q4_0 quantization |
//! | `encode` | the signed and search encoders |
//! | `simd` | primitives shared by one target's kernels |
//!
//! `table` says which kernel serves each operation on each target;
//! `cpu` asks the CPU what it runs. Every SIMD twin must equal its
//! reference bit for bit.

pub(crate) mod activations;
pub(crate) mod convert;
pub(crate) mod cpu;
pub(crate) mod encode;
pub mod matmul;
pub mod pack;
pub mod q4_0;
mod simd;
pub(crate) mod table;
pub(crate) mod threads;

pub use cpu::Kernel;
pub use pack::scalar;
pub(crate) use pack::{pack, pack_rows, unpack};
