//! The C ABI called from Rust with random, often invalid arguments: it
//! returns the slice API's verdict (or NULL pointer), writes nothing on
//! error, and on success writes exactly what the slice API writes.

use cortex_q4::ffi::{cq4_pack_f32, cq4_status, cq4_unpack_f32};
use cortex_q4::Quantizer;
use proptest::prelude::*;

const CANARY_U8: u8 = 0xA5;
const CANARY_F32: f32 = -12345.5;

/// Shapes near the edges: tiny, empty, absurd, overflowing.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..9, 1 => Just(usize::MAX), 1 => Just(usize::MAX / 3 + 1)]
}

fn group() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..12, 1 => Just(cortex_q4::MAX_GROUP_SIZE + 1), 1 => Just(usize::MAX)]
}

/// A declared length somewhere around what a small layout needs.
fn len() -> impl Strategy<Value = usize> {
    0usize..80
}

fn ptr_or_null<T>(buf: &mut [T], null: bool) -> *mut T {
    if null {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr()
    }
}

proptest! {
    #[test]
    fn pack_is_checked(
        (rows, cols, g) in (dim(), dim(), group()),
        (src_len, packed_len, scales_len) in (len(), len(), len()),
        null in 0usize..6,
        seed in any::<u32>(),
    ) {
        let mut src: Vec<f32> = (0..src_len).map(|i| ((i as u32 ^ seed) % 97) as f32 - 48.0).collect();
        let mut packed = vec![CANARY_U8; packed_len];
        let mut scales = vec![CANARY_F32; scales_len];
        let (mut want_p, mut want_s) = (packed.clone(), scales.clone());
        let want = Quantizer::new(g).pack(&src, rows, cols, &mut want_p, &mut want_s);
        // SAFETY: each pointer is NULL or valid for exactly its declared length.
        let status = unsafe {
            cq4_pack_f32(ptr_or_null(&mut src, null == 0), src_len, rows, cols, g,
                ptr_or_null(&mut packed, null == 1), packed_len,
                ptr_or_null(&mut scales, null == 2), scales_len)
        };
        if null <= 2 {
            prop_assert_eq!(status, cq4_status::CQ4_ERR_NULL_POINTER);
        } else {
            prop_assert_eq!(status, want.map_or_else(cq4_status::from, |_| cq4_status::CQ4_OK));
        }
        if status == cq4_status::CQ4_OK {
            // The slice API wrote its bytes and left the canaries past them.
            prop_assert_eq!(&packed, &want_p);
            prop_assert_eq!(&scales, &want_s);
        } else {
            prop_assert!(packed.iter().all(|&b| b == CANARY_U8));
            prop_assert!(scales.iter().all(|&s| s == CANARY_F32));
        }
    }

    #[test]
    fn unpack_is_checked(
        (rows, cols, g) in (dim(), dim(), group()),
        (packed_len, scales_len, dst_len) in (len(), len(), len()),
        null in 0usize..6,
        seed in any::<u8>(),
    ) {
        let mut packed: Vec<u8> = (0..packed_len).map(|i| (i as u8).wrapping_mul(37) ^ seed).collect();
        let mut scales: Vec<f32> = (0..scales_len).map(|i| i as f32 * 0.25 - 3.0).collect();
        let mut dst = vec![CANARY_F32; dst_len];
        let mut want_dst = dst.clone();
        let want = Quantizer::new(g).unpack(&packed, &scales, rows, cols, &mut want_dst);
        // SAFETY: each pointer is NULL or valid for exactly its declared length.
        let status = unsafe {
            cq4_unpack_f32(ptr_or_null(&mut packed, null == 0), packed_len,
                ptr_or_null(&mut scales, null == 1), scales_len, rows, cols, g,
                ptr_or_null(&mut dst, null == 2), dst_len)
        };
        if null <= 2 {
            prop_assert_eq!(status, cq4_status::CQ4_ERR_NULL_POINTER);
        } else {
            prop_assert_eq!(status, want.map_or_else(cq4_status::from, |_| cq4_status::CQ4_OK));
        }
        if status == cq4_status::CQ4_OK {
            prop_assert!(dst.iter().zip(&want_dst).all(|(a, b)| a.to_bits() == b.to_bits()));
        } else {
            prop_assert!(dst.iter().all(|&s| s == CANARY_F32));
        }
    }
}

/// The header's check order and extents, each on one call that the layer
/// once got wrong.
mod order_and_extents {
    use cortex_q4::ffi::*;
    use std::ptr::{null, null_mut};

    const EXACT: u32 = cq4_precision::CQ4_PRECISION_EXACT as u32;

    /// A `[rows, 32]` matrix packed at g = 32, its bytes and scales owned.
    struct Matrix {
        packed: Vec<u8>,
        scales: Vec<f32>,
        rows: usize,
    }

    impl Matrix {
        fn new(rows: usize) -> Matrix {
            let w: Vec<f32> = (0..rows * 32).map(|i| (i % 13) as f32 - 6.0).collect();
            let (packed, scales) = cortex_q4::Quantizer::new(32)
                .pack_to_vec(&w, rows, 32)
                .unwrap()
                .into_parts();
            Matrix {
                packed,
                scales,
                rows,
            }
        }

        fn c(&self) -> cq4_matrix {
            cq4_matrix {
                packed: self.packed.as_ptr(),
                packed_len: self.packed.len(),
                scales: self.scales.as_ptr(),
                scales_len: self.scales.len(),
                rows: self.rows,
                cols: 32,
                group_size: 32,
            }
        }
    }

    #[test]
    fn an_output_in_the_unread_tail_of_an_input_is_allowed_and_exact() {
        // src holds 64 floats and declares 16 more, which pack never reads;
        // packed (32 bytes = 8 floats) lies in that tail.
        let src: Vec<f32> = (0..64).map(|i| (i % 11) as f32 - 5.0).collect();
        let (want_packed, want_scales) = cortex_q4::Quantizer::new(32)
            .pack_to_vec(&src, 2, 32)
            .unwrap()
            .into_parts();
        let mut buf = src.clone();
        buf.resize(64 + 16, 0.0);
        let mut scales = vec![0f32; 2];
        let base = buf.as_mut_ptr();
        // SAFETY: every pointer comes from `base` or `scales` and is valid for
        // its declared length; packed lies in src's unread tail, as the
        // header allows.
        let status = unsafe {
            let packed = base.add(64).cast::<u8>();
            let st = cq4_pack_f32(base, 80, 2, 32, 32, packed, 32, scales.as_mut_ptr(), 2);
            assert_eq!(std::slice::from_raw_parts(packed, 32), &want_packed[..]);
            st
        };
        assert_eq!(status, cq4_status::CQ4_OK);
        assert_eq!(&buf[..64], &src[..]);
        assert_eq!(scales, want_scales);
    }

    #[test]
    fn the_matrix_descriptor_is_an_input() {
        let m = Matrix::new(1);
        let mut w = m.c();
        let x = [1f32; 32];
        let wp: *mut cq4_matrix = &mut w;
        // SAFETY: y points into `w` (valid for one f32), which the call
        // must refuse to write.
        let status = unsafe {
            let y = wp.cast::<f32>().add(2);
            cq4_matmul_f32(wp, x.as_ptr(), 32, 1, EXACT, y, 1, null())
        };
        assert_eq!(status, cq4_status::CQ4_ERR_OVERLAPPING_BUFFERS);
        assert_eq!(w.packed_len, m.packed.len());
    }

