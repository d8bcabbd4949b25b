//! The safe slice API, the one the C ABI wraps: a [`Quantizer`] packs
//! row-major float matrices into this format and unpacks them.
//!
//! Buffers may be longer than the layout needs; only their first
//! [`Layout`] elements are read or written. Every call checks everything
//! before it writes (or, for the `_to_vec` forms, allocates) anything, so
//! a refused call leaves its outputs untouched.

use crate::alloc;
use crate::element::Element;
use crate::encoders::Encoder;
use crate::error::{Buffer, Error};
use crate::kernels::{self, Kernel};
use crate::layout::Layout;
use crate::matmul_api::PackedMatrix;
use crate::options::Options;

/// How to quantize: the group size, the [`Encoder`] that chooses each
/// group's scale (default [`Encoder::AbsMax`], the format's definition) and
/// the [`Options`] (kernel, threads; default: best kernel, calling thread
/// only). Every choice of encoder writes the same layout, read by the same
/// unpack; every choice of options gives the same bytes.
///
/// ```
/// use cortex_q4::{Encoder, Options, Quantizer};
/// let q = Quantizer::new(32)
///     .with_encoder(Encoder::Signed)
///     .with_options(Options::default().with_threads(0));
/// let w = q.pack_to_vec(&[0.5f32; 64], 2, 32)?;
/// assert_eq!((w.packed().len(), w.scales().len()), (32, 2));
/// # Ok::<(), cortex_q4::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantizer<'a> {
    group_size: usize,
    encoder: Encoder<'a>,
    options: Options,
}

impl Quantizer<'static> {
    /// A quantizer with `group_size` elements per scale, the default
    /// encoder and the default options. The group size is checked by each
    /// call ([`Error::BadGroupSize`] outside `1..=`[`MAX_GROUP_SIZE`](crate::MAX_GROUP_SIZE)).
    pub fn new(group_size: usize) -> Self {
        Quantizer {
            group_size,
            encoder: Encoder::AbsMax,
            options: Options::default(),
        }
    }
}

