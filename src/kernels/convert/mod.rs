//! Pack from and unpack to f16 and bf16 with the SIMD kernels: a chunk of
//! whole groups is widened to f32 on the stack and packed by the kernel's
//! f32 twin, or unpacked by it and then narrowed.
//!
//! The reference for the conversions is `half` itself (`Element::to_f32`,
//! `Element::from_f32`); each target's twins below must equal it bit for
//! bit, NaN payloads included, so the bytes are those of the scalar
//! reference run on `T`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use half::{bf16, f16};

use super::entry::Entry;
#[cfg(target_arch = "aarch64")]
use super::pack::neon::Neon;
use super::pack::{self, multiple_of, pack_row_with, unpack_row_with, FullGroups, RowKernels};
#[cfg(target_arch = "x86_64")]
use super::pack::{avx2::Avx2, avx512::Avx512};
use crate::element::Element;

/// f32 elements of the stack buffer: 4 KiB, which stays in L1 beside the
/// source and destination chunks.
const CHUNK: usize = 1024;

/// The bit `half` sets in a NaN's f32 bits to quiet it when widening or
/// narrowing bf16.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
const QUIET: u32 = 0x0040_0000;

/// Conversions between `T` and f32 for one SIMD kernel, equal element by
/// element to `T::to_f32` (widen) and `T::from_f32` (narrow).
pub(crate) trait Convert<T>: FullGroups {
    /// Writes `src` as f32 to `dst` (as long as `src`).
    ///
    /// # Safety
    /// The CPU runs the kernel and what the conversions need beyond it
    /// (the table checks: F16C for AVX2's f16).
    unsafe fn widen(src: &[T], dst: &mut [f32]);

    /// Writes `src` rounded to `T` to `dst` (as long as `src`).
    ///
    /// # Safety
    /// As [`Convert::widen`].
    unsafe fn narrow(src: &[f32], dst: &mut [T]);
}

/// `K`'s row kernels for `T`, for group sizes that are multiples of
/// `K::LANES`.
const fn converted<T: Element, K: Convert<T>>() -> RowKernels<T> {
    RowKernels {
        pack: pack_row::<T, K>,
        unpack: unpack_row::<T, K>,
        // The narrowing pass writes half-width values from L1; not worth
        // a streaming twin.
        unpack_streaming: unpack_row::<T, K>,
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_F16: Entry<RowKernels<f16>> = Entry::simd(
    multiple_of::<{ Avx2::LANES }>,
    converted::<f16, Avx2>(),
    &pack::SCALAR_F16,
);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX2_BF16: Entry<RowKernels<bf16>> = Entry::simd(
    multiple_of::<{ Avx2::LANES }>,
    converted::<bf16, Avx2>(),
    &pack::SCALAR_BF16,
);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_F16: Entry<RowKernels<f16>> = Entry::simd(
    multiple_of::<{ Avx512::LANES }>,
    converted::<f16, Avx512>(),
    &AVX2_F16,
);
#[cfg(target_arch = "x86_64")]
pub(crate) static AVX512_BF16: Entry<RowKernels<bf16>> = Entry::simd(
    multiple_of::<{ Avx512::LANES }>,
    converted::<bf16, Avx512>(),
    &AVX2_BF16,
);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_F16: Entry<RowKernels<f16>> = Entry::simd(
    multiple_of::<{ Neon::LANES }>,
    converted::<f16, Neon>(),
    &pack::SCALAR_F16,
);
#[cfg(target_arch = "aarch64")]
pub(crate) static NEON_BF16: Entry<RowKernels<bf16>> = Entry::simd(
    multiple_of::<{ Neon::LANES }>,
    converted::<bf16, Neon>(),
    &pack::SCALAR_BF16,
);

/// A buffer of whole groups: on the stack, or one group on the heap where
/// a group is longer than [`CHUNK`].
fn chunk_buffer<'a>(
    stack: &'a mut [f32; CHUNK],
    heap: &'a mut Vec<f32>,
    g: usize,
) -> &'a mut [f32] {
    if g <= CHUNK {
        &mut stack[..CHUNK / g * g]
    } else {
        heap.resize(g, 0.0);
        heap
    }
}

/// Packs a row of `T`: chunk by chunk, widened into the buffer, then
/// `K`'s f32 row kernel (the reference for the row's ragged last group).
///
/// # Safety
/// The CPU runs `K` and its conversions of `T`, and
/// `group_size % K::LANES == 0`.
unsafe fn pack_row<T: Element, K: Convert<T>>(
    src: &[T],
    g: usize,
    packed: &mut [u8],
    scales: &mut [f32],
) {
    let (mut stack, mut heap) = ([0f32; CHUNK], Vec::new());
    let buf = chunk_buffer(&mut stack, &mut heap, g);
    // `g` is even, so a chunk of whole groups packs to `len / 2` bytes;
    // only the last chunk may end in a ragged group.
    let chunks = src
        .chunks(buf.len())
        .zip(packed.chunks_mut(buf.len() / 2))
        .zip(scales.chunks_mut(buf.len() / g));
    for ((src, packed), scales) in chunks {
        let wide = &mut buf[..src.len()];
        // SAFETY: forwarded from the caller.
        unsafe {
            K::widen(src, wide);
            pack_row_with::<K>(wide, g, packed, scales);
        }
    }
}

