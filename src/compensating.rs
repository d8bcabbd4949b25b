//! The error-compensating encoder ([`Encoder::ErrorCompensating`]): GPTQ
//! (Frantar, Ashkboos, Hoefler and Alistarh, "GPTQ: Accurate Post-Training
//! Quantization for Generative Pre-trained Transformers", 2022,
//! arXiv:2210.17323) on this format's grid.
//!
//! Each row is quantized one column at a time, and each column's rounding
//! error is pushed onto the columns not yet quantized through `U`, the
//! upper Cholesky factor of the damped, permuted `H⁻¹`, so that the
//! layer's output error on the calibration activations, `‖X ΔWᵀ‖`, stays
//! small rather than each weight's. The definition, per row `w` (f32, in
//! the processing order below):
//!
//! ```text
//! for each column a, in order:
//!     if a starts a group: s = search_scale(w[group], c[group])
//!     q = quantize(w[a], s)
//!     e = (w[a] - dequantize(q, s)) / U[a][a]       (0 if not finite)
//!     for j > a: w[j] = w[j] - e * U[a][j]
//! ```
//!
//! every operation one f32 rounding, in that order; `c[j] = 1 / U[j][j]²`
//! (the error a column costs when the columns after it compensate). A row
//! whose weights are all finite but where some `w[a]` becomes Inf or NaN
//! on the way (weights near ±f32::MAX, whose pushed errors overflow) is
//! quantized again with `e = 0` throughout: no compensation, finite output. The
//! code below applies the updates block by block (GPTQ's lazy batches) in
//! the same order per element, so it gives exactly these bits.
//!
//! [`Encoder::ErrorCompensating`]: crate::Encoder::ErrorCompensating

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::LltError;
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Mat, Par};
use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels::compensate::BlockUpdate;
use crate::kernels::pack::scalar::{dequantize, quantize, write_group};
use crate::kernels::{self, threads, Kernel};
use crate::layout::Layout;

/// How far `H[i][j]` may be from `H[j][i]`, as a fraction of
/// `sqrt(H[i][i] H[j][j])` (the bound on `|H[i][j]|` of a positive
/// semi-definite matrix): room for a Hessian summed in another order.
pub const SYMMETRY_TOLERANCE: f64 = 1e-6;

/// Columns per lazy-update block (whole groups: at least this many, or one
/// group when groups are longer).
const BLOCK: usize = 128;
/// Rows quantized together, so that each block of `U` is read once for all
/// of them.
const CHUNK_ROWS: usize = 32;

/// Refuses a Hessian shorter than `cols * cols`, one holding a value that is
/// not finite, a negative diagonal entry or an asymmetry beyond
/// [`SYMMETRY_TOLERANCE`], and a damping that is negative or not finite.
pub(crate) fn check(hessian: &[f64], cols: usize, damping: f64) -> Result<(), Error> {
    let len = Layout::hessian_len(cols)?;
    Layout::check_input(Buffer::Hessian, len, hessian.len())?;
    if !(damping.is_finite() && damping >= 0.0) {
        return Err(Error::BadDamping);
    }
    let h = |i: usize, j: usize| hessian[i * cols + j];
    if let Some(i) = (0..cols).find(|&i| !(h(i, i).is_finite() && h(i, i) >= 0.0)) {
        return Err(Error::BadHessian { row: i, col: i });
    }
    for i in 0..cols {
        for j in i + 1..cols {
            let (upper, lower) = (h(i, j), h(j, i));
            // Square roots first: their product neither overflows nor
            // underflows where `H`'s entries are beyond 1e±154.
            let allowed = SYMMETRY_TOLERANCE * h(i, i).sqrt() * h(j, j).sqrt();
            // Not finite, or the distance is above (or NaN against) `allowed`.
            let asymmetric = (upper - lower)
                .abs()
                .partial_cmp(&allowed)
                .is_none_or(|o| o.is_gt());
            if !upper.is_finite() || !lower.is_finite() || asymmetric {
                return Err(Error::BadHessian { row: i, col: j });
            }
        }
    }
    Ok(())
}

/// The largest power of two at or below `x` (positive and finite),
/// subnormal ones included.
fn power_of_two_at_or_below(x: f64) -> f64 {
    let mut p = 2f64.powi(x.log2().floor() as i32);
    // `log2` may round across a power of two, and `powi` to 0 below
    // 2^-1022: correct both.
    if p == 0.0 {
        p = f64::from_bits(1);
    }
    while p > x {
        p /= 2.0;
    }
    while p * 2.0 <= x {
        p *= 2.0;
    }
    p
}

