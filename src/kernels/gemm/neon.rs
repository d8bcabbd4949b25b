//! aarch64 NEON twins of the panel kernels. A q register holds 4 rows of a
//! panel: the 16 bytes of a step for rows `4j..4j + 4` (a quarter), lane
//! `l` row `4j + l`, so that a quarter's low and high nibbles are those
//! rows' columns 0..4 and 4..8 with no shuffle. int8: exact integer dots
//! per group, then per lane the scalar's f32 chain; the plain kernel
//! multiplies in i16 (`smlal`) and sums column pairs, the dot-product one
//! runs `sdot` by element against a row's 8 values, the matrix-multiply
//! one `smmla` on pairs of weight rows by pairs of activation rows (an odd
//! last row through `sdot`). exact: 1 or 2 activation rows against columns
//! decoded straight into registers, more against a chunk decoded once.
//!
//! `sdot` and `smmla` are unstable as intrinsics, so they are inline
//! assembly here, in functions compiled for their features.

use std::arch::aarch64::*;
use std::arch::asm;
use std::ops::Range;

use super::{check_panel_call, PanelActivations, PanelLayout, PANEL_ROWS, STEP_BYTES, STEP_COLS};
use crate::kernels::simd::neon::sdot_lane;

/// Panel rows per q register: a quarter panel.
const QUARTER_ROWS: usize = 4;
/// Bytes of a quarter step: 4 rows of 4 bytes.
const QUARTER_STEP_BYTES: usize = STEP_BYTES / 4;
/// Activation rows a plain int8 tile keeps in registers, per quarter: 2
/// i16, 1 i32 and 1 f32 accumulators each.
const PLAIN_TILE_ROWS: usize = 4;
/// Steps a plain int8 tile sums in i16 before widening: a lane gathers at
/// most `2 * 4` products of `15 * 128`, and the pair sum twice that,
/// 30720, inside i16.
const PLAIN_CHUNK_STEPS: usize = 4;
/// Activation rows an `sdot` tile keeps in registers, per half panel (2
/// quarters): 2 i32 and 2 f32 accumulators each.
const DOT_TILE_ROWS: usize = 4;
/// Pairs of activation rows an `smmla` tile runs against a half panel: 4
/// i32 accumulators each, beside the step's 4 zipped weight registers
/// (the f32 chains wait in `out`, touched once per group).
const MMLA_TILE_PAIRS: usize = 4;
/// Activation rows the exact kernel runs against columns decoded straight
/// into registers: below this a pass through the scratch costs more than
/// the decode.
const EXACT_DIRECT_ROWS: usize = 2;
/// Activation rows an exact tile keeps in registers: 4 leaf accumulators
/// each, beside the column's 4 weights (the totals live in `out`).
const EXACT_TILE_ROWS: usize = 6;

/// Rows `b0..b0 + ROWS` of `x`: their values, their scales and their
/// corrections (4 bytes per group each).
fn row_pointers<const ROWS: usize>(x: &PanelActivations, b0: usize) -> [[*const u8; ROWS]; 3] {
    let rows: [_; ROWS] = std::array::from_fn(|t| x.scales_and_corrections(b0 + t));
    [
        std::array::from_fn(|t| x.row(b0 + t).as_ptr()),
        rows.map(|r| r.0.as_ptr()),
        rows.map(|r| r.1.as_ptr()),
    ]
}

/// The 4-byte value at `p`, any alignment.
///
/// # Safety
/// `p..p + 4` is readable.
#[inline(always)]
unsafe fn read4<T: Copy>(p: *const u8) -> T {
    const { assert!(size_of::<T>() == 4) };
    // SAFETY: the caller's promise.
    unsafe { p.cast::<T>().read_unaligned() }
}

/// `acc` continued by one group as the scalar twin does, per lane:
/// `fma(dot as f32, w_scale * x_scale, acc)`, the scale held to the finite
/// range when `CLAMP`.
///
/// # Safety
/// The CPU supports NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn chain<const CLAMP: bool>(
    acc: float32x4_t,
    dot: int32x4_t,
    w_scales: float32x4_t,
    x_scale: f32,
) -> float32x4_t {
    let mut s = vmulq_n_f32(w_scales, x_scale);
    if CLAMP {
        // group_scale: FMIN and FMAX give NaN when an operand is NaN.
        s = vmaxq_f32(vminq_f32(s, vdupq_n_f32(f32::MAX)), vdupq_n_f32(-f32::MAX));
    }
    vfmaq_f32(acc, vcvtq_f32_s32(dot), s)
}

