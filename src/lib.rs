//! # cortex_q4
//!
//! Exact 4-bit symmetric, group-wise weight quantization: a bit-exact
//! format (defined by [`scalar`]), a safe slice
//! API, a candle `Tensor` API (cargo feature `candle`) and a C ABI
//! (`include/cortex_q4.h`).
//!
//! - [`Layout`]: every size and stride of the packed form;
//! - [`pack`] / [`unpack`] (and `_to_vec` variants): the slice API;
//! - `pack_4bit_symmetric` / `unpack_4bit_symmetric`: the candle API, with
//!   `features = ["candle"]`;
//! - [`q4_0`]: GGML Q4_0 blocks to and from this format;
//! - [`ffi`]: the `cq4_` functions behind the C header.

mod alloc;
#[cfg(feature = "candle")]
mod candle_api;
mod element;
pub mod encoders;
mod error;
pub mod ffi;
mod kernels;
mod layout;
mod matmul_api;
mod options;
pub mod q4_0;
mod quality;
mod slice_api;

#[cfg(feature = "candle")]
pub use candle_api::{
    gemm_4bit, gemm_4bit_with, pack_4bit_encoded, pack_4bit_symmetric, unpack_4bit_symmetric,
    unpack_4bit_symmetric_to,
};
pub use element::Element;
pub use encoders::Encoder;
pub use error::{Buffer, Error};
pub use kernels::{scalar, Kernel};
pub use layout::{Layout, MAX_GROUP_SIZE, Q4_0_BLOCK, Q4_0_BLOCK_BYTES};
pub use matmul_api::{matmul, matmul_rows_with, matmul_with, PackedMatrix, Precision};
pub use options::Options;
pub use quality::{quality, Quality};
pub use slice_api::{
    pack, pack_encoded, pack_encoded_to_vec_with, pack_encoded_with, pack_to_vec, pack_to_vec_with,
    pack_with, unpack, unpack_to_vec, unpack_to_vec_with, unpack_with,
};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
