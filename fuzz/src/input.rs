//! The fuzz input, read front to back into a call's arguments. Past its end
//! every read gives 0, so every input is a call.

use cortex_q4::ffi::{cq4_encoder_options, cq4_options};

use crate::arena::{Place, ARENA};
use crate::model::ENCODER_OPTIONS_0_2;

/// Sizes at the edges of `size_t` and of `PTRDIFF_MAX` byte counts.
const EDGES: [usize; 16] = [
    usize::MAX,
    usize::MAX - 1,
    usize::MAX / 2,
    usize::MAX / 2 + 1,
    usize::MAX / 3 + 1,
    usize::MAX / 4,
    usize::MAX / 4 + 1,
    usize::MAX / 8,
    usize::MAX / 8 + 1,
    usize::MAX / 18 + 1,
    1 << 32,
    (1 << 32) + 1,
    1 << 31,
    1 << 20,
    (1 << 20) + 1,
    1 << 62,
];

/// Group sizes with and without SIMD fast paths, odd ones and 1.
const GROUP_SIZES: [usize; 16] = [32, 64, 128, 16, 1, 2, 3, 4, 7, 8, 31, 33, 48, 96, 100, 256];

/// A declared length, resolved once the call's shape says what it needs.
#[derive(Clone, Copy, Debug)]
pub enum Len {
    /// Exactly what the call touches.
    Needed,
    /// That much less (saturating at 0).
    Less(usize),
    /// That much more.
    More(usize),
    /// Whatever the shape.
    Fixed(usize),
}

impl Len {
    /// The declared length for a call that touches `needed` elements.
    pub fn resolve(self, needed: usize) -> usize {
        match self {
            Len::Needed => needed,
            Len::Less(n) => needed.saturating_sub(n),
            Len::More(n) => needed.saturating_add(n),
            Len::Fixed(n) => n,
        }
    }
}

/// `cq4_encoder_options` as the input chose it, its importance and
/// Hessian pointers still places.
#[derive(Clone, Copy, Debug)]
pub struct EncoderChoice {
    pub struct_size: u32,
    pub encoder: u32,
    pub importance: Place,
    pub importance_len: Len,
    pub hessian: Place,
    pub hessian_len: Len,
    pub damping: f64,
    /// What the Hessian's place holds, when in the arena.
    pub hessian_fill: HessianFill,
}

/// What a Hessian buffer holds: arena noise (rarely symmetric), or `Xᵀ X`
/// of rows the input describes (symmetric, positive semi-definite), maybe
/// with one entry changed.
#[derive(Clone, Copy, Debug)]
pub enum HessianFill {
    Noise,
    /// `rows` rows of small multiples of `2^scale`, from a generator seeded
    /// with `seed`; then `changed`, an entry (its index modulo the
    /// entries) and what is added to it.
    Gram {
        rows: usize,
        seed: u64,
        scale: i32,
        changed: Option<(usize, f64)>,
    },
}