/// The 4 scales (f32) at `p`, any alignment.
///
/// # Safety
/// The CPU supports NEON; `p..p + 16` is readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_scales(p: *const u8) -> float32x4_t {
    // SAFETY: the caller's promise.
    vreinterpretq_f32_u8(unsafe { vld1q_u8(p) })
}

/// Low nibbles (columns 0..4) and high nibbles (columns 4..8) of the 16
/// bytes at `p`: 4 panel rows of a step.
///
/// # Safety
/// The CPU supports NEON; `p..p + 16` is readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn nibbles(p: *const u8) -> (int8x16_t, int8x16_t) {
    // SAFETY: the caller's promise.
    let w = unsafe { vld1q_u8(p) };
    (
        vreinterpretq_s8_u8(vandq_u8(w, vdupq_n_u8(0x0F))),
        vreinterpretq_s8_u8(vshrq_n_u8::<4>(w)),
    )
}

/// Plain NEON twin of [`super::scalar::panel_int8`]: per quarter panel, up
/// to [`PLAIN_TILE_ROWS`] activation rows; each step's nibbles multiply
/// the rows' 4-byte groups of values, repeated, in i16 (`smlal`).
///
/// # Safety
/// The CPU supports NEON. The arguments are checked (panics when they
/// break [`check_panel_call`]).
#[target_feature(enable = "neon")]
pub(super) unsafe fn panel_int8(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    batch: Range<usize>,
    groups: Range<usize>,
    clamp: bool,
    out: &mut [f32],
) {
    check_panel_call(panel, layout, x, &batch, &groups, out);
    for quarter in 0..PANEL_ROWS / QUARTER_ROWS {
        let mut b = batch.start;
        for tile_out in out.chunks_mut(PLAIN_TILE_ROWS * PANEL_ROWS) {
            let (rows, g) = (tile_out.len() / PANEL_ROWS, &groups);
            // SAFETY: checked above: the panel is whole, rows b..b + rows
            // are in `x` with the layout's groups, `tile_out` holds 16 per
            // row.
            unsafe {
                match (rows, clamp) {
                    (1, false) => plain_tile::<1, false>(panel, layout, x, b, g, quarter, tile_out),
                    (2, false) => plain_tile::<2, false>(panel, layout, x, b, g, quarter, tile_out),
                    (3, false) => plain_tile::<3, false>(panel, layout, x, b, g, quarter, tile_out),
                    (_, false) => plain_tile::<4, false>(panel, layout, x, b, g, quarter, tile_out),
                    (1, true) => plain_tile::<1, true>(panel, layout, x, b, g, quarter, tile_out),
                    (2, true) => plain_tile::<2, true>(panel, layout, x, b, g, quarter, tile_out),
                    (3, true) => plain_tile::<3, true>(panel, layout, x, b, g, quarter, tile_out),
                    (_, true) => plain_tile::<4, true>(panel, layout, x, b, g, quarter, tile_out),
                }
            }
            b += rows;
        }
    }
}