/// One group in processing order: its index in the row, and its columns'
/// positions `start..start + len` in that order.
#[derive(Clone, Copy, Debug)]
struct Group {
    index: usize,
    start: usize,
    len: usize,
}

/// What every row shares: the column order, the groups and blocks in that
/// order, and `U` with the scale search's weights.
pub(crate) struct Factor {
    cols: usize,
    /// `order[a]`: the column quantized `a`-th.
    order: Vec<usize>,
    groups: Vec<Group>,
    /// Ranges of `groups`, each a lazy-update block.
    blocks: Vec<std::ops::Range<usize>>,
    /// `[cols, cols]` row-major; the upper triangle is `U`.
    u: Vec<f32>,
    /// `1 / U[a][a]²`, as f32.
    weights: Vec<f32>,
}

/// Prepares a checked Hessian for `group_size`:
///
/// 1. `H` is divided by the mean of its diagonal (as `H / p / (mean of
///    diag(H) / p)`, `p` the power of two at or below the largest diagonal
///    entry, so that no scale of `H` overflows), then `damping` is added to
///    the diagonal: the damping is a fraction of the mean diagonal, as in
///    GPTQ. A dead input (`H[i][i] = 0`, never seen non-zero) thus gets the
///    damping alone: nothing to compensate with, it is rounded with its
///    group's scale. A Hessian whose diagonal is all 0 is refused.
/// 2. The order: groups by decreasing sum of their diagonal entries, the
///    columns of each group by decreasing diagonal entry, ties by index
///    (GPTQ's "act-order", kept within groups so that every group's columns
///    stay together and the decoder is unchanged).
/// 3. `U`: the Cholesky factorization (faer, sequential, in f64) of the
///    damped, permuted `H` with rows and columns reversed, `L Lᵀ`, then
///    `L⁻¹` reversed back, which is the upper Cholesky factor of `H⁻¹`.
///    Rounded to f32.
///
/// Errors: [`Error::BadHessian`] where the diagonal is all 0 (`row = col =
/// 0`) or the damped `H` is not positive definite (`row == col`, the column
/// whose pivot failed).
pub(crate) fn factor(
    hessian: &[f64],
    cols: usize,
    group_size: usize,
    damping: f64,
) -> Result<Factor, Error> {
    let n = cols;
    // The diagonal over the power of two at or below its largest entry:
    // exact, order-preserving, and free of overflow in the sums below
    // whatever `H`'s scale.
    let largest = (0..n).map(|i| hessian[i * n + i]).fold(0f64, f64::max);
    if n > 0 && largest == 0.0 {
        // Every input dead: nothing to calibrate with.
        return Err(Error::BadHessian { row: 0, col: 0 });
    }
    let power = if n == 0 {
        1.0
    } else {
        power_of_two_at_or_below(largest)
    };
    let diagonal: Vec<f64> = (0..n).map(|i| hessian[i * n + i] / power).collect();
    let mean = diagonal.iter().sum::<f64>() / n.max(1) as f64;

    let mut groups: Vec<Group> = (0..n.div_ceil(group_size))
        .map(|index| Group {
            index,
            start: index * group_size,
            len: group_size.min(n - index * group_size),
        })
        .collect();
    let weight = |g: &Group| -> f64 { diagonal[g.start..g.start + g.len].iter().sum() };
    groups.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
    let mut order = Vec::with_capacity(n);
    for g in &mut groups {
        let mut columns: Vec<usize> = (g.start..g.start + g.len).collect();
        columns.sort_by(|&a, &b| diagonal[b].total_cmp(&diagonal[a]));
        g.start = order.len();
        order.extend(columns);
    }

    // Reversed: `a` here is position `n - 1 - a` of the order.
    let column = |a: usize| order[n - 1 - a];
    // The lower triangle (all the factorization reads), from `H`'s upper one.
    let mut l = Mat::<f64>::from_fn(n, n, |a, b| {
        let (i, j) = (column(a), column(b));
        let damped = if a == b { damping } else { 0.0 };
        if a >= b {
            hessian[i.min(j) * n + i.max(j)] / power / mean + damped
        } else {
            0.0
        }
    });
    let par = Par::Seq;
    let mut scratch = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
    cholesky_in_place(
        l.as_mut(),
        Default::default(),
        par,
        MemStack::new(&mut scratch),
        Default::default(),
    )
    .map_err(|LltError::NonPositivePivot { index }| {
        let c = column(index);
        Error::BadHessian { row: c, col: c }
    })?;
    drop(scratch);
    let mut inverse = Mat::<f64>::zeros(n, n);
    invert_lower_triangular(inverse.as_mut(), l.as_ref(), par);
    drop(l);

    let mut u = vec![0f32; n * n];
    for a in 0..n {
        for b in a..n {
            u[a * n + b] = inverse[(n - 1 - a, n - 1 - b)] as f32;
        }
    }
    let weights = (0..n)
        .map(|a| {
            let d = u[a * n + a] as f64;
            ((1.0 / (d * d)) as f32).min(f32::MAX)
        })
        .collect();

    let mut blocks = Vec::new();
    let (mut first, mut width) = (0, 0);
    for (k, g) in groups.iter().enumerate() {
        width += g.len;
        if width >= BLOCK || k + 1 == groups.len() {
            blocks.push(first..k + 1);
            (first, width) = (k + 1, 0);
        }
    }
    Ok(Factor {
        cols,
        order,
        groups,
        blocks,
        u,
        weights,
    })
}

