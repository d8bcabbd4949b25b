//! aarch64 NEON fused kernels: `exact` for group sizes that are multiples
//! of 16 (a span of 8 packed bytes never straddles a group), `int8` for
//! multiples of 32 (a span of 16 bytes). A packed byte holds the nibbles of
//! an even and an odd column, so the activations are read with
//! de-interleaving loads (`ld2`) instead of the nibbles being zipped.
//!
//! `exact` leaves the columns after its last whole span to the scalar
//! twin. `int8` gives the scalar twin's bits: each group's dot is an exact
//! integer (widening multiplies, or `sdot` with FEAT_DotProd; the last
//! group's columns after its whole spans added one by one), then the same
//! f32 steps, group by group.

use std::arch::aarch64::*;
use std::ops::Range;

use super::{scalar, Activations, BATCH_TILE};
use crate::kernels::simd::neon::sdot;

/// Columns of one `exact` span: 8 packed bytes.
const SPAN: usize = 16;

/// Columns whose products are summed apart (four accumulators of four
/// lanes, so 16 roundings per term) before joining an output's sum.
const CHUNK: usize = 256;

/// Chunk sums gathered before joining the total: a term then meets about
/// `CHUNK / 16 + CHUNKS_PER_BLOCK + cols / (CHUNK * CHUNKS_PER_BLOCK)`
/// roundings, within the exact bound's `4 sqrt(cols) + 4`.
const CHUNKS_PER_BLOCK: usize = 64;

/// Whether the exact kernel has a fast path for `group_size`.
pub(super) fn exact_fits(group_size: usize) -> bool {
    group_size.is_multiple_of(SPAN)
}

/// `exact` precision, as [`scalar::row_exact`] up to the order of the f32
/// sums: each weight `(u - 8) * scale` as unpack computes it, fused
/// multiply-adds with the activations. With several activation rows, each
/// chunk is decoded once and read by all of them (at most [`BATCH_TILE`],
/// else this panics).
///
/// # Safety
/// The CPU supports NEON; `exact_fits(group_size)`; `acts` is f32 (else
/// this panics).
#[target_feature(enable = "neon")]
pub(super) unsafe fn row_exact(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    cols: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let (natural, _) = acts.exact();
    let whole = cols / SPAN * SPAN;
    let mut sums = [RunningSum::default(); BATCH_TILE];
    let sums = &mut sums[..out.len()];
    let mut decoded = [0f32; CHUNK];
    for (n, first) in (0..whole).step_by(CHUNK).enumerate() {
        let chunk = first..(first + CHUNK).min(whole);
        if let [sum] = sums {
            let x = &natural[chunk.clone()];
            sum.add(n, dot_chunk(packed, scales, group_size, x, chunk));
        } else {
            let decoded = &mut decoded[..chunk.len()];
            decode_chunk(packed, scales, group_size, chunk.clone(), decoded);
            for (b, sum) in sums.iter_mut().enumerate() {
                let x = &natural[b * cols + chunk.start..b * cols + chunk.end];
                sum.add(n, dot_decoded(decoded, x));
            }
        }
    }
    for (b, (y, sum)) in out.iter_mut().zip(sums).enumerate() {
        let x = &natural[b * cols..(b + 1) * cols];
        *y = sum.value() + scalar::dot_exact(packed, scales, group_size, x, whole..cols);
    }
}

/// One output's sum: chunk sums gather in `block`, which joins `total`
/// every [`CHUNKS_PER_BLOCK`] chunks.
#[derive(Clone, Copy, Default)]
struct RunningSum {
    block: f32,
    total: f32,
}

impl RunningSum {
    /// Adds the sum of chunk `n` (chunks come in order).
    fn add(&mut self, n: usize, chunk_sum: f32) {
        if n.is_multiple_of(CHUNKS_PER_BLOCK) {
            self.total += self.block;
            self.block = 0.0;
        }
        self.block += chunk_sum;
    }

    fn value(self) -> f32 {
        self.total + self.block
    }
}

