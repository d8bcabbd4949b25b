//! The candle `Tensor` API, call-compatible with the original crate's
//! `pack_4bit_symmetric` / `unpack_4bit_symmetric` and byte-exact with the
//! slice API. CPU tensors are read in place; other devices round-trip
//! through the CPU and get their outputs back on their own device.

use candle_core::{DType, Device, Error, Result, Tensor, WithDType};

use crate::element::Element;
use crate::encoders::Encoder;
use crate::hessian::Hessian;
use crate::layout::Layout;
use crate::matmul_api::{PackedMatrix, Precision};
use crate::options::Options;
use crate::slice_api::{PackedMatrixBuf, Quantizer};

fn cq4_error(err: crate::Error) -> Error {
    Error::Msg(format!("cortex_q4: {err}"))
}

/// Calls `f` with the contiguous CPU data of `tensor`, copying only when the
/// tensor is not already contiguous on the CPU.
fn with_cpu_slice<T: WithDType, R>(tensor: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let on_cpu;
    let tensor = if tensor.device().is_cpu() && tensor.is_contiguous() {
        tensor
    } else {
        on_cpu = tensor.to_device(&Device::Cpu)?.contiguous()?;
        &on_cpu
    };
    let (storage, layout) = tensor.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        return Err(Error::Msg("cortex_q4: expected CPU storage".into()));
    };
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| Error::Msg("cortex_q4: expected a contiguous tensor".into()))?;
    Ok(f(&cpu.as_slice::<T>()?[start..end]))
}

fn pack_typed<T: Element + WithDType>(
    tensor: &Tensor,
    encoder: &Encoder,
    layout: &Layout,
) -> Result<(Vec<u8>, Vec<f32>)> {
    with_cpu_slice(tensor, |src: &[T]| {
        Quantizer::new(layout.group_size)
            .with_encoder(*encoder)
            .pack_to_vec(src, layout.rows, layout.cols)
    })?
    .map(PackedMatrixBuf::into_parts)
    .map_err(cq4_error)
}

/// Packs a 2-D `[out_dim, in_dim]` tensor (f32, f16, bf16 or f64) into
/// `(packed, scales)`: `packed` u8 `[out_dim, ceil(in_dim / g) * ceil(g / 2)]`
/// and `scales` f32 `[out_dim, ceil(in_dim / g)]`, on the input's device.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use cortex_q4::{pack_4bit_symmetric, unpack_4bit_symmetric};
///
/// let w = Tensor::new(&[[7.0f32, -5.6, 0.0, 3.5]], &Device::Cpu)?;
/// let (packed, scales) = pack_4bit_symmetric(&w, 4)?; // u8 [1, 2], f32 [1, 1]
/// let restored = unpack_4bit_symmetric(&packed, &scales, (1, 4), 4)?;
/// assert_eq!(restored.to_vec2::<f32>()?, [[7.0, -6.0, 0.0, 4.0]]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn pack_4bit_symmetric(tensor: &Tensor, group_size: usize) -> Result<(Tensor, Tensor)> {
    pack_4bit_encoded(tensor, group_size, &Encoder::AbsMax)
}

/// [`pack_4bit_symmetric`] with each group's scale chosen by `encoder`:
/// the same layout, read by the same unpack.
pub fn pack_4bit_encoded(
    tensor: &Tensor,
    group_size: usize,
    encoder: &Encoder,
) -> Result<(Tensor, Tensor)> {
    let &[rows, cols] = tensor.dims() else {
        return Err(Error::Msg(format!(
            "cortex_q4: expected a 2-D tensor [out_dim, in_dim], got shape {:?}",
            tensor.dims()
        )));
    };
    let layout = Layout::new(rows, cols, group_size).map_err(cq4_error)?;
    let (packed, scales) = match tensor.dtype() {
        DType::F32 => pack_typed::<f32>(tensor, encoder, &layout)?,
        DType::F16 => pack_typed::<half::f16>(tensor, encoder, &layout)?,
        DType::BF16 => pack_typed::<half::bf16>(tensor, encoder, &layout)?,
        DType::F64 => pack_typed::<f64>(tensor, encoder, &layout)?,
        other => {
            return Err(Error::Msg(format!(
                "cortex_q4: cannot pack dtype {other:?}; expected f32, f16, bf16 or f64"
            )))
        }
    };
    let device = tensor.device();
    let packed = Tensor::from_vec(packed, (rows, layout.packed_row_bytes), &Device::Cpu)?;
    let scales = Tensor::from_vec(scales, (rows, layout.groups_per_row), &Device::Cpu)?;
    Ok((packed.to_device(device)?, scales.to_device(device)?))
}