/// Packs every row of `src` (exactly the layout's lengths) with `factor`, on
/// up to `threads` threads. Rows are independent, so the bytes do not
/// depend on the thread count; nor on `kernel`, whose scale search is
/// bit-exact to the reference.
pub(crate) fn pack<T: Element>(
    layout: &Layout,
    kernel: Kernel,
    threads: usize,
    factor: &Factor,
    src: &[T],
    packed: &mut [u8],
    scales: &mut [f32],
) {
    if layout.elements() == 0 {
        return;
    }
    let search = kernels::search_scale(kernel, layout.group_size());
    let update = kernels::block_update(kernel);
    let (cols, row_bytes, row_scales) = (
        layout.cols(),
        layout.packed_row_bytes(),
        layout.groups_per_row(),
    );
    let run = |src: &[T], packed: &mut [u8], scales: &mut [f32]| {
        let mut scratch = Scratch::new(factor);
        let chunks = src
            .chunks(CHUNK_ROWS * cols)
            .zip(packed.chunks_mut(CHUNK_ROWS * row_bytes))
            .zip(scales.chunks_mut(CHUNK_ROWS * row_scales));
        let kernels = (&search, &update);
        for ((src, packed), scales) in chunks {
            let overflowed = scratch.pack_chunk(factor, layout, kernels, src, packed, scales, true);
            // Such a row again, without pushing errors.
            for r in (0..CHUNK_ROWS).filter(|&r| overflowed[r]) {
                scratch.pack_chunk(
                    factor,
                    layout,
                    kernels,
                    &src[r * cols..(r + 1) * cols],
                    &mut packed[r * row_bytes..(r + 1) * row_bytes],
                    &mut scales[r * row_scales..(r + 1) * row_scales],
                    false,
                );
            }
        }
    };
    // A row costs about `cols² / 2` multiply-adds, not `cols`; tasks of
    // whole chunks keep each block of `U` read once per chunk.
    let work = cols.saturating_mul(cols) / 2;
    let task_rows =
        threads::rows_per_task(layout.rows(), work, threads).next_multiple_of(CHUNK_ROWS);
    if task_rows >= layout.rows() {
        return run(src, packed, scales);
    }
    src.par_chunks(task_rows * cols)
        .zip(packed.par_chunks_mut(task_rows * row_bytes))
        .zip(scales.par_chunks_mut(task_rows * row_scales))
        .for_each(|((src, packed), scales)| run(src, packed, scales));
}

/// One task's working rows.
struct Scratch {
    /// `[CHUNK_ROWS, cols]`: the rows being quantized, in processing order.
    w: Vec<f32>,
    /// `[CHUNK_ROWS, cols]`: their nibbles, in column order.
    nibbles: Vec<u8>,
    /// `[CHUNK_ROWS, widest block]`: the current block's errors.
    errors: Vec<f32>,
    /// The widest block's column count.
    width: usize,
}

impl Scratch {
    fn new(factor: &Factor) -> Self {
        let width = factor
            .blocks
            .iter()
            .map(|b| factor.groups[b.clone()].iter().map(|g| g.len).sum())
            .max()
            .unwrap_or(0);
        Scratch {
            w: vec![0.0; CHUNK_ROWS * factor.cols],
            nibbles: vec![0; CHUNK_ROWS * factor.cols],
            errors: vec![0.0; CHUNK_ROWS * width],
            width,
        }
    }