/// Reads `data` front to back.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// What is left: the arena's contents.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// A row, column or batch count: mostly small, sometimes at the edges.
    pub fn count(&mut self) -> usize {
        match self.u8() {
            b @ 0..=191 => usize::from(b % 24),
            192..=239 => usize::from(self.u8()),
            b => EDGES[usize::from(b - 240)],
        }
    }

    /// A group size: common ones, any small one, or out of range.
    pub fn group_size(&mut self) -> usize {
        match self.u8() {
            b @ 0..=175 => GROUP_SIZES[usize::from(b % 16)],
            176..=239 => 1 + usize::from(self.u8()),
            b => [0, 1 << 20, (1 << 20) + 1, usize::MAX][usize::from(b % 4)],
        }
    }

    /// A declared length: mostly the needed one, to let calls succeed.
    pub fn len(&mut self) -> Len {
        match self.u8() % 16 {
            0..=8 => Len::Needed,
            9 | 10 => Len::Less(1 + usize::from(self.u8() % 4)),
            11 | 12 => Len::More(1 + usize::from(self.u8() % 16)),
            13 | 14 => Len::Fixed(usize::from(self.u16() % 2048)),
            _ => Len::Fixed(EDGES[usize::from(self.u8() % 16)]),
        }
    }

    /// Where an array points: mostly an 8-aligned place in the arena,
    /// sometimes a misaligned one, NULL, or a dangling address (which is
    /// declared empty, so that a call may only touch it when it reads
    /// nothing).
    pub fn place(&mut self) -> Place {
        match self.u8() % 16 {
            0 => Place::Null,
            1 => Place::Dangling(1 + usize::from(self.u8() % 64)),
            2 => Place::Dangling(usize::MAX - usize::from(self.u8() % 64)),
            3 => Place::At(self.offset(0) + 1 + usize::from(self.u8() % 7)),
            _ => Place::At(self.offset(0)),
        }
    }

    /// Where a struct of `size` bytes points: inside the arena (8-aligned or
    /// not), NULL, or a misaligned dangling address (refused before it is
    /// read).
    pub fn struct_place(&mut self, size: usize) -> Place {
        match self.u8() % 16 {
            0 | 1 => Place::Null,
            2 => Place::Dangling(1 + 2 * usize::from(self.u8() % 32)),
            3 => Place::At(self.offset(size) + 1 + usize::from(self.u8() % 7)),
            _ => Place::At(self.offset(size)),
        }
    }

    /// An 8-aligned arena offset with room for `room` bytes (and 7 more).
    fn offset(&mut self, room: usize) -> usize {
        let slots = (ARENA - room - 8) / 8;
        usize::from(self.u16()) % slots * 8
    }

    /// A product's precision id: mostly EXACT or INT8, sometimes any.
    pub fn precision(&mut self) -> u32 {
        let id = match self.u8() {
            0..=251 => 0,
            252..=254 => 1 + u32::from(self.u8() % 2),
            _ => self.u32(),
        };
        id ^ u32::from(self.u8() & 1)
    }

    /// A product's `(row_begin, row_end, y_stride)` over `rows` weight rows
    /// (`whole`: every row, the stride `rows`): mostly in range, sometimes
    /// one past, halved, small or near `SIZE_MAX`.
    pub fn row_range(&mut self, rows: usize, whole: bool) -> (usize, usize, usize) {
        let pick = |b: u8, n: usize| match b % 8 {
            0..=3 => n,
            4 => n.wrapping_add(1),
            5 => n / 2,
            6 => usize::from(b >> 3),
            _ => usize::MAX - usize::from(b >> 3),
        };
        if whole {
            return (0, rows, rows);
        }
        let (b, e) = (self.u8(), self.u8());
        let (begin, end) = (if b % 8 < 4 { 0 } else { pick(b, rows) }, pick(e, rows));
        let stride = pick(self.u8(), end.wrapping_sub(begin));
        (begin, end, stride)
    }

    /// `cq4_options`: mostly well formed, any kernel id, any thread count.
    pub fn options(&mut self) -> cq4_options {
        let b = self.u8();
        let struct_size = if b >> 5 == 7 {
            self.u32() % 64
        } else {
            size_of::<cq4_options>() as u32
        };
        let kernel = match (b >> 2) & 7 {
            k @ 0..=5 => u32::from(k),
            6 => 1,
            _ => self.u32(),
        };
        cq4_options {
            struct_size,
            kernel,
            threads: [1, 0, 2, u32::MAX][usize::from(b & 3)],
        }
    }

    /// `cq4_encoder_options`: mostly well formed, this version's or 0.2's,
    /// any encoder id, importance weights or none, a Hessian or none, any
    /// damping.
    pub fn encoder(&mut self) -> EncoderChoice {
        let b = self.u8();
        let struct_size = match b >> 5 {
            7 => self.u32() % 64,
            6 => ENCODER_OPTIONS_0_2 as u32,
            _ => size_of::<cq4_encoder_options>() as u32,
        };
        let encoder = match (b >> 2) & 7 {
            e @ 0..=3 => u32::from(e),
            4 => 2,
            5 => 3,
            6 => 1,
            _ => self.u32(),
        };
        let importance = if b & 1 == 1 {
            self.place()
        } else {
            Place::Null
        };
        let importance_len = self.len();
        let c = self.u8();
        let given = match c & 3 {
            0 => false,
            1 => true,
            _ => encoder == 3,
        };
        let hessian = if given { self.place() } else { Place::Null };
        let hessian_len = self.len();
        let damping = match (c >> 2) & 7 {
            0..=3 => 0.05,
            4 => 0.0,
            5 => 1.5,
            6 => [f64::NAN, -1.0, f64::INFINITY, -0.0][usize::from(c >> 6)],
            _ => f64::from_bits(u64::from(self.u32()) << 32 | u64::from(self.u32())),
        };
        let hessian_fill = match c >> 5 {
            7 => HessianFill::Noise,
            m => {
                let rows = usize::from(self.u8() % 24);
                let seed = u64::from(self.u32());
                let scale = i32::from(self.u8() % 64) - 40;
                let changed = (m >= 5).then(|| {
                    let at = usize::from(self.u8());
                    let add = [f64::NAN, -1.0, f64::INFINITY, 1e-3, 1.0, -1e-7];
                    (at, add[usize::from(self.u8() % 6)])
                });
                HessianFill::Gram {
                    rows,
                    seed,
                    scale,
                    changed,
                }
            }
        };
        EncoderChoice {
            struct_size,
            encoder,
            importance,
            importance_len,
            hessian,
            hessian_len,
            damping,
            hessian_fill,
        }
    }
}