/// Activation rows `b0..b0 + ROWS` against quarter `quarter` of the panel
/// over `groups`: continues the chains of outputs `16 t + 4 quarter..16 t
/// + 4 quarter + 4`.
///
/// # Safety
/// The CPU supports NEON; `panel` is one whole panel of `layout`; rows
/// `b0..b0 + ROWS` are in `x`, whose rows hold the layout's groups;
/// `groups` lies in a row; `out` holds `16 * ROWS` values; `quarter < 4`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn plain_tile<const ROWS: usize, const CLAMP: bool>(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    b0: usize,
    groups: &Range<usize>,
    quarter: usize,
    out: &mut [f32],
) {
    let (gp, steps) = (layout.padded_group, layout.padded_group / STEP_COLS);
    // The reads below stay in group k of `groups`, step s < steps.
    let [q, x_scales, corrections] = row_pointers::<ROWS>(x, b0);
    let at = |t: usize| PANEL_ROWS * t + QUARTER_ROWS * quarter;
    // Plain loops rather than closures in this module's tiles: a closure
    // handed to `array::map` and the like is not inlined into a function
    // compiled for more features than the baseline.
    let mut acc = [vdupq_n_f32(0.0); ROWS];
    for (t, acc) in acc.iter_mut().enumerate() {
        // SAFETY: `out` holds 16 values per tile row.
        *acc = unsafe { vld1q_f32(out.as_ptr().add(at(t))) };
    }
    for k in groups.clone() {
        // SAFETY: group k of a whole panel: `steps` steps of 64 bytes, then
        // 64 bytes of scales; quarter `quarter` of a step is its bytes
        // `16 quarter..16 quarter + 16`.
        let group = unsafe { panel.as_ptr().add(k * layout.group_bytes) };
        let mut dots = [vdupq_n_s32(0); ROWS];
        for (dot, correction) in dots.iter_mut().zip(corrections) {
            // SAFETY: group k's correction of row b0 + t.
            *dot = vdupq_n_s32(unsafe { read4(correction.add(4 * k)) });
        }
        for chunk in (0..steps).step_by(PLAIN_CHUNK_STEPS) {
            // Per tile row, rows 0 and 1 of the quarter, then 2 and 3: lane
            // 4 r + i sums the products of column i and i + 4.
            let mut sums = [[vdupq_n_s16(0); 2]; ROWS];
            for s in chunk..(chunk + PLAIN_CHUNK_STEPS).min(steps) {
                // SAFETY: as above.
                let (low, high) =
                    unsafe { nibbles(group.add(STEP_BYTES * s + QUARTER_STEP_BYTES * quarter)) };
                let column = k * gp + STEP_COLS * s;
                for t in 0..ROWS {
                    // SAFETY: columns `column..column + 8` of row b0 + t,
                    // inside its group k (as above).
                    let (first, second): (i32, i32) =
                        unsafe { (read4(q[t].add(column)), read4(q[t].add(column + 4))) };
                    let first = vreinterpretq_s8_s32(vdupq_n_s32(first));
                    let second = vreinterpretq_s8_s32(vdupq_n_s32(second));
                    let [lo, hi] = &mut sums[t];
                    *lo = vmlal_s8(*lo, vget_low_s8(low), vget_low_s8(first));
                    *lo = vmlal_s8(*lo, vget_low_s8(high), vget_low_s8(second));
                    *hi = vmlal_high_s8(*hi, low, first);
                    *hi = vmlal_high_s8(*hi, high, second);
                }
            }
            for t in 0..ROWS {
                // Column pairs, then the 4 pairs of each row.
                dots[t] = vpadalq_s16(dots[t], vpaddq_s16(sums[t][0], sums[t][1]));
            }
        }
        // SAFETY: the group's 16 scales follow its steps.
        let w_scales = unsafe { load_scales(group.add(layout.nibble_bytes + 4 * at(0))) };
        for t in 0..ROWS {
            // SAFETY: group k's scale of row b0 + t.
            let x_scale = unsafe { read4(x_scales[t].add(4 * k)) };
            // SAFETY: the caller's promise of the CPU.
            acc[t] = unsafe { chain::<CLAMP>(acc[t], dots[t], w_scales, x_scale) };
        }
    }
    for (t, acc) in acc.into_iter().enumerate() {
        // SAFETY: 4 f32, in bounds.
        unsafe { vst1q_f32(out.as_mut_ptr().add(at(t)), acc) };
    }
}

/// Dot-product twin of [`super::scalar::panel_int8`]: per half panel, up
/// to [`DOT_TILE_ROWS`] activation rows; per step, `sdot` by element of
/// each quarter's low nibbles with a row's values 0..4, high nibbles with
/// 4..8.
///
/// # Safety
/// The CPU supports NEON and the dot-product extension. The arguments are
/// checked (panics when they break [`check_panel_call`]).
#[target_feature(enable = "neon,dotprod")]
pub(super) unsafe fn panel_int8_dotprod(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    batch: Range<usize>,
    groups: Range<usize>,
    clamp: bool,
    out: &mut [f32],
) {
    check_panel_call(panel, layout, x, &batch, &groups, out);
    // SAFETY: the arguments are checked; the caller's promise of the CPU.
    unsafe { dot_tiles(panel, layout, x, batch.start, &groups, clamp, out) }
}

/// The tiles of [`panel_int8_dotprod`]: rows from `b0`, as many as `out`
/// holds outputs for.
///
/// # Safety
/// The CPU supports NEON and the dot-product extension; the arguments
/// pass [`check_panel_call`] with the batch `b0..b0 + out.len() / 16`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn dot_tiles(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    b0: usize,
    groups: &Range<usize>,
    clamp: bool,
    out: &mut [f32],
) {
    for half in 0..2 {
        let mut b = b0;
        for tile_out in out.chunks_mut(DOT_TILE_ROWS * PANEL_ROWS) {
            let (rows, g) = (tile_out.len() / PANEL_ROWS, groups);
            // SAFETY: the caller's promise, for rows b..b + rows.
            unsafe {
                match (rows, clamp) {
                    (1, false) => dot_tile::<1, false>(panel, layout, x, b, g, half, tile_out),
                    (2, false) => dot_tile::<2, false>(panel, layout, x, b, g, half, tile_out),
                    (3, false) => dot_tile::<3, false>(panel, layout, x, b, g, half, tile_out),
                    (_, false) => dot_tile::<4, false>(panel, layout, x, b, g, half, tile_out),
                    (1, true) => dot_tile::<1, true>(panel, layout, x, b, g, half, tile_out),
                    (2, true) => dot_tile::<2, true>(panel, layout, x, b, g, half, tile_out),
                    (3, true) => dot_tile::<3, true>(panel, layout, x, b, g, half, tile_out),
                    (_, true) => dot_tile::<4, true>(panel, layout, x, b, g, half, tile_out),
                }
            }
            b += rows;
        }
    }
}

