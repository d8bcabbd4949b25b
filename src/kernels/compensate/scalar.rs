//! The reference of the block update, and the loop over tiles its twins
//! share.

use super::BlockUpdate;

/// `w[r][j] -= errors[r][a - block.start] * u[a][j]` for every row `r`,
/// every column `j` after the block and every `a` in the block, in
/// increasing `a` for each element.
pub(crate) fn update(mut b: BlockUpdate) {
    let (rows, columns) = (0..b.rows, b.block.end..b.cols);
    update_range(&mut b, rows, columns);
}

/// [`update`] for some rows and columns, one element at a time.
pub(super) fn update_range(
    b: &mut BlockUpdate,
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
) {
    let n = b.cols;
    for r in rows {
        let errors = &b.errors[r * b.errors_stride..][..b.block.len()];
        let w = &mut b.w[r * n..][columns.clone()];
        for (a, &e) in b.block.clone().zip(errors) {
            for (w, &u) in w.iter_mut().zip(&b.u[a * n..][columns.clone()]) {
                *w -= e * u;
            }
        }
    }
}

/// [`update`] with `tile(b, r, j)` updating columns `j..j + width` of rows
/// `r..r + height` (a twin's register tile), [`update_range`] the rest.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)] // the twins' loop
pub(super) fn update_by_tiles(
    mut b: BlockUpdate,
    height: usize,
    width: usize,
    mut tile: impl FnMut(&mut BlockUpdate, usize, usize),
) {
    let first = b.block.end;
    let whole_rows = b.rows / height * height;
    let whole_cols = first + (b.cols - first) / width * width;
    for j in (first..whole_cols).step_by(width) {
        for r in (0..whole_rows).step_by(height) {
            tile(&mut b, r, j);
        }
    }
    let (rows, cols) = (b.rows, b.cols);
    update_range(&mut b, whole_rows..rows, first..whole_cols);
    update_range(&mut b, 0..rows, whole_cols..cols);
}
