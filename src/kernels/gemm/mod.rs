//! Products on the prepared weight form ([`PanelLayout`]): weight rows
//! interleaved 16 to a panel, so that one 64-byte load feeds 16 rows at
//! once, register-blocked over several activation rows. The scalar twins
//! in [`scalar`] define every output bit; the SIMD kernels beside them
//! equal them bit for bit.
//!
//! int8: each output is one chain over the groups of its row, in column
//! order: `acc = fma(dot_k, group_scale(w_scale_k, x_scale_k), acc)` from
//! `acc = +0`, `dot_k` the exact integer `sum((u - 8) * q)` of group `k`
//! converted to f32.
//!
//! exact: the weights decoded as unpack does; the columns cut into leaves
//! of [`exact_leaf`] columns; per leaf `acc = fma(w_c, x_c, acc)` from
//! `+0` in column order, and per output `total += acc` leaf after leaf
//! from `+0`. A product meets at most `leaf + cols / leaf + 1 <= 3
//! sqrt(cols) + 1` roundings, inside the exact bound's `4 sqrt(cols) + 4`.
//!
//! Whatever the tiling and the threads, each output's order is fixed by
//! its row's length alone, so the bits never depend on them.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;

use std::ops::Range;

use super::activations::QuantizedActivations;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::entry::any_group_size;
use super::entry::Entry;
use super::matmul::scalar as matmul_scalar;
use crate::error::Error;
use crate::layout::Layout;

/// Weight rows per panel: one 32-bit lane of a 512-bit register each.
pub(crate) const PANEL_ROWS: usize = 16;
/// Columns one 64-byte step of a panel holds per row: the low nibbles of a
/// row's 4 bytes are its columns `8s..8s + 4`, the high nibbles `8s + 4..8s + 8`.
pub(crate) const STEP_COLS: usize = 8;
/// Bytes per step: 16 rows of 4 bytes.
pub(crate) const STEP_BYTES: usize = PANEL_ROWS * STEP_COLS / 2;

/// Columns per leaf of an exact product's sums: the largest power of two
/// at most `sqrt(cols)` (1 for fewer than 4 columns).
pub fn exact_leaf(cols: usize) -> usize {
    1 << cols.isqrt().max(1).ilog2()
}

/// Columns an exact kernel decodes at a time: whole leaves, about 2048
/// (8 KiB of f32 per panel row), so that its scratch stays in L2.
pub(crate) fn exact_chunk(cols: usize) -> usize {
    let leaf = exact_leaf(cols);
    leaf * (2048 / leaf).max(1)
}

/// Where everything of a prepared matrix's body sits.
///
/// The body is `panels` panels of `panel_bytes`; panel `p` holds weight
/// rows `16p..16p + 16` (rows past the matrix are zero weights). A panel
/// is `groups_per_row` groups of `group_bytes`: the group's columns padded
/// to `padded_group` (a multiple of 8) in steps of 64 bytes, then the 16
/// rows' scales as little-endian f32. Padding nibbles are 8 (weight 0),
/// padding scales 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanelLayout {
    /// The packed matrix this form was prepared from.
    pub(crate) weights: Layout,
    /// `group_size` rounded up to a multiple of [`STEP_COLS`].
    pub(crate) padded_group: usize,
    /// `16 * padded_group / 2`: the nibbles of one group of one panel.
    pub(crate) nibble_bytes: usize,
    /// `nibble_bytes + 64` (the 16 scales): one group of one panel.
    pub(crate) group_bytes: usize,
    /// `groups_per_row * group_bytes`.
    pub(crate) panel_bytes: usize,
    /// `ceil(rows / 16)`.
    pub(crate) panels: usize,
    /// `panels * panel_bytes`: the body's length.
    pub(crate) len: usize,
}

