//! AVX-512 twin of [`super::scalar::quantize_activations`].

use std::arch::x86_64::*;

/// [`super::scalar::quantize_activations`], 16 values at a time (the last ones
/// masked): the same test for NaN and infinities, the same maximum, the
/// same true division, and the reference's rounding (truncate, then step
/// away from zero on a remainder of at least one half) in f32.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL; `q` is as long as `group`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn quantize_activations(group: &[f32], q: &mut [i8]) -> f32 {
    let mask = |i: usize| match group.len() - i {
        16.. => u16::MAX,
        left => (1u16 << left) - 1,
    };
    let load = |i: usize| {
        // SAFETY: the mask covers the values of `group` from `i` on.
        unsafe { _mm512_maskz_loadu_ps(mask(i), group.as_ptr().add(i)) }
    };
    let mut max = _mm512_setzero_ps();
    // Lanes that saw NaN or an infinity: not <= f32::MAX (masked-off lanes
    // read 0).
    let mut non_finite = 0u16;
    let finite_max = _mm512_set1_ps(f32::MAX);
    for i in (0..group.len()).step_by(16) {
        let abs = _mm512_abs_ps(load(i));
        non_finite |= _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(abs, finite_max);
        max = _mm512_max_ps(abs, max);
    }
    if non_finite != 0 {
        q.fill(0);
        return f32::NAN;
    }
    let scale = _mm512_reduce_max_ps(max) / 127.0;
    if scale <= 0.0 {
        q.fill(0);
        return scale;
    }
    let (half, one, limit) = (
        _mm512_set1_ps(0.5),
        _mm512_set1_ps(1.0),
        _mm512_set1_ps(127.0),
    );
    for i in (0..group.len()).step_by(16) {
        let x = _mm512_div_ps(load(i), _mm512_set1_ps(scale));
        let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(x);
        let frac = _mm512_sub_ps(x, t);
        let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(frac, half);
        let down = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(frac, _mm512_sub_ps(_mm512_setzero_ps(), half));
        let t = _mm512_mask_sub_ps(_mm512_mask_add_ps(t, up, t, one), down, t, one);
        let t = _mm512_max_ps(
            _mm512_min_ps(t, limit),
            _mm512_sub_ps(_mm512_setzero_ps(), limit),
        );
        // Every quotient is finite (the group is); the masked-off lanes
        // give 0 (0 / scale).
        let v = _mm512_cvttps_epi32(t);
        // SAFETY: the mask covers the values of `q` from `i` on.
        unsafe { _mm512_mask_cvtepi32_storeu_epi8(q.as_mut_ptr().add(i).cast(), mask(i), v) };
    }
    scale
}
