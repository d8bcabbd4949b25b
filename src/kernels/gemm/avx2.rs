//! AVX2 (+ FMA) twins of the panel kernels, and the AVX-VNNI int8 one. A
//! 256-bit register holds 8 rows of a panel, so each runs a panel as two
//! halves of 8 rows: lane `l` of a half's registers is panel row
//! `8 half + l`. int8: per 32-byte half step, the low and high nibbles of
//! 8 rows meet 4 activation columns each, broadcast; the 4-byte dot
//! products are the one difference between AVX2 (`vpmaddubsw`, then
//! `vpmaddwd` with ones) and AVX-VNNI (`vpdpbusd`), so one macro writes
//! both kernels around their dot step. exact: 1 or 2 activation rows
//! against columns decoded straight into registers; more rows against a
//! chunk of columns decoded once, FMA chains for up to 6 rows at a time.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{check_panel_call, PanelActivations, PanelLayout, PANEL_ROWS, STEP_BYTES, STEP_COLS};
use crate::kernels::matmul::prefetch_ahead;

/// Panel rows per 256-bit register: a half panel.
const HALF_ROWS: usize = PANEL_ROWS / 2;
/// Bytes of a half step: 8 rows of 4 bytes.
const HALF_STEP_BYTES: usize = STEP_BYTES / 2;
/// Activation rows an int8 tile keeps in registers: 4 integer and 4 float
/// accumulators, beside the step's nibbles, the mask, the ones and the
/// broadcasts.
const TILE_ROWS: usize = 4;
/// Activation rows an exact tile keeps in registers: 6 leaf and 6 total
/// accumulators.
const EXACT_TILE_ROWS: usize = 6;
/// Activation rows the exact kernel runs against columns decoded straight
/// into registers (both halves: 4 leaf and 4 total accumulators each), no
/// scratch: at batch 1 and 2 the decode is cheaper than a pass through
/// memory.
const DIRECT_ROWS: usize = 2;

/// `acc` plus, per 32-bit lane, the 4-byte dot products of `low` with
/// `first` and of `high` with `second` (unsigned nibbles by signed
/// activations). The pair sums are at most `2 * 15 * 128` and the two
/// steps' sums twice that, far from the i16 bounds, so nothing saturates.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_avx2(acc: __m256i, low: __m256i, high: __m256i, first: __m256i, second: __m256i) -> __m256i {
    let pairs = _mm256_add_epi16(
        _mm256_maddubs_epi16(low, first),
        _mm256_maddubs_epi16(high, second),
    );
    _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// [`dot_avx2`] in two `vpdpbusd`.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn dot_vnni(acc: __m256i, low: __m256i, high: __m256i, first: __m256i, second: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(acc, low, first), high, second)
}

