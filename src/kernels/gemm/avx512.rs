//! AVX-512 twins of the panel kernels. int8 (VNNI): per 64-byte step, the
//! low and high nibbles of 16 rows meet 4 activation columns each,
//! broadcast, in `vpdpbusd`; up to 8 activation rows share each step's
//! nibbles. exact: a chunk of columns decoded once, then FMA chains for up
//! to 12 activation rows. Lane `l` of a tile's registers is panel row `l`.

use std::arch::x86_64::*;
use std::ops::Range;

use crate::kernels::matmul::prefetch_ahead;

use super::{check_panel_call, PanelActivations, PanelLayout, PANEL_ROWS, STEP_BYTES, STEP_COLS};

/// Activation rows an int8 tile keeps in registers: 8 integer and 8 float
/// accumulators, beside the step's two nibble registers.
const TILE_ROWS: usize = 8;
/// Activation rows an exact tile keeps in registers: 12 leaf and 12 total
/// accumulators.
const EXACT_TILE_ROWS: usize = 12;
/// Up to this many activation rows, an exact call decodes each column
/// into registers for them alone instead of through its scratch.
const DIRECT_ROWS: usize = 4;

/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI. The arguments are checked
/// (panics when they break [`check_panel_call`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
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
    let mut b = batch.start;
    for tile_out in out.chunks_mut(TILE_ROWS * PANEL_ROWS) {
        let (rows, g) = (tile_out.len() / PANEL_ROWS, &groups);
        // SAFETY: checked above: the panel is whole, rows b..b + rows are in
        // `x` with the layout's groups, `tile_out` holds 16 per row.
        unsafe {
            match (rows, clamp) {
                (1, false) => tile::<1, false>(panel, layout, x, b, g.clone(), tile_out),
                (2, false) => tile::<2, false>(panel, layout, x, b, g.clone(), tile_out),
                (3, false) => tile::<3, false>(panel, layout, x, b, g.clone(), tile_out),
                (4, false) => tile::<4, false>(panel, layout, x, b, g.clone(), tile_out),
                (5, false) => tile::<5, false>(panel, layout, x, b, g.clone(), tile_out),
                (6, false) => tile::<6, false>(panel, layout, x, b, g.clone(), tile_out),
                (7, false) => tile::<7, false>(panel, layout, x, b, g.clone(), tile_out),
                (_, false) => tile::<8, false>(panel, layout, x, b, g.clone(), tile_out),
                (1, true) => tile::<1, true>(panel, layout, x, b, g.clone(), tile_out),
                (2, true) => tile::<2, true>(panel, layout, x, b, g.clone(), tile_out),
                (3, true) => tile::<3, true>(panel, layout, x, b, g.clone(), tile_out),
                (4, true) => tile::<4, true>(panel, layout, x, b, g.clone(), tile_out),
                (5, true) => tile::<5, true>(panel, layout, x, b, g.clone(), tile_out),
                (6, true) => tile::<6, true>(panel, layout, x, b, g.clone(), tile_out),
                (7, true) => tile::<7, true>(panel, layout, x, b, g.clone(), tile_out),
                (_, true) => tile::<8, true>(panel, layout, x, b, g.clone(), tile_out),
            }
        }
        b += rows;
    }
}

