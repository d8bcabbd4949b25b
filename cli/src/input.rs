//! Input files: memory-mapped, their header checked once, tensors read as
//! typed slices (borrowed where aligned, copied where not).

use std::borrow::Cow;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use cortex_q4::Element;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::vec::HalfBitsVecExt;
use half::{bf16, f16};
use memmap2::Mmap;

use crate::error::CliError;
use crate::safetensors::{Dtype, Header, TensorInfo};
use crate::writer::Output;

/// Bytes copied or compared at a time.
const COPY_CHUNK: usize = 8 << 20;

/// The float types the tool packs and unpacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FloatType {
    F32,
    F16,
    BF16,
}

impl FloatType {
    /// The float type stored as `dtype`, if any.
    pub fn of(dtype: Dtype) -> Option<FloatType> {
        match dtype {
            Dtype::F32 => Some(FloatType::F32),
            Dtype::F16 => Some(FloatType::F16),
            Dtype::BF16 => Some(FloatType::BF16),
            _ => None,
        }
    }

    /// Its safetensors dtype.
    pub fn dtype(self) -> Dtype {
        match self {
            FloatType::F32 => Dtype::F32,
            FloatType::F16 => Dtype::F16,
            FloatType::BF16 => Dtype::BF16,
        }
    }
}

/// The values of a float tensor.
pub enum Floats<'a> {
    F32(Cow<'a, [f32]>),
    F16(Cow<'a, [f16]>),
    BF16(Cow<'a, [bf16]>),
}

/// Runs `$body` with `$xs` bound to the values of `$floats` as a slice of
/// their own element type.
#[macro_export]
macro_rules! with_floats {
    ($floats:expr, $xs:ident => $body:expr) => {
        match $floats {
            $crate::input::Floats::F32($xs) => $body,
            $crate::input::Floats::F16($xs) => $body,
            $crate::input::Floats::BF16($xs) => $body,
        }
    };
}

/// Little-endian `bytes` as `T`s: borrowed when aligned, else copied.
fn cast<T: bytemuck::Pod>(bytes: &[u8]) -> Cow<'_, [T]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(values) => Cow::Borrowed(values),
        Err(_) => Cow::Owned(
            bytes
                .chunks_exact(size_of::<T>())
                .map(bytemuck::pod_read_unaligned)
                .collect(),
        ),
    }
}

/// A float type as stored in a file (little-endian).
pub trait Float: Element {
    /// Which one it is.
    const TYPE: FloatType;
    /// The values stored in `bytes` (whole elements).
    fn values(bytes: &[u8]) -> Cow<'_, [Self]>;
    /// The bytes that store `values`.
    fn bytes(values: &[Self]) -> &[u8];
}

impl Float for f32 {
    const TYPE: FloatType = FloatType::F32;
    fn values(bytes: &[u8]) -> Cow<'_, [f32]> {
        cast(bytes)
    }
    fn bytes(values: &[f32]) -> &[u8] {
        bytemuck::cast_slice(values)
    }
}

/// Half-precision types go through their `u16` bits (`half`'s own casts).
macro_rules! half_float {
    ($t:ty, $ty:ident) => {
        impl Float for $t {
            const TYPE: FloatType = FloatType::$ty;
            fn values(bytes: &[u8]) -> Cow<'_, [$t]> {
                match cast::<u16>(bytes) {
                    Cow::Borrowed(bits) => Cow::Borrowed(bits.reinterpret_cast()),
                    Cow::Owned(bits) => Cow::Owned(bits.reinterpret_into()),
                }
            }
            fn bytes(values: &[$t]) -> &[u8] {
                bytemuck::cast_slice(HalfFloatSliceExt::reinterpret_cast(values))
            }
        }
    };
}
half_float!(f16, F16);
half_float!(bf16, BF16);

