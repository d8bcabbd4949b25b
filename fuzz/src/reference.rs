//! Results from the definitions in the header (and the format's spec), for
//! the success side: what pack, unpack, the Q4_0 conversions, the quality
//! report and products must give, computed the plain way.

use half::f16;

use crate::model::Layout;

/// Nibble `j` of the group starting at `packed[0]`: element 2i in the low
/// nibble of byte i, element 2i+1 in its high nibble.
fn nibble(group: &[u8], j: usize) -> u8 {
    let byte = group[j / 2];
    if j.is_multiple_of(2) {
        byte & 15
    } else {
        byte >> 4
    }
}

/// Element `(r, c)` of a packed matrix: `(u - 8) * scale`, one f32 multiply.
pub fn decode(packed: &[u8], scales: &[f32], l: &Layout, r: usize, c: usize) -> f32 {
    let g = c / l.group_size;
    let group = &packed[r * l.packed_row_bytes + g * l.bytes_per_group..];
    let u = nibble(group, c % l.group_size);
    (f32::from(u) - 8.0) * scales[r * l.groups_per_row + g]
}

/// Every element, row-major.
pub fn unpack(packed: &[u8], scales: &[f32], l: &Layout) -> Vec<f32> {
    // By element, not by row: a layout may have 2^62 empty rows.
    (0..l.elements)
        .map(|i| decode(packed, scales, l, i / l.cols, i % l.cols))
        .collect()
}

/// The format's default encoder: per group `scale = max(max |w| / 7,
/// 1e-5)` (NaN ignored), `u = clamp(round(w / scale), -8, 7) + 8` (a NaN
/// quotient gives 0), padding and the spare nibble of an odd group 8.
pub fn pack(src: &[f32], l: &Layout) -> (Vec<u8>, Vec<f32>) {
    let mut packed = vec![0u8; l.packed_len];
    let mut scales = vec![0f32; l.scales_len];
    // By row of `src`: a layout may have 2^62 empty rows.
    for (r, row) in src[..l.elements].chunks(l.cols.max(1)).enumerate() {
        for (g, group) in row.chunks(l.group_size).enumerate() {
            let max_abs = group.iter().fold(0f32, |m, w| m.max(w.abs()));
            let scale = (max_abs / 7.0).max(1e-5);
            scales[r * l.groups_per_row + g] = scale;
            let out =
                &mut packed[r * l.packed_row_bytes + g * l.bytes_per_group..][..l.bytes_per_group];
            for (j, byte) in out.iter_mut().enumerate() {
                let u = |k: usize| match group.get(k) {
                    // `as` maps NaN to 0 and saturates.
                    Some(w) => (((w / scale).round() as i8).clamp(-8, 7) + 8) as u8,
                    None => 8,
                };
                *byte = u(2 * j) | u(2 * j + 1) << 4;
            }
        }
    }
    (packed, scales)
}

/// GGML Q4_0 blocks to this format at g = 32: each block's f16 `d` becomes
/// the group's scale, element `j` its low nibble of byte `j` (`j < 16`) or
/// the high nibble of byte `j - 16`.
pub fn q4_0_import(blocks: &[u8]) -> (Vec<u8>, Vec<f32>) {
    let mut packed = Vec::new();
    let mut scales = Vec::new();
    for b in blocks.chunks_exact(18) {
        scales.push(f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32());
        let qs = &b[2..];
        let u = |j: usize| if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 };
        packed.extend((0..16).map(|i| u(2 * i) | u(2 * i + 1) << 4));
    }
    (packed, scales)
}

/// What `cq4_q4_0_report` counts for each scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ExportCounts {
    pub overflowed: usize,
    pub subnormal_loss: usize,
    pub rounded: usize,
}

/// This format at g = 32 to GGML blocks: each scale rounded to the nearest
/// f16, nibbles kept; and the report's counts: a finite scale that became
/// infinite overflowed; a non-zero finite scale in f16's subnormal range
/// (below 2^-14 in magnitude) that changed lost bits there; any other
/// finite scale that changed was rounded.
pub fn q4_0_export(packed: &[u8], scales: &[f32]) -> (Vec<u8>, ExportCounts) {
    let mut blocks = Vec::new();
    let mut counts = ExportCounts::default();
    for (group, &s) in packed.chunks_exact(16).zip(scales) {
        let d = f16::from_f32(s);
        if s.is_finite() {
            if d.is_infinite() {
                counts.overflowed += 1;
            } else if d.to_f32() != s {
                if s.abs() < f32::from(f16::MIN_POSITIVE) {
                    counts.subnormal_loss += 1;
                } else {
                    counts.rounded += 1;
                }
            }
        }
        blocks.extend(d.to_bits().to_le_bytes());
        blocks.extend((0..16).map(|j| nibble(group, j) | nibble(group, j + 16) << 4));
    }
    (blocks, counts)
}

/// `cq4_quality`'s four numbers from f64 sums over `e = original -
/// unpacked`.
pub fn quality(original: &[f32], unpacked: &[f32]) -> [f64; 4] {
    let (mut e2, mut o2, mut max) = (0f64, 0f64, 0f64);
    for (&o, &u) in original.iter().zip(unpacked) {
        let e = (f64::from(o) - f64::from(u)).abs();
        e2 += e * e;
        o2 += f64::from(o) * f64::from(o);
        max = if e.is_nan() || max.is_nan() {
            f64::NAN
        } else {
            max.max(e)
        };
    }
    let n = original.len() as f64;
    let rmse = if original.is_empty() {
        0.0
    } else {
        (e2 / n).sqrt()
    };
    // Where only the original's sum is 0, the quotients give +Inf and -Inf
    // dB, as the header says (and NaN where `e` holds NaN).
    let (rel, snr) = if e2 == 0.0 {
        (0.0, f64::INFINITY)
    } else {
        ((e2 / o2).sqrt(), 10.0 * (o2 / e2).log10())
    };
    [rmse, max, rel, snr]
}