/// Activation rows `b0..b0 + ROWS` against half `half` of the panel (its
/// quarters `2 half` and `2 half + 1`) over `groups`: continues the chains
/// of outputs `16 t + 8 half..16 t + 8 half + 8`.
///
/// # Safety
/// The CPU supports NEON and the dot-product extension; `panel` is one
/// whole panel of `layout`; rows `b0..b0 + ROWS` are in `x`, whose rows
/// hold the layout's groups; `groups` lies in a row; `out` holds `16 *
/// ROWS` values; `half < 2`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn dot_tile<const ROWS: usize, const CLAMP: bool>(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    b0: usize,
    groups: &Range<usize>,
    half: usize,
    out: &mut [f32],
) {
    let (gp, steps) = (layout.padded_group, layout.padded_group / STEP_COLS);
    // The reads below stay in group k of `groups`, step s < steps.
    let [q, x_scales, corrections] = row_pointers::<ROWS>(x, b0);
    let at = |t: usize, j: usize| PANEL_ROWS * t + QUARTER_ROWS * (2 * half + j);
    let mut acc = [[vdupq_n_f32(0.0); 2]; ROWS];
    for (t, acc) in acc.iter_mut().enumerate() {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `out` holds 16 values per tile row.
            *acc = unsafe { vld1q_f32(out.as_ptr().add(at(t, j))) };
        }
    }
    for k in groups.clone() {
        // SAFETY: group k of a whole panel: `steps` steps of 64 bytes, then
        // 64 bytes of scales; quarter j of the half is bytes `16 (2 half +
        // j)..` of a step.
        let group = unsafe { panel.as_ptr().add(k * layout.group_bytes) };
        let mut dots = [[vdupq_n_s32(0); 2]; ROWS];
        for (dot, correction) in dots.iter_mut().zip(corrections) {
            // SAFETY: group k's correction of row b0 + t.
            *dot = [vdupq_n_s32(unsafe { read4(correction.add(4 * k)) }); 2];
        }
        for s in 0..steps {
            let step = STEP_BYTES * s + QUARTER_STEP_BYTES * 2 * half;
            // SAFETY: as above.
            let w = unsafe {
                [
                    nibbles(group.add(step)),
                    nibbles(group.add(step + QUARTER_STEP_BYTES)),
                ]
            };
            let column = k * gp + STEP_COLS * s;
            for t in 0..ROWS {
                // SAFETY: columns `column..column + 8` of row b0 + t, inside
                // its group k (as above); the caller's promise of the CPU.
                unsafe {
                    let values = vld1_s8(q[t].add(column).cast());
                    for (dot, (low, high)) in dots[t].iter_mut().zip(w) {
                        *dot = sdot_lane::<1>(sdot_lane::<0>(*dot, low, values), high, values);
                    }
                }
            }
        }
        // SAFETY: the group's 16 scales follow its steps.
        let w_scales = unsafe {
            let at = layout.nibble_bytes + 4 * at(0, 0);
            [
                load_scales(group.add(at)),
                load_scales(group.add(at + 4 * QUARTER_ROWS)),
            ]
        };
        for t in 0..ROWS {
            // SAFETY: group k's scale of row b0 + t.
            let x_scale = unsafe { read4(x_scales[t].add(4 * k)) };
            for j in 0..2 {
                // SAFETY: the caller's promise of the CPU.
                acc[t][j] = unsafe { chain::<CLAMP>(acc[t][j], dots[t][j], w_scales[j], x_scale) };
            }
        }
    }
    for (t, acc) in acc.into_iter().enumerate() {
        for (j, acc) in acc.into_iter().enumerate() {
            // SAFETY: 4 f32, in bounds.
            unsafe { vst1q_f32(out.as_mut_ptr().add(at(t, j)), acc) };
        }
    }
}

/// `acc` plus the 2 x 2 block of dot products of `w`'s two rows of 8
/// bytes with `x`'s: lane `2 i + j` gains `w[i] . x[j]` (`smmla`).
///
/// # Safety
/// The CPU supports the int8 matrix-multiply extension.
#[inline]
#[target_feature(enable = "neon,i8mm")]
unsafe fn smmla(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `smmla` only reads and writes these registers; the caller
    // promises the CPU runs it.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {w:v}.16b, {x:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            options(pure, nomem, nostack),
        )
    };
    acc
}

