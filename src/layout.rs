//! The packed layout's arithmetic, in one place: every size, stride and
//! bounds check of the crate (and of the C ABI) comes from [`Layout`].

use crate::error::{Buffer, Error};

/// Largest accepted group size (2^20): wide enough for one scale per row of
/// any real weight matrix, small enough that padding can never explode.
pub const MAX_GROUP_SIZE: usize = 1 << 20;

/// Elements per GGML Q4_0 block.
pub const Q4_0_BLOCK: usize = 32;
/// Bytes per GGML Q4_0 block: the f16 scale `d` (little-endian), then 16
/// bytes of nibbles.
pub const Q4_0_BLOCK_BYTES: usize = 18;

/// Sizes and strides of a `[rows, cols]` matrix packed with `group_size`.
///
/// Row `r` of the packed matrix starts at byte `r * packed_row_bytes`, its
/// scales at index `r * groups_per_row`, its unpacked values at `r * cols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) group_size: usize,
    /// `ceil(cols / group_size)`: scales per row, the scale row stride.
    pub(crate) groups_per_row: usize,
    /// `ceil(group_size / 2)`.
    pub(crate) bytes_per_group: usize,
    /// `groups_per_row * bytes_per_group`: the packed row stride.
    pub(crate) packed_row_bytes: usize,
    /// `rows * cols`: unpacked elements.
    pub(crate) elements: usize,
    /// `rows * packed_row_bytes`: packed bytes in all.
    pub(crate) packed_len: usize,
    /// `rows * groups_per_row`: scales in all.
    pub(crate) scales_len: usize,
}

impl Layout {
    /// Rows of the matrix.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the matrix (elements per row).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Elements per group (per scale).
    pub fn group_size(&self) -> usize {
        self.group_size
    }

    /// `ceil(cols / group_size)`: scales per row, the scale row stride.
    pub fn groups_per_row(&self) -> usize {
        self.groups_per_row
    }

    /// `ceil(group_size / 2)`.
    pub fn bytes_per_group(&self) -> usize {
        self.bytes_per_group
    }

    /// `groups_per_row * bytes_per_group`: the packed row stride.
    pub fn packed_row_bytes(&self) -> usize {
        self.packed_row_bytes
    }

    /// `rows * cols`: unpacked elements.
    pub fn elements(&self) -> usize {
        self.elements
    }

    /// `rows * packed_row_bytes`: packed bytes in all.
    pub fn packed_len(&self) -> usize {
        self.packed_len
    }

    /// `rows * groups_per_row`: scales in all.
    pub fn scales_len(&self) -> usize {
        self.scales_len
    }

    /// Computes the layout, refusing a bad group size or any size that
    /// overflows. The f32 buffers' byte counts are checked against
    /// `isize::MAX`, the most a Rust slice may span.
    pub fn new(rows: usize, cols: usize, group_size: usize) -> Result<Self, Error> {
        if group_size == 0 || group_size > MAX_GROUP_SIZE {
            return Err(Error::BadGroupSize { group_size });
        }
        let groups_per_row = cols.div_ceil(group_size);
        let bytes_per_group = group_size.div_ceil(2);
        let packed_row_bytes = groups_per_row
            .checked_mul(bytes_per_group)
            .ok_or(Error::SizeOverflow)?;
        let elements = rows.checked_mul(cols).ok_or(Error::SizeOverflow)?;
        let packed_len = rows
            .checked_mul(packed_row_bytes)
            .ok_or(Error::SizeOverflow)?;
        let scales_len = rows
            .checked_mul(groups_per_row)
            .ok_or(Error::SizeOverflow)?;
        // Totals bound the rows too, except for an empty matrix: check both,
        // so every stride is a valid pointer offset.
        let max_f32s = isize::MAX as usize / std::mem::size_of::<f32>();
        if cols.max(elements) > max_f32s
            || groups_per_row.max(scales_len) > max_f32s
            || packed_row_bytes.max(packed_len) > isize::MAX as usize
        {
            return Err(Error::SizeOverflow);
        }
        Ok(Layout {
            rows,
            cols,
            group_size,
            groups_per_row,
            bytes_per_group,
            packed_row_bytes,
            elements,
            packed_len,
            scales_len,
        })
    }

