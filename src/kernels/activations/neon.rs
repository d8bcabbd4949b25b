//! NEON twin of [`super::scalar::quantize_activations`].

use std::arch::aarch64::*;

/// [`super::scalar::quantize_activations`], 4 values at a time (the last
/// ones through a zero-padded copy): the same test for NaN and
/// infinities, the same maximum, the same true division, and the
/// reference's rounding (truncate, then step away from zero on a
/// remainder of at least one half) in f32.
///
/// # Safety
/// The CPU supports NEON; `q` is as long as `group`.
#[target_feature(enable = "neon")]
pub(super) unsafe fn quantize_activations(group: &[f32], q: &mut [i8]) -> f32 {
    let load = |i: usize| {
        let mut lanes = [0f32; 4];
        let n = (group.len() - i).min(4);
        lanes[..n].copy_from_slice(&group[i..i + n]);
        // SAFETY: `lanes` holds 4 f32.
        unsafe { vld1q_f32(lanes.as_ptr()) }
    };
    let mut max = vdupq_n_f32(0.0);
    // Lanes that saw NaN or an infinity: not <= f32::MAX (padding reads 0).
    let mut non_finite = vdupq_n_u32(0);
    for i in (0..group.len()).step_by(4) {
        let abs = vabsq_f32(load(i));
        non_finite = vorrq_u32(non_finite, vmvnq_u32(vcleq_f32(abs, vdupq_n_f32(f32::MAX))));
        max = vmaxq_f32(abs, max);
    }
    if vmaxvq_u32(non_finite) != 0 {
        q.fill(0);
        return f32::NAN;
    }
    let scale = vmaxvq_f32(max) / 127.0;
    if scale <= 0.0 {
        q.fill(0);
        return scale;
    }
    let (half, one, limit) = (vdupq_n_f32(0.5), vdupq_n_f32(1.0), vdupq_n_f32(127.0));
    for i in (0..group.len()).step_by(4) {
        let x = vdivq_f32(load(i), vdupq_n_f32(scale));
        let t = vrndq_f32(x);
        let frac = vsubq_f32(x, t);
        let up = vandq_u32(vcgeq_f32(frac, half), vreinterpretq_u32_f32(one));
        let down = vandq_u32(vcleq_f32(frac, vnegq_f32(half)), vreinterpretq_u32_f32(one));
        let t = vsubq_f32(
            vaddq_f32(t, vreinterpretq_f32_u32(up)),
            vreinterpretq_f32_u32(down),
        );
        let t = vmaxq_f32(vminq_f32(t, limit), vnegq_f32(limit));
        // Every quotient is finite (the group is) and within ±127 now.
        let mut v = [0i32; 4];
        // SAFETY: `v` holds 4 i32.
        unsafe { vst1q_s32(v.as_mut_ptr(), vcvtq_s32_f32(t)) };
        for (out, v) in q[i..].iter_mut().zip(v) {
            *out = v as i8;
        }
    }
    scale
}
