//! AVX2 conversions for [`super::Convert`], 8 elements per ymm register;
//! the remainder of a slice goes through `half`. f16 also needs F16C,
//! detected at run time; bf16 is integer arithmetic on the bits.

use std::arch::x86_64::*;

use half::{bf16, f16};

use super::{convert_rest, Convert, QUIET};
use crate::kernels::pack::avx2::Avx2;

/// Lanes per register.
const LANES: usize = 8;

impl Convert<f16> for Avx2 {
    unsafe fn widen(src: &[f16], dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX2, FMA and F16C.
        unsafe { widen_f16(src, dst) }
    }

    unsafe fn narrow(src: &[f32], dst: &mut [f16]) {
        // SAFETY: the caller guarantees AVX2, FMA and F16C.
        unsafe { narrow_f16(src, dst) }
    }
}

impl Convert<bf16> for Avx2 {
    unsafe fn widen(src: &[bf16], dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX2 and FMA.
        unsafe { widen_bf16(src, dst) }
    }

    unsafe fn narrow(src: &[f32], dst: &mut [bf16]) {
        // SAFETY: the caller guarantees AVX2 and FMA.
        unsafe { narrow_bf16(src, dst) }
    }
}

/// `vcvtph2ps`, as on `super::avx512::widen_f16`.
#[target_feature(enable = "avx2,fma,f16c")]
fn widen_f16(src: &[f16], dst: &mut [f32]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 8 f16 and `d` 8 f32.
        unsafe {
            let h = _mm_loadu_si128(s.as_ptr().cast());
            _mm256_storeu_ps(d.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), f16::to_f32);
}

/// `vcvtps2ph` to nearest even, as on `super::avx512::narrow_f16`.
#[target_feature(enable = "avx2,fma,f16c")]
fn narrow_f16(src: &[f32], dst: &mut [f16]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 8 f32 and `d` 8 f16.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(s.as_ptr()));
            _mm_storeu_si128(d.as_mut_ptr().cast(), h);
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), f16::from_f32);
}

/// All ones in each lane whose bits are a NaN.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn is_nan(bits: __m256i) -> __m256i {
    let magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFF_FFFF));
    _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7F80_0000))
}

/// A 16-bit left shift, NaNs quieted, as on `super::avx512::widen_bf16`.
#[target_feature(enable = "avx2,fma")]
fn widen_bf16(src: &[bf16], dst: &mut [f32]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 8 bf16 and `d` 8 f32.
        unsafe {
            let h = _mm_loadu_si128(s.as_ptr().cast());
            let bits = _mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h));
            let quiet = _mm256_and_si256(is_nan(bits), _mm256_set1_epi32(QUIET as i32));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), _mm256_or_si256(bits, quiet));
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), bf16::to_f32);
}

/// `half`'s rounding on the bits, as on `super::avx512::narrow_bf16`.
#[target_feature(enable = "avx2,fma")]
fn narrow_bf16(src: &[f32], dst: &mut [bf16]) {
    let (mut src, mut dst) = (src.chunks_exact(LANES), dst.chunks_exact_mut(LANES));
    for (s, d) in (&mut src).zip(&mut dst) {
        // SAFETY: `s` holds 8 f32 and `d` 8 bf16.
        unsafe {
            let bits = _mm256_loadu_si256(s.as_ptr().cast());
            let lowest_kept = _mm256_and_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(1));
            let bias = _mm256_add_epi32(lowest_kept, _mm256_set1_epi32(0x7FFF));
            let rounded = _mm256_add_epi32(bits, bias);
            let quiet = _mm256_or_si256(bits, _mm256_set1_epi32(QUIET as i32));
            let bits = _mm256_blendv_epi8(rounded, quiet, is_nan(bits));
            // Each lane's high half, 0..=0xFFFF, survives the unsigned
            // saturation of packus.
            let high = _mm256_srli_epi32::<16>(bits);
            let packed = _mm_packus_epi32(
                _mm256_castsi256_si128(high),
                _mm256_extracti128_si256::<1>(high),
            );
            _mm_storeu_si128(d.as_mut_ptr().cast(), packed);
        }
    }
    convert_rest(src.remainder(), dst.into_remainder(), bf16::from_f32);
}
