//! The peers the benches compare against, written here so that each is
//! what its name says: a naive scalar loop of the format, the original
//! candle-tensor style implementation, and memory-bandwidth baselines.

use candle_core::{Device, IndexOp, Result, Tensor};
use rayon::prelude::*;

/// A straightforward loop over the format's definition: index arithmetic, no slices
/// of groups, the same operations as the definition.
pub fn naive_pack(
    src: &[f32],
    rows: usize,
    cols: usize,
    g: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let groups = cols.div_ceil(g);
    let row_bytes = groups * g.div_ceil(2);
    for r in 0..rows {
        for k in 0..groups {
            let mut max_abs = 0.0f32;
            for i in 0..g {
                let c = k * g + i;
                if c < cols {
                    max_abs = max_abs.max(src[r * cols + c].abs());
                }
            }
            let scale = (max_abs / 7.0).max(1e-5);
            scales[r * groups + k] = scale;
            for i in 0..g.div_ceil(2) * 2 {
                let c = k * g + i;
                let w = if i < g && c < cols {
                    src[r * cols + c]
                } else {
                    0.0
                };
                let u = ((w / scale).round().clamp(-8.0, 7.0) as i8 + 8) as u8;
                let byte = &mut packed[r * row_bytes + k * g.div_ceil(2) + i / 2];
                *byte = if i % 2 == 0 { u } else { *byte | (u << 4) };
            }
        }
    }
}

/// The inverse loop.
pub fn naive_unpack(
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    g: usize,
    dst: &mut [f32],
) {
    let groups = cols.div_ceil(g);
    let row_bytes = groups * g.div_ceil(2);
    for r in 0..rows {
        for c in 0..cols {
            let byte = packed[r * row_bytes + (c / g) * g.div_ceil(2) + (c % g) / 2];
            let u = if (c % g).is_multiple_of(2) {
                byte & 15
            } else {
                byte >> 4
            };
            dst[r * cols + c] = (u as i8 - 8) as f32 * scales[r * groups + c / g];
        }
    }
}

/// The original crate's approach: candle tensor ops, one `to_vec1` per row,
/// a fresh vector per group, tensors built from the collected vectors.
pub fn seed_style_pack(t: &Tensor, g: usize) -> Result<(Tensor, Tensor)> {
    let (rows, cols) = t.dims2()?;
    let groups = cols.div_ceil(g);
    let pad = groups * g - cols;
    let t = t.to_dtype(candle_core::DType::F32)?;
    let t = if pad > 0 {
        Tensor::cat(
            &[
                &t,
                &Tensor::zeros((rows, pad), candle_core::DType::F32, t.device())?,
            ],
            1,
        )?
    } else {
        t
    };
    let (mut all_packed, mut all_scales) = (Vec::new(), Vec::new());
    for r in 0..rows {
        let row = t.i((r, ..))?.to_vec1::<f32>()?;
        for k in 0..groups {
            let group = &row[k * g..(k + 1) * g];
            let max_abs = group.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
            let scale = (max_abs / 7.0).max(1e-5);
            all_scales.push(scale);
            let q: Vec<i8> = group
                .iter()
                .map(|w| (w / scale).round().clamp(-8.0, 7.0) as i8)
                .collect();
            for pair in (0..g).step_by(2) {
                let lo = (q[pair] + 8) as u8;
                let hi = (q.get(pair + 1).copied().unwrap_or(0) + 8) as u8;
                all_packed.push(lo | (hi << 4));
            }
        }
    }
    let packed = Tensor::from_vec(all_packed, (rows, groups * g.div_ceil(2)), &Device::Cpu)?;
    let scales = Tensor::from_vec(all_scales, (rows, groups), &Device::Cpu)?;
    Ok((packed, scales))
}

