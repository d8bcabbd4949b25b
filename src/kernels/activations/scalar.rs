//! The reference quantization of activations for int8 products.

/// Quantizes one group of activations for int8 products:
/// `scale = max |x| / 127`, `q = round(x / scale)` (0 where the scale is
/// 0). A group holding NaN or an infinity has no int8 form: its scale is
/// NaN and every `q` 0, so that each product term that reads it is NaN, as
/// exact mode's would be NaN or infinite. Returns the scale.
pub fn quantize_activations(group: &[f32], q: &mut [i8]) -> f32 {
    if group.iter().any(|v| !v.is_finite()) {
        q.fill(0);
        return f32::NAN;
    }
    let max_abs = group.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    let scale = max_abs / 127.0;
    for (qv, &v) in q.iter_mut().zip(group) {
        *qv = if scale > 0.0 {
            round_to_i8(v / scale)
        } else {
            0
        };
    }
    scale
}

/// `q.round().clamp(-127.0, 127.0) as i8` (half away from zero; NaN gives
/// 0) without a call to libm's `roundf`: truncate, then step away from
/// zero when the exact remainder is at least one half.
#[inline]
fn round_to_i8(q: f32) -> i8 {
    let t = q as i32;
    let frac = q - t as f32;
    let rounded = if frac >= 0.5 {
        t.saturating_add(1)
    } else if frac <= -0.5 {
        t.saturating_sub(1)
    } else {
        t
    };
    rounded.clamp(-127, 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_i8_is_round_then_clamp() {
        let specials = [
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
            126.5,
            127.49,
            127.5,
            -127.5,
            1e9,
            -1e9,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            3e9,
            -3e9,
            1e-40,
        ];
        let mut seed = 0x1234_5678u32;
        let random = std::iter::repeat_with(|| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32 - 0.5) * 300.0
        });
        for q in specials.into_iter().chain(random.take(100_000)) {
            assert_eq!(round_to_i8(q), q.round().clamp(-127.0, 127.0) as i8, "{q}");
        }
    }
}
