//! AVX2 + FMA twin of [`super::scalar`] for f32, for group sizes that are
//! multiples of 8: one ymm register per 8 elements.
//! Whole groups only: `super::FullGroups` sends ragged tails to the
//! scalar reference.

use std::arch::x86_64::*;

use super::scalar::MIN_SCALE;
use crate::kernels::simd::avx2::{abs, decode8, horizontal_max, quantize_group, LANES};

/// This kernel, for [`super::FullGroups`].
pub(crate) struct Avx2;

impl super::FullGroups for Avx2 {
    const LANES: usize = LANES;

    unsafe fn pack(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
        // SAFETY: the caller guarantees AVX2 and FMA and the group size.
        unsafe { pack_full_groups(src, group_size, packed, scales) }
    }

    unsafe fn unpack(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX2 and FMA and the group size.
        unsafe { unpack_full_groups(packed, scales, group_size, dst) }
    }

    unsafe fn unpack_streaming(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX2 and FMA and the group size.
        unsafe { unpack_full_groups_streaming(packed, scales, group_size, dst) }
    }
}

#[target_feature(enable = "avx2,fma")]
fn pack_full_groups(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    let groups = src
        .chunks_exact(group_size)
        .zip(packed.chunks_exact_mut(group_size / 2))
        .zip(scales.iter_mut());
    for ((group, bytes), scale_out) in groups {
        let mut max_abs = _mm256_setzero_ps();
        for v in group.chunks_exact(LANES) {
            super::prefetch_source(v.as_ptr());
            // SAFETY: `v` holds exactly 8 f32.
            let x = unsafe { _mm256_loadu_ps(v.as_ptr()) };
            // vmaxps returns its second operand when either is NaN: NaN
            // elements are ignored, as in the scalar fold.
            max_abs = _mm256_max_ps(abs(x), max_abs);
        }
        let scale = (horizontal_max(max_abs) / 7.0).max(MIN_SCALE);
        *scale_out = scale;
        // SAFETY: this function's target features, the caller's group size.
        unsafe { quantize_group(group, bytes, scale) };
    }
}

#[target_feature(enable = "avx2,fma")]
fn unpack_full_groups(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let groups = dst
        .chunks_exact_mut(group_size)
        .zip(packed.chunks_exact(group_size / 2))
        .zip(scales);
    for ((group, bytes), &scale) in groups {
        let scale = _mm256_set1_ps(scale);
        for (out, b) in group
            .chunks_exact_mut(LANES)
            .zip(bytes.chunks_exact(LANES / 2))
        {
            // SAFETY: `out` holds 8 f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), decode8(b, scale)) };
        }
    }
}

/// [`unpack_full_groups`] with non-temporal stores, which need 32-byte
/// aligned addresses: with `dst` `m` floats past a 32-byte boundary, its
/// first `s = 8 - m` floats are stored as usual (masked), every later
/// whole vector is built from two decoded ones (rotate both, blend) and
/// streamed, and the last `m` floats are stored as usual.
#[target_feature(enable = "avx2,fma")]
fn unpack_full_groups_streaming(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let s = (LANES - dst.as_ptr() as usize / 4 % LANES) % LANES;
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let shift = _mm256_set1_epi32(s as i32);
    // Lane j takes lane (s + j) mod 8 of each vector; lanes j >= 8 - s
    // come from the next vector.
    let rotate = _mm256_and_si256(_mm256_add_epi32(lanes, shift), _mm256_set1_epi32(7));
    let from_next = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
        _mm256_add_epi32(lanes, shift),
        _mm256_set1_epi32(7),
    ));
    // Lanes j < s (sign bit set).
    let head = _mm256_cmpgt_epi32(shift, lanes);
    let mut previous = _mm256_setzero_ps();
    let mut i = 0;
    let groups = packed.chunks_exact(group_size / 2).zip(scales);
    for (bytes, &scale) in groups {
        let scale = _mm256_set1_ps(scale);
        for b in bytes.chunks_exact(LANES / 2) {
            let v = decode8(b, scale);
            let at = LANES * i;
            if s == 0 {
                let out = &mut dst[at..at + LANES];
                // SAFETY: `out` holds 8 f32 and starts on a 32-byte boundary.
                unsafe { _mm256_stream_ps(out.as_mut_ptr(), v) };
            } else if i == 0 {
                let out = &mut dst[..LANES];
                // SAFETY: `out` holds 8 f32; the mask writes its first s.
                unsafe { _mm256_maskstore_ps(out.as_mut_ptr(), head, v) };
            } else {
                let out = &mut dst[at - LANES + s..at + s];
                let line = _mm256_blendv_ps(
                    _mm256_permutevar8x32_ps(previous, rotate),
                    _mm256_permutevar8x32_ps(v, rotate),
                    from_next,
                );
                // SAFETY: `out` holds 8 f32 and starts on a 32-byte boundary.
                unsafe { _mm256_stream_ps(out.as_mut_ptr(), line) };
            }
            previous = v;
            i += 1;
        }
    }
    if s != 0 && i > 0 {
        let at = LANES * (i - 1);
        let out = &mut dst[at..at + LANES];
        let tail = _mm256_xor_si256(head, _mm256_set1_epi32(-1));
        // SAFETY: `out` holds 8 f32; the mask writes its last m.
        unsafe { _mm256_maskstore_ps(out.as_mut_ptr(), tail, previous) };
    }
    // Streamed vectors are weakly ordered: make them visible before any
    // later store (and before another thread reads them).
    _mm_sfence();
}