/// The original crate's unpack style: flatten to vectors, rebuild per group.
pub fn seed_style_unpack(
    packed: &Tensor,
    scales: &Tensor,
    rows: usize,
    cols: usize,
    g: usize,
) -> Result<Tensor> {
    let groups = cols.div_ceil(g);
    let bpg = g.div_ceil(2);
    let bytes = packed.flatten_all()?.to_vec1::<u8>()?;
    let scales = scales.flatten_all()?.to_vec1::<f32>()?;
    let mut out = Vec::new();
    for r in 0..rows {
        let mut row = Vec::new();
        for k in 0..groups {
            let scale = scales[r * groups + k];
            let mut group = Vec::new();
            for &b in &bytes[(r * groups + k) * bpg..(r * groups + k + 1) * bpg] {
                group.push(((b & 15) as i8 - 8) as f32 * scale);
                if group.len() < g {
                    group.push(((b >> 4) as i8 - 8) as f32 * scale);
                }
            }
            row.extend(group);
        }
        row.truncate(cols);
        out.extend(row);
    }
    Tensor::from_vec(out, (rows, cols), &Device::Cpu)
}

/// The streaming-read limit: a sum with 16 independent lanes, so that the
/// loop is bound by memory, not by the latency of one add chain.
pub fn stream_read(src: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for chunk in src.chunks_exact(16) {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum()
}

/// [`stream_read`] over every thread of the pool.
pub fn stream_read_all(src: &[f32]) -> f32 {
    src.par_chunks(1 << 16).map(stream_read).sum()
}

/// The streaming-write limit: fill a pre-touched buffer.
pub fn stream_write(dst: &mut [f32], value: f32) {
    dst.fill(value);
}

/// [`stream_write`] over every thread of the pool.
pub fn stream_write_all(dst: &mut [f32], value: f32) {
    dst.par_chunks_mut(1 << 16).for_each(|c| c.fill(value));
}

/// The write limit without reads for ownership: fill with non-temporal
/// stores (AVX, aligned 32-byte stores; ordinary ones at the ragged ends),
/// as large unpacks write. Plain [`stream_write`] where AVX is missing.
pub fn stream_write_nt(dst: &mut [f32], value: f32) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx") {
        // SAFETY: AVX was just detected.
        return unsafe { fill_nt(dst, value) };
    }
    stream_write(dst, value)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn fill_nt(dst: &mut [f32], value: f32) {
    use std::arch::x86_64::*;
    let head = ((32 - dst.as_ptr() as usize % 32) % 32 / 4).min(dst.len());
    let (head, rest) = dst.split_at_mut(head);
    head.fill(value);
    let mut lines = rest.chunks_exact_mut(8);
    let v = _mm256_set1_ps(value);
    for line in &mut lines {
        // SAFETY: `line` holds 8 f32 on a 32-byte boundary.
        unsafe { _mm256_stream_ps(line.as_mut_ptr(), v) };
    }
    lines.into_remainder().fill(value);
    _mm_sfence();
}

/// [`stream_write_nt`] over every thread of the pool.
pub fn stream_write_nt_all(dst: &mut [f32], value: f32) {
    dst.par_chunks_mut(1 << 16)
        .for_each(|c| stream_write_nt(c, value));
}

/// A straightforward matrix-vector loop over the format: decode each weight
/// as unpack does, multiply, add, left to right.
pub fn naive_matvec(
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    g: usize,
    x: &[f32],
    y: &mut [f32],
) {
    let groups = cols.div_ceil(g);
    let row_bytes = groups * g.div_ceil(2);
    for (r, out) in y.iter_mut().enumerate().take(rows) {
        let mut acc = 0f32;
        for (c, &xc) in x.iter().enumerate().take(cols) {
            let byte = packed[r * row_bytes + (c / g) * g.div_ceil(2) + (c % g) / 2];
            let u = if (c % g).is_multiple_of(2) {
                byte & 15
            } else {
                byte >> 4
            };
            acc += xc * ((u as i8 - 8) as f32 * scales[r * groups + c / g]);
        }
        *out = acc;
    }
}

/// An f32 dot product with 16 independent lanes (vectorizes).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a
        .chunks_exact(16)
        .remainder()
        .iter()
        .zip(b.chunks_exact(16).remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// [`stream_read`] over bytes: 64 independent lanes of wrapping sums.
pub fn stream_read_bytes(src: &[u8]) -> f32 {
    let mut acc = [0u8; 64];
    for chunk in src.chunks_exact(64) {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(*x);
        }
    }
    acc.iter().map(|&v| v as f32).sum()
}

/// [`stream_read_bytes`] over every thread of the pool.
pub fn stream_read_bytes_all(src: &[u8]) -> f32 {
    src.par_chunks(1 << 18).map(stream_read_bytes).sum()
}