/// Matrix-multiply twin of [`super::scalar::panel_int8`]: pairs of
/// activation rows, per half panel up to [`MMLA_TILE_PAIRS`] of them, in
/// `smmla` against pairs of panel rows (a quarter's nibbles zipped into
/// rows of 8 columns); an odd last row as [`panel_int8_dotprod`].
///
/// # Safety
/// The CPU supports NEON and the dot-product and int8 matrix-multiply
/// extensions. The arguments are checked (panics when they break
/// [`check_panel_call`]).
#[target_feature(enable = "neon,dotprod,i8mm")]
pub(super) unsafe fn panel_int8_i8mm(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    batch: Range<usize>,
    groups: Range<usize>,
    clamp: bool,
    out: &mut [f32],
) {
    check_panel_call(panel, layout, x, &batch, &groups, out);
    let paired = batch.len() / 2 * 2;
    let (pairs_out, rest) = out.split_at_mut(paired * PANEL_ROWS);
    for half in 0..2 {
        let mut b = batch.start;
        for tile_out in pairs_out.chunks_mut(2 * MMLA_TILE_PAIRS * PANEL_ROWS) {
            let (pairs, g) = (tile_out.len() / (2 * PANEL_ROWS), &groups);
            // SAFETY: checked above: the panel is whole, rows b..b + 2
            // pairs are in `x` with the layout's groups, `tile_out` holds
            // 16 per row.
            unsafe {
                match (pairs, clamp) {
                    (1, false) => mmla_tile::<1, false>(panel, layout, x, b, g, half, tile_out),
                    (2, false) => mmla_tile::<2, false>(panel, layout, x, b, g, half, tile_out),
                    (3, false) => mmla_tile::<3, false>(panel, layout, x, b, g, half, tile_out),
                    (_, false) => mmla_tile::<4, false>(panel, layout, x, b, g, half, tile_out),
                    (1, true) => mmla_tile::<1, true>(panel, layout, x, b, g, half, tile_out),
                    (2, true) => mmla_tile::<2, true>(panel, layout, x, b, g, half, tile_out),
                    (3, true) => mmla_tile::<3, true>(panel, layout, x, b, g, half, tile_out),
                    (_, true) => mmla_tile::<4, true>(panel, layout, x, b, g, half, tile_out),
                }
            }
            b += 2 * pairs;
        }
    }
    // SAFETY: checked above, for the last row when the batch is odd; a CPU
    // with int8 matrix-multiply has the dot product too (`Kernel::NeonI8mm`).
    unsafe { dot_tiles(panel, layout, x, batch.start + paired, &groups, clamp, rest) }
}