/// Adds `XᵀX` of the activations `x` to `hessian`, for the error-compensating
/// encoder ([`Encoder::ErrorCompensating`], through
/// [`pack_4bit_encoded`]): [`Hessian::accumulate`] on the tensor's values,
/// on every thread of the pool, with the same result.
///
/// `activations`: a layer's inputs, `[n, cols]` or `[.., cols]` (every
/// dimension but the last flattened into rows, so `[batch, seq, cols]`
/// adds `batch * seq` rows), `cols` the Hessian's; f32, f16, bf16 or f64
/// (f64 rounded to f32 first, as the slice API does); any layout (a
/// non-contiguous tensor is copied first) and any device (read on the CPU).
/// Values are summed as they are: a NaN or infinity makes the Hessian
/// unusable (the encoder then refuses it).
///
/// Errors, with `hessian` unchanged: fewer than 2 dimensions, a last
/// dimension other than `hessian.cols()`, another dtype, and the slice
/// API's errors (as `candle_core::Error::Msg`).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use cortex_q4::{accumulate_hessian, pack_4bit_encoded, Encoder, Hessian};
///
/// let x = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu)?; // 2 tokens
/// let mut h = Hessian::new(2)?;
/// accumulate_hessian(&mut h, &x)?;
/// assert_eq!(h.matrix(), &[10.0, 14.0, 14.0, 20.0]);
/// let w = Tensor::new(&[[0.5f32, -1.0]], &Device::Cpu)?;
/// let (packed, scales) = pack_4bit_encoded(&w, 2, &Encoder::error_compensating(h.matrix()))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn accumulate_hessian(hessian: &mut Hessian, activations: &Tensor) -> Result<()> {
    accumulate_hessian_with(&Options::default().with_threads(0), hessian, activations)
}

/// [`accumulate_hessian`] with explicit options (threads: the result does
/// not depend on them).
pub fn accumulate_hessian_with(
    options: &Options,
    hessian: &mut Hessian,
    activations: &Tensor,
) -> Result<()> {
    let cols = hessian.cols();
    let dims = activations.dims();
    let (&last, leading) = dims.split_last().unwrap_or((&0, &[]));
    if leading.is_empty() || last != cols {
        return Err(Error::Msg(format!(
            "cortex_q4: activations must be [.., {cols}] (at least 2-D, the last dimension \
             the Hessian's columns), got shape {dims:?}"
        )));
    }
    let rows = leading.iter().product();
    match activations.dtype() {
        DType::F32 => accumulate_typed::<f32>(options, hessian, activations, rows),
        DType::F16 => accumulate_typed::<half::f16>(options, hessian, activations, rows),
        DType::BF16 => accumulate_typed::<half::bf16>(options, hessian, activations, rows),
        DType::F64 => accumulate_typed::<f64>(options, hessian, activations, rows),
        other => Err(Error::Msg(format!(
            "cortex_q4: cannot accumulate a Hessian from dtype {other:?}; expected f32, f16, \
             bf16 or f64"
        ))),
    }
}

fn accumulate_typed<T: Element + WithDType>(
    options: &Options,
    hessian: &mut Hessian,
    x: &Tensor,
    rows: usize,
) -> Result<()> {
    with_cpu_slice(x, |x: &[T]| hessian.accumulate(options, x, rows))?.map_err(cq4_error)
}

/// Checks `packed` and `scales` against the layout of a packed
/// `[rows, cols]` matrix.
fn check_packed(packed: &Tensor, scales: &Tensor, layout: &Layout) -> Result<()> {
    let rows = layout.rows;
    if packed.dims() != [rows, layout.packed_row_bytes] || packed.dtype() != DType::U8 {
        return Err(Error::Msg(format!(
            "cortex_q4: packed must be u8 [{rows}, {}], got {:?} {:?}",
            layout.packed_row_bytes,
            packed.dtype(),
            packed.dims()
        )));
    }
    if scales.dims() != [rows, layout.groups_per_row] || !scales.dtype().is_float() {
        return Err(Error::Msg(format!(
            "cortex_q4: scales must be a float tensor [{rows}, {}], got {:?} {:?}",
            layout.groups_per_row,
            scales.dtype(),
            scales.dims()
        )));
    }
    Ok(())
}

/// Unpacks `packed` (u8 `[out_dim, packed_row_bytes]`) and `scales`
/// (`[out_dim, groups_per_row]`, f32 or another float dtype, converted to
/// f32)
/// into an f32 `[out_dim, in_dim]` tensor on `packed`'s device.
pub fn unpack_4bit_symmetric(
    packed: &Tensor,
    scales: &Tensor,
    original_shape: (usize, usize),
    group_size: usize,
) -> Result<Tensor> {
    unpack_4bit_symmetric_to(packed, scales, original_shape, group_size, DType::F32)
}