    #[test]
    fn option_structs_are_inputs() {
        let src = [1f32; 32];
        // 8-byte aligned room for 4 scales... and for the option structs.
        let mut room = [0u64; 8];
        let mut packed = [0u8; 16];
        let base = room.as_mut_ptr();
        let options = cq4_options_default();
        let encoder = cq4_encoder_options_default();
        // SAFETY: `room` holds either struct; the call must refuse to write
        // over the one it reads.
        unsafe {
            base.cast::<cq4_options>().write(options);
            let status = cq4_pack_f32_ex(
                src.as_ptr(),
                32,
                1,
                32,
                32,
                packed.as_mut_ptr(),
                16,
                base.cast::<f32>(),
                1,
                base.cast::<cq4_options>(),
            );
            assert_eq!(status, cq4_status::CQ4_ERR_OVERLAPPING_BUFFERS);
            assert_eq!(base.cast::<cq4_options>().read(), options);
            base.cast::<cq4_encoder_options>().write(encoder);
            let status = cq4_pack_encoded_f32(
                src.as_ptr(),
                32,
                1,
                32,
                32,
                packed.as_mut_ptr(),
                16,
                base.cast::<f32>(),
                1,
                null(),
                base.cast::<cq4_encoder_options>(),
            );
            assert_eq!(status, cq4_status::CQ4_ERR_OVERLAPPING_BUFFERS);
            assert_eq!(base.cast::<cq4_encoder_options>().read(), encoder);
        }
        assert_eq!(packed, [0u8; 16]);
    }

    #[test]
    fn y_in_the_unread_tail_of_x_is_allowed() {
        let m = Matrix::new(1);
        let w = m.c();
        let mut want = [0f32; 1];
        let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.25).collect();
        // SAFETY: every buffer valid for its declared length, disjoint.
        let st =
            unsafe { cq4_matmul_f32(&w, x.as_ptr(), 32, 1, EXACT, want.as_mut_ptr(), 1, null()) };
        assert_eq!(st, cq4_status::CQ4_OK);
        let mut buf = x.clone();
        buf.resize(40, -1.0);
        let base = buf.as_mut_ptr();
        // SAFETY: x declares 40 floats and the product reads 32; y is the
        // 33rd, in the unread tail.
        let status = unsafe { cq4_matmul_f32(&w, base, 40, 1, EXACT, base.add(32), 1, null()) };
        assert_eq!(status, cq4_status::CQ4_OK);
        assert_eq!(buf[32].to_bits(), want[0].to_bits());
    }

    #[test]
    fn overlap_is_reported_before_short_inputs() {
        let m = Matrix::new(2);
        let w = m.c();
        let mut short = m.c();
        short.packed_len -= 1;
        let mut x = vec![1f32; 64];
        let base = x.as_mut_ptr();
        for (w, x_len) in [(&w, 31), (&short, 32)] {
            // SAFETY: x valid for 64 floats; y overlaps what x's prefix
            // would be, which the call must refuse first.
            let status =
                unsafe { cq4_matmul_f32(w, base, x_len, 1, EXACT, base.add(1), 2, null()) };
            assert_eq!(status, cq4_status::CQ4_ERR_OVERLAPPING_BUFFERS);
        }
        assert!(x.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn every_extent_of_a_product_is_overflow_checked() {
        let m = Matrix::new(2);
        let w = m.c();
        let x = vec![1f32; 64];
        let mut y = vec![7f32; 4];
        // SAFETY: each pointer valid for its declared length.
        unsafe {
            // x = 2^56 * 32 f32: 2^63 bytes.
            let st = cq4_matmul_f32(
                &w,
                x.as_ptr(),
                64,
                1 << 56,
                EXACT,
                y.as_mut_ptr(),
                4,
                null(),
            );
            assert_eq!(st, cq4_status::CQ4_ERR_SIZE_OVERFLOW);
            // y = 2^62 + 2 f32.
            let st = cq4_matmul_rows_f32(
                &w,
                x.as_ptr(),
                64,
                2,
                EXACT,
                0,
                2,
                y.as_mut_ptr(),
                4,
                1 << 62,
                null(),
            );
            assert_eq!(st, cq4_status::CQ4_ERR_SIZE_OVERFLOW);
        }
        assert_eq!(y, [7.0; 4]);
    }

    #[test]
    fn null_pointers_are_reported_before_misaligned_ones() {
        let src = [0f32; 9];
        let mut scales = [0f32; 1];
        // SAFETY: src + 1 byte is misaligned but inside `src`; packed is NULL.
        let status = unsafe {
            let misaligned = src.as_ptr().cast::<u8>().add(1).cast::<f32>();
            cq4_pack_f32(
                misaligned,
                8,
                1,
                8,
                8,
                null_mut(),
                4,
                scales.as_mut_ptr(),
                1,
            )
        };
        assert_eq!(status, cq4_status::CQ4_ERR_NULL_POINTER);
    }

    const INT8: u32 = cq4_precision::CQ4_PRECISION_INT8 as u32;

    /// `m` prepared, and its size.
    fn prepared(m: &Matrix) -> (Vec<u8>, usize) {
        let mut size = 0;
        // SAFETY: `size` is one writable size_t.
        let st = unsafe { cq4_prepared_size(m.rows, 32, 32, &mut size) };
        assert_eq!(st, cq4_status::CQ4_OK);
        let mut bytes = vec![0; size];
        // SAFETY: `bytes` holds `size` bytes, disjoint from `m`.
        let st = unsafe { cq4_prepare(&m.c(), bytes.as_mut_ptr(), size, null()) };
        assert_eq!(st, cq4_status::CQ4_OK);
        (bytes, size)
    }

    #[test]
    fn prepare_reads_its_descriptor_and_options() {
        let m = Matrix::new(1);
        let (_, size) = prepared(&m);
        // 8-byte aligned room for the prepared bytes, the descriptor or the
        // options at its start.
        let mut room = vec![0u64; size.div_ceil(8)];
        let base = room.as_mut_ptr();
        let options = cq4_options_default();
        // SAFETY: `room` holds `size` bytes and either struct at its start;
        // the call must refuse to write anything, over the struct it reads
        // in particular.
        unsafe {
            base.cast::<cq4_matrix>().write(m.c());
            let kept = room.clone();
            let st = cq4_prepare(base.cast(), base.cast(), size, null());
            assert_eq!(st, cq4_status::CQ4_ERR_OVERLAPPING_BUFFERS);
            assert_eq!(room, kept);
            base.cast::<cq4_options>().write(options);
            let kept = room.clone();
            let st = cq4_prepare(&m.c(), base.cast(), size, base.cast());
            assert_eq!(st, cq4_status::CQ4_ERR_OVERLAPPING_BUFFERS);
            assert_eq!(room, kept);
        }
    }

    #[test]
    fn y_in_the_unread_tail_of_the_prepared_bytes_is_allowed() {
        let m = Matrix::new(1);
        let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.25).collect();
        let (bytes, size) = prepared(&m);
        let mut want = [0f32; 1];
        // SAFETY: every buffer valid for its declared length, disjoint.
        let st = unsafe {
            cq4_prepared_matmul_f32(
                bytes.as_ptr(),
                size,
                x.as_ptr(),
                32,
                1,
                INT8,
                want.as_mut_ptr(),
                1,
                null(),
            )
        };
        assert_eq!(st, cq4_status::CQ4_OK);
        // The same bytes, 8 longer and 4-aligned: y is the first f32 after
        // the prepared size.
        let mut room = vec![0f32; size / 4 + 2];
        let base = room.as_mut_ptr().cast::<u8>();
        // SAFETY: `room` holds size + 8 bytes; y lies in the tail the
        // product does not read; a prefix inside y's is refused.
        unsafe {
            base.copy_from_nonoverlapping(bytes.as_ptr(), size);
            let y = base.add(size).cast::<f32>();
            let st = cq4_prepared_matmul_f32(base, size + 8, x.as_ptr(), 32, 1, INT8, y, 1, null());
            assert_eq!(st, cq4_status::CQ4_OK);
            assert_eq!(y.read().to_bits(), want[0].to_bits());
            let y = base.add(size - 4).cast::<f32>();
            let st = cq4_prepared_matmul_f32(base, size + 8, x.as_ptr(), 32, 1, INT8, y, 1, null());
            assert_eq!(st, cq4_status::CQ4_ERR_OVERLAPPING_BUFFERS);
        }
    }

    #[test]
    fn the_prepared_header_is_checked_after_precision_and_before_sizes() {
        let m = Matrix::new(2);
        let (mut bytes, size) = prepared(&m);
        let x = vec![1f32; 64];
        let mut y = vec![7f32; 4];
        let call = |bytes: &[u8], len: usize, batch: usize, precision: u32, y: &mut [f32]| {
            // SAFETY: each pointer valid for its declared length (`len` at
            // most the bytes'), y disjoint from the inputs.
            unsafe {
                cq4_prepared_matmul_rows_f32(
                    bytes.as_ptr(),
                    len,
                    x.as_ptr(),
                    64,
                    batch,
                    precision,
                    0,
                    2,
                    y.as_mut_ptr(),
                    y.len(),
                    2,
                    null(),
                )
            }
        };
        use cq4_status::*;
        // A product of 2^56 rows of 32 f32 (2^63 bytes) overflows.
        assert_eq!(
            call(&bytes, size, 1 << 56, INT8, &mut y),
            CQ4_ERR_SIZE_OVERFLOW
        );
        assert_eq!(
            call(&bytes, size - 1, 2, INT8, &mut y),
            CQ4_ERR_INPUT_TOO_SHORT
        );
        assert_eq!(
            call(&bytes, 63, 1 << 56, INT8, &mut y),
            CQ4_ERR_BAD_PREPARED
        );
        bytes[0] ^= 1;
        assert_eq!(
            call(&bytes, size, 1 << 56, INT8, &mut y),
            CQ4_ERR_BAD_PREPARED
        );
        assert_eq!(
            call(&bytes, size, 1 << 56, 2, &mut y),
            CQ4_ERR_BAD_PRECISION
        );
        assert_eq!(y, [7.0; 4]);
    }

    #[test]
    fn the_prepared_size_is_checked_like_the_layout() {
        use cq4_status::*;
        let size = |rows: usize, cols: usize, g: usize| {
            let mut n = 0usize;
            // SAFETY: `n` is one writable size_t.
            let st = unsafe { cq4_prepared_size(rows, cols, g, &mut n) };
            (st, n)
        };
        // The header, then 16 rows of 2 groups of 32 / 8 * 4 + 4 bytes.
        assert_eq!(size(1, 64, 32), (CQ4_OK, 64 + 16 * 2 * 20));
        assert_eq!(size(1, 64, 0), (CQ4_ERR_BAD_GROUP_SIZE, 0));
        assert_eq!(size(usize::MAX, 64, 64), (CQ4_ERR_SIZE_OVERFLOW, 0));
        // Without rows there is no panel, however wide one would be.
        assert_eq!(size(0, usize::MAX / 8, 1 << 20), (CQ4_OK, 64));
        assert_eq!(size(usize::MAX / 4, 0, 32), (CQ4_OK, 64));
        // SAFETY: NULL is refused before anything is written.
        let st = unsafe { cq4_prepared_size(1, 64, 0, null_mut()) };
        assert_eq!(st, CQ4_ERR_NULL_POINTER);
    }
}