/// Activation rows `b0..b0 + 2 PAIRS` against half `half` of the panel
/// (its quarters `2 half` and `2 half + 1`) over `groups`: continues the
/// chains of outputs `16 t + 8 half..16 t + 8 half + 8`.
///
/// # Safety
/// The CPU supports NEON and the int8 matrix-multiply extension; `panel`
/// is one whole panel of `layout`; rows `b0..b0 + 2 PAIRS` are in `x`,
/// whose rows hold the layout's groups; `groups` lies in a row; `out`
/// holds `32 * PAIRS` values; `half < 2`.
#[inline]
#[target_feature(enable = "neon,i8mm")]
unsafe fn mmla_tile<const PAIRS: usize, const CLAMP: bool>(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    b0: usize,
    groups: &Range<usize>,
    half: usize,
    out: &mut [f32],
) {
    let (gp, steps) = (layout.padded_group, layout.padded_group / STEP_COLS);
    let at = |t: usize, j: usize| PANEL_ROWS * t + QUARTER_ROWS * (2 * half + j);
    // Pair p's values, scales and corrections (rows b0 + 2 p and the
    // next); the reads below stay in group k of `groups`, step s < steps.
    let mut pointers = [[[std::ptr::null::<u8>(); 2]; 3]; PAIRS];
    for (p, pointers) in pointers.iter_mut().enumerate() {
        *pointers = row_pointers::<2>(x, b0 + 2 * p);
    }
    for k in groups.clone() {
        // SAFETY: group k of a whole panel: `steps` steps of 64 bytes, then
        // 64 bytes of scales; quarter j of the half is bytes `16 (2 half +
        // j)..` of a step.
        let group = unsafe { panel.as_ptr().add(k * layout.group_bytes) };
        // Per pair: quarter 0's panel rows 0 and 1, its rows 2 and 3, then
        // quarter 1's; lane `2 i + j` panel row `i` of the two, activation
        // row `j` of the pair.
        let mut dots = [[vdupq_n_s32(0); 4]; PAIRS];
        for s in 0..steps {
            let step = STEP_BYTES * s + QUARTER_STEP_BYTES * 2 * half;
            // SAFETY: as above.
            let quarters = unsafe {
                [
                    nibbles(group.add(step)),
                    nibbles(group.add(step + QUARTER_STEP_BYTES)),
                ]
            };
            let mut w = [vdupq_n_s8(0); 4];
            for (w, (low, high)) in w.chunks_exact_mut(2).zip(quarters) {
                // Each row's columns 0..4, then 4..8.
                let (low, high) = (vreinterpretq_s32_s8(low), vreinterpretq_s32_s8(high));
                w[0] = vreinterpretq_s8_s32(vzip1q_s32(low, high));
                w[1] = vreinterpretq_s8_s32(vzip2q_s32(low, high));
            }
            let column = k * gp + STEP_COLS * s;
            for (dots, [q, _, _]) in dots.iter_mut().zip(&pointers) {
                // SAFETY: columns `column..column + 8` of the pair's rows,
                // inside their group k (as above); the caller's promise of
                // the CPU.
                unsafe {
                    let values = vcombine_s8(
                        vld1_s8(q[0].add(column).cast()),
                        vld1_s8(q[1].add(column).cast()),
                    );
                    for (dot, w) in dots.iter_mut().zip(w) {
                        *dot = smmla(*dot, w, values);
                    }
                }
            }
        }
        // SAFETY: the group's 16 scales follow its steps.
        let w_scales = unsafe {
            let at = layout.nibble_bytes + 4 * at(0, 0);
            [
                load_scales(group.add(at)),
                load_scales(group.add(at + 4 * QUARTER_ROWS)),
            ]
        };
        for (p, [_, x_scales, corrections]) in pointers.iter().enumerate() {
            for i in 0..2 {
                // SAFETY: group k's scale and correction of row b0 + 2 p + i.
                let (x_scale, correction) = unsafe {
                    (
                        read4(x_scales[i].add(4 * k)),
                        read4(corrections[i].add(4 * k)),
                    )
                };
                for j in 0..2 {
                    // Lanes to panel rows: activation row i's of quarter j.
                    let [first, second] = [dots[p][2 * j], dots[p][2 * j + 1]];
                    let dot = match i {
                        0 => vuzp1q_s32(first, second),
                        _ => vuzp2q_s32(first, second),
                    };
                    let dot = vaddq_s32(dot, vdupq_n_s32(correction));
                    // The chains wait in `out`: the registers hold the
                    // integer sums of 4 pairs.
                    // SAFETY: 4 f32 of `out` (16 per tile row); the
                    // caller's promise of the CPU.
                    unsafe {
                        let acc = out.as_mut_ptr().add(at(2 * p + i, j));
                        vst1q_f32(
                            acc,
                            chain::<CLAMP>(vld1q_f32(acc), dot, w_scales[j], x_scale),
                        );
                    }
                }
            }
        }
    }
}

/// NEON twin of [`super::scalar::panel_exact`]: up to
/// [`EXACT_DIRECT_ROWS`] activation rows run against columns decoded on
/// the fly; more rows against columns decoded into `scratch` (16 rows of a
/// column in 4 registers, each weight the single multiply unpack does),
/// up to [`EXACT_TILE_ROWS`] activation rows at a time, one FMA chain per
/// lane.
///
/// # Safety
/// The CPU supports NEON. The arguments are checked (panics when they
/// break [`super::check_exact_call`]).
#[target_feature(enable = "neon")]
pub(super) unsafe fn panel_exact(
    panel: &[u8],
    layout: &PanelLayout,
    x: &[f32],
    columns: Range<usize>,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    super::check_exact_call(panel, layout, x, &columns, scratch, out);
    let rows = out.len() / PANEL_ROWS;
    if rows <= EXACT_DIRECT_ROWS {
        // SAFETY: checked above; `x` holds `rows` rows of `cols`, 16
        // outputs each in `out`.
        unsafe {
            match rows {
                0 => {}
                1 => exact_direct::<1>(panel, layout, x, columns, out),
                _ => exact_direct::<2>(panel, layout, x, columns, out),
            }
        }
        return;
    }
    // SAFETY: the caller's promise.
    unsafe { decode(panel, layout, columns.clone(), scratch) };
    let cols = layout.weights.cols;
    let leaf = super::exact_leaf(cols);
    let scratch = &scratch[..columns.len() * PANEL_ROWS];
    for (x, out) in x
        .chunks(EXACT_TILE_ROWS * cols)
        .zip(out.chunks_mut(EXACT_TILE_ROWS * PANEL_ROWS))
    {
        let c = columns.clone();
        // SAFETY: `x` holds whole rows of `cols` (checked), 16 outputs each
        // in `out`; `scratch` holds the decoded columns of `c`.
        unsafe {
            match out.len() / PANEL_ROWS {
                1 => exact_tile::<1>(x, cols, c, leaf, scratch, out),
                2 => exact_tile::<2>(x, cols, c, leaf, scratch, out),
                3 => exact_tile::<3>(x, cols, c, leaf, scratch, out),
                4 => exact_tile::<4>(x, cols, c, leaf, scratch, out),
                5 => exact_tile::<5>(x, cols, c, leaf, scratch, out),
                _ => exact_tile::<6>(x, cols, c, leaf, scratch, out),
            }
        }
    }
}