/// Activation rows `b0..b0 + ROWS` against the panel's `groups`,
/// continuing the chains in `out`.
///
/// # Safety
/// `panel` is one whole panel of `layout`; rows `b0..b0 + ROWS` are in `x`,
/// whose rows hold the layout's groups; `groups` lies in a row; `out`
/// holds `16 * ROWS` values.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<const ROWS: usize, const CLAMP: bool>(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    b0: usize,
    groups: Range<usize>,
    out: &mut [f32],
) {
    let (gp, steps) = (layout.padded_group, layout.padded_group / STEP_COLS);
    // Row b0 + t's values, scales and corrections (4 bytes per group each);
    // the reads below stay in group k < groups, step s < steps of them.
    let q: [*const u8; ROWS] = std::array::from_fn(|t| x.row(b0 + t).as_ptr());
    let [x_scales, corrections]: [[*const u8; ROWS]; 2] = {
        let rows: [_; ROWS] = std::array::from_fn(|t| x.scales_and_corrections(b0 + t));
        [rows.map(|r| r.0.as_ptr()), rows.map(|r| r.1.as_ptr())]
    };
    let nibble = _mm512_set1_epi8(0x0F);
    // SAFETY: `out` holds 16 values per tile row.
    let mut acc: [__m512; ROWS] =
        std::array::from_fn(|t| unsafe { _mm512_loadu_ps(out.as_ptr().add(PANEL_ROWS * t)) });
    for k in groups {
        // SAFETY: group k of a whole panel: `steps` steps of 64 bytes and
        // 64 bytes of scales.
        let group = unsafe { panel.as_ptr().add(k * layout.group_bytes) };
        // SAFETY: group k's correction of row b0 + t.
        let mut dots: [__m512i; ROWS] = std::array::from_fn(|t| unsafe {
            _mm512_set1_epi32(corrections[t].add(4 * k).cast::<i32>().read_unaligned())
        });
        for s in 0..steps {
            // The panels lie one after another: ask for weights ahead.
            prefetch_ahead(group.wrapping_add(STEP_BYTES * s));
            // SAFETY: as above.
            let w = unsafe { _mm512_loadu_si512(group.add(STEP_BYTES * s).cast()) };
            let low = _mm512_and_si512(w, nibble);
            let high = _mm512_and_si512(_mm512_srli_epi16::<4>(w), nibble);
            let column = k * gp + STEP_COLS * s;
            for t in 0..ROWS {
                // SAFETY: columns `column..column + 8` of row b0 + t, inside
                // its group k (as above).
                let (first, second) = unsafe {
                    let p = q[t].add(column);
                    (
                        p.cast::<i32>().read_unaligned(),
                        p.add(4).cast::<i32>().read_unaligned(),
                    )
                };
                dots[t] = _mm512_dpbusd_epi32(dots[t], low, _mm512_set1_epi32(first));
                dots[t] = _mm512_dpbusd_epi32(dots[t], high, _mm512_set1_epi32(second));
            }
        }
        // SAFETY: the group's 16 scales follow its steps.
        let w_scales = unsafe { _mm512_loadu_ps(group.add(layout.nibble_bytes).cast()) };
        for t in 0..ROWS {
            // SAFETY: group k's scale of row b0 + t.
            let x_scale = unsafe { x_scales[t].add(4 * k).cast::<f32>().read_unaligned() };
            let mut s = _mm512_mul_ps(w_scales, _mm512_set1_ps(x_scale));
            if CLAMP {
                // group_scale: MINPS and MAXPS return their second operand
                // when one is NaN, so NaN stays NaN.
                s = _mm512_max_ps(
                    _mm512_set1_ps(-f32::MAX),
                    _mm512_min_ps(_mm512_set1_ps(f32::MAX), s),
                );
            }
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[t]), s, acc[t]);
        }
    }
    for (t, out) in out.chunks_exact_mut(PANEL_ROWS).enumerate() {
        // SAFETY: `out` holds 16 values per tile row.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), acc[t]) };
    }
}