/// The packed bytes of each span of `columns` (whole spans, inside the
/// row's whole spans) with its group's scale, the group followed span by
/// span (no division per group: small groups are common).
fn spans<'a>(
    packed: &'a [u8],
    scales: &'a [f32],
    group_size: usize,
    columns: Range<usize>,
) -> impl Iterator<Item = (&'a [u8; 8], f32)> + 'a {
    // Column c sits in byte c / 2 (the group size is even).
    let bytes = packed[columns.start / 2..columns.end / 2]
        .as_chunks::<8>()
        .0;
    let per_group = group_size / SPAN;
    let mut k = columns.start / group_size;
    let mut left = per_group - columns.start / SPAN % per_group;
    bytes.iter().map(move |bytes| {
        let scale = scales[k];
        left -= 1;
        if left == 0 {
            (k, left) = (k + 1, per_group);
        }
        (bytes, scale)
    })
}

/// The 16 weights of 8 packed bytes inside one group, each `(u - 8) *
/// scale` as unpack decodes it, in the lanes of two `ld2` loads of their
/// activations: columns 0, 2, 4, 6; 1, 3, 5, 7; 8, 10, 12, 14; 9, 11, 13, 15.
#[inline]
#[target_feature(enable = "neon")]
fn decode16(bytes: &[u8; 8], scale: f32) -> [float32x4_t; 4] {
    // SAFETY: `bytes` holds 8 bytes.
    let packed = unsafe { vld1_u8(bytes.as_ptr()) };
    let eight = vdup_n_u8(8);
    // u - 8 widened to 16 bits: the wrapped u16 difference is the i16 one.
    let even = vreinterpretq_s16_u16(vsubl_u8(vand_u8(packed, vdup_n_u8(0xF)), eight));
    let odd = vreinterpretq_s16_u16(vsubl_u8(vshr_n_u8::<4>(packed), eight));
    [
        vmovl_s16(vget_low_s16(even)),
        vmovl_s16(vget_low_s16(odd)),
        vmovl_high_s16(even),
        vmovl_high_s16(odd),
    ]
    .map(|u| vmulq_n_f32(vcvtq_f32_s32(u), scale))
}

/// The sum of the lanes of four accumulators.
#[inline]
#[target_feature(enable = "neon")]
fn sum4(acc: [float32x4_t; 4]) -> f32 {
    vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ))
}

/// `sum(x * w)` over `columns` (whole spans) of one weight row, decoding
/// straight into the accumulators; `x` holds those columns' activations.
#[inline]
#[target_feature(enable = "neon")]
fn dot_chunk(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    x: &[f32],
    columns: Range<usize>,
) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 4];
    for ((bytes, scale), xs) in
        spans(packed, scales, group_size, columns).zip(x.as_chunks::<SPAN>().0)
    {
        let w = decode16(bytes, scale);
        // SAFETY: `xs` holds 16 f32.
        let (low, high) = unsafe { (vld2q_f32(xs.as_ptr()), vld2q_f32(xs.as_ptr().add(8))) };
        acc[0] = vfmaq_f32(acc[0], w[0], low.0);
        acc[1] = vfmaq_f32(acc[1], w[1], low.1);
        acc[2] = vfmaq_f32(acc[2], w[2], high.0);
        acc[3] = vfmaq_f32(acc[3], w[3], high.1);
    }
    sum4(acc)
}

/// The weights of `columns` (whole spans) of one row into `out`, in
/// natural order.
#[inline]
#[target_feature(enable = "neon")]
fn decode_chunk(
    packed: &[u8],
    scales: &[f32],
    group_size: usize,
    columns: Range<usize>,
    out: &mut [f32],
) {
    let out = out.as_chunks_mut::<SPAN>().0;
    for ((bytes, scale), o) in spans(packed, scales, group_size, columns).zip(out) {
        let w = decode16(bytes, scale);
        // SAFETY: `o` holds 16 f32; `st2` interleaves the even and odd
        // columns back into natural order.
        unsafe {
            vst2q_f32(o.as_mut_ptr(), float32x4x2_t(w[0], w[1]));
            vst2q_f32(o.as_mut_ptr().add(8), float32x4x2_t(w[2], w[3]));
        }
    }
}

/// `sum(w * x)` over decoded weights (whole spans).
#[inline]
#[target_feature(enable = "neon")]
fn dot_decoded(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (w, x) in w.as_chunks::<SPAN>().0.iter().zip(x.as_chunks::<SPAN>().0) {
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: both hold 16 f32; lanes 4i..4i + 4.
            *acc = unsafe {
                vfmaq_f32(
                    *acc,
                    vld1q_f32(w.as_ptr().add(4 * i)),
                    vld1q_f32(x.as_ptr().add(4 * i)),
                )
            };
        }
    }
    sum4(acc)
}

/// Columns of one `int8` span: 16 packed bytes.
const SPAN8: usize = 32;

/// Spans decoded at a time and read by every activation row.
const PIECE: usize = 16;

/// Whether the int8 kernels have a fast path for `group_size`.
pub(super) fn int8_fits(group_size: usize) -> bool {
    group_size.is_multiple_of(SPAN8)
}

