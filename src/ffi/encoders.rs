//! `cq4_encoder_options`: the C face of [`Encoder`], versioned by its size,
//! and the `cq4_pack_encoded_*` functions that take it.

use std::mem::size_of;
use std::ops::Range;

use half::{bf16, f16};

use super::buffers::Raw;
use super::cq4_status::{self, *};
use super::options::cq4_options;
use super::pack_unpack::pack_any;
use crate::encoders::Encoder;

/// Encoder ids for `cq4_encoder_options.encoder`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cq4_encoder {
    /// The format's definition: `scale = max(max |w| / 7, 1e-5)`.
    CQ4_ENCODER_ABSMAX = 0,
    /// `scale = m / -8`, `m` the first element of largest magnitude with its
    /// sign, so that `m` lands on the -8 level.
    CQ4_ENCODER_SIGNED = 1,
    /// Per group, the scale with the least squared error (weighted by
    /// `importance` when given) among a fixed candidate set.
    CQ4_ENCODER_SEARCH = 2,
}

/// How pack chooses each group's scale: what it computes, unlike
/// `cq4_options`. Start from `cq4_encoder_options_default()` and change
/// fields.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct cq4_encoder_options {
    /// `sizeof(cq4_encoder_options)` as the caller compiled it: lets the
    /// struct grow.
    pub struct_size: u32,
    /// A `cq4_encoder` id.
    pub encoder: u32,
    /// `CQ4_ENCODER_SEARCH` only: NULL (every column weighs 1) or `cols`
    /// per-column weights, finite and >= 0, such as mean squared
    /// activations.
    pub importance: *const f32,
    /// Elements readable at `importance`.
    pub importance_len: usize,
}

/// The caller's encoder choice, checked but not yet read as a slice.
pub(super) struct EncoderChoice {
    id: u32,
    importance: Option<Raw<f32>>,
}

impl EncoderChoice {
    /// The bytes of importance a pack of `cols` columns reads.
    pub(super) fn importance_span(&self, cols: usize) -> Range<usize> {
        self.importance.as_ref().map_or(0..0, |r| r.span(cols))
    }

    /// # Safety
    /// The importance pointer, if any, is valid for `importance_len` reads
    /// during the call (the caller's contract).
    pub(super) unsafe fn to_encoder<'a>(&self) -> Encoder<'a> {
        const SIGNED: u32 = cq4_encoder::CQ4_ENCODER_SIGNED as u32;
        const SEARCH: u32 = cq4_encoder::CQ4_ENCODER_SEARCH as u32;
        match (self.id, &self.importance) {
            (SIGNED, _) => Encoder::Signed,
            (SEARCH, importance) => Encoder::Search {
                // SAFETY: the caller's promise.
                importance: importance.as_ref().map(|r| unsafe { r.as_slice() }),
            },
            _ => Encoder::AbsMax,
        }
    }
}

/// Reads the caller's encoder options; NULL means the default encoder. An
/// unknown id, an unknown `struct_size`, or importance given to an encoder
/// other than SEARCH is `CQ4_ERR_BAD_OPTIONS`.
pub(super) fn read_encoder(
    encoder: *const cq4_encoder_options,
) -> Result<EncoderChoice, cq4_status> {
    if encoder.is_null() {
        return Ok(EncoderChoice {
            id: 0,
            importance: None,
        });
    }
    let raw = Raw::new(encoder, 1)?;
    // SAFETY: non-null and aligned (checked); the caller promised one
    // readable `cq4_encoder_options`.
    let c = unsafe { raw.as_slice()[0] };
    let search = cq4_encoder::CQ4_ENCODER_SEARCH as u32;
    if c.struct_size as usize != size_of::<cq4_encoder_options>()
        || c.encoder > search
        || (!c.importance.is_null() && c.encoder != search)
    {
        return Err(CQ4_ERR_BAD_OPTIONS);
    }
    let importance = (!c.importance.is_null())
        .then(|| Raw::new(c.importance, c.importance_len))
        .transpose()?;
    Ok(EncoderChoice {
        id: c.encoder,
        importance,
    })
}

