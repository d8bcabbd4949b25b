//! `cq4_status`: one code per failure kind, and a static message for each.

use std::ffi::{c_char, c_int, CStr};

use crate::error::Error;

/// The result of every `cq4_` call that can fail. `CQ4_OK` is 0; every other
/// value but `CQ4_ERR_INTERNAL` means the call wrote nothing.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cq4_status {
    /// Success.
    CQ4_OK = 0,
    /// A pointer argument is NULL (even where the layout is empty).
    CQ4_ERR_NULL_POINTER = 1,
    /// A pointer is not aligned for its element type.
    CQ4_ERR_MISALIGNED_POINTER = 2,
    /// An output buffer overlaps another buffer of the same call.
    CQ4_ERR_OVERLAPPING_BUFFERS = 3,
    /// `group_size` is 0 or above `CQ4_MAX_GROUP_SIZE`.
    CQ4_ERR_BAD_GROUP_SIZE = 4,
    /// A size of the layout (such as `rows * cols`) overflows `size_t`, or its
    /// byte count exceeds `PTRDIFF_MAX`.
    CQ4_ERR_SIZE_OVERFLOW = 5,
    /// An input buffer is shorter than the layout reads.
    CQ4_ERR_INPUT_TOO_SHORT = 6,
    /// An output buffer is smaller than the layout writes.
    CQ4_ERR_OUTPUT_TOO_SMALL = 7,
    /// A bug inside the library was caught before it could unwind into C,
    /// possibly half-way through writing: the outputs may have been partly
    /// written and must not be used.
    CQ4_ERR_INTERNAL = 8,
    /// The kernel asked for in `cq4_options` does not run on this CPU.
    CQ4_ERR_UNSUPPORTED_KERNEL = 9,
    /// `cq4_options` or `cq4_encoder_options` is malformed: a
    /// `struct_size` this library does not know, an unknown kernel or
    /// encoder id, importance weights or a Hessian given to an encoder that
    /// takes none (or no Hessian to the one that needs it), or a damping
    /// that is negative or not finite.
    CQ4_ERR_BAD_OPTIONS = 10,
    /// A row range that is reversed or reaches past the matrix.
    CQ4_ERR_BAD_ROW_RANGE = 11,
    /// An output stride smaller than the row range it must hold.
    CQ4_ERR_BAD_STRIDE = 12,
    /// An unknown `cq4_precision` id.
    CQ4_ERR_BAD_PRECISION = 13,
    /// `cols` is not a multiple of the block size a fixed-block format
    /// (GGML Q4_0: 32) needs.
    CQ4_ERR_BAD_COLS = 14,
    /// An importance weight is negative, infinite or NaN.
    CQ4_ERR_BAD_IMPORTANCE = 15,
    /// The bytes given as a prepared matrix do not start with a header of
    /// this library's `CQ4_PREPARED_VERSION` (magic "CQ4PANEL", then the
    /// version), or its shape, group size and length do not agree (they
    /// were not written by `cq4_prepare`). Other changes to prepared bytes
    /// are not detected: they give unspecified outputs, never a fault.
    CQ4_ERR_BAD_PREPARED = 16,
    /// The bytes given as quantized activations do not start with a header
    /// of this library's `CQ4_PREPARED_VERSION` (magic "CQ4INT8A", then the
    /// version) with a possible shape and length, or were quantized for
    /// other columns or another group size than the prepared matrix's.
    CQ4_ERR_BAD_ACTIVATIONS = 17,
    /// The error-compensating encoder's Hessian holds a value that is not
    /// finite, a negative diagonal entry or an asymmetry beyond
    /// `CQ4_HESSIAN_SYMMETRY_TOLERANCE`, has a diagonal all 0, or is not
    /// positive definite once damped.
    CQ4_ERR_BAD_HESSIAN = 18,
}

use cq4_status::*;

/// Every status, in code order.
pub(crate) const ALL_STATUSES: [cq4_status; 19] = [
    CQ4_OK,
    CQ4_ERR_NULL_POINTER,
    CQ4_ERR_MISALIGNED_POINTER,
    CQ4_ERR_OVERLAPPING_BUFFERS,
    CQ4_ERR_BAD_GROUP_SIZE,
    CQ4_ERR_SIZE_OVERFLOW,
    CQ4_ERR_INPUT_TOO_SHORT,
    CQ4_ERR_OUTPUT_TOO_SMALL,
    CQ4_ERR_INTERNAL,
    CQ4_ERR_UNSUPPORTED_KERNEL,
    CQ4_ERR_BAD_OPTIONS,
    CQ4_ERR_BAD_ROW_RANGE,
    CQ4_ERR_BAD_STRIDE,
    CQ4_ERR_BAD_PRECISION,
    CQ4_ERR_BAD_COLS,
    CQ4_ERR_BAD_IMPORTANCE,
    CQ4_ERR_BAD_PREPARED,
    CQ4_ERR_BAD_ACTIVATIONS,
    CQ4_ERR_BAD_HESSIAN,
];

