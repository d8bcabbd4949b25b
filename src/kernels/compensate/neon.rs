//! The block update with NEON: 16 columns of 4 rows in 16 registers
//! across the block, each tile of `U` loaded once for the 4 rows. Each
//! element gets the reference's multiply then subtract, in its order.

use std::arch::aarch64::*;

use super::scalar::update_by_tiles;
use super::BlockUpdate;

const ROWS: usize = 4;

/// [`super::scalar::update`] with NEON.
///
/// # Safety
/// The CPU supports NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn update(b: BlockUpdate) {
    update_by_tiles(b, ROWS, 16, |b, r, j| {
        // SAFETY: the caller's promise.
        unsafe { tile(b, r, j) }
    });
}

/// Columns `j..j + 16` of rows `r..r + 4`.
///
/// # Safety
/// The CPU supports NEON.
#[target_feature(enable = "neon")]
unsafe fn tile(b: &mut BlockUpdate, r: usize, j: usize) {
    let n = b.cols;
    let mut acc = [[vdupq_n_f32(0.0); 4]; ROWS];
    for (k, acc) in acc.iter_mut().enumerate() {
        let w = &b.w[(r + k) * n + j..][..16];
        // SAFETY: `w` holds 16 f32.
        *acc = std::array::from_fn(|q| unsafe { vld1q_f32(w[4 * q..].as_ptr()) });
    }
    for (i, a) in b.block.clone().enumerate() {
        let u = &b.u[a * n + j..][..16];
        // SAFETY: `u` holds 16 f32.
        let u: [float32x4_t; 4] =
            std::array::from_fn(|q| unsafe { vld1q_f32(u[4 * q..].as_ptr()) });
        for (k, acc) in acc.iter_mut().enumerate() {
            let e = vdupq_n_f32(b.errors[(r + k) * b.errors_stride + i]);
            for (acc, &u) in acc.iter_mut().zip(&u) {
                // Not vfmsq: the reference rounds the product first.
                *acc = vsubq_f32(*acc, vmulq_f32(e, u));
            }
        }
    }
    for (k, acc) in acc.iter().enumerate() {
        let w = &mut b.w[(r + k) * n + j..][..16];
        for (q, &acc) in acc.iter().enumerate() {
            // SAFETY: `w` holds 16 f32.
            unsafe { vst1q_f32(w[4 * q..].as_mut_ptr(), acc) };
        }
    }
}
