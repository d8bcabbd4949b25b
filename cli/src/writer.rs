//! A streaming safetensors writer: the header first (every size is known
//! from the shapes), then each tensor's bytes as they are produced, so
//! that only one tensor's worth is ever held.
//!
//! Alignment guarantee: the header is padded with spaces so that the data
//! begins at a file offset that is a multiple of [`DATA_ALIGN`], and the
//! tensors are laid out by element size, largest first (8-, then 4-, 2-,
//! 1-byte types), so every tensor's data begins at a file offset that is
//! a multiple of its element size: every f32 `.scales` tensor is 4-byte
//! aligned wherever the file is mapped at a page boundary.
//!
//! The file is written beside its target under a temporary name and
//! renamed over it by [`Output::finish`]; dropped before that, it is
//! removed, so a failed run leaves no partial output.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::CliError;
use crate::safetensors::{Dtype, METADATA_KEY};

/// The data section begins at a multiple of this many bytes.
pub const DATA_ALIGN: usize = 8;

/// A tensor to be written.
#[derive(Clone, Debug)]
pub struct Planned {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

impl Planned {
    /// Its byte count. Shapes come from checked inputs and layouts, whose
    /// sizes fit in memory.
    fn len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    dtype: &'a str,
    shape: &'a [usize],
    data_offsets: [usize; 2],
}

/// A safetensors file under construction.
pub struct Output {
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    /// Whether the file took the target's name.
    renamed: bool,
    /// Per tensor name: absolute file offset, byte count, written yet.
    slots: HashMap<String, (u64, usize, bool)>,
}

impl Output {
    /// Creates the temporary file beside `target` and writes the header
    /// for `tensors` (any order; laid out as the module says) and
    /// `metadata`. Errors: [`CliError::Io`] naming `target`.
    pub fn create(
        target: &Path,
        tensors: &[Planned],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Output, CliError> {
        let mut order: Vec<&Planned> = tensors.iter().collect();
        order.sort_by_key(|t| std::cmp::Reverse(t.dtype.size()));

        let mut header = serde_json::Map::new();
        if !metadata.is_empty() {
            header.insert(METADATA_KEY.into(), serde_json::json!(metadata));
        }
        let mut offset = 0;
        let mut relative = Vec::with_capacity(order.len());
        for t in &order {
            let entry = Entry {
                dtype: t.dtype.name(),
                shape: &t.shape,
                data_offsets: [offset, offset + t.len()],
            };
            header.insert(t.name.clone(), serde_json::json!(entry));
            relative.push(offset);
            offset += t.len();
        }
        let mut text = serde_json::to_string(&header).expect("strings and numbers serialize");
        let padded = (8 + text.len()).next_multiple_of(DATA_ALIGN) - 8;
        text.extend(std::iter::repeat_n(' ', padded - text.len()));
        let data_start = (8 + text.len()) as u64;
        let slots = order
            .iter()
            .zip(relative)
            .map(|(t, r)| (t.name.clone(), (data_start + r as u64, t.len(), false)))
            .collect();

        let temp = temp_path(target);
        let io = |e| CliError::io(target, "cannot create the output", e);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io)?;
        let mut out = Output {
            target: target.to_path_buf(),
            temp,
            file: Some(file),
            renamed: false,
            slots,
        };
        let file = out.file.as_mut().expect("open until finished");
        file.write_all(&(text.len() as u64).to_le_bytes())
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.set_len(data_start + offset as u64))
            .map_err(|e| CliError::io(target, "cannot write the output", e))?;
        Ok(out)
    }

    /// Writes the bytes of tensor `name`, planned in [`create`](Self::create)
    /// and not written yet, holding exactly its byte count.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), CliError> {
        let mut slot = self.start(name, bytes.len());
        slot.write(bytes)?;
        slot.finish();
        Ok(())
    }

    /// Starts writing tensor `name`, planned in [`create`](Self::create)
    /// with `len` bytes and not written yet, to be written in pieces.
    pub fn start(&mut self, name: &str, len: usize) -> Slot<'_> {
        let slot = self.slots.get_mut(name).expect("the tensor was planned");
        assert!(!slot.2 && slot.1 == len, "{name}: written once, whole");
        slot.2 = true;
        let offset = slot.0;
        Slot {
            out: self,
            offset,
            left: len,
        }
    }

    /// Flushes the file to disk and renames it over the target.
    pub fn finish(mut self) -> Result<(), CliError> {
        assert!(
            self.slots.values().all(|s| s.2),
            "every planned tensor was written"
        );
        let io = |e| CliError::io(&self.target, "cannot write the output", e);
        let file = self.file.take().expect("open until finished");
        file.sync_all().map_err(io)?;
        drop(file);
        fs::rename(&self.temp, &self.target).map_err(io)?;
        self.renamed = true;
        Ok(())
    }
}

/// A tensor being written in pieces, in order.
pub struct Slot<'a> {
    out: &'a mut Output,
    offset: u64,
    left: usize,
}

impl Slot<'_> {
    /// Writes the next `bytes` of the tensor.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        assert!(bytes.len() <= self.left, "no more than the tensor's bytes");
        let file = self.out.file.as_mut().expect("open until finished");
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.write_all(bytes))
            .map_err(|e| CliError::io(&self.out.target, "cannot write the output", e))?;
        self.offset += bytes.len() as u64;
        self.left -= bytes.len();
        Ok(())
    }

    /// Ends the tensor, all of whose bytes were written.
    pub fn finish(self) {
        assert_eq!(self.left, 0, "every byte of the tensor was written");
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: the run is already failing with its own error.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// `.NAME.PID.tmp` beside `target`.
fn temp_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