/// Writes the int8 panel kernel `$name`, compiled for `$features`, whose
/// dot step is `$dot` (a function of those features, as [`dot_avx2`]).
macro_rules! panel_int8 {
    ($(#[$doc:meta])* $name:ident, $features:literal, $dot:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $name(
            panel: &[u8],
            layout: &PanelLayout,
            x: &PanelActivations,
            batch: Range<usize>,
            groups: Range<usize>,
            clamp: bool,
            out: &mut [f32],
        ) {
            check_panel_call(panel, layout, x, &batch, &groups, out);
            for half in 0..2 {
                let mut b = batch.start;
                for tile_out in out.chunks_mut(TILE_ROWS * PANEL_ROWS) {
                    let (rows, g) = (tile_out.len() / PANEL_ROWS, &groups);
                    // SAFETY: checked above: the panel is whole, rows
                    // b..b + rows are in `x` with the layout's groups,
                    // `tile_out` holds 16 per row.
                    unsafe {
                        match (rows, clamp) {
                            (1, false) => tile::<1, false>(panel, layout, x, b, g.clone(), half, tile_out),
                            (2, false) => tile::<2, false>(panel, layout, x, b, g.clone(), half, tile_out),
                            (3, false) => tile::<3, false>(panel, layout, x, b, g.clone(), half, tile_out),
                            (_, false) => tile::<4, false>(panel, layout, x, b, g.clone(), half, tile_out),
                            (1, true) => tile::<1, true>(panel, layout, x, b, g.clone(), half, tile_out),
                            (2, true) => tile::<2, true>(panel, layout, x, b, g.clone(), half, tile_out),
                            (3, true) => tile::<3, true>(panel, layout, x, b, g.clone(), half, tile_out),
                            (_, true) => tile::<4, true>(panel, layout, x, b, g.clone(), half, tile_out),
                        }
                    }
                    b += rows;
                }
            }

            /// Activation rows `b0..b0 + ROWS` against half `half` of the
            /// panel over `groups`: continues the chains of outputs
            /// `16 t + 8 half..16 t + 8 half + 8`.
            ///
            /// # Safety
            /// `panel` is one whole panel of `layout`; rows `b0..b0 + ROWS`
            /// are in `x`, whose rows hold the layout's groups; `groups`
            /// lies in a row; `out` holds `16 * ROWS` values; `half` is 0
            /// or 1.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn tile<const ROWS: usize, const CLAMP: bool>(
                panel: &[u8],
                layout: &PanelLayout,
                x: &PanelActivations,
                b0: usize,
                groups: Range<usize>,
                half: usize,
                out: &mut [f32],
            ) {
                let (gp, steps) = (layout.padded_group, layout.padded_group / STEP_COLS);
                // Row b0 + t's values, scales and corrections (4 bytes per
                // group each); the reads below stay in group k of `groups`,
                // step s < steps of them.
                let q: [*const u8; ROWS] = std::array::from_fn(|t| x.row(b0 + t).as_ptr());
                let [x_scales, corrections]: [[*const u8; ROWS]; 2] = {
                    let rows: [_; ROWS] =
                        std::array::from_fn(|t| x.scales_and_corrections(b0 + t));
                    [rows.map(|r| r.0.as_ptr()), rows.map(|r| r.1.as_ptr())]
                };
                let nibble = _mm256_set1_epi8(0x0F);
                // SAFETY: `out` holds 16 values per tile row.
                let mut acc: [__m256; ROWS] = std::array::from_fn(|t| unsafe {
                    _mm256_loadu_ps(out.as_ptr().add(PANEL_ROWS * t + HALF_ROWS * half))
                });
                for k in groups {
                    // SAFETY: group k of a whole panel: `steps` steps of 64
                    // bytes, then 64 bytes of scales; half `half` of each is
                    // its second 32 bytes for half 1.
                    let group = unsafe { panel.as_ptr().add(k * layout.group_bytes) };
                    // SAFETY: group k's correction of row b0 + t.
                    let mut dots: [__m256i; ROWS] = std::array::from_fn(|t| unsafe {
                        _mm256_set1_epi32(corrections[t].add(4 * k).cast::<i32>().read_unaligned())
                    });
                    for s in 0..steps {
                        // SAFETY: as above.
                        let w = unsafe {
                            _mm256_loadu_si256(
                                group.add(STEP_BYTES * s + HALF_STEP_BYTES * half).cast(),
                            )
                        };
                        let low = _mm256_and_si256(w, nibble);
                        let high = _mm256_and_si256(_mm256_srli_epi16::<4>(w), nibble);
                        let column = k * gp + STEP_COLS * s;
                        for t in 0..ROWS {
                            // SAFETY: columns `column..column + 8` of row
                            // b0 + t, inside its group k (as above).
                            let (first, second) = unsafe {
                                let p = q[t].add(column);
                                (
                                    p.cast::<i32>().read_unaligned(),
                                    p.add(4).cast::<i32>().read_unaligned(),
                                )
                            };
                            dots[t] = $dot(
                                dots[t],
                                low,
                                high,
                                _mm256_set1_epi32(first),
                                _mm256_set1_epi32(second),
                            );
                        }
                    }
                    // SAFETY: the group's 16 scales follow its steps.
                    let w_scales = unsafe {
                        _mm256_loadu_ps(group.add(layout.nibble_bytes + 4 * HALF_ROWS * half).cast())
                    };
                    for t in 0..ROWS {
                        // SAFETY: group k's scale of row b0 + t.
                        let x_scale =
                            unsafe { x_scales[t].add(4 * k).cast::<f32>().read_unaligned() };
                        let mut s = _mm256_mul_ps(w_scales, _mm256_set1_ps(x_scale));
                        if CLAMP {
                            // group_scale: MINPS and MAXPS return their second
                            // operand when one is NaN, so NaN stays NaN.
                            s = _mm256_max_ps(
                                _mm256_set1_ps(-f32::MAX),
                                _mm256_min_ps(_mm256_set1_ps(f32::MAX), s),
                            );
                        }
                        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[t]), s, acc[t]);
                    }
                }
                for (t, out) in out.chunks_exact_mut(PANEL_ROWS).enumerate() {
                    let out = &mut out[HALF_ROWS * half..][..HALF_ROWS];
                    // SAFETY: 8 f32, in bounds.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc[t]) };
                }
            }
        }
    };
}

