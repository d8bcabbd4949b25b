//! The block update with AVX2: 16 columns of 4 rows in 8 registers
//! across the block, each tile of `U` loaded once for the 4 rows. Each
//! element gets the reference's multiply then subtract, in its order.

use std::arch::x86_64::*;

use super::scalar::update_by_tiles;
use super::BlockUpdate;

const ROWS: usize = 4;

/// [`super::scalar::update`] with AVX2.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn update(b: BlockUpdate) {
    update_by_tiles(b, ROWS, 16, |b, r, j| {
        // SAFETY: the caller's promise.
        unsafe { tile(b, r, j) }
    });
}

/// Columns `j..j + 16` of rows `r..r + 4`.
#[target_feature(enable = "avx2")]
unsafe fn tile(b: &mut BlockUpdate, r: usize, j: usize) {
    let n = b.cols;
    let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
    for (k, acc) in acc.iter_mut().enumerate() {
        let w = &b.w[(r + k) * n + j..][..16];
        // SAFETY: `w` holds 16 f32.
        *acc = unsafe {
            [
                _mm256_loadu_ps(w.as_ptr()),
                _mm256_loadu_ps(w[8..].as_ptr()),
            ]
        };
    }
    for (i, a) in b.block.clone().enumerate() {
        let u = &b.u[a * n + j..][..16];
        // SAFETY: `u` holds 16 f32.
        let u = unsafe {
            [
                _mm256_loadu_ps(u.as_ptr()),
                _mm256_loadu_ps(u[8..].as_ptr()),
            ]
        };
        for (k, acc) in acc.iter_mut().enumerate() {
            let e = _mm256_set1_ps(b.errors[(r + k) * b.errors_stride + i]);
            acc[0] = _mm256_sub_ps(acc[0], _mm256_mul_ps(e, u[0]));
            acc[1] = _mm256_sub_ps(acc[1], _mm256_mul_ps(e, u[1]));
        }
    }
    for (k, acc) in acc.iter().enumerate() {
        let w = &mut b.w[(r + k) * n + j..][..16];
        // SAFETY: `w` holds 16 f32.
        unsafe {
            _mm256_storeu_ps(w.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(w[8..].as_mut_ptr(), acc[1]);
        }
    }
}