/// Returns the default encoder options: `struct_size` set,
/// `CQ4_ENCODER_ABSMAX`, no importance.
#[no_mangle]
pub extern "C" fn cq4_encoder_options_default() -> cq4_encoder_options {
    cq4_encoder_options {
        struct_size: size_of::<cq4_encoder_options>() as u32,
        encoder: cq4_encoder::CQ4_ENCODER_ABSMAX as u32,
        importance: std::ptr::null(),
        importance_len: 0,
    }
}

/// As `cq4_pack_f32_ex`, with each group's scale chosen by `encoder` (NULL
/// = `CQ4_ENCODER_ABSMAX`): the same layout, read by the same unpack.
/// Besides `cq4_pack_f32_ex`'s statuses: `CQ4_ERR_BAD_OPTIONS` (malformed
/// `encoder`), `CQ4_ERR_INPUT_TOO_SHORT` (`importance_len < cols`),
/// `CQ4_ERR_BAD_IMPORTANCE` (a weight negative or not finite); the outputs
/// must not overlap `importance[0 .. cols]`.
///
/// # Safety
/// As `cq4_pack_f32_ex`; `encoder` is NULL or points to one
/// `cq4_encoder_options` whose `importance` is NULL or valid for
/// `importance_len` reads.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_encoded_f32(
    src: *const f32,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
    encoder: *const cq4_encoder_options,
) -> cq4_status {
    // SAFETY: the caller's contract is the one `pack_any` needs.
    unsafe {
        pack_any(
            src, src_len, rows, cols, group_size, packed, packed_len, scales, scales_len, options,
            encoder,
        )
    }
}

/// As `cq4_pack_encoded_f32`, from IEEE binary16 bit patterns (converted
/// exactly to f32 first).
///
/// # Safety
/// As `cq4_pack_encoded_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_encoded_f16(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
    encoder: *const cq4_encoder_options,
) -> cq4_status {
    // SAFETY: the caller's contract is the one `pack_any` needs; `f16` is a
    // transparent `u16`.
    unsafe {
        pack_any(
            src.cast::<f16>(),
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            options,
            encoder,
        )
    }
}

/// As `cq4_pack_encoded_f32`, from bfloat16 bit patterns (converted exactly
/// to f32 first).
///
/// # Safety
/// As `cq4_pack_encoded_f32`.
#[no_mangle]
pub unsafe extern "C" fn cq4_pack_encoded_bf16(
    src: *const u16,
    src_len: usize,
    rows: usize,
    cols: usize,
    group_size: usize,
    packed: *mut u8,
    packed_len: usize,
    scales: *mut f32,
    scales_len: usize,
    options: *const cq4_options,
    encoder: *const cq4_encoder_options,
) -> cq4_status {
    // SAFETY: the caller's contract is the one `pack_any` needs; `bf16` is
    // a transparent `u16`.
    unsafe {
        pack_any(
            src.cast::<bf16>(),
            src_len,
            rows,
            cols,
            group_size,
            packed,
            packed_len,
            scales,
            scales_len,
            options,
            encoder,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_options_are_checked() {
        let ok = |c: &cq4_encoder_options| read_encoder(c).map(|e| e.id);
        assert_eq!(read_encoder(std::ptr::null()).map(|e| e.id), Ok(0));
        let mut c = cq4_encoder_options_default();
        assert_eq!(ok(&c), Ok(0));
        c.encoder = cq4_encoder::CQ4_ENCODER_SEARCH as u32;
        let weights = [1f32; 4];
        c.importance = weights.as_ptr();
        c.importance_len = 4;
        assert_eq!(ok(&c), Ok(2));
        c.encoder = cq4_encoder::CQ4_ENCODER_SIGNED as u32;
        assert_eq!(ok(&c), Err(CQ4_ERR_BAD_OPTIONS));
        c.importance = std::ptr::null();
        assert_eq!(ok(&c), Ok(1));
        c.encoder = 3;
        assert_eq!(ok(&c), Err(CQ4_ERR_BAD_OPTIONS));
        c = cq4_encoder_options_default();
        c.struct_size -= 8;
        assert_eq!(ok(&c), Err(CQ4_ERR_BAD_OPTIONS));
    }
}
