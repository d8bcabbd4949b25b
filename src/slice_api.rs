//! The safe slice API: the one the C ABI wraps. Buffers may be longer than
//! the layout needs; only their first `Layout` elements are read or written.
//! A refused call writes nothing.

use crate::element::Element;
use crate::error::{Buffer, Error};
use crate::kernels;
use crate::layout::Layout;

/// Packs the row-major `[rows, cols]` matrix `src` into `packed`
/// (`Layout::packed_len` bytes) and `scales` (`Layout::scales_len` f32).
pub fn pack<T: Element>(
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) -> Result<Layout, Error> {
    let layout = Layout::new(rows, cols, group_size)?;
    Layout::check_input(Buffer::Source, layout.elements, src.len())?;
    Layout::check_output(Buffer::Packed, layout.packed_len, packed.len())?;
    Layout::check_output(Buffer::Scales, layout.scales_len, scales.len())?;
    kernels::pack(
        &layout,
        &src[..layout.elements],
        &mut packed[..layout.packed_len],
        &mut scales[..layout.scales_len],
    );
    Ok(layout)
}

/// [`pack`] into newly allocated buffers: `(packed, scales)`.
pub fn pack_to_vec<T: Element>(
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<(Vec<u8>, Vec<f32>), Error> {
    let layout = Layout::new(rows, cols, group_size)?;
    Layout::check_input(Buffer::Source, layout.elements, src.len())?;
    let mut packed = vec![0u8; layout.packed_len];
    let mut scales = vec![0f32; layout.scales_len];
    kernels::pack(&layout, &src[..layout.elements], &mut packed, &mut scales);
    Ok((packed, scales))
}

/// Unpacks `packed` and `scales` into the row-major `[rows, cols]` `dst`.
/// Any scale is accepted; NaN and Inf propagate as IEEE arithmetic says.
pub fn unpack<T: Element>(
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: &mut [T],
) -> Result<Layout, Error> {
    let layout = checked_unpack_layout(packed, scales, rows, cols, group_size)?;
    Layout::check_output(Buffer::Destination, layout.elements, dst.len())?;
    kernels::unpack(
        &layout,
        &packed[..layout.packed_len],
        &scales[..layout.scales_len],
        &mut dst[..layout.elements],
    );
    Ok(layout)
}

/// [`unpack`] into a newly allocated buffer.
pub fn unpack_to_vec<T: Element>(
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<Vec<T>, Error> {
    let layout = checked_unpack_layout(packed, scales, rows, cols, group_size)?;
    let mut dst = vec![T::from_f32(0.0); layout.elements];
    kernels::unpack(
        &layout,
        &packed[..layout.packed_len],
        &scales[..layout.scales_len],
        &mut dst,
    );
    Ok(dst)
}

fn checked_unpack_layout(
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<Layout, Error> {
    let layout = Layout::new(rows, cols, group_size)?;
    Layout::check_input(Buffer::Packed, layout.packed_len, packed.len())?;
    Layout::check_input(Buffer::Scales, layout.scales_len, scales.len())?;
    Ok(layout)
}
