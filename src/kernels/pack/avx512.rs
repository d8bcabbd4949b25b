//! AVX-512 (F/BW/VL) twin of [`super::scalar`] for f32, for group sizes
//! that are multiples of 16: one zmm register per 16 elements.
//! Whole groups only: `super::FullGroups` sends ragged tails to the
//! scalar reference.

use std::arch::x86_64::*;

use super::scalar::MIN_SCALE;
use crate::kernels::simd::avx512::{decode16, quantize_groups, weight_table, LANES};

/// This kernel, for [`super::FullGroups`].
pub(crate) struct Avx512;

impl super::FullGroups for Avx512 {
    const LANES: usize = LANES;

    unsafe fn pack(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL and the group size.
        unsafe { pack_full_groups(src, group_size, packed, scales) }
    }

    unsafe fn unpack(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL and the group size.
        unsafe { unpack_full_groups(packed, scales, group_size, dst) }
    }

    unsafe fn unpack_streaming(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
        // SAFETY: the caller guarantees AVX-512F, BW and VL and the group size.
        unsafe { unpack_full_groups_streaming(packed, scales, group_size, dst) }
    }
}

/// Groups whose scales are computed together, one per lane.
const BATCH: usize = LANES;

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn pack_full_groups(src: &[f32], group_size: usize, packed: &mut [u8], scales: &mut [f32]) {
    let batches = src
        .chunks(BATCH * group_size)
        .zip(packed.chunks_mut(BATCH * group_size / 2))
        .zip(scales.chunks_mut(BATCH));
    for ((src, packed), scales_out) in batches {
        // Lane-wise maxima of |w| per group, then one lane per group.
        let mut maxima = [_mm512_setzero_ps(); BATCH];
        for (max_abs, group) in maxima.iter_mut().zip(src.chunks_exact(group_size)) {
            for v in group.chunks_exact(LANES) {
                super::prefetch_source(v.as_ptr());
                // SAFETY: `v` holds exactly 16 f32.
                let x = unsafe { _mm512_loadu_ps(v.as_ptr()) };
                // vmaxps returns its second operand when either is NaN: NaN
                // elements are ignored, as in the scalar fold.
                *max_abs = _mm512_max_ps(_mm512_abs_ps(x), *max_abs);
            }
        }
        let max_abs = transpose_max(maxima);
        let scale = _mm512_max_ps(
            _mm512_div_ps(max_abs, _mm512_set1_ps(7.0)),
            _mm512_set1_ps(MIN_SCALE),
        );
        let (mut scale_of, mut inverse_of) = ([0f32; BATCH], [0f32; BATCH]);
        // SAFETY: both arrays hold 16 f32.
        unsafe {
            _mm512_storeu_ps(scale_of.as_mut_ptr(), scale);
            _mm512_storeu_ps(
                inverse_of.as_mut_ptr(),
                _mm512_div_ps(_mm512_set1_ps(1.0), scale),
            );
        }
        scales_out.copy_from_slice(&scale_of[..scales_out.len()]);
        // SAFETY: this function's target features, the caller's group size;
        // every scale is at least max |w| / 7, so no clamp is needed.
        unsafe { quantize_groups::<false>(src, group_size, &scale_of, &inverse_of, packed) };
    }
}

/// Lane `i` of the result is the largest lane of `v[i]` (no NaN in `v`):
/// four rounds of folding pairs of vectors, each halving the lanes per
/// vector, instead of one horizontal reduction per group.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn transpose_max(mut v: [__m512; BATCH]) -> __m512 {
    /// Picks, for output lane i, lane `(i / w) * 2w + i % w` (+ w for the
    /// high half) of the concatenation of two vectors.
    const fn fold_index(w: usize, high: bool) -> [i32; 16] {
        let mut index = [0; 16];
        let mut i = 0;
        while i < 16 {
            index[i] = ((i / w) * 2 * w + i % w + if high { w } else { 0 }) as i32;
            i += 1;
        }
        index
    }
    const INDEX: [[[i32; 16]; 2]; 4] = [
        [fold_index(8, false), fold_index(8, true)],
        [fold_index(4, false), fold_index(4, true)],
        [fold_index(2, false), fold_index(2, true)],
        [fold_index(1, false), fold_index(1, true)],
    ];
    let mut live = BATCH;
    for [low, high] in INDEX {
        // SAFETY: each index array holds 16 i32.
        let (low, high) = unsafe {
            (
                _mm512_loadu_epi32(low.as_ptr()),
                _mm512_loadu_epi32(high.as_ptr()),
            )
        };
        live /= 2;
        for k in 0..live {
            let (a, b) = (v[2 * k], v[2 * k + 1]);
            v[k] = _mm512_max_ps(
                _mm512_permutex2var_ps(a, low, b),
                _mm512_permutex2var_ps(a, high, b),
            );
        }
    }
    v[0]
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn unpack_full_groups(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let groups = dst
        .chunks_exact_mut(group_size)
        .zip(packed.chunks_exact(group_size / 2))
        .zip(scales);
    for ((group, bytes), &scale) in groups {
        let table = weight_table(scale);
        for (out, b) in group
            .chunks_exact_mut(LANES)
            .zip(bytes.chunks_exact(LANES / 2))
        {
            // SAFETY: `out` holds 16 f32.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), decode16(b, table)) };
        }
    }
}

/// [`unpack_full_groups`] with non-temporal stores, which need 64-byte
/// aligned addresses: with `dst` `m` floats past a 64-byte boundary, its
/// first `s = 16 - m` floats are stored as usual, every later whole line is
/// built from two decoded vectors (one permute) and streamed, and the last
/// `m` floats are stored as usual.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn unpack_full_groups_streaming(packed: &[u8], scales: &[f32], group_size: usize, dst: &mut [f32]) {
    let s = (LANES - dst.as_ptr() as usize / 4 % LANES) % LANES;
    // Line lane j is lane s + j of [previous vector, next vector].
    let index = _mm512_add_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(s as i32),
    );
    let head: __mmask16 = (1 << s) - 1;
    let mut previous = _mm512_setzero_ps();
    let mut i = 0;
    let groups = packed.chunks_exact(group_size / 2).zip(scales);
    for (bytes, &scale) in groups {
        let table = weight_table(scale);
        for b in bytes.chunks_exact(LANES / 2) {
            let v = decode16(b, table);
            let at = LANES * i;
            if s == 0 {
                let out = &mut dst[at..at + LANES];
                // SAFETY: `out` holds 16 f32 and starts on a 64-byte boundary.
                unsafe { _mm512_stream_ps(out.as_mut_ptr(), v) };
            } else if i == 0 {
                let out = &mut dst[..LANES];
                // SAFETY: `out` holds 16 f32; the mask writes its first s.
                unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr(), head, v) };
            } else {
                let out = &mut dst[at - LANES + s..at + s];
                let line = _mm512_permutex2var_ps(previous, index, v);
                // SAFETY: `out` holds 16 f32 and starts on a 64-byte boundary.
                unsafe { _mm512_stream_ps(out.as_mut_ptr(), line) };
            }
            previous = v;
            i += 1;
        }
    }
    if s != 0 && i > 0 {
        let at = LANES * (i - 1);
        let out = &mut dst[at..at + LANES];
        // SAFETY: `out` holds 16 f32; the mask writes its last m.
        unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr(), !head, previous) };
    }
    // Streamed lines are weakly ordered: make them visible before any
    // later store (and before another thread reads them).
    _mm_sfence();
}