/// [`unpack_4bit_symmetric`] into a tensor of `dtype` (f32, f16, bf16 or
/// f64): each value is the f32 unpack defines, rounded to nearest even
/// where `dtype` is narrower.
pub fn unpack_4bit_symmetric_to(
    packed: &Tensor,
    scales: &Tensor,
    original_shape: (usize, usize),
    group_size: usize,
    dtype: DType,
) -> Result<Tensor> {
    let (rows, cols) = original_shape;
    let layout = Layout::new(rows, cols, group_size).map_err(cq4_error)?;
    check_packed(packed, scales, &layout)?;
    let scales = scales.to_dtype(DType::F32)?;
    let unpacked = with_cpu_slice(packed, |packed: &[u8]| {
        with_cpu_slice(&scales, |scales: &[f32]| match dtype {
            DType::F32 => unpack_typed::<f32>(packed, scales, &layout),
            DType::F16 => unpack_typed::<half::f16>(packed, scales, &layout),
            DType::BF16 => unpack_typed::<half::bf16>(packed, scales, &layout),
            DType::F64 => unpack_typed::<f64>(packed, scales, &layout),
            other => Err(Error::Msg(format!(
                "cortex_q4: cannot unpack to dtype {other:?}; expected f32, f16, bf16 or f64"
            ))),
        })
    })???;
    unpacked.to_device(packed.device())
}

fn unpack_typed<T: Element + WithDType>(
    packed: &[u8],
    scales: &[f32],
    layout: &Layout,
) -> Result<Tensor> {
    let values: Vec<T> = Quantizer::new(layout.group_size)
        .unpack_to_vec(packed, scales, layout.rows, layout.cols)
        .map_err(cq4_error)?;
    Tensor::from_vec(values, (layout.rows, layout.cols), &Device::Cpu)
}

/// `x W^T` for activations `x` (`[batch, cols]`; f32, f16, bf16 or f64)
/// and the packed `W` (`packed` u8 `[rows, packed_row_bytes]`, `scales`
/// `[rows, groups_per_row]`), without unpacking `W`: an f32 `[batch, rows]`
/// tensor on `x`'s device. Runs on every thread of the pool.
pub fn gemm_4bit(
    x: &Tensor,
    packed: &Tensor,
    scales: &Tensor,
    group_size: usize,
    precision: Precision,
) -> Result<Tensor> {
    gemm_4bit_with(
        &Options::default().with_threads(0),
        x,
        packed,
        scales,
        group_size,
        precision,
    )
}

/// [`gemm_4bit`] with explicit options.
pub fn gemm_4bit_with(
    options: &Options,
    x: &Tensor,
    packed: &Tensor,
    scales: &Tensor,
    group_size: usize,
    precision: Precision,
) -> Result<Tensor> {
    let &[batch, cols] = x.dims() else {
        return Err(Error::Msg(format!(
            "cortex_q4: x must be 2-D [batch, cols], got shape {:?}",
            x.dims()
        )));
    };
    let rows = packed.dims().first().copied().unwrap_or(0);
    let layout = Layout::new(rows, cols, group_size).map_err(cq4_error)?;
    check_packed(packed, scales, &layout)?;
    if !matches!(
        x.dtype(),
        DType::F32 | DType::F16 | DType::BF16 | DType::F64
    ) {
        return Err(Error::Msg(format!(
            "cortex_q4: cannot multiply by dtype {:?}; expected f32, f16, bf16 or f64",
            x.dtype()
        )));
    }
    let scales = scales.to_dtype(DType::F32)?;
    let mut y = crate::alloc::zeroed(batch * rows, 0f32);
    with_cpu_slice(packed, |packed: &[u8]| {
        with_cpu_slice(&scales, |scales: &[f32]| {
            let w = PackedMatrix::new(packed, scales, rows, cols, group_size).map_err(cq4_error)?;
            match x.dtype() {
                DType::F32 => gemm_typed::<f32>(options, &w, x, batch, precision, &mut y),
                DType::F16 => gemm_typed::<half::f16>(options, &w, x, batch, precision, &mut y),
                DType::BF16 => gemm_typed::<half::bf16>(options, &w, x, batch, precision, &mut y),
                _ => gemm_typed::<f64>(options, &w, x, batch, precision, &mut y),
            }
        })
    })???;
    Tensor::from_vec(y, (batch, rows), &Device::Cpu)?.to_device(x.device())
}

fn gemm_typed<X: Element + WithDType>(
    options: &Options,
    w: &PackedMatrix,
    x: &Tensor,
    batch: usize,
    precision: Precision,
    y: &mut [f32],
) -> Result<()> {
    with_cpu_slice(x, |x: &[X]| w.matmul(options, x, batch, precision, y))?.map_err(cq4_error)
}