/// `acc` plus every product of a span's signed nibbles `w` (even columns,
/// odd columns) with its activations `x` (even, odd), over the lanes:
/// exactly `sum((u - 8) * q)`. `smull`/`smlal` into 16-bit lanes (4
/// products each, at most 4 * 8 * 128 in magnitude), pairwise added into
/// 32 bits.
#[inline]
#[target_feature(enable = "neon")]
fn dot_widening(acc: int32x4_t, [even, odd]: [int8x16_t; 2], x: int8x16x2_t) -> int32x4_t {
    let p = vmull_s8(vget_low_s8(even), vget_low_s8(x.0));
    let p = vmlal_high_s8(p, even, x.0);
    let p = vmlal_s8(p, vget_low_s8(odd), vget_low_s8(x.1));
    let p = vmlal_high_s8(p, odd, x.1);
    vpadalq_s16(acc, p)
}

/// [`dot_widening`] in two `sdot`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn dot_sdot(acc: int32x4_t, [even, odd]: [int8x16_t; 2], x: int8x16x2_t) -> int32x4_t {
    // SAFETY: this function's target features.
    unsafe { sdot(sdot(acc, even, x.0), odd, x.1) }
}

/// The nibbles of 16 packed bytes as `u - 8`: even columns, odd columns.
#[inline]
#[target_feature(enable = "neon")]
fn signed_nibbles(bytes: &[u8; 16]) -> [int8x16_t; 2] {
    // SAFETY: `bytes` holds 16 bytes.
    let packed = unsafe { vld1q_u8(bytes.as_ptr()) };
    let eight = vdupq_n_u8(8);
    let even = vsubq_u8(vandq_u8(packed, vdupq_n_u8(0xF)), eight);
    let odd = vsubq_u8(vshrq_n_u8::<4>(packed), eight);
    [vreinterpretq_s8_u8(even), vreinterpretq_s8_u8(odd)]
}

/// The exact `sum((u - 8) * q)` of group `k`'s columns after its whole
/// spans (only the last group of a row has any), `x` the group's
/// activations.
fn leftover_dot(packed: &[u8], group_size: usize, k: usize, x: &[i8]) -> i32 {
    let whole = x.len() / SPAN8 * SPAN8;
    let first = k * group_size + whole;
    let u = |i: usize| scalar::nibble(packed, group_size, first + i) as i32 - 8;
    x[whole..]
        .iter()
        .enumerate()
        .map(|(i, &q)| u(i) * q as i32)
        .sum()
}

/// The group's term, as [`scalar::dot_int8`] adds it.
#[inline]
fn group_term(w_scale: f32, x_scale: f32, dot: i32) -> f32 {
    scalar::group_scale(w_scale, x_scale) * dot as f32
}

