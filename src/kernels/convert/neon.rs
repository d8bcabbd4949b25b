//! NEON conversions for [`super::Convert`], 4 elements per q register; the
//! remainder of a slice goes through `half`. f16 is `fcvtl`/`fcvtn`, which
//! are base NEON (unlike FEAT_FP16's f16 arithmetic, which conversion does
//! not need), in inline assembly: their `float16x4_t` intrinsics are stable
//! only from Rust 1.94, above this crate's minimum. bf16 is integer
//! arithmetic on the bits, as on x86-64.

use std::arch::aarch64::*;
use std::arch::asm;

use half::{bf16, f16};

use super::{convert_rest, Convert, QUIET};
use crate::kernels::pack::neon::Neon;

/// Lanes per register.
const LANES: usize = 4;

impl Convert<f16> for Neon {
    unsafe fn widen(src: &[f16], dst: &mut [f32]) {
        // SAFETY: the caller guarantees NEON.
        unsafe { widen_f16(src, dst) }
    }

    unsafe fn narrow(src: &[f32], dst: &mut [f16]) {
        // SAFETY: the caller guarantees NEON.
        unsafe { narrow_f16(src, dst) }
    }
}

impl Convert<bf16> for Neon {
    unsafe fn widen(src: &[bf16], dst: &mut [f32]) {
        // SAFETY: the caller guarantees NEON.
        unsafe { widen_bf16(src, dst) }
    }

    unsafe fn narrow(src: &[f32], dst: &mut [bf16]) {
        // SAFETY: the caller guarantees NEON.
        unsafe { narrow_bf16(src, dst) }
    }
}

/// `fcvtl`: exact, NaNs quieted with their payload kept, as `half` does.
#[target_feature(enable = "neon")]
fn widen_f16(src: &[f16], dst: &mut [f32]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 4 f16 and `d` 4 f32; `fcvtl` only reads and
        // writes the registers named (and the FPSR's cumulative flags).
        unsafe {
            let h = vld1_u16(s.as_ptr().cast());
            let f: float32x4_t;
            asm!("fcvtl {f:v}.4s, {h:v}.4h", f = out(vreg) f, h = in(vreg) h,
                 options(pure, nomem, nostack));
            vst1q_f32(d.as_mut_ptr(), f);
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), f16::to_f32);
}

/// `fcvtn` to nearest even (the FPCR's default mode, which Rust never
/// changes), NaNs quieted with their payload's top bits, as `half` does.
#[target_feature(enable = "neon")]
fn narrow_f16(src: &[f32], dst: &mut [f16]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 4 f32 and `d` 4 f16; `fcvtn` only reads and
        // writes the registers named (and the FPSR's cumulative flags).
        unsafe {
            let f = vld1q_f32(s.as_ptr());
            let h: uint16x4_t;
            asm!("fcvtn {h:v}.4h, {f:v}.4s", h = out(vreg) h, f = in(vreg) f,
                 options(pure, nomem, nostack));
            vst1_u16(d.as_mut_ptr().cast(), h);
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), f16::from_f32);
}

/// All ones in each lane whose bits are a NaN.
#[inline]
#[target_feature(enable = "neon")]
fn is_nan(bits: uint32x4_t) -> uint32x4_t {
    let magnitude = vandq_u32(bits, vdupq_n_u32(0x7FFF_FFFF));
    vcgtq_u32(magnitude, vdupq_n_u32(0x7F80_0000))
}

/// A 16-bit left shift, but `half` quiets NaNs: it sets the top mantissa bit.
#[target_feature(enable = "neon")]
fn widen_bf16(src: &[bf16], dst: &mut [f32]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 4 bf16 and `d` 4 f32.
        unsafe {
            let bits = vshll_n_u16::<16>(vld1_u16(s.as_ptr().cast()));
            let quiet = vandq_u32(is_nan(bits), vdupq_n_u32(QUIET));
            vst1q_u32(d.as_mut_ptr().cast(), vorrq_u32(bits, quiet));
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), bf16::to_f32);
}

/// `half`'s rounding on the bits: add `0x7FFF` plus the kept part's lowest
/// bit (ties to even), keep the high half; a NaN is kept quiet instead.
#[target_feature(enable = "neon")]
fn narrow_bf16(src: &[f32], dst: &mut [bf16]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 4 f32 and `d` 4 bf16.
        unsafe {
            let bits = vld1q_u32(s.as_ptr().cast());
            let lowest_kept = vandq_u32(vshrq_n_u32::<16>(bits), vdupq_n_u32(1));
            let rounded = vaddq_u32(bits, vaddq_u32(lowest_kept, vdupq_n_u32(0x7FFF)));
            let quiet = vorrq_u32(bits, vdupq_n_u32(QUIET));
            let bits = vbslq_u32(is_nan(bits), quiet, rounded);
            vst1_u16(d.as_mut_ptr().cast(), vshrn_n_u32::<16>(bits));
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), bf16::from_f32);
}