impl<'a> Quantizer<'a> {
    /// This quantizer with each group's scale chosen by `encoder`.
    pub fn with_encoder<'b>(self, encoder: Encoder<'b>) -> Quantizer<'b> {
        Quantizer {
            group_size: self.group_size,
            encoder,
            options: self.options,
        }
    }

    /// This quantizer running with `options`.
    pub fn with_options(self, options: Options) -> Self {
        Quantizer { options, ..self }
    }

    /// Elements per group (per scale).
    pub fn group_size(&self) -> usize {
        self.group_size
    }

    /// The encoder pack uses.
    pub fn encoder(&self) -> Encoder<'a> {
        self.encoder
    }

    /// The options every call runs with.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The layout of a `[rows, cols]` matrix at this group size.
    ///
    /// Errors: [`Error::BadGroupSize`], [`Error::SizeOverflow`].
    pub fn layout(&self, rows: usize, cols: usize) -> Result<Layout, Error> {
        Layout::new(rows, cols, self.group_size)
    }

    /// Packs the row-major `[rows, cols]` matrix `src` into `packed`
    /// (at least `packed_len` bytes of the returned layout) and `scales`
    /// (at least `scales_len` f32), and returns the layout.
    ///
    /// Errors, with nothing written, in this order:
    /// [`Error::UnsupportedKernel`]; [`Error::BadGroupSize`] and
    /// [`Error::SizeOverflow`] (the layout); [`Error::InputTooShort`] (`src`
    /// shorter than `rows * cols`); the encoder's: [`Error::InputTooShort`]
    /// (importance shorter than `cols`) and [`Error::BadImportance`], or
    /// [`Error::SizeOverflow`] (`cols * cols`), [`Error::InputTooShort`]
    /// (Hessian shorter than that), [`Error::BadDamping`] and
    /// [`Error::BadHessian`] (its values); [`Error::OutputTooSmall`]; then
    /// [`Error::BadHessian`] where the damped Hessian proves not positive
    /// definite (found by the factorization, after every other check).
    pub fn pack<T: Element>(
        &self,
        src: &[T],
        rows: usize,
        cols: usize,
        packed: &mut [u8],
        scales: &mut [f32],
    ) -> Result<Layout, Error> {
        let (layout, kernel) = self.checked_pack(src, rows, cols)?;
        Layout::check_output(Buffer::Packed, layout.packed_len, packed.len())?;
        Layout::check_output(Buffer::Scales, layout.scales_len, scales.len())?;
        self.encode(&layout, kernel, src, packed, scales)?;
        Ok(layout)
    }

    /// [`pack`](Self::pack) into newly allocated buffers of exactly the
    /// layout's lengths. Same errors but [`Error::OutputTooSmall`]; a
    /// refused call allocates nothing.
    pub fn pack_to_vec<T: Element>(
        &self,
        src: &[T],
        rows: usize,
        cols: usize,
    ) -> Result<PackedMatrixBuf, Error> {
        let (layout, kernel) = self.checked_pack(src, rows, cols)?;
        let mut packed = alloc::zeroed(layout.packed_len, 0u8);
        let mut scales = alloc::zeroed(layout.scales_len, 0f32);
        self.encode(&layout, kernel, src, &mut packed, &mut scales)?;
        Ok(PackedMatrixBuf {
            packed,
            scales,
            layout,
        })
    }

    /// Unpacks `packed` and `scales` (a packed `[rows, cols]` matrix at
    /// this group size, from any encoder) into the row-major `dst` (at
    /// least `rows * cols` elements), and returns the layout. Any scale is
    /// accepted; NaN and Inf propagate as IEEE arithmetic says. An f32
    /// output of 8 MiB or more is written with non-temporal stores where
    /// the AVX2 or AVX-512 kernel serves the group size (it bypasses the
    /// cache); unpack row ranges to keep the values cached.
    ///
    /// Errors, with nothing written: [`Error::UnsupportedKernel`],
    /// [`Error::BadGroupSize`], [`Error::SizeOverflow`],
    /// [`Error::InputTooShort`], [`Error::OutputTooSmall`].
    pub fn unpack<T: Element>(
        &self,
        packed: &[u8],
        scales: &[f32],
        rows: usize,
        cols: usize,
        dst: &mut [T],
    ) -> Result<Layout, Error> {
        let (matrix, kernel) = self.checked_unpack(packed, scales, rows, cols)?;
        let layout = *matrix.layout();
        Layout::check_output(Buffer::Destination, layout.elements, dst.len())?;
        self.decode(&matrix, kernel, dst);
        Ok(layout)
    }

    /// [`unpack`](Self::unpack) into a newly allocated buffer of
    /// `rows * cols` elements. Same errors but [`Error::OutputTooSmall`]; a
    /// refused call allocates nothing.
    pub fn unpack_to_vec<T: Element>(
        &self,
        packed: &[u8],
        scales: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<Vec<T>, Error> {
        let (matrix, kernel) = self.checked_unpack(packed, scales, rows, cols)?;
        let mut dst = alloc::zeroed(matrix.layout().elements, T::from_f32(0.0));
        self.decode(&matrix, kernel, &mut dst);
        Ok(dst)
    }

    /// Every check of a pack but the outputs'.
    fn checked_pack<T>(
        &self,
        src: &[T],
        rows: usize,
        cols: usize,
    ) -> Result<(Layout, Kernel), Error> {
        let kernel = self.options.kernel()?;
        let layout = self.layout(rows, cols)?;
        Layout::check_input(Buffer::Source, layout.elements, src.len())?;
        self.encoder.check(cols)?;
        Ok((layout, kernel))
    }

    /// Every check of an unpack but the output's.
    fn checked_unpack<'m>(
        &self,
        packed: &'m [u8],
        scales: &'m [f32],
        rows: usize,
        cols: usize,
    ) -> Result<(PackedMatrix<'m>, Kernel), Error> {
        let kernel = self.options.kernel()?;
        let matrix = PackedMatrix::new(packed, scales, rows, cols, self.group_size)?;
        Ok((matrix, kernel))
    }

    /// Packs checked buffers.
    fn encode<T: Element>(
        &self,
        layout: &Layout,
        kernel: Kernel,
        src: &[T],
        packed: &mut [u8],
        scales: &mut [f32],
    ) -> Result<(), Error> {
        self.encoder.pack(
            layout,
            kernel,
            self.options.threads,
            &src[..layout.elements],
            &mut packed[..layout.packed_len],
            &mut scales[..layout.scales_len],
        )
    }

    /// Unpacks a checked matrix into a checked output.
    fn decode<T: Element>(&self, matrix: &PackedMatrix, kernel: Kernel, dst: &mut [T]) {
        let layout = matrix.layout();
        kernels::unpack(
            layout,
            kernel,
            self.options.threads,
            matrix.packed(),
            matrix.scales(),
            &mut dst[..layout.elements],
        );
    }
}

/// A packed matrix that owns its buffers, as [`Quantizer::pack_to_vec`]
/// returns it: `packed` and `scales` hold exactly the layout's
/// `packed_len` bytes and `scales_len` f32.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedMatrixBuf {
    packed: Vec<u8>,
    scales: Vec<f32>,
    layout: Layout,
}

impl PackedMatrixBuf {
    /// The packed nibbles: `[rows][packed_row_bytes]` bytes.
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    /// The scales: `[rows][groups_per_row]` f32.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The matrix's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The borrowed view that computes with this matrix.
    pub fn as_matrix(&self) -> PackedMatrix<'_> {
        PackedMatrix::from_checked(&self.packed, &self.scales, self.layout)
    }

    /// The buffers: `(packed, scales)`.
    pub fn into_parts(self) -> (Vec<u8>, Vec<f32>) {
        (self.packed, self.scales)
    }
}