/// Unpacks a row to `T` as [`pack_row`] packs it: `K`'s f32 row kernel into
/// the buffer, then narrowed.
///
/// # Safety
/// As [`pack_row`].
unsafe fn unpack_row<T: Element, K: Convert<T>>(
    packed: &[u8],
    scales: &[f32],
    g: usize,
    dst: &mut [T],
) {
    let (mut stack, mut heap) = ([0f32; CHUNK], Vec::new());
    let buf = chunk_buffer(&mut stack, &mut heap, g);
    let chunks = dst
        .chunks_mut(buf.len())
        .zip(packed.chunks(buf.len() / 2))
        .zip(scales.chunks(buf.len() / g));
    for ((dst, packed), scales) in chunks {
        let wide = &mut buf[..dst.len()];
        // SAFETY: forwarded from the caller.
        unsafe {
            unpack_row_with::<K, false>(packed, scales, g, wide);
            K::narrow(wide, dst);
        }
    }
}

/// The elements after the last whole register, converted by `half`.
#[inline]
fn convert_rest<A: Copy, B>(src: &[A], dst: &mut [B], convert: impl Fn(A) -> B) {
    for (out, &x) in dst.iter_mut().zip(src) {
        *out = convert(x);
    }
}

#[cfg(test)]
mod tests {
    //! Each target's conversions against `half`, on every 16-bit pattern
    //! and on f32 patterns that cover every rounding case of the narrowing.

    use super::*;
    use crate::kernels::Kernel;
    use half::f16;

    /// Every f32 whose high 16 bits are anything and whose low 16 bits are
    /// one of the patterns that decide rounding to f16 or bf16 (ties, just
    /// above and below them, sticky bits), so every exponent, both signs,
    /// NaN and Inf, subnormals and overflow all appear.
    fn narrowing_cases() -> Vec<f32> {
        const LOW: [u32; 20] = [
            0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x5000, 0x6001, 0x7FFF,
            0x8000, 0x8001, 0x9000, 0xA000, 0xB000, 0xC000, 0xE000, 0xF000, 0xFFFF,
        ];
        (0..=u16::MAX as u32)
            .flat_map(|high| LOW.map(|low| f32::from_bits(high << 16 | low)))
            .collect()
    }

    /// `K`'s widening of all 65536 patterns and narrowing of `narrow` equal
    /// `half`'s, on lengths that leave a ragged remainder.
    fn check<T: Element + PartialEq + std::fmt::Debug, K: Convert<T>>(
        from_bits: fn(u16) -> T,
        to_bits: fn(T) -> u16,
        narrow: &[f32],
    ) {
        let all: Vec<T> = (0..=u16::MAX).map(from_bits).collect();
        for len in [all.len(), all.len() - 3] {
            let mut wide = vec![0f32; len];
            // SAFETY: the callers check that the CPU runs `K`'s conversions.
            unsafe { K::widen(&all[..len], &mut wide) };
            for (x, w) in all.iter().zip(&wide) {
                assert_eq!(
                    w.to_bits(),
                    x.to_f32().to_bits(),
                    "widen {:#06x}",
                    to_bits(*x)
                );
            }
        }
        for len in [narrow.len(), narrow.len() - 5] {
            let mut out = vec![T::from_f32(0.0); len];
            // SAFETY: as above.
            unsafe { K::narrow(&narrow[..len], &mut out) };
            for (x, o) in narrow.iter().zip(&out) {
                assert_eq!(
                    to_bits(*o),
                    to_bits(T::from_f32(*x)),
                    "narrow {:#010x}",
                    x.to_bits()
                );
            }
        }
    }

    /// `half` converts f16 with F16C (or FCVT) where the CPU has it and in
    /// software elsewhere; both give the same bits, so the twins' results
    /// do not depend on which path `half` took.
    #[test]
    fn half_hardware_and_software_f16_agree() {
        for h in (0..=u16::MAX).map(f16::from_bits) {
            assert_eq!(h.to_f32().to_bits(), h.to_f32_const().to_bits());
        }
        for x in narrowing_cases() {
            assert_eq!(f16::from_f32(x).to_bits(), f16::from_f32_const(x).to_bits());
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn check_target<K: Convert<f16> + Convert<bf16>>(
        kernel: Kernel,
        f16_needs_f16c: bool,
        narrow: &[f32],
    ) {
        if !kernel.is_supported() {
            return;
        }
        if !f16_needs_f16c || crate::kernels::cpu::has_f16c() {
            check::<f16, K>(f16::from_bits, f16::to_bits, narrow);
        }
        check::<bf16, K>(bf16::from_bits, bf16::to_bits, narrow);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_conversions_equal_half() {
        let narrow = narrowing_cases();
        check_target::<Avx512>(Kernel::Avx512, false, &narrow);
        check_target::<Avx2>(Kernel::Avx2, true, &narrow);
    }

    #[cfg(target_arch = "aarch64")]
    #[test]
    fn neon_conversions_equal_half() {
        if Kernel::Neon.is_supported() {
            let narrow = narrowing_cases();
            check::<f16, Neon>(f16::from_bits, f16::to_bits, &narrow);
            check::<bf16, Neon>(bf16::from_bits, bf16::to_bits, &narrow);
        }
    }

    /// Every f32 pattern; slow, so run on demand:
    /// `cargo test --release --lib -- --ignored every_f32`.
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[ignore]
    fn every_f32_narrows_as_half_does() {
        let step = 1u64 << 24;
        for start in (0..1u64 << 32).step_by(step as usize) {
            let narrow: Vec<f32> = (start..start + step)
                .map(|b| f32::from_bits(b as u32))
                .collect();
            check_target::<Avx512>(Kernel::Avx512, false, &narrow);
            check_target::<Avx2>(Kernel::Avx2, true, &narrow);
        }
    }
}