impl cq4_status {
    /// The status whose numeric code is `code`, if any.
    pub fn from_code(code: c_int) -> Option<cq4_status> {
        ALL_STATUSES.into_iter().find(|s| *s as c_int == code)
    }

    /// A static, human-readable message.
    pub fn message(self) -> &'static CStr {
        match self {
            CQ4_OK => c"success",
            CQ4_ERR_NULL_POINTER => c"a pointer argument is NULL",
            CQ4_ERR_MISALIGNED_POINTER => c"a pointer is not aligned for its element type",
            CQ4_ERR_OVERLAPPING_BUFFERS => c"an output buffer overlaps another buffer",
            CQ4_ERR_BAD_GROUP_SIZE => c"group_size is 0 or above CQ4_MAX_GROUP_SIZE",
            CQ4_ERR_SIZE_OVERFLOW => c"a size of the layout overflows size_t",
            CQ4_ERR_INPUT_TOO_SHORT => c"an input buffer is shorter than the layout reads",
            CQ4_ERR_OUTPUT_TOO_SMALL => c"an output buffer is smaller than the layout writes",
            CQ4_ERR_INTERNAL => {
                c"internal error in cortex_q4 (please report it); outputs may be partly written"
            }
            CQ4_ERR_UNSUPPORTED_KERNEL => c"the requested kernel does not run on this CPU",
            CQ4_ERR_BAD_OPTIONS => {
                c"malformed cq4_options or cq4_encoder_options (struct_size, an id or a field)"
            }
            CQ4_ERR_BAD_ROW_RANGE => c"the row range is reversed or reaches past the matrix",
            CQ4_ERR_BAD_STRIDE => c"the output stride is smaller than the row range",
            CQ4_ERR_BAD_PRECISION => c"unknown cq4_precision",
            CQ4_ERR_BAD_COLS => c"cols is not a multiple of the format's block size",
            CQ4_ERR_BAD_IMPORTANCE => c"an importance weight is negative or not finite",
            CQ4_ERR_BAD_PREPARED => {
                c"not a prepared matrix of this version (bad header, shape or length)"
            }
            CQ4_ERR_BAD_ACTIVATIONS => {
                c"not quantized activations of this version for this matrix's columns and group size"
            }
            CQ4_ERR_BAD_HESSIAN => {
                c"the Hessian is not finite, not symmetric, or not positive definite once damped"
            }
        }
    }
}

impl From<Error> for cq4_status {
    fn from(err: Error) -> Self {
        match err {
            Error::BadGroupSize { .. } => CQ4_ERR_BAD_GROUP_SIZE,
            Error::SizeOverflow => CQ4_ERR_SIZE_OVERFLOW,
            Error::InputTooShort { .. } => CQ4_ERR_INPUT_TOO_SHORT,
            Error::OutputTooSmall { .. } => CQ4_ERR_OUTPUT_TOO_SMALL,
            Error::UnsupportedKernel { .. } => CQ4_ERR_UNSUPPORTED_KERNEL,
            Error::BadRowRange { .. } => CQ4_ERR_BAD_ROW_RANGE,
            Error::BadStride { .. } => CQ4_ERR_BAD_STRIDE,
            Error::ColsNotWholeBlocks { .. } => CQ4_ERR_BAD_COLS,
            Error::BadImportance { .. } => CQ4_ERR_BAD_IMPORTANCE,
            Error::BadPrepared => CQ4_ERR_BAD_PREPARED,
            Error::BadActivations => CQ4_ERR_BAD_ACTIVATIONS,
            Error::BadHessian { .. } => CQ4_ERR_BAD_HESSIAN,
            Error::BadDamping => CQ4_ERR_BAD_OPTIONS,
        }
    }
}

