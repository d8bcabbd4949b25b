//! NEON primitives shared by the aarch64 kernels: the format's exact
//! quantize step, a NaN-ignoring maximum, and the dot-product
//! extension's `sdot` (its intrinsics are not stable Rust).

use std::arch::aarch64::*;
use std::arch::asm;

/// f32 lanes per register.
pub(crate) const LANES: usize = 4;

/// `clamp(round(q), -8, 7) + 8` per lane, exactly as `scalar::quantize`
/// does for the true quotient `q`: frinta rounds half away from zero, like
/// `f32::round`; fmax/fmin keep NaN, and fcvtzs turns NaN into 0, like
/// `as i8`.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn quantize_exact(q: float32x4_t) -> int32x4_t {
    let rounded = vrndaq_f32(q);
    let clamped = vminq_f32(vmaxq_f32(rounded, vdupq_n_f32(-8.0)), vdupq_n_f32(7.0));
    vaddq_s32(vcvtq_s32_f32(clamped), vdupq_n_s32(8))
}

/// Packs one whole group (`group.len() % 4 == 0`, `bytes` half as long)
/// with `scale`, each nibble `scalar::quantize(w, scale)`: the true
/// division, so any scale works.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn quantize_group(group: &[f32], bytes: &mut [u8], scale: f32) {
    let scale = vdupq_n_f32(scale);
    for (v, out) in group
        .chunks_exact(LANES)
        .zip(bytes.chunks_exact_mut(LANES / 2))
    {
        // SAFETY: `v` holds 4 f32.
        let x = unsafe { vld1q_f32(v.as_ptr()) };
        let nibbles = quantize_exact(vdivq_f32(x, scale));
        // Lanes 2j and 2j+1 share a 64-bit lane: fold the odd one down.
        let wide = vreinterpretq_u64_s32(nibbles);
        let pairs = vorrq_u64(wide, vshrq_n_u64::<28>(wide));
        out[0] = vgetq_lane_u64::<0>(pairs) as u8;
        out[1] = vgetq_lane_u64::<1>(pairs) as u8;
    }
}

/// `|x|` per lane as bits, NaN lanes (quiet or signaling) as 0. Unsigned
/// order on these bits is the order of the magnitudes, so integer maxima
/// ignore NaN as the scalar folds do: a float compare-and-select from 0
/// may be rewritten by LLVM into `fmaxnm`, which turns a signaling NaN
/// into NaN instead of ignoring it.
#[inline]
#[target_feature(enable = "neon")]
fn magnitude_bits(x: float32x4_t) -> uint32x4_t {
    let abs = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x7FFF_FFFF));
    let nan = vcgtq_u32(abs, vdupq_n_u32(0x7F80_0000));
    vbicq_u32(abs, nan)
}

/// The largest `|x|` over `values` (`values.len() % 4 == 0`), from 0, NaN
/// ignored.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn max_abs(values: &[f32]) -> f32 {
    let mut max = vdupq_n_u32(0);
    for v in values.chunks_exact(LANES) {
        // SAFETY: `v` holds 4 f32.
        let x = unsafe { vld1q_f32(v.as_ptr()) };
        max = vmaxq_u32(max, magnitude_bits(x));
    }
    f32::from_bits(vmaxvq_u32(max))
}

/// The first element of `values` (`values.len() % 4 == 0`) whose magnitude
/// is `amax`, or 0 when none is.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn first_of_magnitude(values: &[f32], amax: f32) -> f32 {
    let target = vdupq_n_f32(amax);
    for v in values.chunks_exact(LANES) {
        // SAFETY: `v` holds 4 f32.
        let hits = vceqq_f32(vabsq_f32(unsafe { vld1q_f32(v.as_ptr()) }), target);
        if vmaxvq_u32(hits) != 0 {
            return v.iter().copied().find(|w| w.abs() == amax).unwrap_or(0.0);
        }
    }
    0.0
}

/// `acc` plus, in each lane, the products of that lane's 4 bytes of `a`
/// and `b` (`sdot`).
///
/// # Safety
/// The CPU supports the dot-product extension.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: the caller's promise; the instruction reads and writes only
    // these registers.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack),
        );
    }
    acc
}

/// `acc` plus, in each lane, the products of that lane's 4 bytes of `a`
/// and bytes `4 LANE..4 LANE + 4` of `b` (`sdot` by element).
///
/// # Safety
/// The CPU supports the dot-product extension.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn sdot_lane<const LANE: i32>(
    mut acc: int32x4_t,
    a: int8x16_t,
    b: int8x8_t,
) -> int32x4_t {
    // SAFETY: the caller's promise; the instruction reads and writes only
    // these registers.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            lane = const LANE,
            options(pure, nomem, nostack),
        );
    }
    acc
}