/// Calls `visit(c, weights)` for each column `c` of `columns` in order,
/// `weights[j]` panel rows `4j..4j + 4` of it, each decoded as unpack
/// does: `(u - 8) * scale`, `u - 8` exact.
///
/// # Safety
/// The CPU supports NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn for_each_column(
    panel: &[u8],
    layout: &PanelLayout,
    columns: Range<usize>,
    mut visit: impl FnMut(usize, [float32x4_t; 4]),
) {
    // Left shifts that bring column i's nibble to the top of its row's 32
    // bits: byte i % 4, the low nibble for i < 4, the high one after.
    const TO_TOP: [i32; STEP_COLS] = [28, 20, 12, 4, 24, 16, 8, 0];
    let (g, cols) = (layout.weights.group_size, layout.weights.cols);
    for k in columns.start / g..columns.end.div_ceil(g) {
        let group = &panel[k * layout.group_bytes..][..layout.group_bytes];
        let scale_bytes = &group[layout.nibble_bytes..][..4 * PANEL_ROWS];
        // SAFETY: 4 x 16 bytes, in bounds.
        let scales: [float32x4_t; 4] = std::array::from_fn(|j| unsafe {
            load_scales(scale_bytes.as_ptr().add(4 * QUARTER_ROWS * j))
        });
        // The group's columns inside `columns`, as indices in the group.
        let first = columns.start.saturating_sub(k * g);
        let end = g.min(cols - k * g).min(columns.end - k * g);
        for s in first / STEP_COLS..end.div_ceil(STEP_COLS) {
            let step = &group[STEP_BYTES * s..][..STEP_BYTES];
            // u ^ 8 read as a signed 4-bit number is u - 8.
            // SAFETY: 4 x 16 bytes, in bounds.
            let w: [int32x4_t; 4] = std::array::from_fn(|j| unsafe {
                let w = vld1q_u8(step.as_ptr().add(QUARTER_STEP_BYTES * j));
                vreinterpretq_s32_u8(veorq_u8(w, vdupq_n_u8(0x88)))
            });
            let at = STEP_COLS * s;
            let in_step = first.max(at) - at..end.min(at + STEP_COLS) - at;
            if in_step == (0..STEP_COLS) {
                // A whole step, unrolled: the shifts as immediates.
                macro_rules! visit {
                    ($($i:literal: $to_top:literal),*) => {$(
                        let weights = std::array::from_fn(|j| {
                            let u = vshrq_n_s32::<28>(vshlq_n_s32::<$to_top>(w[j]));
                            vmulq_f32(vcvtq_f32_s32(u), scales[j])
                        });
                        visit(k * g + at + $i, weights);
                    )*};
                }
                visit!(0: 28, 1: 20, 2: 12, 3: 4, 4: 24, 5: 16, 6: 8, 7: 0);
                continue;
            }
            for (i, &to_top) in TO_TOP
                .iter()
                .enumerate()
                .take(in_step.end)
                .skip(in_step.start)
            {
                let shift = vdupq_n_s32(to_top);
                let weights = std::array::from_fn(|j| {
                    let u = vshrq_n_s32::<28>(vshlq_s32(w[j], shift));
                    vmulq_f32(vcvtq_f32_s32(u), scales[j])
                });
                visit(k * g + at + i, weights);
            }
        }
    }
}