impl<'a> Floats<'a> {
    /// The values of `bytes` stored as `ty` (whole elements; the reader
    /// checked the byte count).
    pub fn new(ty: FloatType, bytes: &'a [u8]) -> Floats<'a> {
        match ty {
            FloatType::F32 => Floats::F32(f32::values(bytes)),
            FloatType::F16 => Floats::F16(f16::values(bytes)),
            FloatType::BF16 => Floats::BF16(bf16::values(bytes)),
        }
    }
}

/// The index and value of the first element that is NaN or infinite.
pub fn first_non_finite<T: Element>(values: &[T]) -> Option<(usize, f32)> {
    values
        .iter()
        .map(|v| v.to_f32())
        .enumerate()
        .find(|(_, v)| !v.is_finite())
}

/// A memory-mapped safetensors file with a checked header.
pub struct Input {
    path: PathBuf,
    map: Mmap,
    header: Header,
}

impl Input {
    /// Maps and checks `path`. Errors: [`CliError::Io`] when it cannot be
    /// opened or mapped, [`CliError::BadInput`] when it is not a
    /// well-formed safetensors file.
    pub fn open(path: &Path) -> Result<Input, CliError> {
        let file = File::open(path).map_err(|e| CliError::io(path, "cannot open", e))?;
        // SAFETY: the map is read-only; like every reader that maps its
        // input, the tool assumes no other process truncates or rewrites
        // the file while it runs.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| CliError::io(path, "cannot map", e))?;
        let header = Header::parse(&map).map_err(|e| CliError::bad_input(path, e))?;
        Ok(Input {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> usize {
        self.map.len()
    }

    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bytes of tensor `t` (of this file's header).
    pub fn bytes(&self, t: &TensorInfo) -> &[u8] {
        &self.map[t.range.clone()]
    }

    /// The values of float tensor `t`; bad input when its dtype is not
    /// F32, F16 or BF16.
    pub fn floats(&self, t: &TensorInfo) -> Result<Floats<'_>, CliError> {
        let ty = FloatType::of(t.dtype).ok_or_else(|| {
            CliError::bad_tensor(
                &self.path,
                &t.name,
                format!("dtype {} is not F32, F16 or BF16", t.dtype),
            )
        })?;
        Ok(Floats::new(ty, self.bytes(t)))
    }

    /// The values of tensor `t` if its dtype is F64 (borrowed where
    /// aligned, else copied), `None` for any other dtype.
    pub fn f64s(&self, t: &TensorInfo) -> Option<Cow<'_, [f64]>> {
        (t.dtype == Dtype::F64).then(|| cast(self.bytes(t)))
    }

    /// Lets the kernel drop the pages of tensor `t` from this process once
    /// it is done with, so that memory holds about one tensor at a time.
    pub fn release(&self, t: &TensorInfo) {
        self.release_range(t.range.clone());
    }

    /// [`release`](Self::release) for bytes `range` of the file.
    fn release_range(&self, range: Range<usize>) {
        #[cfg(unix)]
        if !range.is_empty() {
            // SAFETY: the map is a shared, read-only file mapping: dropped
            // pages read back as the file's bytes, so borrowed slices keep
            // their values. The range lies inside the map (checked header).
            // Advice is a hint; its failure changes nothing.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    range.start,
                    range.len(),
                )
            };
        }
    }

    /// Copies tensor `t` to `out` unchanged, in chunks released as they
    /// are written, so a large tensor never lies in memory whole.
    pub fn copy_to(&self, t: &TensorInfo, out: &mut Output) -> Result<(), CliError> {
        let mut slot = out.start(&t.name, t.range.len());
        for start in t.range.clone().step_by(COPY_CHUNK) {
            let chunk = start..(start + COPY_CHUNK).min(t.range.end);
            slot.write(&self.map[chunk.clone()])?;
            self.release_range(chunk);
        }
        slot.finish();
        Ok(())
    }

    /// Whether tensor `t` holds the same bytes as tensor `o` of `other`,
    /// compared in chunks released as they are read.
    pub fn same_bytes(&self, t: &TensorInfo, other: &Input, o: &TensorInfo) -> bool {
        if t.range.len() != o.range.len() {
            return false;
        }
        (0..t.range.len()).step_by(COPY_CHUNK).all(|at| {
            let len = COPY_CHUNK.min(t.range.len() - at);
            let (a, b) = (t.range.start + at, o.range.start + at);
            let same = self.map[a..a + len] == other.map[b..b + len];
            self.release_range(a..a + len);
            other.release_range(b..b + len);
            same
        })
    }

    /// Bad input in tensor `tensor` of this file.
    pub fn bad_tensor(&self, tensor: &str, message: impl std::fmt::Display) -> CliError {
        CliError::bad_tensor(&self.path, tensor, message)
    }

    /// Bad input in this file.
    pub fn bad(&self, message: impl std::fmt::Display) -> CliError {
        CliError::bad_input(&self.path, message)
    }
}