    /// The layout at g = 32 of a `[rows, cols]` matrix held as GGML Q4_0
    /// blocks, and the blocks' byte count (`rows * cols / 32 * 18`). Q4_0
    /// rows are whole blocks: `cols` must be a multiple of 32.
    pub fn q4_0(rows: usize, cols: usize) -> Result<(Layout, usize), Error> {
        if !cols.is_multiple_of(Q4_0_BLOCK) {
            return Err(Error::ColsNotWholeBlocks {
                cols,
                block: Q4_0_BLOCK,
            });
        }
        let layout = Layout::new(rows, cols, Q4_0_BLOCK)?;
        // Cannot overflow: `new` keeps the elements below isize::MAX / 4, so
        // the blocks take at most 18 / 128 of that.
        let bytes = layout.scales_len * Q4_0_BLOCK_BYTES;
        Ok((layout, bytes))
    }

    /// Elements of the Hessian of a `[rows, cols]` matrix's inputs: `cols *
    /// cols` f64 ([`crate::Hessian`], the error-compensating encoder),
    /// refusing a count whose byte size overflows `isize`.
    pub fn hessian_len(cols: usize) -> Result<usize, Error> {
        cols.checked_mul(cols)
            .filter(|&n| n <= isize::MAX as usize / std::mem::size_of::<f64>())
            .ok_or(Error::SizeOverflow)
    }

    /// Checks that an input buffer of `got` elements covers `needed`.
    pub(crate) fn check_input(buffer: Buffer, needed: usize, got: usize) -> Result<(), Error> {
        if got < needed {
            return Err(Error::InputTooShort {
                buffer,
                needed,
                got,
            });
        }
        Ok(())
    }

    /// Checks that an output buffer of `got` elements covers `needed`.
    pub(crate) fn check_output(buffer: Buffer, needed: usize, got: usize) -> Result<(), Error> {
        if got < needed {
            return Err(Error::OutputTooSmall {
                buffer,
                needed,
                got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_spec() {
        let l = Layout::new(3, 10, 4).unwrap();
        assert_eq!(
            (l.groups_per_row, l.bytes_per_group, l.packed_row_bytes),
            (3, 2, 6)
        );
        assert_eq!((l.elements, l.packed_len, l.scales_len), (30, 18, 9));
        let odd = Layout::new(2, 7, 3).unwrap();
        assert_eq!(
            (odd.groups_per_row, odd.bytes_per_group, odd.packed_len),
            (3, 2, 12)
        );
        let wide = Layout::new(1, 5, 128).unwrap();
        assert_eq!((wide.groups_per_row, wide.packed_row_bytes), (1, 64));
        let empty = Layout::new(4, 0, 8).unwrap();
        assert_eq!(
            (empty.groups_per_row, empty.packed_len, empty.scales_len),
            (0, 0, 0)
        );
    }

    #[test]
    fn q4_0_blocks_are_18_bytes_per_32_elements() {
        let (l, bytes) = Layout::q4_0(3, 64).unwrap();
        assert_eq!((l.scales_len, l.packed_len, bytes), (6, 96, 108));
        assert_eq!(
            Layout::q4_0(1, 48),
            Err(Error::ColsNotWholeBlocks {
                cols: 48,
                block: 32
            })
        );
        // 2^63 elements: refused by the layout itself.
        assert_eq!(Layout::q4_0(1 << 31, 1 << 32), Err(Error::SizeOverflow));
    }

    #[test]
    fn bad_group_sizes_are_refused() {
        for g in [0, MAX_GROUP_SIZE + 1, usize::MAX] {
            assert_eq!(
                Layout::new(1, 1, g),
                Err(Error::BadGroupSize { group_size: g })
            );
        }
        assert!(Layout::new(1, 1, MAX_GROUP_SIZE).is_ok());
    }

    #[test]
    fn overflow_is_refused() {
        assert_eq!(Layout::new(usize::MAX, 2, 1), Err(Error::SizeOverflow));
        // rows * cols fits in usize, but not its f32 byte count in isize.
        assert_eq!(Layout::new(usize::MAX / 4, 2, 2), Err(Error::SizeOverflow));
        assert_eq!(Layout::new(1, usize::MAX, 1), Err(Error::SizeOverflow));
        let max_f32s = isize::MAX as usize / 4;
        assert!(Layout::new(1, max_f32s, 2).is_ok());
        assert_eq!(Layout::new(1, max_f32s + 1, 2), Err(Error::SizeOverflow));
        // An empty matrix still needs valid strides.
        assert_eq!(Layout::new(0, usize::MAX, 1), Err(Error::SizeOverflow));
        assert_eq!(
            Layout::new(0, max_f32s + 1, 1 << 20),
            Err(Error::SizeOverflow)
        );
    }
}