panel_int8!(
    /// AVX2 twin of [`super::scalar::panel_int8`].
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA. The arguments are checked (panics
    /// when they break [`check_panel_call`]).
    panel_int8,
    "avx2,fma",
    dot_avx2
);

panel_int8!(
    /// AVX-VNNI twin of [`super::scalar::panel_int8`]: [`panel_int8`] with
    /// `vpdpbusd`.
    ///
    /// # Safety
    /// The CPU supports AVX2, FMA and AVX-VNNI. The arguments are checked
    /// (panics when they break [`check_panel_call`]).
    panel_int8_vnni,
    "avx2,fma,avxvnni",
    dot_vnni
);

/// AVX2 twin of [`super::scalar::panel_exact`]: up to [`DIRECT_ROWS`]
/// activation rows run against columns decoded on the fly; more rows
/// against columns decoded into `scratch` (16 rows of a column in two
/// registers, each weight the single multiply unpack does), per half panel
/// up to 6 activation rows at a time, one FMA chain per lane.
///
/// # Safety
/// The CPU supports AVX2 and FMA. The arguments are checked (panics when
/// they break [`super::check_exact_call`]).
#[target_feature(enable = "avx2,fma")]
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
    if rows <= DIRECT_ROWS {
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
    decode(panel, layout, columns.clone(), scratch);
    let cols = layout.weights.cols;
    let leaf = super::exact_leaf(cols);
    let scratch = &scratch[..columns.len() * PANEL_ROWS];
    for half in 0..2 {
        for (x, out) in x
            .chunks(EXACT_TILE_ROWS * cols)
            .zip(out.chunks_mut(EXACT_TILE_ROWS * PANEL_ROWS))
        {
            let c = columns.clone();
            // SAFETY: `x` holds whole rows of `cols` (checked), 16 outputs
            // each in `out`; `scratch` holds the decoded columns of `c`.
            unsafe {
                match out.len() / PANEL_ROWS {
                    1 => exact_tile::<1>(x, cols, c, leaf, half, scratch, out),
                    2 => exact_tile::<2>(x, cols, c, leaf, half, scratch, out),
                    3 => exact_tile::<3>(x, cols, c, leaf, half, scratch, out),
                    4 => exact_tile::<4>(x, cols, c, leaf, half, scratch, out),
                    5 => exact_tile::<5>(x, cols, c, leaf, half, scratch, out),
                    _ => exact_tile::<6>(x, cols, c, leaf, half, scratch, out),
                }
            }
        }
    }
}

/// Calls `visit(c, weights)` for each column `c` of `columns` in order,
/// `weights[half]` panel rows `8 half ..` of it (lane `l` row `8 half +
/// l`), each decoded as unpack does: `(u - 8) * scale`, `u - 8` exact.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn for_each_column(
    panel: &[u8],
    layout: &PanelLayout,
    columns: Range<usize>,
    mut visit: impl FnMut(usize, [__m256; 2]),
) {
    let (g, cols) = (layout.weights.group_size, layout.weights.cols);
    let nibble = _mm256_set1_epi32(0x0F);
    let eight = _mm256_set1_ps(8.0);
    for k in columns.start / g..columns.end.div_ceil(g) {
        let group = &panel[k * layout.group_bytes..][..layout.group_bytes];
        let scale_bytes = &group[layout.nibble_bytes..][..4 * PANEL_ROWS];
        // SAFETY: 2 x 8 f32, in bounds.
        let scales = unsafe {
            [
                _mm256_loadu_ps(scale_bytes.as_ptr().cast()),
                _mm256_loadu_ps(scale_bytes.as_ptr().add(4 * HALF_ROWS).cast()),
            ]
        };
        // The group's columns inside `columns`, as indices in the group.
        let first = columns.start.saturating_sub(k * g);
        let end = g.min(cols - k * g).min(columns.end - k * g);
        for s in first / STEP_COLS..end.div_ceil(STEP_COLS) {
            let step = &group[STEP_BYTES * s..][..STEP_BYTES];
            prefetch_ahead(step.as_ptr());
            // SAFETY: 2 x 32 bytes, in bounds.
            let w = unsafe {
                [
                    _mm256_loadu_si256(step.as_ptr().cast()),
                    _mm256_loadu_si256(step.as_ptr().add(HALF_STEP_BYTES).cast()),
                ]
            };
            // Column i of the step: byte i % 4 of each row's 4 bytes, the
            // low nibble for i < 4, the high one after.
            let split = |w: __m256i| {
                [
                    w,
                    _mm256_srli_epi32::<8>(w),
                    _mm256_srli_epi32::<16>(w),
                    _mm256_srli_epi32::<24>(w),
                    _mm256_srli_epi32::<4>(w),
                    _mm256_srli_epi32::<12>(w),
                    _mm256_srli_epi32::<20>(w),
                    _mm256_srli_epi32::<28>(w),
                ]
            };
            let u = [split(w[0]), split(w[1])];
            for i in 0..STEP_COLS {
                let at = STEP_COLS * s + i;
                if at < first || at >= end {
                    continue;
                }
                let weights = [0, 1].map(|half| {
                    let u = _mm256_and_si256(u[half][i], nibble);
                    _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(u), eight), scales[half])
                });
                visit(k * g + at, weights);
            }
        }
    }
}

