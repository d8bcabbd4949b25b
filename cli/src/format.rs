//! The cortex_q4 checkpoint convention on top of safetensors (format
//! version 1; README "Command line" is the full specification).
//!
//! A quantized `[rows, cols]` tensor `NAME` is stored as two tensors,
//! `NAME.q4` (U8 `[rows, packed_row_bytes]`) and `NAME.scales` (F32
//! `[rows, groups_per_row]`), the packed matrix and scales of the library's
//! format, and described in `__metadata__`:
//!
//! | key | value |
//! | --- | --- |
//! | `cortex_q4.format` | `cortex_q4` |
//! | `cortex_q4.format_version` | `1` |
//! | `cortex_q4.group_size` | the group size, decimal |
//! | `cortex_q4.encoder` | `default`, `signed`, `search` or `gptq` |
//! | `cortex_q4.damping` | gptq only: the damping, decimal (Rust's shortest round-trip form) |
//! | `cortex_q4.tensor.NAME` | JSON `{"dtype":"F32","shape":[rows,cols],"importance":false}` |
//!
//! `dtype` and `shape` are the original tensor's; `importance` says whether
//! the search encoder weighed its columns. Every other tensor and
//! metadata key is the original file's, unchanged.

use std::collections::BTreeMap;

use cortex_q4::{Layout, Quantizer};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::input::FloatType;
use crate::safetensors::{Dtype, Header, TensorInfo};

/// Prefix of every metadata key the format adds.
pub const KEY_PREFIX: &str = "cortex_q4.";
pub const FORMAT_KEY: &str = "cortex_q4.format";
pub const FORMAT_NAME: &str = "cortex_q4";
pub const VERSION_KEY: &str = "cortex_q4.format_version";
pub const VERSION: &str = "1";
pub const GROUP_SIZE_KEY: &str = "cortex_q4.group_size";
pub const ENCODER_KEY: &str = "cortex_q4.encoder";
/// The gptq encoder's damping; absent for the other encoders.
pub const DAMPING_KEY: &str = "cortex_q4.damping";
/// Followed by the quantized tensor's name.
pub const TENSOR_KEY_PREFIX: &str = "cortex_q4.tensor.";
/// Suffix of a quantized tensor's packed nibbles.
pub const PACKED_SUFFIX: &str = ".q4";
/// Suffix of a quantized tensor's scales.
pub const SCALES_SUFFIX: &str = ".scales";

/// The encoders, by the names the command line and the metadata use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncoderName {
    /// `absmax / 7`, the format's definition.
    Default,
    /// `m / -8`, `m` the group's element of largest magnitude.
    Signed,
    /// Per group, the candidate scale with the least (importance-weighted)
    /// squared error.
    Search,
    /// error-compensating (GPTQ, arXiv:2210.17323): rounds each row column
    /// by column, pushing each rounding error onto the columns not yet
    /// rounded through the --calibration Hessian.
    Gptq,
}

impl EncoderName {
    /// Its name in the metadata.
    pub fn name(self) -> &'static str {
        match self {
            EncoderName::Default => "default",
            EncoderName::Signed => "signed",
            EncoderName::Search => "search",
            EncoderName::Gptq => "gptq",
        }
    }
}

/// The value of a `cortex_q4.tensor.NAME` key.
#[derive(Debug, Deserialize, Serialize)]
struct TensorMeta {
    dtype: String,
    shape: [usize; 2],
    importance: bool,
}

/// A quantized tensor of a checked file.
#[derive(Clone, Debug)]
pub struct QuantizedTensor {
    /// The original tensor's name.
    pub name: String,
    /// The original tensor's type.
    pub dtype: FloatType,
    /// Its shape and packed sizes.
    pub layout: Layout,
    /// Whether its columns were weighed by an importance vector.
    pub importance: bool,
    /// The `NAME.q4` tensor.
    pub packed: TensorInfo,
    /// The `NAME.scales` tensor.
    pub scales: TensorInfo,
}

/// The cortex_q4 description of a checked safetensors header.
#[derive(Clone, Debug)]
pub struct QuantizedFile {
    pub group_size: usize,
    pub encoder: String,
    /// `cortex_q4.damping`, as written (informative, not checked).
    pub damping: Option<String>,
    /// Sorted by name.
    pub tensors: Vec<QuantizedTensor>,
}

/// Why a safetensors file is not a well-formed cortex_q4 file.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Q4FormatError(String);

fn tensor_error(name: &str, message: impl std::fmt::Display) -> Q4FormatError {
    Q4FormatError(format!("tensor \"{name}\": {message}"))
}