/// Writes the weights of `columns` into `scratch`, column `c` at `16 (c -
/// columns.start)`: element `l` is panel row `l`.
///
/// # Safety
/// The CPU supports NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn decode(panel: &[u8], layout: &PanelLayout, columns: Range<usize>, scratch: &mut [f32]) {
    let first = columns.start;
    let scratch = scratch[..columns.len() * PANEL_ROWS].as_mut_ptr();
    let store = |c: usize, weights: [float32x4_t; 4]| {
        for (j, w) in weights.into_iter().enumerate() {
            // SAFETY: `for_each_column` visits the columns of `columns`
            // alone, 16 f32 each in `scratch`.
            unsafe { vst1q_f32(scratch.add(PANEL_ROWS * (c - first) + QUARTER_ROWS * j), w) };
        }
    };
    // SAFETY: the caller's promise.
    unsafe { for_each_column(panel, layout, columns, store) };
}

/// `out[16 t..16 t + 16] += acc[t]` for each row `t`, and `acc` back to
/// `+0`: the end of a leaf.
///
/// # Safety
/// The CPU supports NEON; `out` holds `16 * ROWS` values.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn add_leaf<const ROWS: usize>(out: &mut [f32], acc: &mut [[float32x4_t; 4]; ROWS]) {
    for (t, acc) in acc.iter_mut().enumerate() {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: the caller's promise.
            unsafe {
                let total = out.as_mut_ptr().add(PANEL_ROWS * t + QUARTER_ROWS * j);
                vst1q_f32(total, vaddq_f32(vld1q_f32(total), *acc));
            }
            *acc = vdupq_n_f32(0.0);
        }
    }
}

/// Up to [`EXACT_DIRECT_ROWS`] activation rows `x` (`ROWS` rows of
/// `cols`) against `columns` decoded on the fly, without the scratch:
/// continues the totals in `out`. `columns` starts a leaf.
///
/// # Safety
/// The CPU supports NEON; `x` holds `ROWS` rows of `cols`, `out` `16 *
/// ROWS` values, `columns` inside `0..cols`, `panel` one whole panel of
/// `layout`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn exact_direct<const ROWS: usize>(
    panel: &[u8],
    layout: &PanelLayout,
    x: &[f32],
    columns: Range<usize>,
    out: &mut [f32],
) {
    let cols = layout.weights.cols;
    let leaf = super::exact_leaf(cols);
    // SAFETY: the caller's promise.
    let rows: [*const f32; ROWS] = std::array::from_fn(|t| unsafe { x.as_ptr().add(t * cols) });
    let mut acc = [[vdupq_n_f32(0.0); 4]; ROWS];
    let mut in_leaf = 0;
    let visit = |c: usize, weights: [float32x4_t; 4]| {
        for t in 0..ROWS {
            // SAFETY: column c < cols of row t.
            let x = unsafe { *rows[t].add(c) };
            for j in 0..4 {
                acc[t][j] = vfmaq_n_f32(acc[t][j], weights[j], x);
            }
        }
        in_leaf += 1;
        if in_leaf == leaf {
            // SAFETY: the caller's promise.
            unsafe { add_leaf(out, &mut acc) };
            in_leaf = 0;
        }
    };
    // SAFETY: the caller's promise.
    unsafe { for_each_column(panel, layout, columns, visit) };
    if in_leaf > 0 {
        // SAFETY: the caller's promise.
        unsafe { add_leaf(out, &mut acc) };
    }
}

/// Activation rows `x` (`ROWS` rows of `cols`) against the decoded
/// `columns`: continues the totals in `out`.
///
/// # Safety
/// The CPU supports NEON; `x` holds `ROWS` rows of `cols`, `out` `16 *
/// ROWS` values, `scratch` the decoded columns of `columns` (16 per
/// column), `columns` inside `0..cols`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn exact_tile<const ROWS: usize>(
    x: &[f32],
    cols: usize,
    columns: Range<usize>,
    leaf: usize,
    scratch: &[f32],
    out: &mut [f32],
) {
    // SAFETY: the caller's promise.
    let rows: [*const f32; ROWS] = std::array::from_fn(|t| unsafe { x.as_ptr().add(t * cols) });
    let mut start = columns.start;
    while start < columns.end {
        let end = (start + leaf).min(columns.end);
        let mut acc = [[vdupq_n_f32(0.0); 4]; ROWS];
        for c in start..end {
            // SAFETY: column c of `columns` in `scratch`, of row t in `x`.
            unsafe {
                let w = scratch.as_ptr().add(PANEL_ROWS * (c - columns.start));
                let weights: [float32x4_t; 4] =
                    std::array::from_fn(|j| vld1q_f32(w.add(QUARTER_ROWS * j)));
                for t in 0..ROWS {
                    let x = *rows[t].add(c);
                    for j in 0..4 {
                        acc[t][j] = vfmaq_n_f32(acc[t][j], weights[j], x);
                    }
                }
            }
        }
        // SAFETY: the caller's promise.
        unsafe { add_leaf(out, &mut acc) };
        start = end;
    }
}
