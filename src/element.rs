//! The float types the API reads and writes. Every one is converted to f32
//! first, so the format itself only knows f32. This module only describes
//! the types; which kernels serve each is the kernel table's business.

use half::{bf16, f16};

mod sealed {
    pub trait Sealed: Sized {
        /// The values as f32 without a copy, where they are f32.
        fn as_f32(_: &[Self]) -> Option<&[f32]> {
            None
        }
    }
}

/// A float element type: `f32`, `f64`, `half::f16` or `half::bf16`.
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// Converts to f32 exactly as `half` / `as f32` do.
    fn to_f32(self) -> f32;
    /// Converts from f32 (round to nearest even where narrowing).
    fn from_f32(value: f32) -> Self;
}

impl sealed::Sealed for f32 {
    fn as_f32(values: &[Self]) -> Option<&[f32]> {
        Some(values)
    }
}

impl Element for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        value
    }
}

impl sealed::Sealed for f64 {}

impl Element for f64 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        value as f64
    }
}

impl sealed::Sealed for f16 {}

impl Element for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        f16::from_f32(value)
    }
}

impl sealed::Sealed for bf16 {}

impl Element for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(value: f32) -> Self {
        bf16::from_f32(value)
    }
}