impl QuantizedFile {
    /// The cortex_q4 description of `header`: `Ok(None)` when it has no
    /// `cortex_q4.format` key (a plain safetensors file). Checks the
    /// format's keys and, for each quantized tensor, that both its tensors
    /// exist with the dtypes and shapes the layout gives, and that no
    /// tensor has its own name. Never panics.
    pub fn read(header: &Header) -> Result<Option<QuantizedFile>, Q4FormatError> {
        let meta = header.metadata();
        let Some(format) = meta.get(FORMAT_KEY) else {
            return Ok(None);
        };
        if format != FORMAT_NAME {
            return Err(Q4FormatError(format!(
                "{FORMAT_KEY} is \"{format}\", not \"{FORMAT_NAME}\""
            )));
        }
        let key = |k: &str| {
            meta.get(k)
                .ok_or_else(|| Q4FormatError(format!("__metadata__ has no \"{k}\"")))
        };
        let version = key(VERSION_KEY)?;
        if version != VERSION {
            return Err(Q4FormatError(format!(
                "{VERSION_KEY} \"{version}\" is not supported (this tool reads \"{VERSION}\")"
            )));
        }
        let group_size = key(GROUP_SIZE_KEY)?;
        let group_size: usize = group_size.parse().map_err(|_| {
            Q4FormatError(format!("{GROUP_SIZE_KEY} \"{group_size}\" is not a size"))
        })?;
        let encoder = key(ENCODER_KEY)?.clone();
        let damping = meta.get(DAMPING_KEY).cloned();

        let mut tensors = Vec::new();
        for (key, value) in meta.range(TENSOR_KEY_PREFIX.to_string()..) {
            let Some(name) = key.strip_prefix(TENSOR_KEY_PREFIX) else {
                break;
            };
            tensors.push(read_tensor(header, name, value, group_size)?);
        }
        Ok(Some(QuantizedFile {
            group_size,
            encoder,
            damping,
            tensors,
        }))
    }

    /// Whether `name` is the `.q4` or `.scales` tensor of a quantized one.
    pub fn holds_part(&self, name: &str) -> bool {
        self.tensors
            .iter()
            .any(|t| t.packed.name == name || t.scales.name == name)
    }
}

fn read_tensor(
    header: &Header,
    name: &str,
    value: &str,
    group_size: usize,
) -> Result<QuantizedTensor, Q4FormatError> {
    let meta: TensorMeta = serde_json::from_str(value)
        .map_err(|e| tensor_error(name, format!("{TENSOR_KEY_PREFIX}{name}: {e}")))?;
    let dtype = Dtype::from_name(&meta.dtype)
        .and_then(FloatType::of)
        .ok_or_else(|| {
            tensor_error(
                name,
                format!("dtype \"{}\" is not F32, F16 or BF16", meta.dtype),
            )
        })?;
    let [rows, cols] = meta.shape;
    let layout = Quantizer::new(group_size).layout(rows, cols).map_err(|e| {
        tensor_error(
            name,
            format!("[{rows}, {cols}] at group size {group_size}: {e}"),
        )
    })?;
    if header.get(name).is_some() {
        return Err(tensor_error(name, "is both quantized and stored as is"));
    }
    let part = |suffix: &str, dtype: Dtype, shape: [usize; 2]| {
        let part = format!("{name}{suffix}");
        let t = header
            .get(&part)
            .ok_or_else(|| tensor_error(name, format!("\"{part}\" is missing")))?;
        if t.dtype != dtype || t.shape != shape {
            return Err(tensor_error(
                &part,
                format!(
                    "{} {:?} should be {dtype} {shape:?} for [{rows}, {cols}] at group size {group_size}",
                    t.dtype, t.shape
                ),
            ));
        }
        Ok(t.clone())
    };
    Ok(QuantizedTensor {
        name: name.to_string(),
        dtype,
        packed: part(PACKED_SUFFIX, Dtype::U8, [rows, layout.packed_row_bytes()])?,
        scales: part(SCALES_SUFFIX, Dtype::F32, [rows, layout.groups_per_row()])?,
        layout,
        importance: meta.importance,
    })
}

/// The metadata key and value describing quantized tensor `name`.
pub fn tensor_entry(
    name: &str,
    dtype: FloatType,
    rows: usize,
    cols: usize,
    importance: bool,
) -> (String, String) {
    let meta = TensorMeta {
        dtype: dtype.dtype().name().to_string(),
        shape: [rows, cols],
        importance,
    };
    (
        format!("{TENSOR_KEY_PREFIX}{name}"),
        serde_json::to_string(&meta).expect("plain fields serialize"),
    )
}

/// `metadata` with the format's file-wide keys added: the damping where
/// given (the gptq encoder's).
pub fn file_metadata(
    mut metadata: BTreeMap<String, String>,
    group_size: usize,
    encoder: EncoderName,
    damping: Option<f64>,
) -> BTreeMap<String, String> {
    for (k, v) in [
        (FORMAT_KEY, FORMAT_NAME.to_string()),
        (VERSION_KEY, VERSION.to_string()),
        (GROUP_SIZE_KEY, group_size.to_string()),
        (ENCODER_KEY, encoder.name().to_string()),
    ] {
        metadata.insert(k.to_string(), v);
    }
    if let Some(damping) = damping {
        metadata.insert(DAMPING_KEY.to_string(), damping.to_string());
    }
    metadata
}
