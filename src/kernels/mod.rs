//! The kernels: the scalar reference in [`scalar`] defines the format; each
//! faster variant sits beside it in a file of its own and must equal it.

pub mod scalar;

use crate::element::Element;
use crate::layout::Layout;

/// Packs all rows. The slices are exactly `elements`, `packed_len` and
/// `scales_len` long (the caller has checked them against `layout`).
pub(crate) fn pack<T: Element>(layout: &Layout, src: &[T], packed: &mut [u8], scales: &mut [f32]) {
    if layout.elements == 0 {
        return;
    }
    let rows = src
        .chunks_exact(layout.cols)
        .zip(packed.chunks_exact_mut(layout.packed_row_bytes))
        .zip(scales.chunks_exact_mut(layout.groups_per_row));
    for ((src_row, packed_row), scales_row) in rows {
        scalar::pack_row(src_row, layout.group_size, packed_row, scales_row);
    }
}

/// Unpacks all rows; slice lengths as for [`pack`].
pub(crate) fn unpack<T: Element>(layout: &Layout, packed: &[u8], scales: &[f32], dst: &mut [T]) {
    if layout.elements == 0 {
        return;
    }
    let rows = dst
        .chunks_exact_mut(layout.cols)
        .zip(packed.chunks_exact(layout.packed_row_bytes))
        .zip(scales.chunks_exact(layout.groups_per_row));
    for ((dst_row, packed_row), scales_row) in rows {
        scalar::unpack_row(packed_row, scales_row, layout.group_size, dst_row);
    }
}
