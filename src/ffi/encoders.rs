//! `cq4_encoder_options`: the C face of [`Encoder`], versioned by its size.
//! The `cq4_pack_encoded_*` functions that take it are with the other packs.

use std::mem::{offset_of, size_of};

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
    /// GPTQ on this format's grid: each row quantized column by column,
    /// each column's rounding error pushed onto the columns not yet
    /// quantized through the inverse of the calibration Hessian `hessian`
    /// (`cq4_hessian_accumulate_*`), so that the layer's output error on
    /// activations like the calibration ones is small rather than each
    /// weight's. Same layout, same unpack. Needs `hessian`; much slower
    /// than the others (a Cholesky factorization of `cols x cols` per call,
    /// on the calling thread, then about `rows * cols^2 / 2` multiply-adds
    /// spread over `cq4_options.threads`); the bytes do not depend on the
    /// kernel or threads.
    CQ4_ENCODER_ERROR_COMPENSATING = 3,
}

/// How pack chooses each group's scale: what it computes, unlike
/// `cq4_options`. Start from `cq4_encoder_options_default()` and change
/// fields. Each field is checked whatever the encoder; a field that only
/// one encoder reads (`importance`, `hessian`), given to another, is
/// `CQ4_ERR_BAD_OPTIONS`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct cq4_encoder_options {
    /// `sizeof(cq4_encoder_options)` as the caller compiled it, so that
    /// the struct can grow. This version accepts its own size and the
    /// size of version 0.2's struct (`struct_size`, `encoder`,
    /// `importance`, `importance_len`: the fields up to `importance_len`),
    /// of which it reads those bytes only, with `hessian` absent; any
    /// other size is `CQ4_ERR_BAD_OPTIONS`. A pointer to either needs the
    /// alignment of 0.2's struct (a pointer's); the struct counts as its
    /// `struct_size` bytes in the overlap checks.
    pub struct_size: u32,
    /// A `cq4_encoder` id.
    pub encoder: u32,
    /// `CQ4_ENCODER_SEARCH` only: NULL (every column weighs 1) or `cols`
    /// per-column weights, finite and >= 0, such as mean squared
    /// activations.
    pub importance: *const f32,
    /// Elements readable at `importance`.
    pub importance_len: usize,
    /// `CQ4_ENCODER_ERROR_COMPENSATING` only, and needed there: the
    /// calibration Hessian `H = X^T X` of the layer's inputs, `[cols,
    /// cols]` row-major f64 (`cq4_hessian_size`), as
    /// `cq4_hessian_accumulate_*` sums it. Finite, diagonal >= 0, and
    /// symmetric to within `CQ4_HESSIAN_SYMMETRY_TOLERANCE * sqrt(H[i][i]
    /// H[j][j])`; its scale does not matter (it is divided by its mean
    /// diagonal). Read, never written.
    pub hessian: *const f64,
    /// Elements readable at `hessian`.
    pub hessian_len: usize,
    /// `CQ4_ENCODER_ERROR_COMPENSATING`'s damping: added to `H`'s diagonal
    /// as a fraction of the diagonal's mean, finite and >= 0 (checked
    /// whatever the encoder). The default is 0.05 (GPTQ's is 0.01; 0.03 to
    /// 0.1 gave the least output error on all-MiniLM-L6-v2's held-out
    /// tokens); with 0, an input column that was always 0 makes the
    /// Hessian singular (`CQ4_ERR_BAD_HESSIAN`).
    pub damping: f64,
}

/// `cq4_encoder_options` as version 0.2 of the library declared it: the
/// fields every version starts with.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct EncoderOptionsHead {
    struct_size: u32,
    encoder: u32,
    importance: *const f32,
    importance_len: usize,
}

// The head is the current struct's first fields, at the same offsets.
const _: () = {
    assert!(offset_of!(cq4_encoder_options, encoder) == offset_of!(EncoderOptionsHead, encoder));
    assert!(
        offset_of!(cq4_encoder_options, importance) == offset_of!(EncoderOptionsHead, importance)
    );
    assert!(
        offset_of!(cq4_encoder_options, importance_len)
            == offset_of!(EncoderOptionsHead, importance_len)
    );
    assert!(size_of::<EncoderOptionsHead>() <= offset_of!(cq4_encoder_options, hessian));
};

