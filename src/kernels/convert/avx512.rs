//! AVX-512 (F/BW/VL) conversions for [`super::Convert`], 16 elements per
//! zmm register; the remainder of a slice goes through `half`.

use std::arch::x86_64::*;

use half::{bf16, f16};

use super::{convert_rest, Convert, QUIET};
use crate::kernels::pack::avx512::Avx512;

/// Lanes per register.
const LANES: usize = 16;

impl Convert<f16> for Avx512 {
    unsafe fn widen(src: &[f16], dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL.
        unsafe { widen_f16(src, dst) }
    }

    unsafe fn narrow(src: &[f32], dst: &mut [f16]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL.
        unsafe { narrow_f16(src, dst) }
    }
}

impl Convert<bf16> for Avx512 {
    unsafe fn widen(src: &[bf16], dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL.
        unsafe { widen_bf16(src, dst) }
    }

    unsafe fn narrow(src: &[f32], dst: &mut [bf16]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL.
        unsafe { narrow_bf16(src, dst) }
    }
}

/// `vcvtph2ps`: exact, and it quiets a signaling NaN by setting the top
/// mantissa bit, as `half` does (tested on all 65536 patterns).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn widen_f16(src: &[f16], dst: &mut [f32]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 16 f16 and `d` 16 f32.
        unsafe {
            let h = _mm256_loadu_si256(s.as_ptr().cast());
            _mm512_storeu_ps(d.as_mut_ptr(), _mm512_cvtph_ps(h));
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), f16::to_f32);
}

/// `vcvtps2ph` to nearest even: the instruction `half` itself runs on a CPU
/// with F16C; its NaNs keep the top 10 payload bits and turn quiet, as
/// `half`'s software path does.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn narrow_f16(src: &[f32], dst: &mut [f16]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 16 f32 and `d` 16 f16.
        unsafe {
            let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm512_loadu_ps(s.as_ptr()));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), h);
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), f16::from_f32);
}

/// Whether each lane's bits are a NaN.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn is_nan(bits: __m512i) -> __mmask16 {
    let x = _mm512_castsi512_ps(bits);
    _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x)
}

/// A 16-bit left shift, but `half` quiets NaNs: it sets the top mantissa bit.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn widen_bf16(src: &[bf16], dst: &mut [f32]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 16 bf16 and `d` 16 f32.
        unsafe {
            let h = _mm256_loadu_si256(s.as_ptr().cast());
            let bits = _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h));
            let bits =
                _mm512_mask_or_epi32(bits, is_nan(bits), bits, _mm512_set1_epi32(QUIET as i32));
            _mm512_storeu_si512(d.as_mut_ptr().cast(), bits);
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), bf16::to_f32);
}

/// `half`'s rounding on the bits: add `0x7FFF` plus the kept part's lowest
/// bit (ties to even; a carry may reach the exponent, up to Inf), keep the
/// high half; a NaN is kept quiet instead. Not `vcvtneps2bf16`: it agrees
/// on NaNs but flushes subnormal inputs to zero.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn narrow_bf16(src: &[f32], dst: &mut [bf16]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 16 f32 and `d` 16 bf16.
        unsafe {
            let bits = _mm512_loadu_si512(s.as_ptr().cast());
            let lowest_kept = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
            let bias = _mm512_add_epi32(lowest_kept, _mm512_set1_epi32(0x7FFF));
            let rounded = _mm512_add_epi32(bits, bias);
            let bits =
                _mm512_mask_or_epi32(rounded, is_nan(bits), bits, _mm512_set1_epi32(QUIET as i32));
            let high = _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(bits));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), high);
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), bf16::from_f32);
}
