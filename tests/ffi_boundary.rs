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
