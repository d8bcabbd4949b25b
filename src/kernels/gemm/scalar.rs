//! The scalar twin of the panel kernels: what each output of an int8
//! product on the prepared form is, bit for bit.

use std::ops::Range;

use super::{check_panel_call, PanelActivations, PanelLayout, PANEL_ROWS, STEP_BYTES, STEP_COLS};
use crate::kernels::matmul::scalar::group_scale;

/// Output `out[16 t + l]` for activation row `b = batch.start + t` and
/// panel row `l`: over the groups `k` of `groups` in order, `acc = fma(dot,
/// s, acc)` from `acc = out[16 t + l]`, where `dot` is the exact `sum((u - 8) * q)` of group `k`
/// (as f32) and `s = group_scale(w_scale, x_scale)`. `clamp` is ignored:
/// the twin always holds `s` to the finite range.
///
/// # Panics
/// When the arguments break [`check_panel_call`].
pub fn panel_int8(
    panel: &[u8],
    layout: &PanelLayout,
    x: &PanelActivations,
    batch: Range<usize>,
    groups: Range<usize>,
    _clamp: bool,
    out: &mut [f32],
) {
    check_panel_call(panel, layout, x, &batch, &groups, out);
    let gp = layout.padded_group;
    for (b, outs) in batch.zip(out.chunks_exact_mut(PANEL_ROWS)) {
        let q_row = x.row(b);
        for (l, y) in outs.iter_mut().enumerate() {
            let mut acc = *y;
            let panel_groups = panel.chunks_exact(layout.group_bytes).enumerate();
            for (k, group) in panel_groups.take(groups.end).skip(groups.start) {
                let (steps, scales) = group.split_at(layout.nibble_bytes);
                let q = &q_row[k * gp..(k + 1) * gp];
                let mut dot = 0i32;
                for (s, step) in steps.chunks_exact(STEP_BYTES).enumerate() {
                    for i in 0..4 {
                        let byte = step[4 * l + i];
                        let u = [byte & 15, byte >> 4];
                        for (half, u) in u.into_iter().enumerate() {
                            let q = q[STEP_COLS * s + 4 * half + i] as i8;
                            dot += (u as i32 - 8) * q as i32;
                        }
                    }
                }
                let w_scale = f32::from_le_bytes(scales[4 * l..4 * l + 4].try_into().unwrap());
                let s = group_scale(w_scale, x.scale(b, k));
                acc = (dot as f32).mul_add(s, acc);
            }
            *y = acc;
        }
    }
}

/// Weight `c` of panel row `l`, decoded as unpack does: `(u - 8) * scale`.
pub(crate) fn decoded_weight(panel: &[u8], layout: &PanelLayout, l: usize, c: usize) -> f32 {
    let g = layout.weights.group_size;
    let (k, i) = (c / g, c % g);
    let group = &panel[k * layout.group_bytes..(k + 1) * layout.group_bytes];
    let byte = group[STEP_BYTES * (i / STEP_COLS) + 4 * l + i % 4];
    let u = if i % STEP_COLS < 4 {
        byte & 15
    } else {
        byte >> 4
    };
    let at = layout.nibble_bytes + 4 * l;
    let scale = f32::from_le_bytes(group[at..at + 4].try_into().unwrap());
    (u as f32 - 8.0) * scale
}

/// Exact products on the prepared form over `columns`: per output, leaf
/// by leaf of [`super::exact_leaf`] columns, `acc = fma(w_c, x_c, acc)`
/// from `+0`, then `out += acc`. The scratch is not needed here.
///
/// # Panics
/// When the arguments break [`super::check_exact_call`].
pub fn panel_exact(
    panel: &[u8],
    layout: &PanelLayout,
    x: &[f32],
    columns: Range<usize>,
    scratch: &mut [f32],
    out: &mut [f32],
) {
    super::check_exact_call(panel, layout, x, &columns, scratch, out);
    let (cols, leaf) = (layout.weights.cols, super::exact_leaf(layout.weights.cols));
    for (row, outs) in x.chunks_exact(cols).zip(out.chunks_exact_mut(PANEL_ROWS)) {
        for (l, total) in outs.iter_mut().enumerate() {
            for start in columns.clone().step_by(leaf) {
                let mut acc = 0f32;
                let end = (start + leaf).min(columns.end);
                for (c, &x) in row.iter().enumerate().take(end).skip(start) {
                    acc = decoded_weight(panel, layout, l, c).mul_add(x, acc);
                }
                *total += acc;
            }
        }
    }
}