/// Writes the weights of `columns` into `scratch`, column `c` at
/// `16 (c - columns.start)`: element `l` is panel row `l`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn decode(panel: &[u8], layout: &PanelLayout, columns: Range<usize>, scratch: &mut [f32]) {
    let first = columns.start;
    let scratch = &mut scratch[..columns.len() * PANEL_ROWS];
    for_each_column(panel, layout, columns, |c, weights| {
        let out = &mut scratch[PANEL_ROWS * (c - first)..][..PANEL_ROWS];
        for (half, w) in weights.into_iter().enumerate() {
            // SAFETY: 8 f32, in bounds.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(HALF_ROWS * half), w) };
        }
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
#[target_feature(enable = "avx2,fma")]
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
    let mut totals: [[__m256; 2]; ROWS] = std::array::from_fn(|t| {
        [0, 1].map(|half| unsafe {
            _mm256_loadu_ps(out.as_ptr().add(PANEL_ROWS * t + HALF_ROWS * half))
        })
    });
    let rows: [*const f32; ROWS] = std::array::from_fn(|t| unsafe { x.as_ptr().add(t * cols) });
    let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
    let mut in_leaf = 0;
    for_each_column(panel, layout, columns, |c, weights| {
        for t in 0..ROWS {
            // SAFETY: column c < cols of row t.
            let x = _mm256_set1_ps(unsafe { *rows[t].add(c) });
            for half in 0..2 {
                acc[t][half] = _mm256_fmadd_ps(weights[half], x, acc[t][half]);
            }
        }
        in_leaf += 1;
        if in_leaf == leaf {
            for t in 0..ROWS {
                for half in 0..2 {
                    totals[t][half] = _mm256_add_ps(totals[t][half], acc[t][half]);
                    acc[t][half] = _mm256_setzero_ps();
                }
            }
            in_leaf = 0;
        }
    });
    if in_leaf > 0 {
        for t in 0..ROWS {
            for half in 0..2 {
                totals[t][half] = _mm256_add_ps(totals[t][half], acc[t][half]);
            }
        }
    }
    for (t, total) in totals.into_iter().enumerate() {
        for (half, total) in total.into_iter().enumerate() {
            // SAFETY: as above.
            unsafe {
                _mm256_storeu_ps(
                    out.as_mut_ptr().add(PANEL_ROWS * t + HALF_ROWS * half),
                    total,
                )
            };
        }
    }
}

/// Activation rows `x` (`ROWS` rows of `cols`) against half `half` of the
/// decoded `columns`: continues the totals in `out`.
///
/// # Safety
/// `x` holds `ROWS` rows of `cols`, `out` `16 * ROWS` values, `scratch`
/// the decoded columns of `columns` (16 per column), `columns` inside
/// `0..cols`, `half` 0 or 1.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn exact_tile<const ROWS: usize>(
    x: &[f32],
    cols: usize,
    columns: Range<usize>,
    leaf: usize,
    half: usize,
    scratch: &[f32],
    out: &mut [f32],
) {
    // SAFETY (every pointer below): the caller's promise.
    let mut totals: [__m256; ROWS] = std::array::from_fn(|t| unsafe {
        _mm256_loadu_ps(out.as_ptr().add(PANEL_ROWS * t + HALF_ROWS * half))
    });
    let rows: [*const f32; ROWS] = std::array::from_fn(|t| unsafe { x.as_ptr().add(t * cols) });
    // SAFETY: as above.
    let w = unsafe { scratch.as_ptr().add(HALF_ROWS * half) };
    let mut start = columns.start;
    while start < columns.end {
        let end = (start + leaf).min(columns.end);
        let mut acc = [_mm256_setzero_ps(); ROWS];
        for c in start..end {
            // SAFETY: column c of `columns` in `scratch`, of row t in `x`.
            unsafe {
                let weights = _mm256_loadu_ps(w.add(PANEL_ROWS * (c - columns.start)));
                for t in 0..ROWS {
                    acc[t] = _mm256_fmadd_ps(weights, _mm256_set1_ps(*rows[t].add(c)), acc[t]);
                }
            }
        }
        for t in 0..ROWS {
            totals[t] = _mm256_add_ps(totals[t], acc[t]);
        }
        start = end;
    }
    for (t, total) in totals.into_iter().enumerate() {
        // SAFETY: as above.
        unsafe {
            _mm256_storeu_ps(
                out.as_mut_ptr().add(PANEL_ROWS * t + HALF_ROWS * half),
                total,
            )
        };
    }
}