/// Writes the int8 kernel `$name`, compiled for `$features`, whose span
/// dot is `$dot` (a function of those features, as [`dot_widening`]):
/// span by span, the exact integer dot of a group, then `acc +=
/// group_scale * dot` in f32, bit for bit [`scalar::row_int8`]. With
/// several activation rows (at most [`BATCH_TILE`], else it panics), each
/// piece of the row is decoded once.
macro_rules! row_int8 {
    ($(#[$doc:meta])* $name:ident, $features:literal, $dot:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU supports the function's target features;
        /// `int8_fits(group_size)`; `acts` is quantized (else this panics).
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $name(
            packed: &[u8],
            scales: &[f32],
            group_size: usize,
            cols: usize,
            acts: &Activations,
            out: &mut [f32],
        ) {
            let q = acts.int8();
            let per_group = group_size / SPAN8;
            // The row's whole spans; column c sits in byte c / 2.
            let spans = packed[..cols / SPAN8 * (SPAN8 / 2)].as_chunks::<16>().0;
            let mut acc = [0f32; BATCH_TILE];
            let acc = &mut acc[..out.len()];
            let mut dots = [vdupq_n_s32(0); BATCH_TILE];
            let dots = &mut dots[..out.len()];
            let mut decoded = [[vdupq_n_s8(0); 2]; PIECE];
            for (p, piece) in spans.chunks(PIECE).enumerate() {
                let at = Spans { first: p * PIECE, per_group };
                if let ([acc], [dot]) = (&mut *acc, &mut *dots) {
                    let x = (q.row(0), q.scales_row(0));
                    add_spans(acc, dot, x, scales, &at, piece.iter().map(|w| signed_nibbles(w)));
                } else {
                    for (w, bytes) in decoded.iter_mut().zip(piece) {
                        *w = signed_nibbles(bytes);
                    }
                    for (b, (acc, dot)) in acc.iter_mut().zip(dots.iter_mut()).enumerate() {
                        let x = (q.row(b), q.scales_row(b));
                        add_spans(acc, dot, x, scales, &at, decoded.iter().copied());
                    }
                }
            }
            // The last group, where the row ends inside it.
            if !cols.is_multiple_of(group_size) {
                let k = scales.len() - 1;
                for (b, (acc, dot)) in acc.iter_mut().zip(dots.iter()).enumerate() {
                    let x = &q.row(b)[k * group_size..];
                    let dot = vaddvq_s32(*dot) + leftover_dot(packed, group_size, k, x);
                    *acc += group_term(scales[k], q.scale(b, k), dot);
                }
            }
            out.copy_from_slice(acc);

            /// Continues one activation row's `acc` and the integer `dot`
            /// of its current group over the spans from `at`, whose signed
            /// nibbles are `weights`; `x` is the row's values and
            /// scales, `w_scales` the weight row's.
            #[inline]
            #[target_feature(enable = $features)]
            fn add_spans(
                acc: &mut f32,
                dot: &mut int32x4_t,
                (x, x_scales): (&[i8], &[f32]),
                w_scales: &[f32],
                at: &Spans,
                weights: impl Iterator<Item = [int8x16_t; 2]>,
            ) {
                let x = x[at.first * SPAN8..].as_chunks::<SPAN8>().0;
                let mut k = at.first / at.per_group;
                let mut left = at.per_group - at.first % at.per_group;
                for (w, xs) in weights.zip(x) {
                    // SAFETY: `xs` holds 32 values.
                    let xs = unsafe { vld2q_s8(xs.as_ptr()) };
                    *dot = $dot(*dot, w, xs);
                    left -= 1;
                    if left == 0 {
                        *acc += group_term(w_scales[k], x_scales[k], vaddvq_s32(*dot));
                        *dot = vdupq_n_s32(0);
                        (k, left) = (k + 1, at.per_group);
                    }
                }
            }
        }
    };
}

/// Where spans of a row start: at span `first`, with `per_group` spans
/// to a group.
struct Spans {
    first: usize,
    per_group: usize,
}

row_int8!(
    /// `int8` precision with widening multiplies.
    row_int8,
    "neon",
    dot_widening
);

row_int8!(
    /// `int8` precision with `sdot` (FEAT_DotProd).
    row_int8_dotprod,
    "neon,dotprod",
    dot_sdot
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{scalar, Activations, Precision, WeightRows};
    use crate::kernels::{product_kernel, quantize_activations, Kernel};
    use crate::layout::Layout;

    /// Weight scales: ordinary, of both signs, or so large that `w_scale
    /// * x_scale` overflows.
    fn weight_scale() -> impl Strategy<Value = f32> {
        prop_oneof![8 => -2f32..2.0, 1 => Just(1e30f32), 1 => Just(-f32::MAX / 16.0)]
    }

    fn activation() -> impl Strategy<Value = f32> {
        prop_oneof![16 => -3f32..3.0, 2 => Just(0f32), 1 => -1e12f32..1e12]
    }

    /// A row of `cols` at `g` with `batch` activation rows: packed
    /// bytes, scales, activations.
    fn case() -> impl Strategy<Value = (Layout, Vec<u8>, Vec<f32>, Vec<f32>, usize)> {
        let g = prop::sample::select(vec![32usize, 64, 96, 160, 1024]);
        (g, 1usize..1300, 1usize..5).prop_flat_map(|(g, cols, batch)| {
            let layout = Layout::new(1, cols, g).unwrap();
            (
                proptest::collection::vec(any::<u8>(), layout.packed_len),
                proptest::collection::vec(weight_scale(), layout.scales_len),
                proptest::collection::vec(activation(), batch * cols),
                prop::option::of(0..batch * cols),
            )
                .prop_map(move |(packed, scales, mut x, nan_at)| {
                    if let Some(at) = nan_at {
                        x[at] = f32::NAN;
                    }
                    (layout, packed, scales, x, batch)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every NEON int8 kernel gives the scalar twin's bits: ragged
        /// last groups, groups of several pieces, one activation row and
        /// several, a NaN group, overflowing scale products.
        #[test]
        fn int8_is_the_scalar_twins_bits((layout, packed, scales, x, batch) in case()) {
            let (cols, g) = (layout.cols, layout.group_size);
            let rows = WeightRows { packed: &packed, scales: &scales, layout: &layout };
            for kernel in [Kernel::Neon, Kernel::NeonDotprod, Kernel::NeonI8mm] {
                if !kernel.is_supported() {
                    continue;
                }
                let q = quantize_activations(kernel, &x, batch, cols, g);
                let mut want = vec![0f32; batch];
                scalar::row_int8(&packed, &scales, g, &q, &mut want);
                let mut got = vec![f32::NAN; batch];
                // SAFETY: the kernel came from this CPU's table for g, the
                // activations are int8, `got` holds one value per row.
                unsafe { product_kernel(kernel, Precision::Int8, g).run(&rows, &Activations::Int8(&q), &mut got) };
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&got), bits(&want), "{:?}", kernel);
            }
        }
    }
}
