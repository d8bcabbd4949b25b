//! A strict safetensors reader over bytes: [`Header::parse`] checks the
//! whole file's structure before anything reads a tensor.
//!
//! A file is an 8-byte little-endian header length `n`, `n` bytes of JSON
//! (an object mapping each tensor name to `{"dtype", "shape",
//! "data_offsets": [begin, end]}`, plus an optional `"__metadata__"` object
//! of strings), then the data, with offsets relative to the data's start.
//! Beyond what the `safetensors` crate checks, this reader refuses
//! duplicate keys (which a JSON map would silently collapse) and names the
//! tensor in every error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use thiserror::Error;

/// The largest header accepted, as the `safetensors` crate does (100 MB).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The key of the string-to-string metadata map in the header.
pub const METADATA_KEY: &str = "__metadata__";

/// Element types, by their safetensors names. Types smaller than a byte
/// (F4, F6_*) are not supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    F8E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
    C64,
}

const DTYPES: [(Dtype, &str, usize); 17] = [
    (Dtype::Bool, "BOOL", 1),
    (Dtype::U8, "U8", 1),
    (Dtype::I8, "I8", 1),
    (Dtype::F8E5M2, "F8_E5M2", 1),
    (Dtype::F8E4M3, "F8_E4M3", 1),
    (Dtype::F8E8M0, "F8_E8M0", 1),
    (Dtype::I16, "I16", 2),
    (Dtype::U16, "U16", 2),
    (Dtype::F16, "F16", 2),
    (Dtype::BF16, "BF16", 2),
    (Dtype::I32, "I32", 4),
    (Dtype::U32, "U32", 4),
    (Dtype::F32, "F32", 4),
    (Dtype::F64, "F64", 8),
    (Dtype::I64, "I64", 8),
    (Dtype::U64, "U64", 8),
    (Dtype::C64, "C64", 8),
];

impl Dtype {
    /// The type named `name` (`"F32"`, `"BF16"`, ...).
    pub fn from_name(name: &str) -> Option<Dtype> {
        DTYPES.iter().find(|d| d.1 == name).map(|d| d.0)
    }

    fn entry(self) -> &'static (Dtype, &'static str, usize) {
        DTYPES
            .iter()
            .find(|d| d.0 == self)
            .expect("every Dtype is listed")
    }

    /// Its safetensors name.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Bytes per element, also the data alignment it needs.
    pub fn size(self) -> usize {
        self.entry().2
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor of a parsed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Where its bytes lie in the whole file (not relative to the data).
    pub range: Range<usize>,
}

impl TensorInfo {
    /// Elements (the product of the shape; 1 for a scalar).
    pub fn elements(&self) -> usize {
        self.range.len() / self.dtype.size()
    }

    /// `(rows, cols)` of a 2-D tensor.
    pub fn matrix(&self) -> Option<(usize, usize)> {
        match self.shape[..] {
            [rows, cols] => Some((rows, cols)),
            _ => None,
        }
    }
}

/// The checked header of a safetensors file: every tensor lies inside the
/// file, the tensors tile the data exactly (no overlap, no gap), and each
/// holds exactly `shape` elements of its dtype. Owns no file bytes.
#[derive(Clone, Debug)]
pub struct Header {
    /// Sorted by offset.
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    metadata: BTreeMap<String, String>,
    data_start: usize,
}

/// Why a file is not a well-formed safetensors file.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("{len} bytes is too short for the 8-byte header length (truncated file?)")]
    TooShort { len: usize },
    #[error("header length {header_len} is over the limit of {MAX_HEADER_LEN} bytes")]
    HeaderTooLong { header_len: u64 },
    #[error(
        "header length {header_len} runs past the end of the file ({len} bytes; truncated file?)"
    )]
    HeaderPastEnd { header_len: u64, len: usize },
    #[error("the header is not UTF-8: {0}")]
    NotUtf8(std::str::Utf8Error),
    #[error("malformed header: {0}")]
    Json(String),
    #[error("duplicate key \"{key}\" in the header{}", in_metadata(*metadata))]
    DuplicateKey { key: String, metadata: bool },
    #[error("tensor \"{name}\": unsupported dtype \"{dtype}\"")]
    UnknownDtype { name: String, dtype: String },
    #[error("tensor \"{name}\": shape {shape:?} overflows")]
    ShapeOverflow { name: String, shape: Vec<usize> },
    #[error("tensor \"{name}\": data_offsets [{begin}, {end}] are reversed")]
    ReversedOffsets {
        name: String,
        begin: usize,
        end: usize,
    },
    #[error(
        "tensor \"{name}\": data_offsets [{begin}, {end}] reach past the {data_len} bytes of data (truncated file?)"
    )]
    OutOfRange {
        name: String,
        begin: usize,
        end: usize,
        data_len: usize,
    },
    #[error(
        "tensor \"{name}\": data_offsets hold {got} bytes, but {dtype} {shape:?} takes {needed}"
    )]
    ByteCount {
        name: String,
        dtype: Dtype,
        shape: Vec<usize>,
        needed: usize,
        got: usize,
    },
    #[error("tensors \"{first}\" and \"{second}\" overlap (data_offsets {first_range:?} and {second_range:?})")]
    Overlap {
        first: String,
        first_range: Range<usize>,
        second: String,
        second_range: Range<usize>,
    },
    #[error("data bytes {begin}..{end} belong to no tensor")]
    Gap { begin: usize, end: usize },
}

