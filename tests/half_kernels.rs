//! Packing from and unpacking to f16 and bf16: every kernel this CPU runs
//! against the scalar kernel, bit for bit, on random bit patterns (NaNs of
//! both kinds, Inf, subnormals), adversarial values and every 16-bit
//! pattern, with ragged groups and rows long enough for several chunks.

mod common;

use cortex_q4::{Element, Kernel, Layout, Options, Quantizer};
use half::{bf16, f16};
use proptest::prelude::*;

/// f16 or bf16, seen as their bits.
trait Bits: Element + std::fmt::Debug {
    const NAME: &'static str;
    /// Patterns that never raise a group's largest magnitude: signed
    /// zeros, subnormals, the smallest normal, quiet and signaling NaNs.
    const TAME: [u16; 13];
    /// The largest finite values and the infinities.
    const WILD: [u16; 4];
    fn from_bits(bits: u16) -> Self;
    fn to_bits(self) -> u16;
}

impl Bits for f16 {
    const NAME: &'static str = "f16";
    const TAME: [u16; 13] = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7C01, 0xFC01, 0x7D00, 0x7E00,
        0xFE00, 0x7FFF,
    ];
    const WILD: [u16; 4] = [0x7BFF, 0xFBFF, 0x7C00, 0xFC00];
    fn from_bits(bits: u16) -> Self {
        f16::from_bits(bits)
    }
    fn to_bits(self) -> u16 {
        f16::to_bits(self)
    }
}

impl Bits for bf16 {
    const NAME: &'static str = "bf16";
    const TAME: [u16; 13] = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x807F, 0x0080, 0x7F81, 0xFF81, 0x7FA0, 0x7FC0,
        0xFFC0, 0x7FFF,
    ];
    const WILD: [u16; 4] = [0x7F7F, 0xFF7F, 0x7F80, 0xFF80];
    fn from_bits(bits: u16) -> Self {
        bf16::from_bits(bits)
    }
    fn to_bits(self) -> u16 {
        bf16::to_bits(self)
    }
}

fn supported() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

fn scalar() -> Options {
    Options::default().with_kernel(Kernel::Scalar)
}

/// Packs `src` with every kernel and checks bytes and scales (bits)
/// against the scalar kernel's; returns those.
fn check_pack<T: Bits>(
    src: &[T],
    rows: usize,
    cols: usize,
    g: usize,
    threads: usize,
) -> (Vec<u8>, Vec<f32>) {
    let want = Quantizer::new(g)
        .with_options(scalar())
        .pack_to_vec(src, rows, cols)
        .unwrap()
        .into_parts();
    let want_scales: Vec<u32> = want.1.iter().map(|s| s.to_bits()).collect();
    for kernel in supported() {
        let opts = Options::default().with_kernel(kernel).with_threads(threads);
        let (packed, scales) = Quantizer::new(g)
            .with_options(opts)
            .pack_to_vec(src, rows, cols)
            .unwrap()
            .into_parts();
        let what = format!("{} pack {} {rows}x{cols} g {g}", T::NAME, kernel.name());
        assert_eq!(packed, want.0, "{what}: bytes");
        let scales: Vec<u32> = scales.iter().map(|s| s.to_bits()).collect();
        assert_eq!(scales, want_scales, "{what}: scales");
    }
    want
}