/// AVX-512 twin of [`super::scalar::panel_exact`]: the columns are decoded
/// into `scratch` (16 rows of a column per register, each weight the
/// single multiply unpack does), then up to 12 activation rows run the
/// leaves against them, one FMA chain per lane.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL. The arguments are checked (panics
/// when they break [`super::check_exact_call`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn panel_exact(
    panel: &[u8],
    layout: &PanelLayout,
    x: &[f32],
    columns: Range<usize>,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    super::check_exact_call(panel, layout, x, &columns, scratch, out);
    let cols = layout.weights.cols;
    let rows = out.len() / PANEL_ROWS;
    if rows <= DIRECT_ROWS {
        // SAFETY: checked above; `x` holds `rows` rows of `cols`, 16
        // outputs each in `out`.
        unsafe {
            match rows {
                0 => {}
                1 => exact_direct::<1>(panel, layout, x, columns, out),
                2 => exact_direct::<2>(panel, layout, x, columns, out),
                3 => exact_direct::<3>(panel, layout, x, columns, out),
                _ => exact_direct::<4>(panel, layout, x, columns, out),
            }
        }
        return;
    }
    decode(panel, layout, columns.clone(), scratch);
    let leaf = super::exact_leaf(cols);
    let scratch = &scratch[..columns.len() * PANEL_ROWS];
    for (x, out) in x
        .chunks(EXACT_TILE_ROWS * cols)
        .zip(out.chunks_mut(EXACT_TILE_ROWS * PANEL_ROWS))
    {
        let c = columns.clone();
        // SAFETY: `x` holds whole rows of `cols` (checked), 16 outputs
        // each in `out`; `scratch` holds the decoded columns of `c`.
        unsafe {
            match out.len() / PANEL_ROWS {
                1 => exact_tile::<1>(x, cols, c, leaf, scratch, out),
                2 => exact_tile::<2>(x, cols, c, leaf, scratch, out),
                3 => exact_tile::<3>(x, cols, c, leaf, scratch, out),
                4 => exact_tile::<4>(x, cols, c, leaf, scratch, out),
                5 => exact_tile::<5>(x, cols, c, leaf, scratch, out),
                6 => exact_tile::<6>(x, cols, c, leaf, scratch, out),
                7 => exact_tile::<7>(x, cols, c, leaf, scratch, out),
                8 => exact_tile::<8>(x, cols, c, leaf, scratch, out),
                9 => exact_tile::<9>(x, cols, c, leaf, scratch, out),
                10 => exact_tile::<10>(x, cols, c, leaf, scratch, out),
                11 => exact_tile::<11>(x, cols, c, leaf, scratch, out),
                _ => exact_tile::<12>(x, cols, c, leaf, scratch, out),
            }
        }
    }
}

/// Calls `visit(c, weights)` for each column `c` of `columns` in order,
/// `weights` its 16 panel rows (lane `l` row `l`), each decoded as unpack
/// does: `(u - 8) * scale`, `u - 8` looked up exactly.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn for_each_column(
    panel: &[u8],
    layout: &PanelLayout,
    columns: Range<usize>,
    mut visit: impl FnMut(usize, __m512),
) {
    let (g, cols) = (layout.weights.group_size, layout.weights.cols);
    let minus_eight = _mm512_setr_ps(
        -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
    );
    for k in columns.start / g..columns.end.div_ceil(g) {
        let group = &panel[k * layout.group_bytes..][..layout.group_bytes];
        let scale_bytes = &group[layout.nibble_bytes..][..4 * PANEL_ROWS];
        // SAFETY: 16 f32, in bounds.
        let scales = unsafe { _mm512_loadu_ps(scale_bytes.as_ptr().cast()) };
        // The group's columns inside `columns`, as indices in the group.
        let first = columns.start.saturating_sub(k * g);
        let end = g.min(cols - k * g).min(columns.end - k * g);
        for s in first / STEP_COLS..end.div_ceil(STEP_COLS) {
            let step = &group[STEP_BYTES * s..][..STEP_BYTES];
            prefetch_ahead(step.as_ptr());
            // SAFETY: 64 bytes, in bounds.
            let w = unsafe { _mm512_loadu_si512(step.as_ptr().cast()) };
            // Column i of the step: byte i % 4 of each row's 4 bytes, the
            // low nibble for i < 4, the high one after; VPERMPS reads only
            // the low 4 bits of each index.
            let u = [
                w,
                _mm512_srli_epi32::<8>(w),
                _mm512_srli_epi32::<16>(w),
                _mm512_srli_epi32::<24>(w),
                _mm512_srli_epi32::<4>(w),
                _mm512_srli_epi32::<12>(w),
                _mm512_srli_epi32::<20>(w),
                _mm512_srli_epi32::<28>(w),
            ];
            for (i, u) in u.into_iter().enumerate() {
                let at = STEP_COLS * s + i;
                if at >= first && at < end {
                    let weights = _mm512_mul_ps(_mm512_permutexvar_ps(u, minus_eight), scales);
                    visit(k * g + at, weights);
                }
            }
        }
    }
}