/// Returns a static, NUL-terminated message for `status` (any `int`;
/// unknown codes get "unknown cq4_status"). Never NULL; do not free it.
#[no_mangle]
pub extern "C" fn cq4_status_message(status: c_int) -> *const c_char {
    cq4_status::from_code(status)
        .map_or(c"unknown cq4_status", cq4_status::message)
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::cq4_pack_f32;
    use crate::ffi::tests::{header_enum, header_value};
    use std::collections::HashSet;

    /// A word the message of each status must hold, by the header's name.
    const KEYWORDS: [(&str, &str); 19] = [
        ("CQ4_OK", "success"),
        ("CQ4_ERR_NULL_POINTER", "NULL"),
        ("CQ4_ERR_MISALIGNED_POINTER", "aligned"),
        ("CQ4_ERR_OVERLAPPING_BUFFERS", "overlaps"),
        ("CQ4_ERR_BAD_GROUP_SIZE", "group_size"),
        ("CQ4_ERR_SIZE_OVERFLOW", "overflows"),
        ("CQ4_ERR_INPUT_TOO_SHORT", "input buffer"),
        ("CQ4_ERR_OUTPUT_TOO_SMALL", "output buffer is smaller"),
        ("CQ4_ERR_INTERNAL", "internal"),
        ("CQ4_ERR_UNSUPPORTED_KERNEL", "kernel"),
        ("CQ4_ERR_BAD_OPTIONS", "cq4_options"),
        ("CQ4_ERR_BAD_ROW_RANGE", "row range is"),
        ("CQ4_ERR_BAD_STRIDE", "stride"),
        ("CQ4_ERR_BAD_PRECISION", "precision"),
        ("CQ4_ERR_BAD_COLS", "cols"),
        ("CQ4_ERR_BAD_IMPORTANCE", "importance"),
        ("CQ4_ERR_BAD_PREPARED", "prepared matrix"),
        ("CQ4_ERR_BAD_ACTIVATIONS", "quantized activations"),
        ("CQ4_ERR_BAD_HESSIAN", "Hessian"),
    ];

    #[test]
    fn messages_follow_the_headers_codes() {
        let codes = header_enum("cq4_status");
        assert_eq!(codes.len(), KEYWORDS.len(), "{codes:?}");
        for (name, code) in &codes {
            let (_, keyword) = KEYWORDS.iter().find(|(n, _)| n == name).unwrap();
            // SAFETY: cq4_status_message returns a static NUL-terminated string.
            let msg = unsafe { CStr::from_ptr(cq4_status_message(*code as c_int)) };
            let msg = msg.to_str().unwrap();
            assert!(msg.contains(keyword), "{name} = {code}: {msg:?}");
        }
        let unknown = codes.iter().map(|(_, code)| *code).max().unwrap() + 1;
        // SAFETY: as above.
        let msg = unsafe { CStr::from_ptr(cq4_status_message(unknown as c_int)) };
        assert_eq!(msg, c"unknown cq4_status");
    }

    #[test]
    fn calls_return_the_headers_codes() {
        let src = [1.0f32; 8];
        let mut packed = [0u8; 4];
        let mut scales = [0f32; 2];
        let mut pack = |src: *const f32, src_len, g, packed_len| {
            // SAFETY: each pointer is NULL or live for its length.
            let status = unsafe {
                cq4_pack_f32(
                    src,
                    src_len,
                    2,
                    4,
                    g,
                    packed.as_mut_ptr(),
                    packed_len,
                    scales.as_mut_ptr(),
                    2,
                )
            };
            status as i64
        };
        assert_eq!(pack(src.as_ptr(), 8, 4, 4), header_value("CQ4_OK"));
        assert_eq!(
            pack(std::ptr::null(), 8, 4, 4),
            header_value("CQ4_ERR_NULL_POINTER")
        );
        assert_eq!(
            pack(src.as_ptr(), 8, 0, 4),
            header_value("CQ4_ERR_BAD_GROUP_SIZE")
        );
        assert_eq!(
            pack(src.as_ptr(), 7, 4, 4),
            header_value("CQ4_ERR_INPUT_TOO_SHORT")
        );
        assert_eq!(
            pack(src.as_ptr(), 8, 4, 3),
            header_value("CQ4_ERR_OUTPUT_TOO_SMALL")
        );
        let misaligned = src.as_ptr().cast::<u8>().wrapping_add(1).cast::<f32>();
        assert_eq!(
            pack(misaligned, 4, 4, 4),
            header_value("CQ4_ERR_MISALIGNED_POINTER")
        );
    }

    #[test]
    fn codes_are_dense_and_messages_distinct() {
        let mut messages = HashSet::new();
        for (code, status) in ALL_STATUSES.into_iter().enumerate() {
            assert_eq!(status as c_int, code as c_int);
            assert_eq!(cq4_status::from_code(code as c_int), Some(status));
            // SAFETY: cq4_status_message returns a static NUL-terminated string.
            let msg = unsafe { CStr::from_ptr(cq4_status_message(code as c_int)) };
            assert!(!msg.is_empty());
            assert!(messages.insert(msg), "duplicate message {msg:?}");
        }
        assert_eq!(cq4_status::from_code(ALL_STATUSES.len() as c_int), None);
        assert_eq!(cq4_status::from_code(-1), None);
    }
}