impl PanelLayout {
    /// The panel form of `weights`; `SizeOverflow` when its length does
    /// not fit in `isize`.
    pub(crate) fn new(weights: Layout) -> Result<Self, Error> {
        let padded_group = weights.group_size.next_multiple_of(STEP_COLS);
        let nibble_bytes = PANEL_ROWS * padded_group / 2;
        let group_bytes = nibble_bytes + 4 * PANEL_ROWS;
        let panels = weights.rows.div_ceil(PANEL_ROWS);
        // Without rows there is no panel, whatever one's size would be: the
        // form is the header alone.
        let panel_bytes = match panels {
            0 => 0,
            _ => weights
                .groups_per_row
                .checked_mul(group_bytes)
                .ok_or(Error::SizeOverflow)?,
        };
        let len = panels
            .checked_mul(panel_bytes)
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(Error::SizeOverflow)?;
        Ok(PanelLayout {
            weights,
            padded_group,
            nibble_bytes,
            group_bytes,
            panel_bytes,
            panels,
            len,
        })
    }

    /// Writes the panel form of the packed rows (`packed`, `scales`: the
    /// whole matrix of `self.weights`) into `panel`, panel `p` of the body.
    pub(crate) fn fill_panel(&self, packed: &[u8], scales: &[f32], p: usize, panel: &mut [u8]) {
        let l = &self.weights;
        let rows = (p * PANEL_ROWS..(p + 1) * PANEL_ROWS).map(|r| (r < l.rows).then_some(r));
        let rows: Vec<Option<usize>> = rows.collect();
        for (k, group) in panel.chunks_exact_mut(self.group_bytes).enumerate() {
            let width = l.group_size.min(l.cols - k * l.group_size);
            let (steps, scale_bytes) = group.split_at_mut(self.nibble_bytes);
            // The nibble of column `i` of group `k` in row `r`; 8 (weight 0)
            // past the group's columns.
            let nibble = |r: Option<usize>, i: usize| match r {
                Some(r) if i < width => {
                    let row = &packed[r * l.packed_row_bytes..(r + 1) * l.packed_row_bytes];
                    matmul_scalar::nibble(row, l.group_size, k * l.group_size + i)
                }
                _ => 8,
            };
            for (s, step) in steps.chunks_exact_mut(STEP_BYTES).enumerate() {
                for (j, byte) in step.iter_mut().enumerate() {
                    let (r, i) = (rows[j / 4], STEP_COLS * s + j % 4);
                    *byte = nibble(r, i) | nibble(r, i + 4) << 4;
                }
            }
            for (r, out) in rows.iter().zip(scale_bytes.chunks_exact_mut(4)) {
                let scale = r.map_or(0.0, |r| scales[r * l.groups_per_row + k]);
                out.copy_from_slice(&scale.to_le_bytes());
            }
        }
    }
}

/// Where everything of quantized activations sits, for `batch` rows of
/// `cols` quantized with `group_size` for the panel kernels: the values of
/// each row, groups padded with zeros to `padded_group` columns
/// (`row_len` bytes of i8 per row), then every row's group scales (f32),
/// then their corrections `-8 * sum(q)` (i32), little-endian. A
/// correction starts its group's integer sum, so that the kernels' `sum(u
/// * q)` over nibbles `u` becomes the exact `sum((u - 8) * q)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ActivationsLayout {
    pub(crate) batch: usize,
    pub(crate) cols: usize,
    pub(crate) group_size: usize,
    /// `ceil(cols / group_size)`.
    pub(crate) groups: usize,
    /// `group_size` rounded up to a multiple of [`STEP_COLS`].
    pub(crate) padded_group: usize,
    /// `groups * padded_group`.
    pub(crate) row_len: usize,
    /// `batch * row_len`: where the scales start.
    pub(crate) scales_at: usize,
    /// `scales_at + 4 * batch * groups`: where the corrections start.
    pub(crate) corrections_at: usize,
    /// `corrections_at + 4 * batch * groups`: the body's length.
    pub(crate) len: usize,
}