fn in_metadata(metadata: bool) -> &'static str {
    if metadata {
        "'s __metadata__"
    } else {
        ""
    }
}

/// A tensor's entry as written in the header (unknown fields are ignored,
/// as the `safetensors` crate does; duplicate fields are refused by serde).
#[derive(Deserialize)]
struct RawTensor {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// A JSON object's entries in file order, duplicates kept.
struct Entries<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map
                        .next_value::<V>()
                        .map_err(|e| de::Error::custom(format!("\"{key}\": {e}")))?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

/// A top-level header value: the metadata map or a tensor entry.
enum HeaderValue {
    Metadata(Entries<String>),
    Tensor(RawTensor),
}

/// Parses the top level, choosing each value's type by its key.
struct RawHeader(Vec<(String, HeaderValue)>);

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tensors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = if key == METADATA_KEY {
                        map.next_value().map(HeaderValue::Metadata)
                    } else {
                        map.next_value().map(HeaderValue::Tensor)
                    };
                    let value = value.map_err(|e| de::Error::custom(format!("\"{key}\": {e}")))?;
                    entries.push((key, value));
                }
                Ok(RawHeader(entries))
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

impl Header {
    /// Parses and checks the header of the safetensors file `file` (all of
    /// its bytes): see [`FormatError`] for what is refused. Never panics.
    pub fn parse(file: &[u8]) -> Result<Header, FormatError> {
        let len = file.len();
        let Some(prefix) = file.first_chunk::<8>() else {
            return Err(FormatError::TooShort { len });
        };
        let header_len = u64::from_le_bytes(*prefix);
        if header_len > MAX_HEADER_LEN {
            return Err(FormatError::HeaderTooLong { header_len });
        }
        // Below MAX_HEADER_LEN, so it fits in usize.
        let data_start = 8 + header_len as usize;
        if data_start > len {
            return Err(FormatError::HeaderPastEnd { header_len, len });
        }
        let text = std::str::from_utf8(&file[8..data_start]).map_err(FormatError::NotUtf8)?;
        let raw: RawHeader =
            serde_json::from_str(text).map_err(|e| FormatError::Json(e.to_string()))?;

        let data_len = len - data_start;
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::new();
        let mut seen = HashSet::new();
        for (name, value) in raw.0 {
            if !seen.insert(name.clone()) {
                return Err(FormatError::DuplicateKey {
                    key: name,
                    metadata: false,
                });
            }
            match value {
                HeaderValue::Metadata(entries) => {
                    for (key, value) in entries.0 {
                        if metadata.insert(key.clone(), value).is_some() {
                            return Err(FormatError::DuplicateKey {
                                key,
                                metadata: true,
                            });
                        }
                    }
                }
                HeaderValue::Tensor(raw) => {
                    tensors.push(check_tensor(name, raw, data_start, data_len)?)
                }
            }
        }
        check_tiling(&mut tensors, data_start, len)?;
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Header {
            tensors,
            index,
            metadata,
            data_start,
        })
    }

    /// The tensors, in the order their data lies in the file.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The `__metadata__` map (empty when absent).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Where the data begins: 8 + the header length.
    pub fn data_start(&self) -> usize {
        self.data_start
    }
}

/// One entry's own checks: dtype, shape, offsets inside the data, and a
/// byte count equal to the shape's.
fn check_tensor(
    name: String,
    raw: RawTensor,
    data_start: usize,
    data_len: usize,
) -> Result<TensorInfo, FormatError> {
    let Some(dtype) = Dtype::from_name(&raw.dtype) else {
        return Err(FormatError::UnknownDtype {
            name,
            dtype: raw.dtype,
        });
    };
    let [begin, end] = raw.data_offsets;
    let shape = raw.shape;
    let Some(needed) = shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
    else {
        return Err(FormatError::ShapeOverflow { name, shape });
    };
    if end < begin {
        return Err(FormatError::ReversedOffsets { name, begin, end });
    }
    if end > data_len {
        return Err(FormatError::OutOfRange {
            name,
            begin,
            end,
            data_len,
        });
    }
    if end - begin != needed {
        return Err(FormatError::ByteCount {
            name,
            dtype,
            shape,
            needed,
            got: end - begin,
        });
    }
    Ok(TensorInfo {
        name,
        dtype,
        shape,
        range: data_start + begin..data_start + end,
    })
}

/// Sorts the tensors by offset and checks that they tile the data: each
/// begins where the one before it ends, the last ends at the file's end.
fn check_tiling(
    tensors: &mut [TensorInfo],
    data_start: usize,
    len: usize,
) -> Result<(), FormatError> {
    tensors.sort_by_key(|t| (t.range.start, t.range.end));
    let relative = |r: &Range<usize>| r.start - data_start..r.end - data_start;
    let mut end = data_start;
    for (i, t) in tensors.iter().enumerate() {
        if t.range.start < end {
            // The tensors before this one tile the data up to `end`, so
            // the one just before it ends there.
            let first = &tensors[i - 1];
            return Err(FormatError::Overlap {
                first: first.name.clone(),
                first_range: relative(&first.range),
                second: t.name.clone(),
                second_range: relative(&t.range),
            });
        }
        if t.range.start > end {
            return Err(FormatError::Gap {
                begin: end - data_start,
                end: t.range.start - data_start,
            });
        }
        end = t.range.end;
    }
    if end < len {
        return Err(FormatError::Gap {
            begin: end - data_start,
            end: len - data_start,
        });
    }
    Ok(())
}