/// Unpacks with every kernel and checks the output bits against the
/// scalar kernel's.
fn check_unpack<T: Bits>(
    packed: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    g: usize,
    threads: usize,
) {
    let want: Vec<T> = Quantizer::new(g)
        .with_options(scalar())
        .unpack_to_vec(packed, scales, rows, cols)
        .unwrap();
    let want: Vec<u16> = want.into_iter().map(T::to_bits).collect();
    for kernel in supported() {
        let opts = Options::default().with_kernel(kernel).with_threads(threads);
        let out: Vec<T> = Quantizer::new(g)
            .with_options(opts)
            .unpack_to_vec(packed, scales, rows, cols)
            .unwrap();
        let out: Vec<u16> = out.into_iter().map(T::to_bits).collect();
        if let Some(i) = out.iter().zip(&want).position(|(a, b)| a != b) {
            panic!(
                "{} unpack {} {rows}x{cols} g {g}: element {i} is {:#06x}, scalar {:#06x} \
                 (scale {:#010x})",
                T::NAME,
                kernel.name(),
                out[i],
                want[i],
                scales[(i / cols) * cols.div_ceil(g) + (i % cols) / g].to_bits(),
            );
        }
    }
}

/// Group sizes: the required ones, then some with uneven chunks
/// (24, 48, 96) or longer than the 1024-element stack buffer.
fn group_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => prop::sample::select(vec![1usize, 3, 8, 16, 32, 64, 128]),
        1 => prop::sample::select(vec![24usize, 48, 96, 1024, 1040, 2048]),
    ]
}

/// Shapes: short rows, and rows over several chunks; ragged groups are
/// common either way.
fn shape() -> impl Strategy<Value = (usize, usize, usize)> {
    (
        0usize..4,
        prop_oneof![3 => 0usize..300, 1 => 1000usize..2600],
        group_size(),
    )
}

/// Values that stress the quantization of `T` in a group whose scale is
/// `scale = 2^e`: exact ties `(k + 0.5) * scale` of the level rounding,
/// their 16-bit neighbours, values in range and tame patterns; with `wild`
/// also Inf, the largest finite values and random bits, which change the
/// group's scale.
fn adversarial<T: Bits>(scale: f32, wild: bool) -> impl Strategy<Value = T> {
    let near = move |k: i32, step: i32| {
        let tie = T::from_f32((k as f32 + 0.5) * scale).to_bits();
        T::from_bits(tie.wrapping_add(step as u16))
    };
    let wild = if wild { 1 } else { 0 };
    prop_oneof![
        6 => (-7i32..7).prop_map(move |k| near(k, 0)),
        2 => (-7i32..7, prop::sample::select(vec![-1, 1])).prop_map(move |(k, s)| near(k, s)),
        2 => prop::sample::select(T::TAME.to_vec()).prop_map(T::from_bits),
        4 => (-1.0f32..1.0).prop_map(move |v| T::from_f32(v * 7.0 * scale)),
        wild => prop::sample::select(T::WILD.to_vec()).prop_map(T::from_bits),
        2 * wild => any::<u16>().prop_map(T::from_bits),
    ]
}

/// A matrix of `T` whose groups start with `m = ±7 * 2^e`, so that (unless
/// wild) each group's scale is `2^e` and the ties are exact in `T`.
fn adversarial_matrix<T: Bits>() -> impl Strategy<Value = (usize, usize, usize, Vec<T>)> {
    (
        shape(),
        -14i32..10,
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_flat_map(|((rows, cols, g), e, negative, wild)| {
            let scale = 2f32.powi(e);
            let m = T::from_f32(if negative { -7.0 } else { 7.0 } * scale);
            proptest::collection::vec(adversarial::<T>(scale, wild), rows * cols).prop_map(
                move |mut v| {
                    v.iter_mut().step_by(g).for_each(|first| *first = m);
                    (rows, cols, g, v)
                },
            )
        })
}

/// Scales for unpack: any bits; products that tie between two values of
/// f16 or bf16 (the low bits a half unit of either type's last place);
/// products that overflow f16 or fall in its subnormal range; specials.
fn unpack_scale() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => any::<u32>().prop_map(f32::from_bits),
        2 => any::<u16>().prop_map(|h| f32::from_bits(u32::from(h) << 16 | 0x8000)),
        2 => any::<u32>().prop_map(|b| f32::from_bits(b & !0x1FFF | 0x1000)),
        1 => 8180.0f32..9400.0,
        1 => 1e-9f32..1e-4,
        1 => prop::sample::select(vec![
            f32::NAN, -f32::NAN, f32::from_bits(0x7F80_0001), f32::from_bits(0xFFA0_0000),
            f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-41, f32::MAX,
            65504.0 / 7.0, 65520.0 / 8.0, 2f32.powi(-24) / 3.0,
        ]),
    ]
}