impl ActivationsLayout {
    /// The layout; `BadGroupSize` or `SizeOverflow` as [`Layout::new`].
    pub(crate) fn new(batch: usize, cols: usize, group_size: usize) -> Result<Self, Error> {
        let rows = Layout::new(batch, cols, group_size)?;
        let padded_group = group_size.next_multiple_of(STEP_COLS);
        let groups = rows.groups_per_row;
        // Without rows nothing is stored, whatever a row's size would be.
        let row_len = match batch {
            0 => Some(0),
            _ => groups.checked_mul(padded_group),
        };
        let scales_at = row_len.and_then(|n| n.checked_mul(batch));
        let per_array = rows.scales_len.checked_mul(4);
        let corrections_at = scales_at.zip(per_array).and_then(|(a, n)| a.checked_add(n));
        let len = corrections_at
            .zip(per_array)
            .and_then(|(a, n)| a.checked_add(n));
        match (row_len, scales_at, corrections_at, len) {
            (Some(row_len), Some(scales_at), Some(corrections_at), Some(len))
                if len <= isize::MAX as usize =>
            {
                Ok(ActivationsLayout {
                    batch,
                    cols,
                    group_size,
                    groups,
                    padded_group,
                    row_len,
                    scales_at,
                    corrections_at,
                    len,
                })
            }
            _ => Err(Error::SizeOverflow),
        }
    }

    /// Writes `quantized` (rows of this layout's shape) into `body` (its
    /// length); returns the largest `|scale|`, NaN when a scale is NaN.
    pub(crate) fn write(&self, quantized: &QuantizedActivations, body: &mut [u8]) -> f32 {
        let (values, rest) = body.split_at_mut(self.scales_at);
        let (scales, corrections) = rest.split_at_mut(self.corrections_at - self.scales_at);
        let mut max = 0f32;
        let rows = values
            .chunks_exact_mut(self.row_len.max(1))
            .take(self.batch);
        let mut at = 0;
        for (b, row) in rows.enumerate() {
            for (k, padded) in row.chunks_exact_mut(self.padded_group).enumerate() {
                let group = quantized.group(b, k);
                for (out, &v) in padded.iter_mut().zip(group) {
                    *out = v as u8;
                }
                padded[group.len()..].fill(0);
                let scale = quantized.scale(b, k);
                max = max_abs(&[max, scale]);
                let correction = -8 * group.iter().map(|&v| v as i32).sum::<i32>();
                scales[at..at + 4].copy_from_slice(&scale.to_le_bytes());
                corrections[at..at + 4].copy_from_slice(&correction.to_le_bytes());
                at += 4;
            }
        }
        max
    }
}

/// Quantized activations as the panel kernels read them: a body of
/// [`ActivationsLayout`] and its largest scale magnitude.
#[derive(Clone, Copy, Debug)]
pub struct PanelActivations<'a> {
    pub(crate) layout: ActivationsLayout,
    /// The body: `layout.len` bytes.
    pub(crate) body: &'a [u8],
    /// The largest `|scale|`, NaN when a scale is NaN.
    pub(crate) max_abs_scale: f32,
}

impl PanelActivations<'_> {
    /// Row `b`'s values (i8 as bytes), groups padded.
    pub(crate) fn row(&self, b: usize) -> &[u8] {
        let n = self.layout.row_len;
        &self.body[b * n..(b + 1) * n]
    }

    /// The scale of group `k` of row `b`.
    pub(crate) fn scale(&self, b: usize, k: usize) -> f32 {
        let at = self.layout.scales_at + 4 * (b * self.layout.groups + k);
        f32::from_le_bytes(self.body[at..at + 4].try_into().unwrap())
    }

    /// Row `b`'s scales and corrections, 4 bytes per group each.
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )] // read by the SIMD kernels
    pub(crate) fn scales_and_corrections(&self, b: usize) -> (&[u8], &[u8]) {
        let (l, n) = (&self.layout, 4 * self.layout.groups);
        let scales = l.scales_at + b * n;
        let corrections = l.corrections_at + b * n;
        (
            &self.body[scales..scales + n],
            &self.body[corrections..corrections + n],
        )
    }
}

/// The largest `|v|`, NaN when any `v` is NaN, 0 for none.
pub(crate) fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0f32, |m, v| {
        let a = v.abs();
        if a.is_nan() || a > m {
            a
        } else {
            m
        }
    })
}