/// A matrix of 2^62 rows and no columns is a valid, empty layout: the
/// quality report must return at once rather than walk every empty row. The
/// call runs on its own thread under a watchdog many orders of magnitude
/// longer than it needs, so that the walk fails instead of hanging.
#[test]
fn quality_of_an_empty_matrix_does_not_walk_its_rows() {
    use cortex_q4::ffi::{cq4_quality, cq4_quality_f32};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (original, packed, scales) = ([0f32; 1], [0u8; 1], [0f32; 1]);
        let mut out = cq4_quality {
            rmse: -1.0,
            max_abs_error: -1.0,
            relative_frobenius: -1.0,
            snr_db: -1.0,
        };
        // SAFETY: each pointer is valid for its declared length (0).
        let status = unsafe {
            cq4_quality_f32(
                original.as_ptr(),
                0,
                packed.as_ptr(),
                0,
                scales.as_ptr(),
                0,
                1 << 62,
                0,
                32,
                &mut out,
            )
        };
        tx.send((status, out)).unwrap();
    });
    let (status, out) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("cq4_quality_f32 still running: it walks the empty rows");
    assert_eq!(status, cq4_status::CQ4_OK);
    assert_eq!(
        (
            out.rmse,
            out.max_abs_error,
            out.relative_frobenius,
            out.snr_db
        ),
        (0.0, 0.0, 0.0, f64::INFINITY)
    );
}

/// An empty matrix of 0 rows may have `cols` far past what memory holds
/// (2^61 - 1 here, the most the layout takes): the quality report must not
/// allocate a row of them, which aborts the process when it fails.
#[test]
fn quality_of_an_empty_matrix_allocates_no_row() {
    use cortex_q4::ffi::{cq4_quality, cq4_quality_f32};
    let (original, packed, scales) = ([0f32; 1], [0u8; 1], [0f32; 1]);
    let mut out = cq4_quality {
        rmse: -1.0,
        max_abs_error: -1.0,
        relative_frobenius: -1.0,
        snr_db: -1.0,
    };
    // SAFETY: each pointer is valid for its declared length (0).
    let status = unsafe {
        cq4_quality_f32(
            original.as_ptr(),
            0,
            packed.as_ptr(),
            0,
            scales.as_ptr(),
            0,
            0,
            usize::MAX / 8,
            1 << 20,
            &mut out,
        )
    };
    assert_eq!(status, cq4_status::CQ4_OK);
    assert_eq!(
        (
            out.rmse,
            out.max_abs_error,
            out.relative_frobenius,
            out.snr_db
        ),
        (0.0, 0.0, 0.0, f64::INFINITY)
    );
}

/// `cq4_hessian_size` and `cq4_hessian_accumulate_*`: the sums against an
/// exact reference within the header's bound, and every refusal in the
/// header's order with the Hessian left as it was.
mod hessian {
    use cortex_q4::ffi::cq4_status::*;
    use cortex_q4::ffi::*;
    use half::{bf16, f16};
    use std::ptr::{null, null_mut};

    /// A Hessian buffer's contents before a refused call.
    const CANARY: f64 = -7.25;

    /// `threads` for the library's pool, which Miri does not start
    /// (crossbeam-epoch breaks Stacked Borrows; see .ci/miri).
    const POOL: u32 = if cfg!(miri) { 1 } else { 0 };