fn unpack_case() -> impl Strategy<Value = (usize, usize, usize, Vec<u8>, Vec<f32>)> {
    shape().prop_flat_map(|(rows, cols, g)| {
        let l = Layout::new(rows, cols, g).unwrap();
        (
            Just(rows),
            Just(cols),
            Just(g),
            proptest::collection::vec(any::<u8>(), l.packed_len()),
            proptest::collection::vec(unpack_scale(), l.scales_len()),
        )
    })
}

fn random_matrix<T: Bits>() -> impl Strategy<Value = (usize, usize, usize, Vec<T>)> {
    shape().prop_flat_map(|(rows, cols, g)| {
        proptest::collection::vec(any::<u16>().prop_map(T::from_bits), rows * cols)
            .prop_map(move |v| (rows, cols, g, v))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(64)))]

    #[test]
    fn f16_random_bits_pack_and_unpack_like_scalar((rows, cols, g, src) in random_matrix::<f16>(), threads in 0usize..3) {
        let (packed, scales) = check_pack(&src, rows, cols, g, threads);
        check_unpack::<f16>(&packed, &scales, rows, cols, g, threads);
    }

    #[test]
    fn bf16_random_bits_pack_and_unpack_like_scalar((rows, cols, g, src) in random_matrix::<bf16>(), threads in 0usize..3) {
        let (packed, scales) = check_pack(&src, rows, cols, g, threads);
        check_unpack::<bf16>(&packed, &scales, rows, cols, g, threads);
    }

    #[test]
    fn f16_adversarial_values_pack_like_scalar((rows, cols, g, src) in adversarial_matrix::<f16>()) {
        let (packed, scales) = check_pack(&src, rows, cols, g, 1);
        check_unpack::<f16>(&packed, &scales, rows, cols, g, 1);
    }

    #[test]
    fn bf16_adversarial_values_pack_like_scalar((rows, cols, g, src) in adversarial_matrix::<bf16>()) {
        let (packed, scales) = check_pack(&src, rows, cols, g, 1);
        check_unpack::<bf16>(&packed, &scales, rows, cols, g, 1);
    }

    #[test]
    fn adversarial_scales_unpack_like_scalar((rows, cols, g, packed, scales) in unpack_case(), threads in 0usize..3) {
        check_unpack::<f16>(&packed, &scales, rows, cols, g, threads);
        check_unpack::<bf16>(&packed, &scales, rows, cols, g, threads);
    }
}

/// Every 16-bit pattern, in order and shuffled so that groups mix
/// magnitudes, as a matrix with ragged groups and rows longer than one
/// chunk (the first 65536 elements are every pattern once).
fn every_pattern<T: Bits>() {
    let (rows, cols) = (45, 1499);
    let sorted: Vec<u16> = (0..=u16::MAX).cycle().take(rows * cols).collect();
    let mut shuffled = sorted.clone();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..=usize::from(u16::MAX)).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        shuffled.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    for bits in [sorted, shuffled] {
        let src: Vec<T> = bits.into_iter().map(T::from_bits).collect();
        for g in [1, 3, 8, 16, 32, 64, 128] {
            let (packed, scales) = check_pack(&src, rows, cols, g, 1);
            check_unpack::<T>(&packed, &scales, rows, cols, g, 1);
        }
    }
}

#[test]
fn every_f16_pattern_packs_and_unpacks_like_scalar() {
    every_pattern::<f16>();
}

#[test]
fn every_bf16_pattern_packs_and_unpacks_like_scalar() {
    every_pattern::<bf16>();
}