/// Writes the weights of `columns` into `scratch`, column `c` at
/// `16 (c - columns.start)`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn decode(panel: &[u8], layout: &PanelLayout, columns: Range<usize>, scratch: &mut [f32]) {
    let first = columns.start;
    let scratch = &mut scratch[..columns.len() * PANEL_ROWS];
    for_each_column(panel, layout, columns, |c, weights| {
        let out = &mut scratch[PANEL_ROWS * (c - first)..][..PANEL_ROWS];
        // SAFETY: 16 f32, in bounds.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), weights) };
    });
}

/// Up to [`DIRECT_ROWS`] activation rows `x` (`ROWS` rows of `cols`)
/// against `columns` decoded on the fly, without the scratch: continues
/// the totals in `out`. `columns` starts a leaf.
///
/// # Safety
/// `x` holds `ROWS` rows of `cols`, `out` `16 * ROWS` values, `columns`
/// inside `0..cols`, `panel` one whole panel of `layout`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn exact_direct<const ROWS: usize>(
    panel: &[u8],
    layout: &PanelLayout,
    x: &[f32],
    columns: Range<usize>,
    out: &mut [f32],
) {
    let cols = layout.weights.cols;
    let leaf = super::exact_leaf(cols);
    // SAFETY (every pointer below): the caller's promise.
    let mut totals: [__m512; ROWS] =
        std::array::from_fn(|t| unsafe { _mm512_loadu_ps(out.as_ptr().add(PANEL_ROWS * t)) });
    let rows: [*const f32; ROWS] = std::array::from_fn(|t| unsafe { x.as_ptr().add(t * cols) });
    let mut acc = [_mm512_setzero_ps(); ROWS];
    let mut in_leaf = 0;
    for_each_column(panel, layout, columns, |c, weights| {
        for t in 0..ROWS {
            // SAFETY: column c < cols of row t.
            let x = unsafe { *rows[t].add(c) };
            acc[t] = _mm512_fmadd_ps(weights, _mm512_set1_ps(x), acc[t]);
        }
        in_leaf += 1;
        if in_leaf == leaf {
            for t in 0..ROWS {
                totals[t] = _mm512_add_ps(totals[t], acc[t]);
                acc[t] = _mm512_setzero_ps();
            }
            in_leaf = 0;
        }
    });
    if in_leaf > 0 {
        for t in 0..ROWS {
            totals[t] = _mm512_add_ps(totals[t], acc[t]);
        }
    }
    for (t, total) in totals.into_iter().enumerate() {
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(PANEL_ROWS * t), total) };
    }
}

/// Activation rows `x` (`ROWS` rows of `cols`) against the decoded
/// `columns`: continues the totals in `out`.
///
/// # Safety
/// `x` holds `ROWS` rows of `cols`, `out` `16 * ROWS` values, `scratch`
/// the decoded columns of `columns` (16 per column), `columns` inside
/// `0..cols`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn exact_tile<const ROWS: usize>(
    x: &[f32],
    cols: usize,
    columns: Range<usize>,
    leaf: usize,
    scratch: &[f32],
    out: &mut [f32],
) {
    // SAFETY (every pointer below): the caller's promise.
    let mut totals: [__m512; ROWS] =
        std::array::from_fn(|t| unsafe { _mm512_loadu_ps(out.as_ptr().add(PANEL_ROWS * t)) });
    let rows: [*const f32; ROWS] = std::array::from_fn(|t| unsafe { x.as_ptr().add(t * cols) });
    let w = scratch.as_ptr();
    let mut start = columns.start;
    while start < columns.end {
        let end = (start + leaf).min(columns.end);
        let mut acc = [_mm512_setzero_ps(); ROWS];
        for c in start..end {
            // SAFETY: column c of `columns` in `scratch`, of row t in `x`.
            unsafe {
                let weights = _mm512_loadu_ps(w.add(PANEL_ROWS * (c - columns.start)));
                for t in 0..ROWS {
                    acc[t] = _mm512_fmadd_ps(weights, _mm512_set1_ps(*rows[t].add(c)), acc[t]);
                }
            }
        }
        for t in 0..ROWS {
            totals[t] = _mm512_add_ps(totals[t], acc[t]);
        }
        start = end;
    }
    for (t, total) in totals.into_iter().enumerate() {
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(PANEL_ROWS * t), total) };
    }
}