impl cq4_encoder {
    fn from_id(id: u32) -> Option<cq4_encoder> {
        use cq4_encoder::*;
        [
            CQ4_ENCODER_ABSMAX,
            CQ4_ENCODER_SIGNED,
            CQ4_ENCODER_SEARCH,
            CQ4_ENCODER_ERROR_COMPENSATING,
        ]
        .into_iter()
        .find(|e| *e as u32 == id)
    }
}

/// The encoder the caller's options chose, without the buffers they point
/// to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Encoding {
    id: cq4_encoder,
    damping: f64,
}

impl Encoding {
    /// ABSMAX: what NULL options choose.
    const DEFAULT: Encoding = Encoding {
        id: cq4_encoder::CQ4_ENCODER_ABSMAX,
        damping: Encoder::DEFAULT_DAMPING,
    };

    /// The encoder, with the buffers the call read: the importance weights
    /// (SEARCH only) and the Hessian (ERROR_COMPENSATING, which `read_encoder`
    /// made sure was given).
    pub(super) fn with<'a>(self, importance: Option<&'a [f32]>, hessian: &'a [f64]) -> Encoder<'a> {
        match self.id {
            cq4_encoder::CQ4_ENCODER_ABSMAX => Encoder::AbsMax,
            cq4_encoder::CQ4_ENCODER_SIGNED => Encoder::Signed,
            cq4_encoder::CQ4_ENCODER_SEARCH => Encoder::Search { importance },
            cq4_encoder::CQ4_ENCODER_ERROR_COMPENSATING => Encoder::ErrorCompensating {
                hessian,
                damping: self.damping,
            },
        }
    }
}

/// Reads the caller's encoder options (not given: ABSMAX): their
/// `struct_size` first, then the bytes of the version it names, which
/// `encoder` counts from then on; then checks the importance and Hessian
/// pointers they hold (alignment). An unknown `struct_size` or id,
/// importance given to an encoder other than SEARCH, a Hessian given to an
/// encoder other than ERROR_COMPENSATING or not given to it, or a damping
/// that is negative or not finite, is `CQ4_ERR_BAD_OPTIONS`.
///
/// # Safety
/// As [`Buf::read`]; a given struct holds at least the `struct_size`
/// bytes its first field states (4 or more).
pub(super) unsafe fn read_encoder(
    encoder: &mut Buf<EncoderOptionsHead>,
) -> Result<(Encoding, Buf<f32>, Buf<f64>), cq4_status> {
    // SAFETY: every version starts with its size, a u32.
    let Some(struct_size) = (unsafe { encoder.read_as::<u32>() }) else {
        return Ok((Encoding::DEFAULT, Buf::none(), Buf::none()));
    };
    let c = match struct_size as usize {
        // SAFETY: the caller declared this version's bytes.
        n if n == size_of::<cq4_encoder_options>() => unsafe { encoder.read_as() },
        n if n == size_of::<EncoderOptionsHead>() => {
            // SAFETY: the caller declared 0.2's bytes, the head's.
            unsafe { encoder.read() }.map(|head| cq4_encoder_options {
                struct_size,
                encoder: head.encoder,
                importance: head.importance,
                importance_len: head.importance_len,
                hessian: std::ptr::null(),
                hessian_len: 0,
                damping: Encoder::DEFAULT_DAMPING,
            })
        }
        _ => None,
    }
    .ok_or(CQ4_ERR_BAD_OPTIONS)?;
    encoder.declare_bytes(struct_size as usize);
    let id = cq4_encoder::from_id(c.encoder).ok_or(CQ4_ERR_BAD_OPTIONS)?;
    let search = id == cq4_encoder::CQ4_ENCODER_SEARCH;
    let compensating = id == cq4_encoder::CQ4_ENCODER_ERROR_COMPENSATING;
    let well_formed = (c.importance.is_null() || search)
        && (c.hessian.is_null() != compensating)
        && c.damping.is_finite()
        && c.damping >= 0.0;
    if !well_formed {
        return Err(CQ4_ERR_BAD_OPTIONS);
    }
    let importance = Buf::input(c.importance, c.importance_len).optional();
    importance.check_pointer()?;
    let hessian = Buf::input(c.hessian, c.hessian_len).optional();
    hessian.check_pointer()?;
    let encoding = Encoding {
        id,
        damping: c.damping,
    };
    Ok((encoding, importance, hessian))
}