    /// `n` values of a fixed pseudo-random sequence in `[0, 2^bits)`.
    fn noise(n: usize, seed: u64, bits: u32) -> Vec<u64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s >> (64 - bits)
            })
            .collect()
    }

    fn size(cols: usize) -> (cq4_status, usize) {
        let mut n = 12345usize;
        // SAFETY: `n` is one writable size_t.
        let st = unsafe { cq4_hessian_size(cols, &mut n) };
        (st, n)
    }

    #[test]
    fn the_size_is_cols_squared_and_overflow_checked() {
        assert_eq!(size(3), (CQ4_OK, 9));
        assert_eq!(size(0), (CQ4_OK, 0));
        assert_eq!(size(1), (CQ4_OK, 1));
        #[cfg(target_pointer_width = "64")]
        {
            // The most f64 a buffer may hold: cols^2 * 8 <= PTRDIFF_MAX.
            let most = (1usize << 30) - 1;
            assert_eq!(size(most), (CQ4_OK, most * most));
            assert_eq!(size(1 << 30), (CQ4_ERR_SIZE_OVERFLOW, 12345));
            // cols * cols overflows size_t itself.
            assert_eq!(size(1 << 32), (CQ4_ERR_SIZE_OVERFLOW, 12345));
        }
        assert_eq!(size(usize::MAX), (CQ4_ERR_SIZE_OVERFLOW, 12345));
        // SAFETY: NULL is refused before anything is written.
        let st = unsafe { cq4_hessian_size(3, null_mut()) };
        assert_eq!(st, CQ4_ERR_NULL_POINTER);
        let mut room = [0usize; 2];
        // SAFETY: one byte into `room`: misaligned, refused unwritten.
        let st = unsafe {
            let p = room.as_mut_ptr().cast::<u8>().add(1).cast::<usize>();
            cq4_hessian_size(usize::MAX, p)
        };
        assert_eq!(st, CQ4_ERR_MISALIGNED_POINTER);
        assert_eq!(room, [0, 0]);
    }

    /// `cq4_hessian_accumulate_f32` on a buffer of `h.len()`.
    fn accumulate(x: &[f32], rows: usize, cols: usize, h: &mut [f64], threads: u32) -> cq4_status {
        let options = cq4_options {
            threads,
            ..cq4_options_default()
        };
        // SAFETY: each buffer valid for its length, disjoint.
        unsafe {
            cq4_hessian_accumulate_f32(
                x.as_ptr(),
                x.len(),
                rows,
                cols,
                h.as_mut_ptr(),
                h.len(),
                &options,
            )
        }
    }

    /// Rows of f32 `k / 2^12` with `k` of up to 25 bits and either sign: full
    /// mantissas, so that the f64 sums round.
    fn activations(rows: usize, cols: usize, seed: u64) -> (Vec<i64>, Vec<f32>) {
        let k: Vec<i64> = noise(rows * cols, seed, 25)
            .into_iter()
            .map(|v| v as i64 - (1 << 24))
            .collect();
        let x = k.iter().map(|&k| k as f32 / 4096.0).collect();
        (k, x)
    }

    #[test]
    fn accumulate_is_within_the_bound_of_the_exact_sums_however_the_rows_are_split() {
        // More rows than one step of the accumulator's 256; fewer columns
        // under Miri, which interprets every product.
        let (rows, cols, split) = (300, if cfg!(miri) { 4 } else { 19 }, 137);
        let (k, x) = activations(rows, cols, 7);
        let mut one = vec![0f64; cols * cols];
        assert_eq!(accumulate(&x, rows, cols, &mut one, 1), CQ4_OK);
        let mut two = vec![0f64; cols * cols];
        let (a, b) = x.split_at(split * cols);
        assert_eq!(accumulate(a, split, cols, &mut two, 1), CQ4_OK);
        assert_eq!(accumulate(b, rows - split, cols, &mut two, 1), CQ4_OK);
        // The library's pool: the same bits.
        let mut pooled = vec![0f64; cols * cols];
        assert_eq!(accumulate(&x, rows, cols, &mut pooled, POOL), CQ4_OK);
        assert_eq!(
            one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            pooled.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let unit = 2f64.powi(-53);
        let mut rounded = 0;
        for i in 0..cols {
            for j in 0..cols {
                // Exact: k products are integers below 2^48, their sum fits
                // i128; x_i x_j = k_i k_j / 2^24.
                let exact: i128 = (0..rows)
                    .map(|r| k[r * cols + i] as i128 * k[r * cols + j] as i128)
                    .sum();
                let abs: f64 = (0..rows)
                    .map(|r| (x[r * cols + i] as f64 * x[r * cols + j] as f64).abs())
                    .sum();
                let plain: f64 = (0..rows)
                    .map(|r| x[r * cols + i] as f64 * x[r * cols + j] as f64)
                    .sum();
                let exact = exact as f64 / 2f64.powi(24);
                // The header's bound, and the rounding of `exact` to f64.
                let bound = rows as f64 * unit * abs + exact.abs() * unit;
                for (what, got) in [
                    ("one call", one[i * cols + j]),
                    ("two calls", two[i * cols + j]),
                ] {
                    assert!(
                        (got - exact).abs() <= bound,
                        "{what} [{i}][{j}]: {got} against {exact}, bound {bound}"
                    );
                }
                assert!((plain - exact).abs() <= bound, "the test's reference");
                assert!((one[i * cols + j] - plain).abs() <= 2.0 * bound);
                assert_eq!(one[i * cols + j].to_bits(), one[j * cols + i].to_bits());
                assert_eq!(two[i * cols + j].to_bits(), two[j * cols + i].to_bits());
                rounded += usize::from(one[i * cols + j] != exact);
            }
        }
        // The sums do round: the bound is not met by exact arithmetic alone.
        assert!(rounded > 0);
    }

    /// Values whose products and sums are exact in f64 (multiples of 2^-8
    /// below 8 in magnitude): every function and split gives the reference
    /// bit for bit, and the f16 and bf16 functions what the f32 one gives
    /// on the same numbers.
    #[test]
    fn every_element_type_gives_the_plain_reference_on_exact_sums() {
        let (rows, cols) = (270, 6);
        let v: Vec<f32> = noise(rows * cols, 3, 8)
            .into_iter()
            .map(|b| (b as f32 - 128.0) / 16.0)
            .collect();
        let mut want = vec![0f64; cols * cols];
        for r in 0..rows {
            for i in 0..cols {
                for j in 0..cols {
                    want[i * cols + j] += v[r * cols + i] as f64 * v[r * cols + j] as f64;
                }
            }
        }
        let halves: Vec<u16> = v.iter().map(|&a| f16::from_f32(a).to_bits()).collect();
        let brains: Vec<u16> = v.iter().map(|&a| bf16::from_f32(a).to_bits()).collect();
        type Fn16 = unsafe extern "C" fn(
            *const u16,
            usize,
            usize,
            usize,
            *mut f64,
            usize,
            *const cq4_options,
        ) -> cq4_status;
        let f16_fn: Fn16 = cq4_hessian_accumulate_f16;
        let bf16_fn: Fn16 = cq4_hessian_accumulate_bf16;
        for (what, bits, f) in [("f16", &halves, f16_fn), ("bf16", &brains, bf16_fn)] {
            // Two calls of 100 and 170 rows into a zero-filled buffer.
            let mut h = vec![0f64; cols * cols];
            for (start, n) in [(0, 100), (100, 170)] {
                let part = &bits[start * cols..(start + n) * cols];
                // SAFETY: each buffer valid for its length, disjoint.
                let st = unsafe {
                    f(
                        part.as_ptr(),
                        part.len(),
                        n,
                        cols,
                        h.as_mut_ptr(),
                        h.len(),
                        null(),
                    )
                };
                assert_eq!(st, CQ4_OK, "{what}");
            }
            assert_eq!(h, want, "{what}");
        }
        let mut h = vec![0f64; cols * cols];
        assert_eq!(accumulate(&v, rows, cols, &mut h, POOL), CQ4_OK);
        assert_eq!(h, want, "f32");
        // The Rust API's sums, bit for bit.
        let mut rust = cortex_q4::Hessian::new(cols).unwrap();
        rust.accumulate(&cortex_q4::Options::default(), &v, rows)
            .unwrap();
        assert_eq!(rust.matrix(), &h[..]);
    }

    #[test]
    fn accumulate_adds_to_what_the_buffer_holds_and_no_rows_add_nothing() {
        let x = [1f32, 2.0, 3.0, 4.0];
        let mut h = [1f64, 1.0, 1.0, 1.0, 99.0];
        assert_eq!(accumulate(&x, 2, 2, &mut h, 1), CQ4_OK);
        // 10 14 / 14 20 added; the element past cols * cols untouched.
        assert_eq!(h, [11.0, 15.0, 15.0, 21.0, 99.0]);
        assert_eq!(accumulate(&[], 0, 2, &mut h, 1), CQ4_OK);
        assert_eq!(h, [11.0, 15.0, 15.0, 21.0, 99.0]);
        // The upper triangle is summed, then mirrored: what lay below the
        // diagonal is replaced.
        let mut h = [1f64, 5.0, -100.0, 1.0];
        assert_eq!(accumulate(&[], 0, 2, &mut h, 1), CQ4_OK);
        assert_eq!(h, [1.0, 5.0, -100.0, 1.0], "no rows: nothing written");
        assert_eq!(accumulate(&x, 2, 2, &mut h, 1), CQ4_OK);
        assert_eq!(h, [11.0, 19.0, 19.0, 21.0]);
    }

    #[test]
    fn accumulate_refuses_in_the_headers_order_and_writes_nothing() {
        let x = [1f32; 8];
        let mut h = vec![CANARY; 16];
        let hp = h.as_mut_ptr();
        let xp = x.as_ptr();
        let bad_options = cq4_options {
            struct_size: 4,
            ..cq4_options_default()
        };
        let o = cq4_options_default();
        // SAFETY: every pointer is NULL, misaligned (refused before it is
        // read) or valid for the length it declares; `check` reads `h`
        // between calls, as no call is running.
        unsafe {
            let check = |st: cq4_status, want: cq4_status, what: &str| {
                assert_eq!(st, want, "{what}");
                assert!(
                    std::slice::from_raw_parts(hp, 16)
                        .iter()
                        .all(|&v| v == CANARY),
                    "{what}: written"
                );
            };
            let misaligned_x = xp.cast::<u8>().add(1).cast::<f32>();
            let misaligned_h = hp.cast::<u8>().add(4).cast::<f64>();
            let call = |x: *const f32,
                        x_len: usize,
                        rows: usize,
                        cols: usize,
                        h: *mut f64,
                        h_len: usize,
                        o: *const cq4_options| {
                cq4_hessian_accumulate_f32(x, x_len, rows, cols, h, h_len, o)
            };
            // 1. NULL, then misalignment.
            check(
                call(null(), 8, 2, 4, hp, 16, &o),
                CQ4_ERR_NULL_POINTER,
                "x NULL",
            );
            check(
                call(xp, 8, 2, 4, null_mut(), 16, &o),
                CQ4_ERR_NULL_POINTER,
                "h NULL",
            );
            check(
                call(null(), 8, 2, 4, misaligned_h, 15, &o),
                CQ4_ERR_NULL_POINTER,
                "NULL before misaligned",
            );
            check(
                call(misaligned_x, 7, 2, 4, hp, 16, &o),
                CQ4_ERR_MISALIGNED_POINTER,
                "x",
            );
            check(
                call(xp, 8, 2, 4, misaligned_h, 15, &o),
                CQ4_ERR_MISALIGNED_POINTER,
                "h",
            );
            // 2. The options, before the shape.
            check(
                call(xp, 8, usize::MAX, 1 << 40, hp, 16, &bad_options),
                CQ4_ERR_BAD_OPTIONS,
                "options",
            );
            // 3. The sizes: cols * cols, rows * cols, their bytes.
            #[cfg(target_pointer_width = "64")]
            check(
                call(xp, 8, 0, 1 << 32, hp, 16, &o),
                CQ4_ERR_SIZE_OVERFLOW,
                "cols = 2^32",
            );
            check(
                call(xp, 8, usize::MAX, 2, hp, 16, &o),
                CQ4_ERR_SIZE_OVERFLOW,
                "rows * cols",
            );
            #[cfg(target_pointer_width = "64")]
            check(
                call(xp, 8, 1 << 62, 1, hp, 16, &o),
                CQ4_ERR_SIZE_OVERFLOW,
                "x's bytes",
            );
            // 4. Overlap, before the lengths: x inside the Hessian's prefix
            // (as f32), or the options.
            let inside = hp.add(3).cast::<f32>();
            check(
                call(inside, 8, 2, 4, hp, 16, &o),
                CQ4_ERR_OVERLAPPING_BUFFERS,
                "x in h",
            );
            check(
                call(inside, 1, 2, 4, hp, 15, &o),
                CQ4_ERR_OVERLAPPING_BUFFERS,
                "and short",
            );
            let options_in_h = hp.add(14).cast::<cq4_options>();
            options_in_h.write(o);
            let st = call(xp, 8, 2, 4, hp, 16, options_in_h);
            assert_eq!(st, CQ4_ERR_OVERLAPPING_BUFFERS, "options in h");
            assert_eq!(options_in_h.read(), o, "options in h: written");
            hp.add(14).write(CANARY);
            hp.add(15).write(CANARY);
            // 5. x short, then 6. h short.
            check(
                call(xp, 7, 2, 4, hp, 16, &o),
                CQ4_ERR_INPUT_TOO_SHORT,
                "x_len",
            );
            check(
                call(xp, 7, 2, 4, hp, 15, &o),
                CQ4_ERR_INPUT_TOO_SHORT,
                "both short",
            );
            check(
                call(xp, 8, 2, 4, hp, 15, &o),
                CQ4_ERR_OUTPUT_TOO_SMALL,
                "hessian_len",
            );
            check(
                call(xp, 0, 0, 5, hp, 16, &o),
                CQ4_ERR_OUTPUT_TOO_SMALL,
                "no rows",
            );
        }
        // The unread tail of the Hessian may hold x: only its cols * cols
        // prefix counts.
        let mut room = vec![0f64; 9 + 2];
        let base = room.as_mut_ptr();
        // SAFETY: x is the 4 f32 in room[9..11], past the 3 x 3 prefix.
        let st = unsafe {
            let x = base.add(9).cast::<f32>();
            x.copy_from_nonoverlapping([1f32, 2.0, 3.0, 0.5].as_ptr(), 4);
            cq4_hessian_accumulate_f32(x, 4, 1, 3, base, 11, null())
        };
        assert_eq!(st, CQ4_OK);
        assert_eq!(room[..9], [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 3.0, 6.0, 9.0]);
    }
}