/// Whether some `w_scale * x_scale` of a product may overflow (or be NaN)
/// given the largest of each: then the kernels hold each product to the
/// finite range as `group_scale` does; otherwise that is the identity and
/// they skip it.
pub(crate) fn needs_clamp(max_w: f32, max_x: f32) -> bool {
    // Each f32 product rounds the exact one, which this bounds: at most
    // f32::MAX exactly means at most f32::MAX rounded. NaN is unordered.
    use std::cmp::Ordering::{Equal, Less};
    let bound = max_w as f64 * max_x as f64;
    !matches!(bound.partial_cmp(&(f32::MAX as f64)), Some(Less | Equal))
}

/// One panel against activation rows `batch` (any number per call) over
/// the groups `groups`: continues the chain of `out[16 t + l]`, the output
/// of activation row `batch.start + t` and panel row `l` (`+0` before the
/// first groups). Calls over consecutive group ranges give the bits of one
/// call over all of them.
///
/// `clamp` false promises that no `w_scale * x_scale` of the call overflows
/// (see [`needs_clamp`]): the SIMD kernels then skip holding them to the
/// finite range; the scalar twin always holds them.
pub(crate) type PanelFn = unsafe fn(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    batch: Range<usize>,
    groups: Range<usize>,
    clamp: bool,
    out: &mut [f32],
);

/// Groups per call of an int8 kernel (K blocking): a panel's share of
/// them, about 16 KiB, stays in L1 while every register tile of the
/// activation rows runs against it.
pub(crate) fn int8_chunk_groups(layout: &PanelLayout) -> usize {
    (16 * 1024 / layout.group_bytes).max(1)
}

/// What a [`PanelFn`] needs of its arguments: `panel` is one whole panel
/// of `layout`, `x` holds the rows of `batch` with the layout's columns and
/// group size, `groups` lies in a row, `out` holds 16 outputs per row of
/// `batch`.
pub(crate) fn check_panel_call(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    batch: &Range<usize>,
    groups: &Range<usize>,
    out: &[f32],
) {
    let w = &layout.weights;
    assert!(groups.start <= groups.end && groups.end <= w.groups_per_row);
    assert_eq!(panel.len(), layout.panel_bytes);
    assert_eq!((x.layout.cols, x.layout.group_size), (w.cols, w.group_size));
    assert_eq!(x.body.len(), x.layout.len);
    assert!(batch.start <= batch.end && batch.end <= x.layout.batch);
    assert_eq!(out.len(), batch.len() * PANEL_ROWS);
}

/// One panel against activation rows `x` (whole rows of `cols` f32) over
/// the columns `columns` (whole leaves from a leaf boundary, the last one
/// possibly ragged): continues each output's total in `out[16 t + l]`
/// (activation row `t`, panel row `l`; `+0` before the first columns).
/// `scratch` holds 16 f32 per column of `columns`, overwritten.
pub(crate) type PanelExactFn = unsafe fn(
    panel: &[u8],
    layout: &PanelLayout,
    x: &[f32],
    columns: Range<usize>,
    scratch: &mut [f32],
    out: &mut [f32],
);

/// What a [`PanelExactFn`] needs of its arguments.
pub(crate) fn check_exact_call(
    panel: &[u8],
    layout: &PanelLayout,
    x: &[f32],
    columns: &Range<usize>,
    scratch: &[f32],
    out: &[f32],
) {
    let cols = layout.weights.cols;
    assert_eq!(panel.len(), layout.panel_bytes);
    assert!(columns.start < columns.end && columns.end <= cols);
    assert_eq!(columns.start % exact_leaf(cols), 0);
    assert!(scratch.len() >= columns.len() * PANEL_ROWS);
    assert_eq!(x.len() / cols * PANEL_ROWS, out.len());
    assert_eq!(x.len() % cols, 0);
}

pub(crate) static SCALAR_INT8: Entry<PanelFn> = Entry::reference(scalar::panel_int8);
pub(crate) static SCALAR_EXACT: Entry<PanelExactFn> = Entry::reference(scalar::panel_exact);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_EXACT: Entry<PanelExactFn> =
    Entry::simd(any_group_size, avx2::panel_exact, &SCALAR_EXACT);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_INT8: Entry<PanelFn> =
    Entry::simd(any_group_size, avx2::panel_int8, &SCALAR_INT8);