    /// Quantizes up to [`CHUNK_ROWS`] rows, pushing each column's error
    /// onto the later ones if `push`. Returns which rows overflowed: finite
    /// in `src`, yet a weight became Inf or NaN on the way (weights near
    /// ±f32::MAX), so that they must be quantized again without pushing.
    #[allow(clippy::too_many_arguments)]
    fn pack_chunk<T: Element>(
        &mut self,
        factor: &Factor,
        layout: &Layout,
        (search, update): (&impl Fn(&[f32], &[f32]) -> f32, &impl Fn(BlockUpdate)),
        src: &[T],
        packed: &mut [u8],
        scales: &mut [f32],
        push: bool,
    ) -> [bool; CHUNK_ROWS] {
        let n = factor.cols;
        let rows = src.len() / n;
        let gpr = layout.groups_per_row();
        let mut finite = [false; CHUNK_ROWS];
        for ((w, src), finite) in self
            .w
            .chunks_exact_mut(n)
            .zip(src.chunks_exact(n))
            .zip(&mut finite)
        {
            for (w, &c) in w.iter_mut().zip(&factor.order) {
                *w = src[c].to_f32();
            }
            *finite = w[..n].iter().all(|w| w.is_finite());
        }
        let mut overflowed = [false; CHUNK_ROWS];
        let mut scale = [0f32; CHUNK_ROWS];
        for block in &factor.blocks {
            let groups = &factor.groups[block.clone()];
            let (p0, p1) = (
                groups[0].start,
                groups[groups.len() - 1].start + groups[groups.len() - 1].len,
            );
            for g in groups {
                let positions = g.start..g.start + g.len;
                for r in 0..rows {
                    scale[r] = search(
                        &self.w[r * n..][positions.clone()],
                        &factor.weights[positions.clone()],
                    );
                    scales[r * gpr + g.index] = scale[r];
                }
                for a in positions {
                    let u = &factor.u[a * n..(a + 1) * n];
                    let column = factor.order[a];
                    for (r, &scale) in scale[..rows].iter().enumerate() {
                        let w = &mut self.w[r * n..(r + 1) * n];
                        let nibble = quantize(w[a], scale);
                        self.nibbles[r * n + column] = nibble;
                        overflowed[r] |= finite[r] && !w[a].is_finite();
                        if !push {
                            continue;
                        }
                        let e = (w[a] - dequantize(nibble, scale)) / u[a];
                        let e = if e.is_finite() { e } else { 0.0 };
                        self.errors[r * self.width + a - p0] = e;
                        for (w, &u) in w[a + 1..p1].iter_mut().zip(&u[a + 1..p1]) {
                            *w -= e * u;
                        }
                    }
                }
            }
            if !push {
                continue;
            }
            update(BlockUpdate {
                errors: &self.errors,
                errors_stride: self.width,
                u: &factor.u,
                block: p0..p1,
                w: &mut self.w,
                cols: n,
                rows,
            });
        }
        let bytes_per_group = layout.bytes_per_group();
        for (r, packed) in packed
            .chunks_exact_mut(layout.packed_row_bytes())
            .enumerate()
        {
            let nibbles = &self.nibbles[r * n..(r + 1) * n];
            let groups = nibbles
                .chunks(layout.group_size())
                .zip(packed.chunks_exact_mut(bytes_per_group));
            for (nibbles, bytes) in groups {
                write_group(bytes, |i| nibbles.get(i).copied());
            }
        }
        overflowed
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::encoders::search_scale;
    use crate::kernels::pack::scalar::unpack_row;

    /// The module's definition, column by column with every update applied
    /// at once: one row's decoded values (in column order) and scales.
    fn reference_row(f: &Factor, g: usize, row: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (decoded, scales, overflowed) = reference_row_pushing(f, g, row, true);
        if overflowed && row.iter().all(|w| w.is_finite()) {
            let (decoded, scales, _) = reference_row_pushing(f, g, row, false);
            return (decoded, scales);
        }
        (decoded, scales)
    }

    fn reference_row_pushing(
        f: &Factor,
        g: usize,
        row: &[f32],
        push: bool,
    ) -> (Vec<f32>, Vec<f32>, bool) {
        let n = f.cols;
        let mut overflowed = false;
        let mut w: Vec<f32> = f.order.iter().map(|&c| row[c]).collect();
        let mut decoded = vec![0f32; n];
        let mut scales = vec![0f32; n.div_ceil(g)];
        let mut s = 0f32;
        for a in 0..n {
            if let Some(group) = f.groups.iter().find(|x| x.start == a) {
                s = search_scale(&w[a..a + group.len], Some(&f.weights[a..a + group.len]));
                scales[group.index] = s;
            }
            let u = &f.u[a * n..(a + 1) * n];
            let d = dequantize(quantize(w[a], s), s);
            decoded[f.order[a]] = d;
            overflowed |= !w[a].is_finite();
            let e = (w[a] - d) / u[a];
            let e = if e.is_finite() && push { e } else { 0.0 };
            for j in a + 1..n {
                w[j] -= e * u[j];
            }
        }
        (decoded, scales, overflowed)
    }

    fn hessian_of(x: &[f32], cols: usize) -> Vec<f64> {
        let mut h = vec![0f64; cols * cols];
        for row in x.chunks_exact(cols) {
            for i in 0..cols {
                for j in 0..cols {
                    h[i * cols + j] += row[i] as f64 * row[j] as f64;
                }
            }
        }
        h
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Blocks, tiles and chunks of rows give the definition's bits, with
        /// every kernel:
        /// groups shorter and longer than a block, ragged last groups,
        /// columns past the last whole tile, dead inputs, outliers and rows
        /// whose pushed errors overflow.
        #[test]
        fn lazy_blocks_give_the_definitions_bits(
            rows in 1usize..40,
            cols in 1usize..300,
            g in prop_oneof![Just(1usize), Just(7), Just(32), Just(48), Just(160)],
            seed in any::<u64>(),
            dead in any::<bool>(),
            huge in any::<bool>(),
        ) {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            };
            let samples = 3 * cols / 2 + 1;
            let mut x: Vec<f32> = (0..samples * cols).map(|_| next()).collect();
            // One dead input of several (a single one would leave no
            // information, which the encoder refuses).
            if dead && cols > 1 {
                x.iter_mut().skip(cols / 3).step_by(cols).for_each(|v| *v = 0.0);
            }
            let mut w: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
            w[rows * cols / 2] *= 40.0;
            if huge {
                // Up to 3.25e38: the pushed errors overflow.
                w[..cols].iter_mut().for_each(|w| *w = *w * 2.0 * 3.25e38);
            }
            let h = hessian_of(&x, cols);
            let f = factor(&h, cols, g, 0.05).unwrap();
            let layout = Layout::new(rows, cols, g).unwrap();
            let gpr = layout.groups_per_row();
            let row_bytes = layout.packed_row_bytes();
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let mut packed = vec![0u8; layout.packed_len()];
                let mut scales = vec![0f32; layout.scales_len()];
                pack(&layout, kernel, 1, &f, &w, &mut packed, &mut scales);
                for r in 0..rows {
                    let (want, want_scales) = reference_row(&f, g, &w[r * cols..(r + 1) * cols]);
                    let got_scales = &scales[r * gpr..(r + 1) * gpr];
                    prop_assert_eq!(
                        got_scales.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                        want_scales.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                        "{}", kernel.name()
                    );
                    let mut got = vec![0f32; cols];
                    unpack_row(&packed[r * row_bytes..(r + 1) * row_bytes], got_scales, g, &mut got);
                    prop_assert_eq!(
                        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{}", kernel.name()
                    );
                }
            }
        }
    }

    /// `Uᵀ U (P H_damped Pᵀ) = I`: `U` is the upper Cholesky factor of the
    /// damped, permuted inverse.
    #[test]
    fn u_factors_the_inverse() {
        let n = 7;
        let x: Vec<f64> = (0..3 * n * n)
            .map(|i| ((i * 37 % 101) as f64 - 50.0) / 25.0)
            .collect();
        let mut h = vec![0f64; n * n];
        for k in 0..3 * n {
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += x[k * n + i] * x[k * n + j];
                }
            }
        }
        let f = factor(&h, n, 3, 0.1).unwrap();
        let mean = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
        for i in 0..n {
            for j in 0..n {
                // (Uᵀ U Hp)[i][j]
                let mut s = 0f64;
                for k in 0..n {
                    let mut utu = 0f64;
                    for m in 0..=i.min(k) {
                        let u = |row: usize, col: usize| f.u[row * n + col] as f64;
                        utu += u(m, i) * u(m, k);
                    }
                    let hp = h[f.order[k] * n + f.order[j]] / mean + if k == j { 0.1 } else { 0.0 };
                    s += utu * hp;
                }
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-4, "({i}, {j}): {s}");
            }
        }
    }
}
