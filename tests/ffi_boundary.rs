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