/// Returns the default encoder options: `struct_size` set,
/// `CQ4_ENCODER_ABSMAX`, no importance, no Hessian, `damping` 0.05.
#[no_mangle]
pub extern "C" fn cq4_encoder_options_default() -> cq4_encoder_options {
    cq4_encoder_options {
        struct_size: size_of::<cq4_encoder_options>() as u32,
        encoder: cq4_encoder::CQ4_ENCODER_ABSMAX as u32,
        importance: std::ptr::null(),
        importance_len: 0,
        hessian: std::ptr::null(),
        hessian_len: 0,
        damping: Encoder::DEFAULT_DAMPING,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder id `*c` chooses, and the bytes it was counted as.
    fn read(c: *const cq4_encoder_options) -> Result<(u32, usize), cq4_status> {
        let mut buf = Buf::value_in(c.cast::<EncoderOptionsHead>()).optional();
        // SAFETY: `c` is NULL or a live `cq4_encoder_options`, which holds
        // every size the tests declare.
        let (encoding, ..) = unsafe { read_encoder(&mut buf) }?;
        let bytes = buf.element_bytes();
        Ok((encoding.id as u32, bytes))
    }

    fn id(c: *const cq4_encoder_options) -> Result<u32, cq4_status> {
        read(c).map(|(id, _)| id)
    }

    const NEW: usize = size_of::<cq4_encoder_options>();
    const OLD: usize = size_of::<EncoderOptionsHead>();

    #[test]
    fn encoder_options_are_checked() {
        assert_eq!(id(std::ptr::null()), Ok(0));
        let mut c = cq4_encoder_options_default();
        assert_eq!(read(&c), Ok((0, NEW)));
        c.encoder = cq4_encoder::CQ4_ENCODER_SEARCH as u32;
        let weights = [1f32; 4];
        c.importance = weights.as_ptr();
        c.importance_len = 4;
        assert_eq!(id(&c), Ok(2));
        c.encoder = cq4_encoder::CQ4_ENCODER_SIGNED as u32;
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS));
        c.importance = std::ptr::null();
        assert_eq!(id(&c), Ok(1));
        c.encoder = 4;
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS));
        for size in [0, 4, OLD - 8, OLD + 8, NEW - 8, NEW + 8, u32::MAX as usize] {
            c = cq4_encoder_options_default();
            c.struct_size = size as u32;
            assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS), "{size}");
        }
    }

    #[test]
    fn the_hessian_goes_with_error_compensating_only() {
        let h = [1f64, 0.0, 0.0, 1.0];
        let mut c = cq4_encoder_options_default();
        c.encoder = cq4_encoder::CQ4_ENCODER_ERROR_COMPENSATING as u32;
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS), "no Hessian");
        c.hessian = h.as_ptr();
        c.hessian_len = 4;
        assert_eq!(id(&c), Ok(3));
        for other in 0..3 {
            c.encoder = other;
            assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS), "encoder {other}");
        }
        c.encoder = 3;
        let weights = [1f32; 2];
        c.importance = weights.as_ptr();
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS), "importance");
        c.importance = std::ptr::null();
        for damping in [f64::NAN, -1.0, -f64::MIN_POSITIVE, f64::INFINITY] {
            c.damping = damping;
            assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS), "{damping}");
            c.encoder = 0;
            c.hessian = std::ptr::null();
            assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS), "{damping}, absmax");
            c.encoder = 3;
            c.hessian = h.as_ptr();
        }
        c.damping = 0.0;
        assert_eq!(id(&c), Ok(3));
        // Misaligned, checked after the rest.
        c.hessian = h.as_ptr().cast::<u8>().wrapping_add(4).cast();
        assert_eq!(id(&c), Err(CQ4_ERR_MISALIGNED_POINTER));
        c.encoder = 0;
        assert_eq!(id(&c), Err(CQ4_ERR_BAD_OPTIONS));
    }

    #[test]
    fn the_02_struct_is_read_as_far_as_it_goes() {
        let mut c = cq4_encoder_options_default();
        c.struct_size = OLD as u32;
        // Past the head: what a 0.2 caller does not declare, and must not
        // be read.
        c.hessian = std::ptr::dangling();
        c.damping = f64::NAN;
        assert_eq!(read(&c), Ok((0, OLD)));
        c.encoder = cq4_encoder::CQ4_ENCODER_ERROR_COMPENSATING as u32;
        assert_eq!(
            id(&c),
            Err(CQ4_ERR_BAD_OPTIONS),
            "no Hessian in 0.2's struct"
        );
        c.encoder = cq4_encoder::CQ4_ENCODER_SEARCH as u32;
        assert_eq!(id(&c), Ok(2));
    }
}
