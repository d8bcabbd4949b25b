//! # cortex_q4
//!
//! Exact 4-bit symmetric, group-wise weight quantization: a bit-exact
//! format (defined by [`scalar`]), a safe slice
//! API, a candle `Tensor` API (cargo feature `candle`) and a C ABI
//! (`include/cortex_q4.h`).
//!
//! | to | use |
//! | --- | --- |
//! | pack weights (f32, f64, f16, bf16 slices) | [`Quantizer::pack`], [`Quantizer::pack_to_vec`] |
//! | choose encoder, kernel, threads | [`Quantizer::with_encoder`], [`Quantizer::with_options`] |
//! | unpack them | [`Quantizer::unpack`], [`Quantizer::unpack_to_vec`] |
//! | size buffers | [`Quantizer::layout`] ([`Layout`]) |
//! | compute with them, `Y = X W^T` | [`PackedMatrix::matmul`], [`PackedMatrix::matmul_rows`] |
//! | compute faster at any batch size (prefill) | [`PreparedMatrix::new`], [`PreparedMatrix::matmul`] |
//! | calibrate: sum the Hessian `XᵀX` of a layer's inputs | [`Hessian::accumulate`] |
//! | quantize with error compensation (GPTQ) | [`Encoder::ErrorCompensating`] |
//! | measure the error of a packing | [`PackedMatrix::quality`] |
//! | convert GGML Q4_0 blocks | [`q4_0`] |
//! | call from C | [`ffi`] and `include/cortex_q4.h` |
//! | use candle tensors (feature `candle`) | `pack_4bit_symmetric`, `unpack_4bit_symmetric`, `gemm_4bit`, `accumulate_hessian` |
//!
//! A [`PackedMatrix`] borrows packed bytes and scales (checked once); a
//! [`PackedMatrixBuf`], what `pack_to_vec` returns, owns them.
//!
//! ```
//! use cortex_q4::{Options, PackedMatrix, Precision, Quantizer};
//!
//! let q = Quantizer::new(4);
//! let w = q.pack_to_vec(&[7.0f32, -5.6, 0.0, 3.5], 1, 4)?;
//! let mut y = [0f32; 1];
//! w.as_matrix().matmul(&Options::default(), &[1f32; 4], 1, Precision::Exact, &mut y)?;
//! assert_eq!(y, [5.0]); // 7 - 6 + 0 + 4
//! // The same matrix from bytes an engine already holds.
//! let m = PackedMatrix::new(w.packed(), w.scales(), 1, 4, 4)?;
//! assert!(m.quality(&[7.0f32, -6.0, 0.0, 4.0])?.snr_db.is_infinite());
//! # Ok::<(), cortex_q4::Error>(())
//! ```

mod alloc;
#[cfg(feature = "candle")]
mod candle_api;
pub mod compensating;
mod element;
pub mod encoders;
mod error;
pub mod ffi;
mod hessian;
mod kernels;
mod layout;
mod matmul_api;
mod options;
mod prepared;
pub mod q4_0;
mod quality;
mod slice_api;

#[cfg(feature = "candle")]
pub use candle_api::{
    accumulate_hessian, accumulate_hessian_with, gemm_4bit, gemm_4bit_with, pack_4bit_encoded,
    pack_4bit_symmetric, unpack_4bit_symmetric, unpack_4bit_symmetric_to,
};
pub use element::Element;
pub use encoders::Encoder;
pub use error::{Buffer, Error};
pub use hessian::Hessian;
pub use kernels::{scalar, Kernel};
pub use layout::{Layout, MAX_GROUP_SIZE, Q4_0_BLOCK, Q4_0_BLOCK_BYTES};
pub use matmul_api::{PackedMatrix, Precision};
pub use options::Options;
pub use prepared::{
    Int8Activations, Int8ActivationsView, PreparedMatrix, PreparedView, PREPARED_HEADER_BYTES,
    PREPARED_VERSION,
};
pub use quality::Quality;
pub use slice_api::{PackedMatrixBuf, Quantizer};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
