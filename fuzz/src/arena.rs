//! One block of memory that holds every buffer and struct of a call, so
//! that buffers overlap, pointers are misaligned and lengths run short or
//! long as the fuzz input says, and so that "nothing was written" is one
//! comparison of the whole block.

use half::{bf16, f16};

/// Bytes in the arena.
pub const ARENA: usize = 2048;

/// Where a pointer argument points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Null,
    /// A non-NULL address outside the arena, never valid to touch.
    Dangling(usize),
    /// This byte offset into the arena.
    At(usize),
}

impl Place {
    /// The length a buffer here declares: at a dangling address, which is
    /// valid for nothing, 0 whatever was asked.
    pub fn declare(self, len: usize) -> usize {
        match self {
            Place::Dangling(_) => 0,
            _ => len,
        }
    }
}

/// The arena, 8-byte aligned.
pub struct Arena {
    mem: Vec<u64>,
}

impl Default for Arena {
    fn default() -> Self {
        Arena {
            mem: vec![0; ARENA / 8],
        }
    }
}

impl Arena {
    /// The address a place stands for (0 for NULL).
    pub fn addr(&self, place: Place) -> usize {
        match place {
            Place::Null => 0,
            Place::Dangling(a) => a,
            Place::At(off) => self.mem.as_ptr() as usize + off,
        }
    }

    /// A pointer to `place`, with the arena's provenance when inside it.
    pub fn ptr<T>(&mut self, place: Place) -> *mut T {
        match place {
            Place::Null => std::ptr::null_mut(),
            Place::Dangling(a) => std::ptr::without_provenance_mut(a),
            Place::At(off) => self.mem.as_mut_ptr().cast::<u8>().wrapping_add(off).cast(),
        }
    }

    /// The arena offset of `addr`, if it points inside.
    pub fn offset(&self, addr: usize) -> Option<usize> {
        let off = addr.checked_sub(self.mem.as_ptr() as usize)?;
        (off < ARENA).then_some(off)
    }

    /// Whether `bytes` bytes from `addr` lie inside the arena.
    pub fn holds(&self, addr: usize, bytes: usize) -> bool {
        self.offset(addr).is_some_and(|off| bytes <= ARENA - off)
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the arena's ARENA bytes, initialised, borrowed with `self`.
        unsafe { std::slice::from_raw_parts(self.mem.as_ptr().cast(), ARENA) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, borrowed mutably with `self`.
        unsafe { std::slice::from_raw_parts_mut(self.mem.as_mut_ptr().cast(), ARENA) }
    }

    /// Copies `value` to byte offset `off` (any alignment).
    pub fn write<T: Copy>(&mut self, off: usize, value: T) {
        assert!(off + size_of::<T>() <= ARENA);
        // SAFETY: in bounds (asserted); unaligned writes are allowed.
        unsafe { self.ptr::<T>(Place::At(off)).write_unaligned(value) }
    }

    /// Fills the arena from `data`: its bytes as they are, or each byte
    /// read as a value (`value`) stored as f32, f16 or bf16, so that
    /// products and conversions see numbers as well as bit noise. Repeats
    /// of `data` are shifted by a step, so that a short input still varies.
    pub fn fill(&mut self, mode: u8, data: &[u8]) {
        let mut bytes = data.iter().copied().chain(std::iter::once(0xA5)).cycle();
        let mut next = {
            let (n, mut i, mut shift) = (data.len() + 1, 0, 0u8);
            move || {
                if i == n {
                    (i, shift) = (0, shift.wrapping_add(151));
                }
                i += 1;
                bytes.next().unwrap_or(0).wrapping_add(shift)
            }
        };
        let scale = 2f32.powi(i32::from(mode >> 2) - 36);
        let table: [f32; 256] = std::array::from_fn(|b| value(b as u8, scale));
        let arena = self.bytes_mut();
        match mode % 4 {
            0 => arena.iter_mut().for_each(|b| *b = next()),
            1 => {
                for w in arena.chunks_exact_mut(4) {
                    w.copy_from_slice(&table[usize::from(next())].to_ne_bytes());
                }
            }
            m => {
                for h in arena.chunks_exact_mut(2) {
                    let v = table[usize::from(next())];
                    let bits = if m == 2 {
                        f16::from_f32(v).to_bits()
                    } else {
                        bf16::from_f32(v).to_bits()
                    };
                    h.copy_from_slice(&bits.to_ne_bytes());
                }
            }
        }
    }
}

/// A number from one byte: a small multiple of `scale`, or one of the
/// values the format treats specially.
fn value(b: u8, scale: f32) -> f32 {
    const SPECIAL: [f32; 16] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        f32::MIN_POSITIVE,
        1e-40,
        f32::MAX,
        1e-5,
        3.5,
        -8.0,
        0.5,
        7.0,
        65504.0,
        1e-8,
        -f32::MAX,
        1e30,
    ];
    match b {
        0..=239 => f32::from(b as i8) * scale,
        _ => SPECIAL[usize::from(b - 240)],
    }
}

/// `n` elements of a plain numeric type read from `bytes` at `off`.
pub fn read_array<T: FromBytes>(bytes: &[u8], off: usize, n: usize) -> Vec<T> {
    bytes[off..off + n * T::SIZE]
        .chunks_exact(T::SIZE)
        .map(T::from_bytes)
        .collect()
}

/// Numbers read from native-endian bytes.
pub trait FromBytes: Sized {
    const SIZE: usize;
    fn from_bytes(b: &[u8]) -> Self;
}

impl FromBytes for u8 {
    const SIZE: usize = 1;
    fn from_bytes(b: &[u8]) -> Self {
        b[0]
    }
}

impl FromBytes for u16 {
    const SIZE: usize = 2;
    fn from_bytes(b: &[u8]) -> Self {
        u16::from_ne_bytes([b[0], b[1]])
    }
}

impl FromBytes for f32 {
    const SIZE: usize = 4;
    fn from_bytes(b: &[u8]) -> Self {
        f32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl FromBytes for f64 {
    const SIZE: usize = 8;
    fn from_bytes(b: &[u8]) -> Self {
        f64::from_ne_bytes(std::array::from_fn(|i| b[i]))
    }
}

/// C structs every bit pattern of which is a value (integers, floats and
/// raw pointers only).
///
/// # Safety
/// Implement only for such types.
pub unsafe trait CStruct: Copy {}

// SAFETY: each holds integers, floats and raw pointers only.
unsafe impl CStruct for cortex_q4::ffi::cq4_options {}
// SAFETY: as above.
unsafe impl CStruct for cortex_q4::ffi::cq4_encoder_options {}
// SAFETY: as above.
unsafe impl CStruct for cortex_q4::ffi::cq4_matrix {}
// SAFETY: as above.
unsafe impl CStruct for cortex_q4::ffi::cq4_layout {}
// SAFETY: as above.
unsafe impl CStruct for cortex_q4::ffi::cq4_quality {}
// SAFETY: as above.
unsafe impl CStruct for cortex_q4::ffi::cq4_q4_0_report {}

/// The struct stored at `off` of `bytes`.
pub fn read_struct<T: CStruct>(bytes: &[u8], off: usize) -> T {
    let b = &bytes[off..off + size_of::<T>()];
    // SAFETY: `b` holds size_of::<T>() bytes, any of which make a `T`
    // (`CStruct`); unaligned reads are allowed.
    unsafe { b.as_ptr().cast::<T>().read_unaligned() }
}
