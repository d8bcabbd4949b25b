//! The reference GGML Q4_0 quantizer: llama.cpp's `quantize_row_q4_0_ref`,
//! with its C casts as x86-64 compilers build them.

use half::f16;

/// Quantizes 32 values into one 18-byte block: `m` the first element of
/// largest magnitude (NaN ignored), `d = m / -8`, `id = 1 / d` (0 when `d`
/// is 0), the f16 of `d` stored little-endian, then byte `j` =
/// `xi[j] | xi[j + 16] << 4` with `xi = min(15, (int8_t)(x * id + 8.5))`.
pub fn quantize_block(x: &[f32], block: &mut [u8]) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in &x[..32] {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let id = write_scale(max, block);
    for (j, q) in block[2..18].iter_mut().enumerate() {
        let low = c_nibble(x[j] * id + 8.5);
        let high = c_nibble(x[j + 16] * id + 8.5);
        // C: `qs = xi0; qs |= xi1 << 4;` stored into a byte.
        *q = low | (high << 4);
    }
}

/// The block's scale from its element of largest magnitude `max`: stores
/// the f16 of `d = max / -8` little-endian in the block's first two bytes
/// and returns `id = 1 / d` (0 when `d` is 0), as every kernel must.
#[inline]
pub(super) fn write_scale(max: f32, block: &mut [u8]) -> f32 {
    let d = max / -8.0;
    block[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// `(uint8_t) MIN(15, (int8_t) t)` as x86-64 C compilers build it: the
/// float is truncated to a 32-bit integer (`cvttss2si`, which gives
/// `i32::MIN` for NaN and out-of-range values), then its low byte is the
/// int8_t.
#[inline]
pub fn c_nibble(t: f32) -> u8 {
    let truncated = if t.is_nan() || !(-2147483648.0..2147483648.0).contains(&t) {
        i32::MIN
    } else {
        t as i32
    };
    (truncated as i8).min(15) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_nibble_follows_x86_truncation() {
        assert_eq!(c_nibble(8.5), 8);
        assert_eq!(c_nibble(16.4), 15);
        assert_eq!(c_nibble(0.7), 0);
        assert_eq!(c_nibble(-0.7), 0);
        // (int8_t) -1 then MIN(15, -1) = -1, stored as 0xFF.
        assert_eq!(c_nibble(-1.5), 0xFF);
        assert_eq!(c_nibble(f32::INFINITY), 0);
        assert_eq!(c_nibble(f32::NAN), 0);
        // 300 -> low byte 44 -> MIN(15, 44) = 15.
        assert_eq!(c_nibble(300.0), 15);
    }
}