/// Needs AVX-VNNI besides the AVX2 family's features.
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX_VNNI_INT8: Entry<PanelFn> =
    Entry::simd(any_group_size, avx2::panel_int8_vnni, &SCALAR_INT8);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_EXACT: Entry<PanelExactFn> =
    Entry::simd(any_group_size, avx512::panel_exact, &SCALAR_EXACT);
/// Needs VNNI besides the family's features (the table checks).
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_INT8: Entry<PanelFn> =
    Entry::simd(any_group_size, avx512::panel_int8, &SCALAR_INT8);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_EXACT: Entry<PanelExactFn> =
    Entry::simd(any_group_size, neon::panel_exact, &SCALAR_EXACT);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_INT8: Entry<PanelFn> =
    Entry::simd(any_group_size, neon::panel_int8, &SCALAR_INT8);
/// Needs the dot-product extension besides NEON.
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_DOTPROD_INT8: Entry<PanelFn> =
    Entry::simd(any_group_size, neon::panel_int8_dotprod, &SCALAR_INT8);
/// Needs the dot-product and int8 matrix-multiply extensions besides NEON.
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_I8MM_INT8: Entry<PanelFn> =
    Entry::simd(any_group_size, neon::panel_int8_i8mm, &SCALAR_INT8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::Kernel;
    use crate::kernels::{panel_exact_kernel, panel_kernel};

    /// Random bytes, from a fixed seed.
    fn bytes(seed: &mut u64, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 24) as u8
            })
            .collect()
    }

    /// The bits of each value, every NaN as one.
    fn bits(v: &[f32]) -> Vec<u32> {
        let bits = |f: &f32| if f.is_nan() { u32::MAX } else { f.to_bits() };
        v.iter().map(bits).collect()
    }

    /// The panels of a random `rows x cols` matrix in groups of `g`, its
    /// weight scales `w_scale(i)`.
    fn panels(
        seed: &mut u64,
        rows: usize,
        cols: usize,
        g: usize,
        w_scale: impl Fn(u8) -> f32,
    ) -> (PanelLayout, Vec<u8>) {
        let layout = PanelLayout::new(Layout::new(rows, cols, g).unwrap()).unwrap();
        let packed = bytes(seed, layout.weights.packed_len());
        let scales: Vec<f32> = bytes(seed, layout.weights.scales_len())
            .into_iter()
            .map(w_scale)
            .collect();
        let mut body = vec![0u8; layout.len];
        for (p, panel) in body.chunks_exact_mut(layout.panel_bytes).enumerate() {
            layout.fill_panel(&packed, &scales, p, panel);
        }
        (layout, body)
    }

    /// Random activations of `batch` rows for `layout` (values in -127..=127,
    /// the padding 0), their scales `x_scale(i)`.
    fn activations(
        seed: &mut u64,
        layout: &PanelLayout,
        batch: usize,
        x_scale: impl Fn(u8) -> f32,
    ) -> (ActivationsLayout, Vec<u8>) {
        let w = &layout.weights;
        let l = ActivationsLayout::new(batch, w.cols, w.group_size).unwrap();
        let mut body = bytes(seed, l.len);
        let mut at = l.scales_at;
        for b in 0..batch {
            for k in 0..l.groups {
                let width = w.group_size.min(w.cols - k * w.group_size);
                let group = &mut body[b * l.row_len + k * l.padded_group..][..l.padded_group];
                for v in group.iter_mut() {
                    *v = (*v as i8).max(-127) as u8;
                }
                group[width..].fill(0);
                let sum: i32 = group.iter().map(|&v| v as i8 as i32).sum();
                let scale = x_scale(group[0]);
                body[at..at + 4].copy_from_slice(&scale.to_le_bytes());
                let c = l.corrections_at - l.scales_at + at;
                body[c..c + 4].copy_from_slice(&(-8 * sum).to_le_bytes());
                at += 4;
            }
        }
        (l, body)
    }

    /// Every kernel's int8 panel function against the scalar twin's bits,
    /// per panel: on a batch that starts past row 0, over the groups in two
    /// calls, with `clamp` true and (where no scale product overflows)
    /// false.
    #[test]
    fn int8_panels_match_the_scalar_twin() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let ordinary = |b: u8| (b as f32 - 128.0) / 256.0;
        let extreme = |b: u8| match b % 8 {
            0 => f32::NAN,
            1 => 3e38,
            2 => -f32::INFINITY,
            _ => (b as f32 - 128.0) / 256.0,
        };
        let shapes = [
            (16, 40, 40, 3),
            (5, 100, 12, 6),
            (20, 300, 32, 9),
            (3, 64, 8, 2),
        ];
        for (rows, cols, g, batch) in shapes {
            for (special, clamps) in [(false, &[false, true][..]), (true, &[true][..])] {
                let scale = |b| if special { extreme(b) } else { ordinary(b) };
                let (layout, body) = panels(&mut seed, rows, cols, g, scale);
                let (x_layout, x_body) = activations(&mut seed, &layout, batch, scale);
                let x = PanelActivations {
                    layout: x_layout,
                    body: &x_body,
                    max_abs_scale: 0.0,
                };
                let groups = layout.weights.groups_per_row;
                for panel in body.chunks_exact(layout.panel_bytes) {
                    for start in [0, 1] {
                        let n = (batch - start) * PANEL_ROWS;
                        let mut want = vec![0f32; n];
                        scalar::panel_int8(
                            panel,
                            &layout,
                            &x,
                            start..batch,
                            0..groups,
                            true,
                            &mut want,
                        );
                        for (kernel, &clamp) in Kernel::ALL
                            .into_iter()
                            .filter(|k| k.is_supported())
                            .flat_map(|k| clamps.iter().map(move |c| (k, c)))
                        {
                            let run = panel_kernel(kernel);
                            let mut got = vec![0f32; n];
                            for part in [0..groups / 2, groups / 2..groups] {
                                // SAFETY: `panel_kernel` hands out kernels this
                                // CPU runs; the arguments are checked.
                                unsafe {
                                    run(panel, &layout, &x, start..batch, part, clamp, &mut got)
                                };
                            }
                            assert_eq!(
                                bits(&got),
                                bits(&want),
                                "{} clamp {clamp} {rows}x{cols} g {g} rows {start}..{batch}",
                                kernel.name()
                            );
                        }
                    }
                }
            }
        }
    }

    /// Every kernel's exact panel function against the scalar twin's bits,
    /// per panel, every batch from 1 to 8, the columns in several calls.
    #[test]
    fn exact_panels_match_the_scalar_twin() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for (rows, cols, g) in [(16, 40, 40), (5, 100, 12), (20, 300, 32), (3, 7, 3)] {
            let scale = |b: u8| (b as f32 - 128.0) / 256.0;
            let (layout, body) = panels(&mut seed, rows, cols, g, scale);
            let leaf = exact_leaf(cols);
            for batch in 1..=8 {
                let x: Vec<f32> = bytes(&mut seed, batch * cols)
                    .into_iter()
                    .map(|b| (b as f32 - 128.0) / 32.0)
                    .collect();
                let mut scratch = vec![0f32; cols * PANEL_ROWS];
                for panel in body.chunks_exact(layout.panel_bytes) {
                    let mut want = vec![0f32; batch * PANEL_ROWS];
                    scalar::panel_exact(panel, &layout, &x, 0..cols, &mut scratch, &mut want);
                    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                        let run = panel_exact_kernel(kernel);
                        let mut got = vec![0f32; batch * PANEL_ROWS];
                        for first in (0..cols).step_by(2 * leaf) {
                            let columns = first..(first + 2 * leaf).min(cols);
                            // SAFETY: `panel_exact_kernel` hands out kernels
                            // this CPU runs; the arguments are checked.
                            unsafe { run(panel, &layout, &x, columns, &mut scratch, &mut got) };
                        }
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{} {rows}x{cols} g {g} batch {batch}",
                            kernel.name()
                        );
                    }
                }
            }
        }
    }
}