/// `cq4_pack_encoded_*` with `CQ4_ENCODER_ERROR_COMPENSATING`: the Rust
/// encoder's bytes, the Hessian's pointer and values checked in the
/// header's order, and version 0.2's `cq4_encoder_options` still read.
mod error_compensating {
    use cortex_q4::ffi::cq4_status::*;
    use cortex_q4::ffi::*;
    use cortex_q4::{Encoder, Hessian, Options, Quantizer};
    use half::{bf16, f16};
    use std::mem::size_of;
    use std::ptr::null;

    const EC: u32 = cq4_encoder::CQ4_ENCODER_ERROR_COMPENSATING as u32;
    const CANARY_U8: u8 = 0xA5;
    const CANARY_F32: f32 = -12345.5;

    /// `cq4_encoder_options` as version 0.2 of the header declared it.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct EncoderOptions02 {
        struct_size: u32,
        encoder: u32,
        importance: *const f32,
        importance_len: usize,
    }

    /// A `[rows, cols]` matrix with outliers, and the Hessian of `4 * cols`
    /// activation rows with correlated columns (and a dead one, which the
    /// damping keeps invertible), summed by the C function.
    fn weights_and_hessian(rows: usize, cols: usize) -> (Vec<f32>, Vec<f64>) {
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| {
                let v = ((i * 7919 % 211) as f32 - 105.0) / 37.0;
                if i % 53 == 0 {
                    v * 9.0
                } else {
                    v
                }
            })
            .collect();
        let n = 4 * cols;
        let x: Vec<f32> = (0..n * cols)
            .map(|i| {
                let (r, c) = (i / cols, i % cols);
                if c == 1 {
                    0.0
                } else {
                    ((r * 31 + c * 17) % 23) as f32 / 7.0 - 1.5 + ((r * 13) % 5) as f32 * 0.3
                }
            })
            .collect();
        let mut h = vec![0f64; cols * cols];
        // SAFETY: each buffer valid for its length, disjoint.
        let st = unsafe {
            cq4_hessian_accumulate_f32(
                x.as_ptr(),
                x.len(),
                n,
                cols,
                h.as_mut_ptr(),
                h.len(),
                null(),
            )
        };
        assert_eq!(st, CQ4_OK);
        let mut rust = Hessian::new(cols).unwrap();
        rust.accumulate(&Options::default(), &x, n).unwrap();
        assert_eq!(rust.matrix(), &h[..], "the C sums are the Rust API's");
        (w, h)
    }

    fn options(h: &[f64], damping: f64) -> cq4_encoder_options {
        cq4_encoder_options {
            encoder: EC,
            hessian: h.as_ptr(),
            hessian_len: h.len(),
            damping,
            ..cq4_encoder_options_default()
        }
    }

    /// Packs `src` (f32 values, passed as `elem`: 0 f32, 1 f16, 2 bf16)
    /// through C into canary-filled buffers of the layout's lengths plus
    /// 3; returns the status and the buffers.
    fn pack_c(
        elem: usize,
        src: &[f32],
        (rows, cols, g): (usize, usize, usize),
        threads: u32,
        encoder: *const cq4_encoder_options,
    ) -> (cq4_status, Vec<u8>, Vec<f32>) {
        // The layout's lengths (some for a group size it refuses).
        let (packed_len, scales_len) = Quantizer::new(g)
            .layout(rows, cols)
            .map_or((16, 16), |l| (l.packed_len(), l.scales_len()));
        let mut packed = vec![CANARY_U8; packed_len + 3];
        let mut scales = vec![CANARY_F32; scales_len + 3];
        let o = cq4_options {
            threads,
            ..cq4_options_default()
        };
        let halves: Vec<u16> = match elem {
            1 => src.iter().map(|&v| f16::from_f32(v).to_bits()).collect(),
            _ => src.iter().map(|&v| bf16::from_f32(v).to_bits()).collect(),
        };
        let (p, pl, s, sl) = (
            packed.as_mut_ptr(),
            packed.len(),
            scales.as_mut_ptr(),
            scales.len(),
        );
        // SAFETY: each buffer valid for its length, the outputs disjoint
        // from every input; `encoder` points to live options.
        let st = unsafe {
            match elem {
                0 => cq4_pack_encoded_f32(
                    src.as_ptr(),
                    src.len(),
                    rows,
                    cols,
                    g,
                    p,
                    pl,
                    s,
                    sl,
                    &o,
                    encoder,
                ),
                1 => cq4_pack_encoded_f16(
                    halves.as_ptr(),
                    halves.len(),
                    rows,
                    cols,
                    g,
                    p,
                    pl,
                    s,
                    sl,
                    &o,
                    encoder,
                ),
                _ => cq4_pack_encoded_bf16(
                    halves.as_ptr(),
                    halves.len(),
                    rows,
                    cols,
                    g,
                    p,
                    pl,
                    s,
                    sl,
                    &o,
                    encoder,
                ),
            }
        };
        (st, packed, scales)
    }

    /// The status, having checked that a refused call wrote nothing.
    fn untouched(what: &str, (st, packed, scales): (cq4_status, Vec<u8>, Vec<f32>)) -> cq4_status {
        if st != CQ4_OK {
            assert!(
                packed.iter().all(|&b| b == CANARY_U8),
                "{what}: packed written"
            );
            assert!(
                scales.iter().all(|&s| s == CANARY_F32),
                "{what}: scales written"
            );
        }
        st
    }

    #[test]
    fn c_packs_the_bytes_of_the_rust_encoder_for_every_element_type() {
        // Miri interprets faer's factorization: one small shape, the
        // default damping and the refused one, the calling thread only.
        let (shapes, dampings, threads): (&[_], &[_], &[_]) = if cfg!(miri) {
            (&[(2, 12, 5)], &[Encoder::DEFAULT_DAMPING, 0.0], &[1])
        } else {
            (
                &[(24, 80, 32), (5, 33, 8), (3, 20, 7)],
                &[Encoder::DEFAULT_DAMPING, 0.01, 0.0],
                &[1, 0],
            )
        };
        for &(rows, cols, g) in shapes {
            let (w, h) = weights_and_hessian(rows, cols);
            for &damping in dampings {
                let encoder = Encoder::ErrorCompensating {
                    hessian: &h,
                    damping,
                };
                let c = options(&h, damping);
                for elem in 0..3 {
                    let want = match elem {
                        0 => Quantizer::new(g)
                            .with_encoder(encoder)
                            .pack_to_vec(&w, rows, cols),
                        1 => {
                            let v: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
                            Quantizer::new(g)
                                .with_encoder(encoder)
                                .pack_to_vec(&v, rows, cols)
                        }
                        _ => {
                            let v: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
                            Quantizer::new(g)
                                .with_encoder(encoder)
                                .pack_to_vec(&v, rows, cols)
                        }
                    };
                    let what = format!("{rows}x{cols} g {g}, damping {damping}, element {elem}");
                    let want = match want {
                        Ok(want) => want,
                        // A dead column without damping: refused in both.
                        Err(e) => {
                            assert_eq!(damping, 0.0, "{what}: {e}");
                            let st = untouched(&what, pack_c(elem, &w, (rows, cols, g), 1, &c));
                            assert_eq!(st, CQ4_ERR_BAD_HESSIAN, "{what}");
                            continue;
                        }
                    };
                    for &threads in threads {
                        let (st, packed, scales) = pack_c(elem, &w, (rows, cols, g), threads, &c);
                        assert_eq!(st, CQ4_OK, "{what}");
                        let n = want.packed().len();
                        assert_eq!(&packed[..n], want.packed(), "{what}, threads {threads}");
                        assert!(packed[n..].iter().all(|&b| b == CANARY_U8));
                        let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        let n = want.scales().len();
                        assert_eq!(bits(&scales[..n]), bits(want.scales()), "{what}");
                        assert!(scales[n..].iter().all(|&s| s == CANARY_F32));
                    }
                }
                // Other encoders give other bytes on these weights.
                let absmax = Quantizer::new(g).pack_to_vec(&w, rows, cols).unwrap();
                let (_, packed, _) = pack_c(0, &w, (rows, cols, g), 1, &c);
                if damping > 0.0 {
                    assert_ne!(&packed[..absmax.packed().len()], absmax.packed());
                }
            }
        }
    }

    #[test]
    fn the_encoder_options_are_checked_before_the_shape() {
        let (rows, cols, g) = (2, 8, 4);
        let (w, h) = weights_and_hessian(rows, cols);
        let weights = [1f32; 8];
        let call = |c: &cq4_encoder_options, g| untouched("", pack_c(0, &w, (rows, cols, g), 1, c));
        let mut c = options(&h, 0.05);
        assert_eq!(call(&c, g), CQ4_OK);
        // The id without a Hessian; a Hessian with another id.
        c.hessian = null();
        assert_eq!(call(&c, 0), CQ4_ERR_BAD_OPTIONS, "no Hessian");
        c.hessian = h.as_ptr();
        for id in [0, 1, 2] {
            c.encoder = id;
            assert_eq!(call(&c, 0), CQ4_ERR_BAD_OPTIONS, "a Hessian for {id}");
        }
        c.encoder = 2;
        c.hessian = null();
        c.importance = weights.as_ptr();
        c.importance_len = 8;
        assert_eq!(call(&c, g), CQ4_OK, "search, importance");
        c.encoder = EC;
        c.hessian = h.as_ptr();
        assert_eq!(call(&c, 0), CQ4_ERR_BAD_OPTIONS, "importance for EC");
        c.importance = null();
        // Damping: not finite or negative, whatever the encoder, before
        // BAD_GROUP_SIZE.
        for damping in [f64::NAN, -1.0, f64::INFINITY, -1e-300] {
            c.damping = damping;
            assert_eq!(call(&c, 0), CQ4_ERR_BAD_OPTIONS, "damping {damping}");
            let absmax = cq4_encoder_options {
                damping,
                ..cq4_encoder_options_default()
            };
            assert_eq!(call(&absmax, g), CQ4_ERR_BAD_OPTIONS, "absmax, {damping}");
        }
        c.damping = 0.05;
        // A misaligned Hessian: step 2 as well.
        c.hessian = h.as_ptr().cast::<u8>().wrapping_add(4).cast();
        assert_eq!(call(&c, 0), CQ4_ERR_MISALIGNED_POINTER, "misaligned");
        c.hessian = h.as_ptr();
        // Shape and lengths: the layout first, then cols * cols.
        assert_eq!(call(&c, 0), CQ4_ERR_BAD_GROUP_SIZE);
        c.hessian_len = h.len() - 1;
        assert_eq!(call(&c, g), CQ4_ERR_INPUT_TOO_SHORT, "hessian_len");
        c.hessian_len = h.len() + 100;
        assert_eq!(call(&c, g), CQ4_OK, "a longer buffer");
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_hessian_of_2_to_the_32_columns_overflows() {
        let h = [1f64; 4];
        let mut packed = [CANARY_U8; 4];
        let mut scales = [CANARY_F32; 4];
        let pack = |c: *const cq4_encoder_options, packed: &mut [u8], scales: &mut [f32]| {
            // SAFETY: no rows: nothing of src is read; each buffer valid
            // for its length.
            unsafe {
                cq4_pack_encoded_f32(
                    [0f32].as_ptr(),
                    0,
                    0,
                    1 << 32,
                    32,
                    packed.as_mut_ptr(),
                    4,
                    scales.as_mut_ptr(),
                    4,
                    null(),
                    c,
                )
            }
        };
        // The same empty matrix without a Hessian is fine.
        let plain = cq4_encoder_options_default();
        assert_eq!(pack(&plain, &mut packed, &mut scales), CQ4_OK);
        let c = options(&h, 0.05);
        assert_eq!(pack(&c, &mut packed, &mut scales), CQ4_ERR_SIZE_OVERFLOW);
        assert_eq!((packed, scales), ([CANARY_U8; 4], [CANARY_F32; 4]));
    }

    #[test]
    fn the_hessian_is_an_input_no_output_may_overlap() {
        let (rows, cols, g) = (2, 4, 4);
        let (w, h) = weights_and_hessian(rows, cols);
        // Room for the Hessian (16 f64), then 2 more f64: the packed bytes
        // (4) or the scales (2 f32) may lie in it.
        let mut room = h.clone();
        room.extend([0.0; 2]);
        let base = room.as_mut_ptr();
        let c = cq4_encoder_options {
            hessian: base,
            hessian_len: 18,
            ..options(&h, 0.05)
        };
        let want = Quantizer::new(g)
            .with_encoder(Encoder::error_compensating(&h))
            .pack_to_vec(&w, rows, cols)
            .unwrap();
        let mut packed = [CANARY_U8; 4];
        let mut scales = [CANARY_F32; 2];
        // SAFETY: every pointer valid for its length: outputs inside the
        // Hessian's 16 f64 must be refused unwritten; those in its unread
        // tail are written.
        unsafe {
            let call = |p: *mut u8, s: *mut f32| {
                cq4_pack_encoded_f32(w.as_ptr(), 8, rows, cols, g, p, 4, s, 2, null(), &c)
            };
            let st = call(base.add(15).cast(), scales.as_mut_ptr());
            assert_eq!(st, CQ4_ERR_OVERLAPPING_BUFFERS, "packed");
            let st = call(packed.as_mut_ptr(), base.add(15).cast());
            assert_eq!(st, CQ4_ERR_OVERLAPPING_BUFFERS, "scales");
            assert_eq!(&room[..16], &h[..]);
            assert_eq!((packed, scales), ([CANARY_U8; 4], [CANARY_F32; 2]));
            let st = call(base.add(16).cast(), base.add(17).cast());
            assert_eq!(st, CQ4_OK, "in the unread tail");
            let got = std::slice::from_raw_parts(base.add(16).cast::<u8>(), 4);
            assert_eq!(got, want.packed());
            let got = std::slice::from_raw_parts(base.add(17).cast::<f32>(), 2);
            assert_eq!(got, want.scales());
        }
    }

    #[test]
    fn bad_hessians_are_refused_last_and_unwritten() {
        let (rows, cols, g) = (2, 4, 4);
        let (w, h) = weights_and_hessian(rows, cols);
        let call = |h: &[f64], damping: f64| {
            untouched("", pack_c(0, &w, (rows, cols, g), 1, &options(h, damping)))
        };
        assert_eq!(call(&h, 0.05), CQ4_OK);
        let at = |i: usize, j: usize| i * cols + j;
        let changed = |i, j, v| {
            let mut h = h.clone();
            h[at(i, j)] = v;
            h
        };
        let tol = CQ4_HESSIAN_SYMMETRY_TOLERANCE * (h[at(0, 0)] * h[at(2, 2)]).sqrt();
        for (what, bad) in [
            ("NaN off the diagonal", changed(0, 3, f64::NAN)),
            ("NaN on it", changed(2, 2, f64::NAN)),
            ("infinite", changed(1, 2, f64::INFINITY)),
            ("negative diagonal", changed(3, 3, -1.0)),
            ("asymmetric", changed(2, 0, h[at(0, 2)] + 2.0 * tol)),
        ] {
            assert_eq!(call(&bad, 0.05), CQ4_ERR_BAD_HESSIAN, "{what}");
        }
        // Within the tolerance.
        assert_eq!(call(&changed(2, 0, h[at(0, 2)] + 0.5 * tol), 0.05), CQ4_OK);
        // Symmetric, finite, but indefinite: found once damped.
        let indefinite = [1f64, 2.0, 2.0, 1.0];
        let w2 = [1f32, -2.0, 0.5, 3.0];
        for damping in [0.0, 0.05] {
            let st = untouched(
                "",
                pack_c(0, &w2, (2, 2, 2), 1, &options(&indefinite, damping)),
            );
            assert_eq!(st, CQ4_ERR_BAD_HESSIAN, "damping {damping}");
        }
        // Enough damping makes it definite: 1 + 1.5 > 2.
        let st = pack_c(0, &w2, (2, 2, 2), 1, &options(&indefinite, 1.5)).0;
        assert_eq!(st, CQ4_OK);
        // Lengths are checked before values.
        let mut c = options(&changed(0, 3, f64::NAN), 0.05);
        c.hessian_len = 15;
        let st = untouched("", pack_c(0, &w, (rows, cols, g), 1, &c));
        assert_eq!(st, CQ4_ERR_INPUT_TOO_SHORT);
    }

    /// 0.2's struct, its own size declared.
    fn old(encoder: u32, importance: &[f32]) -> EncoderOptions02 {
        EncoderOptions02 {
            struct_size: size_of::<EncoderOptions02>() as u32,
            encoder,
            importance: if importance.is_empty() {
                null()
            } else {
                importance.as_ptr()
            },
            importance_len: importance.len(),
        }
    }

    #[test]
    fn the_struct_of_version_0_2_is_read_as_far_as_it_goes() {
        let (rows, cols, g) = (3, 16, 8);
        let (w, _) = weights_and_hessian(rows, cols);
        let weights: Vec<f32> = (0..cols).map(|i| (i % 4) as f32).collect();
        for (id, importance) in [(0, &[][..]), (1, &[][..]), (2, &[][..]), (2, &weights[..])] {
            let o = old(id, importance);
            let new = cq4_encoder_options {
                encoder: id,
                importance: o.importance,
                importance_len: o.importance_len,
                ..cq4_encoder_options_default()
            };
            let got = pack_c(
                0,
                &w,
                (rows, cols, g),
                1,
                (&o as *const EncoderOptions02).cast(),
            );
            let want = pack_c(0, &w, (rows, cols, g), 1, &new);
            assert_eq!(got.0, CQ4_OK, "{id}");
            assert_eq!((got.1, got.2), (want.1, want.2), "{id}");
        }
        // 0.2 had no Hessian.
        let o = old(EC, &[]);
        let st = untouched(
            "",
            pack_c(
                0,
                &w,
                (rows, cols, g),
                1,
                (&o as *const EncoderOptions02).cast(),
            ),
        );
        assert_eq!(st, CQ4_ERR_BAD_OPTIONS);
        // Neither size, nor one in between.
        for size in [
            0,
            4,
            size_of::<EncoderOptions02>() + 8,
            size_of::<cq4_encoder_options>() + 8,
        ] {
            let mut o = cq4_encoder_options_default();
            o.struct_size = size as u32;
            let st = untouched("", pack_c(0, &w, (rows, cols, g), 1, &o));
            assert_eq!(st, CQ4_ERR_BAD_OPTIONS, "{size}");
        }
    }

    #[test]
    fn the_0_2_struct_counts_as_its_own_bytes() {
        let src = [1f32, -2.0, 3.0, 0.5];
        // The struct, then (in the bytes this version's struct would take,
        // where its `hessian_len` is) the scales.
        let mut room = [0u64; 8];
        let base = room.as_mut_ptr();
        let scales_at = std::mem::offset_of!(cq4_encoder_options, hessian_len);
        assert!(scales_at >= size_of::<EncoderOptions02>());
        let mut packed = [CANARY_U8; 2];
        // SAFETY: `room` holds 64 bytes: the struct at its start and one
        // f32 past the bytes 0.2's struct declares.
        unsafe {
            base.cast::<EncoderOptions02>().write(old(1, &[]));
            let scales = base.cast::<u8>().add(scales_at).cast::<f32>();
            let call = |e: *const cq4_encoder_options, p: *mut u8| {
                cq4_pack_encoded_f32(src.as_ptr(), 4, 1, 4, 4, p, 2, scales, 1, null(), e)
            };
            assert_eq!(call(base.cast(), packed.as_mut_ptr()), CQ4_OK);
            assert_eq!(scales.read(), 3.0 / -8.0);
            // This version's struct: the scales now lie inside.
            let new = cq4_encoder_options {
                encoder: 1,
                ..cq4_encoder_options_default()
            };
            base.cast::<cq4_encoder_options>().write(new);
            scales.write(CANARY_F32);
            packed = [CANARY_U8; 2];
            let st = call(base.cast(), packed.as_mut_ptr());
            assert_eq!(st, CQ4_ERR_OVERLAPPING_BUFFERS);
            assert_eq!((scales.read(), packed), (CANARY_F32, [CANARY_U8; 2]));
        }
    }

    /// 0.2's struct at the very end of readable memory: a read of one byte
    /// more (this version's fields) would fault.
    /// (Miri and ASan find such a read in the tests above, whose struct is
    /// a 0.2-sized object of its own.)
    #[cfg(all(unix, not(miri)))]
    #[test]
    fn nothing_past_the_0_2_struct_is_read() {
        // SAFETY: plain libc calls on a mapping of our own, unmapped at
        // the end; the struct lies in its first, readable page.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let map = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let guard = map.cast::<u8>().add(page);
            assert_eq!(libc::mprotect(guard.cast(), page, libc::PROT_NONE), 0);
            let n = size_of::<EncoderOptions02>();
            let at = guard.sub(n).cast::<EncoderOptions02>();
            let weights = [1f32, 2.0, 0.5, 1.0];
            at.write(old(2, &weights));
            let src = [1f32, -2.0, 3.0, 0.5];
            let (mut packed, mut scales) = ([0u8; 2], [0f32; 1]);
            let st = cq4_pack_encoded_f32(
                src.as_ptr(),
                4,
                1,
                4,
                4,
                packed.as_mut_ptr(),
                2,
                scales.as_mut_ptr(),
                1,
                null(),
                at.cast(),
            );
            assert_eq!(st, CQ4_OK);
            let want = Quantizer::new(4)
                .with_encoder(Encoder::Search {
                    importance: Some(&weights),
                })
                .pack_to_vec(&src, 1, 4)
                .unwrap();
            assert_eq!((&packed[..], &scales[..]), (want.packed(), want.scales()));
            assert_eq!(libc::munmap(map, 2 * page), 0);
        }
    }
}
