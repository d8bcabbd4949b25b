//! The safe slice API: the one the C ABI wraps. Buffers may be longer than
//! the layout needs; only their first `Layout` elements are read or written.
//! A refused call writes nothing. The plain functions use
//! [`Options::default`] (best kernel, calling thread only); the `_with`
//! variants take explicit [`Options`].

use crate::alloc;
use crate::element::Element;
use crate::encoders::Encoder;
use crate::error::{Buffer, Error};
use crate::kernels;
use crate::layout::Layout;
use crate::options::Options;

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
    pack_with(
        &Options::default(),
        src,
        rows,
        cols,
        group_size,
        packed,
        scales,
    )
}

/// [`pack`] with explicit options.
pub fn pack_with<T: Element>(
    options: &Options,
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) -> Result<Layout, Error> {
    pack_encoded_with(
        options,
        &Encoder::AbsMax,
        src,
        rows,
        cols,
        group_size,
        packed,
        scales,
    )
}

/// [`pack`] with each group's scale chosen by `encoder`: the same layout,
/// read by the same unpack.
pub fn pack_encoded<T: Element>(
    encoder: &Encoder,
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) -> Result<Layout, Error> {
    pack_encoded_with(
        &Options::default(),
        encoder,
        src,
        rows,
        cols,
        group_size,
        packed,
        scales,
    )
}

/// [`pack_encoded`] with explicit options.
#[allow(clippy::too_many_arguments)] // mirrors the C entry point
pub fn pack_encoded_with<T: Element>(
    options: &Options,
    encoder: &Encoder,
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) -> Result<Layout, Error> {
    let (layout, kernel) = checked_pack(options, src, rows, cols, group_size)?;
    encoder.check(cols)?;
    Layout::check_output(Buffer::Packed, layout.packed_len, packed.len())?;
    Layout::check_output(Buffer::Scales, layout.scales_len, scales.len())?;
    let (src, packed, scales) = (
        &src[..layout.elements],
        &mut packed[..layout.packed_len],
        &mut scales[..layout.scales_len],
    );
    encoder.pack(&layout, kernel, options.threads, src, packed, scales);
    Ok(layout)
}

/// [`pack`] into newly allocated buffers: `(packed, scales)`.
pub fn pack_to_vec<T: Element>(
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<(Vec<u8>, Vec<f32>), Error> {
    pack_to_vec_with(&Options::default(), src, rows, cols, group_size)
}

/// [`pack_to_vec`] with explicit options.
pub fn pack_to_vec_with<T: Element>(
    options: &Options,
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<(Vec<u8>, Vec<f32>), Error> {
    pack_encoded_to_vec_with(options, &Encoder::AbsMax, src, rows, cols, group_size)
}

/// [`pack_to_vec_with`] with each group's scale chosen by `encoder`.
pub fn pack_encoded_to_vec_with<T: Element>(
    options: &Options,
    encoder: &Encoder,
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<(Vec<u8>, Vec<f32>), Error> {
    // Checked before allocating, so a bad call allocates nothing.
    let (layout, _) = checked_pack(options, src, rows, cols, group_size)?;
    encoder.check(cols)?;
    let mut packed = alloc::zeroed(layout.packed_len, 0u8);
    let mut scales = alloc::zeroed(layout.scales_len, 0f32);
    pack_encoded_with(
        options,
        encoder,
        src,
        rows,
        cols,
        group_size,
        &mut packed,
        &mut scales,
    )?;
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
    unpack_with(
        &Options::default(),
        packed,
        scales,
        rows,
        cols,
        group_size,
        dst,
    )
}

/// [`unpack`] with explicit options.
pub fn unpack_with<T: Element>(
    options: &Options,
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group_size: usize,
    dst: &mut [T],
) -> Result<Layout, Error> {
    let (layout, kernel) = checked_unpack(options, packed, scales, rows, cols, group_size)?;
    Layout::check_output(Buffer::Destination, layout.elements, dst.len())?;
    kernels::unpack(
        &layout,
        kernel,
        options.threads,
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
    unpack_to_vec_with(&Options::default(), packed, scales, rows, cols, group_size)
}

/// [`unpack_to_vec`] with explicit options.
pub fn unpack_to_vec_with<T: Element>(
    options: &Options,
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<Vec<T>, Error> {
    // Checked before allocating, so a bad call allocates nothing.
    let (layout, _) = checked_unpack(options, packed, scales, rows, cols, group_size)?;
    let mut dst = alloc::zeroed(layout.elements, T::from_f32(0.0));
    unpack_with(options, packed, scales, rows, cols, group_size, &mut dst)?;
    Ok(dst)
}

fn checked_pack<T>(
    options: &Options,
    src: &[T],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<(Layout, kernels::Kernel), Error> {
    let kernel = options.kernel()?;
    let layout = Layout::new(rows, cols, group_size)?;
    Layout::check_input(Buffer::Source, layout.elements, src.len())?;
    Ok((layout, kernel))
}

fn checked_unpack(
    options: &Options,
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group_size: usize,
) -> Result<(Layout, kernels::Kernel), Error> {
    let kernel = options.kernel()?;
    let layout = Layout::new(rows, cols, group_size)?;
    Layout::check_input(Buffer::Packed, layout.packed_len, packed.len())?;
    Layout::check_input(Buffer::Scales, layout.scales_len, scales.len())?;
    Ok((layout, kernel))
}
