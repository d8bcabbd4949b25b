//! `cq4_encoder_options`: the C face of [`Encoder`], versioned by its size.
//! The `cq4_pack_encoded_*` functions that take it are with the other packs.

use std::mem::size_of;

use super::call::Buf;
use super::cq4_status::{self, *};
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
    /// `sizeof(cq4_encoder_options)` as the caller compiled it, so that
    /// the struct can grow: this version accepts its own size only (any
    /// other is `CQ4_ERR_BAD_OPTIONS`); later versions will also accept
    /// this one.
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

impl cq4_encoder {
    fn from_id(id: u32) -> Option<cq4_encoder> {
        use cq4_encoder::*;
        [CQ4_ENCODER_ABSMAX, CQ4_ENCODER_SIGNED, CQ4_ENCODER_SEARCH]
            .into_iter()
            .find(|e| *e as u32 == id)
    }

    /// The encoder, with the importance weights the call read (SEARCH only).
    pub(super) fn with(self, importance: Option<&[f32]>) -> Encoder<'_> {
        match self {
            cq4_encoder::CQ4_ENCODER_ABSMAX => Encoder::AbsMax,
            cq4_encoder::CQ4_ENCODER_SIGNED => Encoder::Signed,
            cq4_encoder::CQ4_ENCODER_SEARCH => Encoder::Search { importance },
        }
    }
}

/// Reads the caller's encoder options (not given: ABSMAX) and checks the
/// importance pointer they hold. An unknown id or `struct_size`, or
/// importance given to an encoder other than SEARCH, is
/// `CQ4_ERR_BAD_OPTIONS`.
///
/// # Safety
/// As [`Buf::read`].
pub(super) unsafe fn read_encoder(
    encoder: &Buf<cq4_encoder_options>,
) -> Result<(cq4_encoder, Buf<f32>), cq4_status> {
    // SAFETY: the caller's promise.
    let Some(c) = (unsafe { encoder.read() }) else {
        return Ok((cq4_encoder::CQ4_ENCODER_ABSMAX, Buf::none()));
    };
    let id = cq4_encoder::from_id(c.encoder)
        .filter(|_| c.struct_size as usize == size_of::<cq4_encoder_options>())
        .filter(|&id| c.importance.is_null() || id == cq4_encoder::CQ4_ENCODER_SEARCH)
        .ok_or(CQ4_ERR_BAD_OPTIONS)?;
    let importance = Buf::input(c.importance, c.importance_len).optional();
    importance.check_pointer()?;
    Ok((id, importance))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_options_are_checked() {
        // SAFETY: `c` is NULL or a live `cq4_encoder_options`.
        let id = |c: *const cq4_encoder_options| unsafe {
            read_encoder(&Buf::value_in(c).optional()).map(|(id, _)| id as u32)
        };
        assert_eq!(id(std::ptr::null()), Ok(0));
        let mut c = cq4_encoder_options_default();
        assert_eq!(id(&c), Ok(0));
        c.encoder = cq4_encoder::CQ4_ENCODER_SEARCH as u32;
        let weights = [1f32; 4];
        c.importance = weights.as_ptr();
        c.importance_len = 4;
        assert_eq!(id(&c), Ok(2));
        c.encoder = cq4_encoder::CQ4_ENCODER_SIGNED as u32;
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS));
        c.importance = std::ptr::null();
        assert_eq!(id(&c), Ok(1));
        c.encoder = 3;
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS));
        c = cq4_encoder_options_default();
        c.struct_size -= 8;
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS));
    }
}
