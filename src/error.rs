//! The typed errors of the safe Rust API.

use std::fmt;

/// Which buffer an [`Error`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Buffer {
    /// The unquantized input of a pack.
    Source,
    /// The packed nibbles.
    Packed,
    /// The per-group scales.
    Scales,
    /// GGML Q4_0 blocks.
    Blocks,
    /// A per-column importance vector.
    Importance,
    /// A calibration Hessian ([`Hessian`](crate::Hessian)).
    Hessian,
    /// The decoded output of an unpack.
    Destination,
    /// A prepared matrix ([`PreparedMatrix`](crate::PreparedMatrix)).
    Prepared,
    /// Quantized activations ([`Int8Activations`](crate::Int8Activations)).
    Activations,
}

impl fmt::Display for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Buffer::Source => "source",
            Buffer::Packed => "packed",
            Buffer::Scales => "scales",
            Buffer::Blocks => "Q4_0 blocks",
            Buffer::Importance => "importance",
            Buffer::Hessian => "Hessian",
            Buffer::Destination => "destination",
            Buffer::Prepared => "prepared",
            Buffer::Activations => "quantized activations",
        })
    }
}

/// Why a call was refused. A refused call writes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `group_size` is 0 or above [`MAX_GROUP_SIZE`](crate::MAX_GROUP_SIZE).
    BadGroupSize { group_size: usize },
    /// A size of the layout does not fit in `usize` (or its byte count in `isize`).
    SizeOverflow,
    /// An input buffer holds fewer elements than the layout reads.
    InputTooShort {
        buffer: Buffer,
        needed: usize,
        got: usize,
    },
    /// An output buffer holds fewer elements than the layout writes.
    OutputTooSmall {
        buffer: Buffer,
        needed: usize,
        got: usize,
    },
    /// The kernel asked for does not run on this CPU.
    UnsupportedKernel { kernel: crate::Kernel },
    /// A row range that is reversed or reaches past the matrix.
    BadRowRange {
        start: usize,
        end: usize,
        rows: usize,
    },
    /// An output row stride smaller than the rows written per activation row.
    BadStride { stride: usize, width: usize },
    /// A format with fixed blocks (GGML Q4_0: 32) needs whole blocks per row.
    ColsNotWholeBlocks { cols: usize, block: usize },
    /// An importance weight that is negative or not finite.
    BadImportance { index: usize },
    /// A Hessian entry `H[row][col]` that is not finite, a diagonal entry
    /// that is negative, an entry further from `H[col][row]` than symmetry
    /// allows, or (`row == col`) the pivot where the damped Hessian proved
    /// not positive definite.
    BadHessian { row: usize, col: usize },
    /// A damping that is negative or not finite.
    BadDamping,
    /// Bytes that are not a prepared matrix of this library's version (no
    /// header, or one whose shape or length is impossible).
    BadPrepared,
    /// Bytes that are not quantized activations of this library's version,
    /// or activations quantized for other columns or another group size
    /// than the matrix's.
    BadActivations,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadGroupSize { group_size } => write!(
                f,
                "group size {group_size} is outside 1..={}",
                crate::MAX_GROUP_SIZE
            ),
            Error::SizeOverflow => f.write_str("the layout's size overflows usize"),
            Error::InputTooShort {
                buffer,
                needed,
                got,
            } => write!(
                f,
                "{buffer} buffer too short: the layout reads {needed} elements, got {got}"
            ),
            Error::OutputTooSmall {
                buffer,
                needed,
                got,
            } => write!(
                f,
                "{buffer} buffer too small: the layout writes {needed} elements, got {got}"
            ),
            Error::UnsupportedKernel { kernel } => {
                write!(f, "kernel {} does not run on this CPU", kernel.name())
            }
            Error::BadRowRange { start, end, rows } => {
                write!(f, "row range {start}..{end} is not inside 0..{rows}")
            }
            Error::BadStride { stride, width } => {
                write!(
                    f,
                    "output stride {stride} is smaller than the {width} rows written"
                )
            }
            Error::ColsNotWholeBlocks { cols, block } => {
                write!(f, "{cols} columns are not whole blocks of {block}")
            }
            Error::BadImportance { index } => {
                write!(f, "importance[{index}] is negative or not finite")
            }
            Error::BadHessian { row, col } => write!(
                f,
                "Hessian[{row}][{col}] is not finite, negative on the diagonal, not symmetric, \
                 or where the damped Hessian is not positive definite"
            ),
            Error::BadDamping => f.write_str("damping is negative or not finite"),
            Error::BadPrepared => {
                f.write_str("not a prepared matrix of this version (bad header, shape or length)")
            }
            Error::BadActivations => f.write_str(
                "not quantized activations of this version for this matrix's columns and group size",
            ),
        }
    }
}

impl std::error::Error for Error {}
